"""Which directory practices a message names, and in what role.

Evidence, each a Mention with where it was found:
  - an ODS code that is in the directory ("K96106");
  - a name matched against the directory's names, exactly or fuzzily (rapidfuzz): "Ferryhill Lane
    Surgery" finds "Ferryhill Lane Practice", "Marram Dunes HC" finds "Marram Dunes Health Centre",
    "Wyke Bridge" finds "Wyke Bridge Medical Practice"; a street address ("141 Coldharbour Road")
    and a one-word name without its "Surgery"/"Health Centre" (a town, too) are not names;
  - directory addresses in To/Cc/From and e-mail addresses written in the text;
  - ticked boxes ("☒ Wyke Bridge Medical Practice") - an unticked box is not a mention.
Roles from the words around a mention: receiving ("refer to", "could X see", "receiving practice",
"Dear ... at X", a "To:" line, "seen at", "for X please"), registered ("registered with", "usual GP",
"registered practice", "our patient"), referring ("referring practice", "referred from"), history
("previously", "former", "had an injection at", "moved from"), sender (the signature block).

Mail-agnostic: text and addresses in, mentions out. The directory is passed in as a Directory
(built once per directory change: Directory.kept, called by handlers/casework.directory). Nothing logged.
The words live in catalogue/lexicon/referrals.toml ([practice_roles], [practice_words]), read by
practicewords.
"""
from __future__ import annotations

import bisect
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from email.utils import getaddresses
from typing import Iterable

from rapidfuzz import fuzz, process

from handlers.contract.reading.practicewords import _forms_of, _norm, lexicon

ODS_SHAPE = re.compile(r"\b([A-Z][0-9]{5})\b")
POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b")
EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
TICKED = "☒☑✔✓■▣⊠✗✘"
UNTICKED = "☐□▢◻"


@dataclass(frozen=True)
class Practice:
    ods_code: str
    name: str
    kind: str = "practice"
    emails: tuple = ()
    services: tuple = ()


@dataclass
class Mention:
    ods_code: str
    how: str             # ods, name, fuzzy, ticked, to, cc, from, email
    written: str = ""    # as written (for headers: the address)
    start: int = -1      # position in the text; -1 for a header
    role: str | None = None   # receiving, registered, referring, history, sender, addressee or None
    score: float = 100.0


class Directory:
    """The organisations lesbot knows, as the reading layer needs them (no SQL here)."""

    def __init__(self, orgs: Iterable):
        self.orgs: dict[str, Practice] = {}
        self.emails: dict[str, str] = {}
        for o in orgs:
            get = (o.get if isinstance(o, dict) else lambda k, d=None, o=o: getattr(o, k, d))
            p = Practice(get("ods_code"), get("name"), get("kind", "practice") or "practice",
                         tuple(e.lower() for e in (get("emails", ()) or ())), tuple(get("services", ()) or ()))
            self.orgs[p.ods_code] = p
            for e in p.emails:
                self.emails[e] = p.ods_code
        self._forms: dict[str, tuple[list[str], list[str]]] = {}
        self._index: dict[tuple, tuple[dict, dict]] = {}
        self._codes: dict[tuple, frozenset[str]] = {}
        self._fuzzy: dict[tuple, tuple] = {}        # _fuzzy_hits' results
        self._compared: dict[tuple, list] = {}      # handlers.casework's name lists, per kinds

    @classmethod
    def kept(cls, key, rows) -> "Directory":
        """The directory for `key` (its source and version), built from `rows()` only when the key
        is new: building one is slow and the directory seldom changes."""
        with _LOCK:
            hit = _CACHE.get(key)
        if hit is None:
            hit = cls(rows())
            with _LOCK:
                _CACHE.clear()
                _CACHE[key] = hit
        return hit

    def get(self, code: str | None) -> Practice | None:
        return self.orgs.get((code or "").upper())

    def by_email(self, address: str | None) -> Practice | None:
        return self.orgs.get(self.emails.get((address or "").strip().lower(), ""))

    def practices(self, kinds=("practice",)) -> list[Practice]:
        return [p for p in self.orgs.values() if p.kind in kinds]

    def codes(self, kinds=("practice",)) -> frozenset[str]:
        key = tuple(kinds)
        hit = self._codes.get(key)
        if hit is None:
            hit = self._codes[key] = frozenset(p.ods_code for p in self.practices(kinds))
        return hit

    def offering(self, service: str) -> list[Practice]:
        return [p for p in self.practices() if service in p.services]

    def name_index(self, kinds=("practice",)) -> tuple[dict, dict, dict]:
        """Every written form of every practice's name, indexed for one pass over a text:
        exact: form -> candidates; sizes: first word -> the word counts of forms starting with it;
        fuzzy: (first letter, word count) -> (lengths, forms, candidates) in length order, forms of
        7+ letters. A candidate is (code, form, word count, is a core name). Built once per directory."""
        key = tuple(kinds)
        hit = self._index.get(key)
        if hit is None:
            exact: dict[str, list] = {}
            sizes: dict[str, set] = {}
            fuzzy: dict[tuple, list] = {}
            for p in self.practices(kinds):
                fulls, cores = self.forms(p.ods_code)
                for form in fulls + cores:
                    n = len(form.split())
                    cand = (p.ods_code, form, n, form in cores)
                    exact.setdefault(form, []).append(cand)
                    sizes.setdefault(form.split()[0], set()).add(n)
                    if len(form) >= 7:
                        fuzzy.setdefault((form[:1], n), []).append((len(form), cand))
            for k, v in fuzzy.items():
                v.sort(key=lambda x: x[0])
                # (lengths, forms, candidates) in length order: bisected, then scored in one call
                fuzzy[k] = ([x[0] for x in v], [x[1][1] for x in v], [x[1] for x in v])
            hit = self._index[key] = (exact, sizes, fuzzy)
        return hit

    def forms(self, code: str) -> tuple[list[str], list[str]]:
        """(full names, core names) a practice is written as: normalised word strings."""
        hit = self._forms.get(code)
        if hit is None:
            hit = _forms_of(self.orgs[code].name)
            self._forms[code] = hit
        return hit


