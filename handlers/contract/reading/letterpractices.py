"""The GP practices a clinic letter names: by ODS code, by name (exact after normalising, or
fuzzily for a typo) or by postcode, against the directory the caller passes in; and the
practice-like phrases it writes whether or not they are known.

Mail-agnostic: text in, codes and phrases out. No SQL, no mail, nothing logged.
"""
from __future__ import annotations

import re
from functools import lru_cache

from handlers.contract.reading.letterpatient import POSTCODE
from handlers.contract.reading.phrases import _alt, lexicon
from handlers.contract.reading.phrases import lowered as lower_for_search


@lru_cache(maxsize=4096)
def norm_name(name: str) -> str:
    """'St. Ebba’s Surgery' -> 'st ebbas surgery'; 'The Old Chapel Surgery' -> 'old chapel surgery'."""
    return " ".join(_name_words(name))


@lru_cache(maxsize=64)
def _name_words(name: str) -> tuple[str, ...]:
    name = (name or "").lower().replace("&", " and ").translate(_DROPPED)
    # the words are the runs of a-z and 0-9; for ASCII text a table finds them faster than a pattern
    words = name.translate(_ASCII_GAPS).split() if name.isascii() else _ALNUM.findall(name)
    return tuple(w for w in words if w not in ("the", "nhs"))


_ASCII_GAPS = {c: " " for c in range(128) if not chr(c).isalnum() or chr(c).isupper()}


def ods_codes_in(text: str) -> list[str]:
    r"""Every ODS-code-shaped word (a capital and five digits), in order: re.findall(r"\b([A-Z]\d{5})\b"),
    faster (a pattern that opens with \b is tried at every position; this one jumps to capitals)."""
    out = []
    for m in _ODS_TAIL.finditer(text):
        i = m.start()
        if i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_"):
            out.append(m.group(0))
    return out


_ODS_TAIL = re.compile(r"[A-Z]\d{5}(?!\w)")


_DROPPED = str.maketrans("", "", "'’`.")
_ALNUM = re.compile(r"[a-z0-9]+")


def practice_mentions(text: str) -> list[str]:
    """Phrases that name a GP practice ('Riverside Medical Group'), whether or not it is known.
    A phrase never runs over a line break, so a text made of parts (subject, covering note,
    letter) is read part by part and each part's reading is kept."""
    parts = (text or "").split("\n\n\n")
    return list(dict.fromkeys(m for part in parts for m in _practice_mentions(part)))


@lru_cache(maxsize=16)
def _practice_mentions(text: str) -> tuple[str, ...]:
    lex = lexicon()
    nouns = _alt(lex.words("practices", "nouns"))
    stop = {w.lower() for w in lex.words("practices", "not_names")}
    out = []
    rx = _mention_rx(nouns)
    # a mention never runs over a line: only lines holding a noun's first word can hold one
    # (the full pattern is slow to try at every capital letter of a long letter)
    text = text or ""
    lowered = lower_for_search(text)
    if lowered is None:
        lines = [text]
    else:
        starts = set()
        for w in _first_words(tuple(lex.words("practices", "nouns"))):
            i = lowered.find(w)
            while i >= 0:
                starts.add(lowered.rfind("\n", 0, i) + 1)
                i = lowered.find(w, i + 1)
        lines = [text[a:(b if (b := text.find("\n", a)) >= 0 else len(text))] for a in sorted(starts)]
    for m in (m for line in lines for m in rx.finditer(line)):
        words = m.group(1).split()
        while words and (words[0].lower().strip(".") in stop or not words[0][0].isupper()):
            words.pop(0)
        if not words or words[-1].lower() in stop or not m.group(2)[0].isupper():
            continue
        out.append(" ".join(words + [m.group(2)]))
    return tuple(dict.fromkeys(out))


@lru_cache(maxsize=8)
def _mention_rx(nouns: str) -> re.Pattern:
    return re.compile(r"((?:[A-Z][\w'’.\-]*[ \t]+){1,5})((?i:" + nouns + r"))\b")


@lru_cache(maxsize=8)
def _first_words(phrases: tuple) -> tuple[str, ...]:
    return tuple({p.split()[0].lower() for p in phrases if p.split()})


def practices_in(text: str, directory, fuzzy: int = 90) -> list[str]:
    """ODS codes of directory practices the text names: by ODS code, by name (exact after
    normalising, or fuzzily for a typo), or by postcode. `directory`: (code, name, postcodes)
    for each practice, as a tuple (prepared once and reused while it is the same)."""
    from rapidfuzz import fuzz, process
    if not isinstance(directory, tuple):
        directory = tuple((c, n, frozenset(p)) for c, n, p in directory)
    codes, names, by_first = _prepared(directory)
    found = [c for c in dict.fromkeys(ods_codes_in(text or "")) if c in codes]
    # a name written in full: its words, in order, among the text's words (as normalised)
    words = _name_words(text)
    matched = {i for i, n in enumerate(names) if not n} if not words else set()
    for w in by_first.keys() & set(words):          # the few first words of names the text holds
        k = words.index(w)
        while True:
            for n, by_words in by_first[w]:
                matched.update(by_words.get(words[k:k + n], ()))
            try:
                k = words.index(w, k + 1)
            except ValueError:
                break
    by_postcode = _postcodes_of(directory)
    for m in POSTCODE.findall((text or "").upper()) if by_postcode else ():    # no postcodes known: none to find
        matched |= by_postcode.get(m.replace(" ", ""), set())
    # a misspelt name: compared with each practice-like phrase of similar length
    for mention in (norm_name(x) for x in practice_mentions(text)):
        for _, _, i in process.extract(mention, names, scorer=fuzz.ratio, score_cutoff=fuzzy, limit=None):
            if abs(len(mention) - len(names[i])) <= max(3, len(names[i]) // 5):
                matched.add(i)
    return list(dict.fromkeys(found + [c for i, (c, _, _) in enumerate(directory) if i in matched]))


@lru_cache(maxsize=4)
def _prepared(directory: tuple) -> tuple[set, list[str], dict[str, list]]:
    """(codes, normalised names, first word -> [(a length, {those words: [indexes]})]): many
    practices may share a first word ('St', 'The Surgery'), so names are looked up whole."""
    grouped: dict[str, dict[int, dict[tuple, list[int]]]] = {}
    for i, (_, name, _) in enumerate(directory):
        words = _name_words(name)
        if words:
            grouped.setdefault(words[0], {}).setdefault(len(words), {}).setdefault(words, []).append(i)
    by_first = {w: sorted(lengths.items()) for w, lengths in grouped.items()}
    return {c for c, _, _ in directory}, [norm_name(n) for _, n, _ in directory], by_first


@lru_cache(maxsize=4)
def _postcodes_of(directory: tuple) -> dict[str, set]:
    by_postcode: dict[str, set] = {}
    for i, (_, _, theirs) in enumerate(directory):
        for p in theirs:
            by_postcode.setdefault(p.replace(" ", ""), set()).add(i)
    return by_postcode