_CACHE: dict = {}
_LOCK = threading.Lock()


# -- finding practices in text ----------------------------------------------------------------------
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’]*\.?")


def _tokens(text: str) -> list[tuple[str, int, int]]:
    out = []
    for m in _TOKEN.finditer(text):
        start, end = m.span()
        for part in _parts(m.group(0)):
            out.append((part, start, end))
    return out


@lru_cache(maxsize=8192)      # the same words come in every letter
def _parts(token: str) -> tuple[str, ...]:
    return tuple(_norm(token).split())


_ODS_LIKE = re.compile(r"\b([A-Z][A-Z0-9]{2,5})\b")
_DIGIT = re.compile(r"\d")


def find_in_text(text: str, directory: Directory, kinds=("practice",), fuzzy: bool = True) -> list[Mention]:
    """Mentions of directory organisations in text: ODS codes, names (exact or fuzzy), addresses
    written in the text, ticked boxes. Each mention carries its role from the words before it."""
    text = text or ""
    out: list[Mention] = []
    wanted = directory.codes(kinds)
    for m in _ODS_LIKE.finditer(text):
        if m.group(1) in wanted and _DIGIT.search(m.group(1)):
            out.append(Mention(m.group(1), "ods", m.group(1), m.start()))
    for m in EMAIL.finditer(text):
        p = directory.by_email(m.group(0))
        if p and p.ods_code in wanted:
            out.append(Mention(p.ods_code, "email", m.group(0), m.start()))
    toks = _tokens(text)
    words = [t[0] for t in toks]
    generic_set = lexicon()["generic_set"]
    exact_idx, sizes, fuzzy_idx = directory.name_index(kinds)
    fuzzy_sizes = sorted({n for _, n in fuzzy_idx}) if fuzzy else []
    memo: dict[int, bool] = {}

    def suffixed(j: int) -> bool:
        """Do the words from j on start with a practice word (Surgery, Medical Centre …)?"""
        if j not in memo:
            # a generic form is whole words, so "follow == g or follow starts with g + ' '" is: the
            # first one, two or three words (or all of them, maybe none) are g
            memo[j] = any(" ".join(words[j:j + k]) in generic_set for k in (1, 2, 3)) \
                or " ".join(words[j:j + 3]) in generic_set
        return memo[j]

    def candidates(i: int, word: str):
        """(candidate, score) for names that could start at word i: exact ones by lookup, fuzzy
        ones only among forms whose length leaves a score of 86 (90 for one word) possible."""
        for n in sizes.get(word, ()):
            for cand in exact_idx.get(" ".join(words[i:i + n]), ()):
                yield cand, 100.0
        for n in fuzzy_sizes:
            bucket = fuzzy_idx.get((word[:1], n))
            if not bucket or i + n > len(words):
                continue
            window = " ".join(words[i:i + n])
            if window in exact_idx:
                continue
            cutoff = 86 if n > 1 else 90
            a = len(window)
            lengths, forms, cands = bucket
            lo = bisect.bisect_left(lengths, a * cutoff / (200 - cutoff))
            hi = bisect.bisect_right(lengths, a * (200 - cutoff) // cutoff)   # longer can only score lower
            if lo >= hi:
                continue
            for k, score in _fuzzy_hits(directory, kinds, window, n, lo, hi, cutoff):
                yield cands[lo + k], score

    starts = {k[0] for k in fuzzy_idx if k[1] in fuzzy_sizes}     # first letters a fuzzy form has
    for i, word in enumerate(words):
        if word not in sizes and word[:1] not in starts:
            continue                    # candidates() would find nothing: skip the generator
        for (code, form, n, is_core), score in candidates(i, word):
            if code not in wanted:
                continue
            exact = score == 100.0 and " ".join(words[i:i + n]) == form
            start, end = toks[i][1], toks[i + n - 1][2]
            if _street(text, start, end):
                continue
            if is_core and not suffixed(i + n):
                # a core name ("Wyke Bridge") alone: two words or more, written with a capital
                if n < 2 or _capital(text, start) is False:
                    continue
                score -= 10
            out.append(Mention(code, "name" if exact else "fuzzy", text[start:end], start, score=score))
    out = _dedupe(out)
    for mention in out:
        if mention.start >= 0:
            mention.role = role_at(text, mention.start)
    return _ticks(text, out)


def _fuzzy_hits(directory: Directory, kinds, window: str, n: int, lo: int, hi: int,
                cutoff: float) -> tuple[tuple[int, float], ...]:
    """(index in the bucket slice, score) of the forms scoring >= cutoff against window, in bucket
    order. Kept per directory: the same word pairs ("patient name", "previous injections") come in
    every letter, and scoring them against every form is the slow part of reading names."""
    key = (tuple(kinds), window, n, lo, hi, cutoff)
    memo = directory._fuzzy
    hit = memo.get(key)
    if hit is None:
        forms = directory.name_index(kinds)[2][(window[:1], n)][1]
        hits = process.extract(window, forms[lo:hi], scorer=fuzz.ratio, score_cutoff=cutoff, limit=None)
        hit = tuple((k, score) for _, score, k in sorted(hits, key=lambda h: h[2]))
        if len(memo) >= 20000:
            memo.clear()                # bounded: a long run of odd letters cannot grow it for ever
        memo[key] = hit
    return hit


def _capital(text: str, start: int) -> bool:
    return text[start:start + 1].isupper() or text[start:start + 1].isdigit()


def _street(text: str, start: int, end: int) -> bool:
    """'141 Coldharbour Road', 'Hollins Green, Wyke WQ4 6WC' in an address: a place, not a practice."""
    before = text[max(0, start - 12):start]
    if _NUMBER_BEFORE.search(before):
        return True
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line = text[line_start:line_end if line_end >= 0 else len(text)]
    return bool(_ADDRESS_LINE.match(line))


_NUMBER_BEFORE = re.compile(r"\d+[a-z]?,?\s*$", re.I)
_ADDRESS_LINE = re.compile(r"\s*(?:[-•*]\s*)?(?:patient'?s?\s+)?(?:home\s+|current\s+)?address\b", re.I)


def _dedupe(found: list[Mention]) -> list[Mention]:
    """Overlapping mentions of one organisation collapse to the best; a longer match inside which a
    shorter one of another organisation sits wins."""
    found.sort(key=lambda m: (m.start, -len(m.written), -m.score))
    out: list[Mention] = []
    for m in found:
        clash = next((o for o in out if o.start <= m.start < o.start + len(o.written)), None)
        if clash:
            if clash.ods_code == m.ods_code:
                continue
            if len(clash.written) >= len(m.written) and clash.score >= m.score:
                continue
            out.remove(clash)
        out.append(m)
    return sorted(out, key=lambda m: m.start)


def _ticks(text: str, found: list[Mention]) -> list[Mention]:
    """In a list of tick boxes, a practice beside an unticked box is not named; beside a ticked one
    it is the choice (role kept from the list's heading, else receiving)."""
    out = []
    for m in found:
        line_start = text.rfind("\n", 0, m.start) + 1
        before = text[line_start:m.start]
        box = re.search(r"([" + TICKED + UNTICKED + r"]|\[\s*[xX✓✔*]?\s*\])\s*$", before)
        if box:
            b = box.group(1)
            if b in UNTICKED or re.fullmatch(r"\[\s*\]", b):
                continue
            m.how = "ticked"
            # a list of boxes is a choice of where to send the patient, unless its own line says otherwise
            line_end = text.find("\n", m.start)
            m.role = _role_in(text[line_start:line_end if line_end >= 0 else len(text)]) or "receiving"
        out.append(m)
    return out


def _heading_role(text: str, line_start: int) -> str | None:
    """The role named by the last label line above a list of boxes."""
    above = text[max(0, line_start - 300):line_start]
    for line in reversed([ln for ln in above.splitlines() if ln.strip()]):
        if re.search(r"[" + TICKED + UNTICKED + r"]|\[\s*[xX]?\s*\]", line):
            continue
        return _role_in(line)
    return None


def _role_in(window: str) -> str | None:
    lex = lexicon()
    memo = lex["role_memo"]         # per lexicon version: the same label windows come in every letter
    if window in memo:
        return memo[window]
    if len(memo) >= 20000:
        memo.clear()
    memo[window] = role = _role_of(window, lex["role_rx"])
    return role


def _role_of(window: str, rx: dict) -> str | None:
    best, at = None, -1
    for role in ("history", "referring", "registered", "receiving"):
        for m in rx[role].finditer(window):
            if m.start() > at or (m.start() == at and role != "receiving"):
                best, at = role, m.start()
    return best


def role_at(text: str, start: int) -> str | None:
    """The role the words before a mention give it, within its clause (same line or sentence, up to ~80
    characters back): the nearest role word wins."""
    line_start = text.rfind("\n", 0, start) + 1
    window = text[max(line_start, start - 80):start]
    # a sentence boundary in the window cuts it
    cut = max(window.rfind(". "), window.rfind("; "), window.rfind("? "))
    if cut >= 0:
        window = window[cut + 2:]
    role = _role_in(window)
    if role is None and line_start == start or (role is None and not window.strip()):
        # a label on the line above: "Receiving practice:\n  Wyke Bridge"
        prev_end = line_start - 1
        prev_start = text.rfind("\n", 0, max(prev_end, 0)) + 1
        prev = text[prev_start:max(prev_end, prev_start)]
        if prev.strip().endswith(":") and len(prev.strip()) < 60:
            role = _role_in(prev)
    return role


def in_headers(directory: Directory, to: Iterable[str] = (), cc: Iterable[str] = (),
               sender: str | None = None, kinds=("practice",), ignore: Iterable[str] = ()) -> list[Mention]:
    """Directory organisations among the To, Cc and From addresses (raw header values or bare addresses)."""
    out: list[Mention] = []
    skip = {a.lower() for a in ignore}
    for how, values in (("to", to), ("cc", cc), ("from", [sender] if sender else [])):
        for _, addr in getaddresses(list(values)):
            addr = addr.lower()
            if not addr or addr in skip:
                continue
            p = directory.by_email(addr)
            if p and p.kind in kinds and not any(o.ods_code == p.ods_code and o.how == how for o in out):
                out.append(Mention(p.ods_code, how, addr, -1, "sender" if how == "from" else None))
    return out


def find_practices(text: str, directory: Directory, *, sender: str | None = None, to: Iterable[str] = (),
                   cc: Iterable[str] = (), kinds=("practice",), ignore: Iterable[str] = ()) -> list[Mention]:
    """Every mention of a directory practice: in the text (with roles), then To/Cc/From addresses."""
    return find_in_text(text, directory, kinds) + in_headers(directory, to, cc, sender, kinds, ignore)


def match_name(name: str, directory: Directory, kinds=("practice",), cutoff: float = 86) -> list[tuple[str, float]]:
    """Directory organisations a written name may be, best first: [(ods_code, score)]. An ODS code in
    the name decides; otherwise names are compared without 'the'/'NHS' and with the generic part
    ('Surgery', 'Health Centre', 'HC') allowed to differ."""
    codes = [m.ods_code for m in find_in_text(name, directory, kinds) if m.how == "ods"]
    if codes:
        return [(c, 100.0) for c in dict.fromkeys(codes)]
    hits = {}
    for m in find_in_text(name, directory, kinds):
        hits[m.ods_code] = max(hits.get(m.ods_code, 0), m.score)
    if not hits:
        n = _norm(name)
        for p in directory.practices(kinds):
            fulls, cores = directory.forms(p.ods_code)
            s = max(fuzz.token_set_ratio(n, f) for f in fulls + cores)
            if s >= cutoff:
                hits[p.ods_code] = s - 5
    return sorted(hits.items(), key=lambda kv: -kv[1])


def unknown_ods_codes(text: str, directory: Directory) -> list[str]:
    """Practice-shaped ODS codes (A12345) written in the text that the directory does not hold."""
    return [c for c in dict.fromkeys(ODS_SHAPE.findall(text or "")) if c not in directory.orgs]
