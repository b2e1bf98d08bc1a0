"""Services and counts in claim text: which LES a phrase names, and which numbers are counts.

Service names come from the catalogue (`words`, SNOMED codes) and from the claims lexicon
(catalogue/lexicon/claims.toml: abbreviations such as "dmab", brand names such as "Prolia",
"jt inj consults", and words recognised with a typo, "Denosumub"). Things practices claim that are
not LES here ("Zoladex") are found too, so a line naming one is reported, never dropped.

A number is a count unless the words around it say otherwise: money (£43.47), a dose (60mg), a
length of time (3-month), a date or month (11/2026, Nov-26), a phone, NHS or SNOMED number, a
reference (LES-000006, invoice no 31), list numbering ("1."), or the old figure of a correction
("10 (was 9)"). Counts in words ("seven", "twelve (12)", "nil") are read.

Mail-agnostic: no SQL, no sending, nothing logged.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from handlers.contract.reading.courtesy import is_courtesy
from handlers.contract.reading.forms import load_lexicon


def lexicon() -> dict:
    return load_lexicon("claims")


def _phrase(p: str) -> str:
    """A lexicon phrase as a pattern: spaces and hyphens match any run of them."""
    parts = [re.escape(w) for w in re.split(r"[\s\-]+", p.strip().lower()) if w]
    body = r"[\s\-/]*".join(parts) if len(parts) > 1 else parts[0]
    pre = r"(?<![a-z0-9])" if p[:1].isalnum() else ""
    post = r"(?![a-z0-9])" if p[-1:].isalnum() else ""
    return pre + body + post


def _norm(w: str) -> str:
    return re.sub(r"[\s\-/]+", " ", w.strip().lower())


def _trie_regex(words: list[str]) -> str:
    """An alternation of `words` as a trie: longest first at each branch; a space matches any run of
    white space, hyphens or slashes."""
    trie: dict = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node) -> str:
        branches = []
        end = "" in node
        for ch in sorted(k for k in node if k):
            piece = r"[\s\-/]+" if ch == " " else re.escape(ch)
            branches.append(piece + build(node[ch]))
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if end else body
    return build(trie)


@dataclass
class Mention:
    start: int
    end: int
    text: str
    code: str           # a catalogue code, or "other" for a service not in the catalogue


class ServiceFinder:
    """Finds service names in text for one catalogue (built once per catalogue)."""

    def __init__(self, catalogue):
        lex = lexicon()
        owner: dict[str, str] = {}
        for s in catalogue.service:
            for w in [*s.words, *s.snomed]:
                owner.setdefault(w.lower(), s.code)
        for code, entry in lex.get("services", {}).items():
            if catalogue.get(code) is None:
                continue
            for w in entry.get("synonyms", []):
                owner.setdefault(w.lower(), code)
        for w in lex.get("other", {}).get("words", []):
            owner.setdefault(w.lower(), "other")
        self.owner = {_norm(w): code for w, code in owner.items()}
        # One trie-shaped pattern (branches share prefixes), so a line costs one quick scan.
        self.pattern = re.compile(r"(?<![a-z0-9])(?:" + _trie_regex([_norm(w) for w in owner]) + r")(?![a-z0-9])",
                                  re.I)
        self.fuzzy = {w.lower(): code for code, entry in lex.get("services", {}).items()
                      if catalogue.get(code) for w in entry.get("fuzzy", [])}
        self._seen: dict[str, list[Mention]] = {}

    def find(self, text: str) -> list[Mention]:
        # A claim's clause is searched several times (is it a claim line, which services, where
        # they are); remember the last few answers. Mentions are never changed by callers.
        hit = self._seen.get(text)
        if hit is None:
            if len(self._seen) > 256:
                self._seen.clear()
            hit = self._seen[text] = self._find(text)
        return list(hit)

    def _find(self, text: str) -> list[Mention]:
        out = [Mention(m.start(), m.end(), m.group(0), self.owner[_norm(m.group(0))])
               for m in self.pattern.finditer(text) if _norm(m.group(0)) in self.owner]
        if self.fuzzy:
            from rapidfuzz import fuzz
            taken = [(m.start, m.end) for m in out]
            for t in re.finditer(r"[A-Za-z]{6,}", text):
                if any(a <= t.start() < b for a, b in taken):
                    continue
                word = t.group(0).lower()
                for target, code in self.fuzzy.items():
                    # cheap tests first; the ratio only for a near-length word of the same start
                    if word != target and abs(len(word) - len(target)) <= 2 and \
                            word[:2] == target[:2] and fuzz.ratio(word, target) >= 80:
                        out.append(Mention(t.start(), t.end(), t.group(0), code))
                        break
        out.sort(key=lambda m: m.start)
        return out

    def codes(self, text: str) -> list[str]:
        seen = []
        for m in self.find(text):
            if m.code not in seen:
                seen.append(m.code)
        return seen


@lru_cache(maxsize=8)
def finder(catalogue) -> ServiceFinder:
    return ServiceFinder(catalogue)


# -- counts ----------------------------------------------------------------------------------
@dataclass
class Num:
    value: int | float
    start: int
    end: int
    text: str
    word: bool = False          # written in words
    paren: bool = False         # inside ( )
    superseded: bool = False    # "(was 9)"


@lru_cache(maxsize=1)
def _patterns():
    lex = lexicon()
    num = lex.get("numbers", {})
    words = num.get("words", {})
    alt = lambda items: "|".join(_phrase(w) for w in sorted(items, key=len, reverse=True))  # noqa: E731
    return {
        "words": {k.lower(): v for k, v in words.items()},
        "word_re": re.compile(r"\b(" + "|".join(sorted(words, key=len, reverse=True)) + r")(?:[\s\-]+("
                              + "|".join(k for k, v in words.items() if 1 <= v <= 9) + r"))?\b", re.I),
        "unit_after": re.compile(r"^\W{0,3}(?:\w+\W+){0,3}?(?:" + alt(num.get("units", [])) + ")", re.I),
        "duration": re.compile(r"^[\s\-]*(?:" + alt(num.get("durations", [])) + ")", re.I),
        "measure": re.compile(r"^\s*(?:" + alt(num.get("measures", [])) + r")(?![a-z])", re.I),
        "reference": re.compile(r"(?:" + alt(num.get("references", [])) + r")\s*[:.#]?\s*$", re.I),
        "superseded": re.compile(r"(?:" + alt(num.get("superseded", [])) + r")\s*[:=]?\s*$", re.I),
    }


MASKS = [
    re.compile(r"[£$€]\s?-?[\d,]*\d(?:\.\d+)?(?:\s?(?:k|m)\b)?"),                # money
    re.compile(r"(?<![\d.])-?[\d,]*\d(?:\.\d+)?\s?(?:p|pence|gbp|pounds?)\b", re.I),
    re.compile(r"(?<!\d)(?:\+44\s?\(?0?\)?\s?|0)\d{2,4}\)?[\s\-]?\d{3}[\s\-]?\d{3,4}(?!\d)"),   # phones
    re.compile(r"(?<!\d)\d{3}[\s\-]\d{3}[\s\-]\d{4}(?!\d)"),                   # NHS numbers, spaced
    re.compile(r"(?<![\d.])\d{6,}(?![\d.])"),                                  # NHS, SNOMED, long refs
    re.compile(r"(?<!\d)\d{1,2}:\d{2}(?::\d{2})?(?!\d)"),                      # times
    re.compile(r"(?<!\d)\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4}(?![\d/])"),           # dates
    re.compile(r"(?<![\d.])\d{1,2}/\d{1,2}(?![\d/])"),                          # 07/12
    re.compile(r"\b[A-Za-z]{2,}[\-_/#]\d+\b"),                                  # LES-000006, FLP-0031
    re.compile(r"(?<!\d)20\d{2}\s*[/\-–]\s*\d{2}(?!\d)"),                      # 2026/27
    re.compile(r"(?<![\d.])(?:19|20)\d{2}(?![\d.])"),                          # a year
    re.compile(r"(?<!\d)\d+(?:st|nd|rd|th)\b", re.I),                           # the 10th
    re.compile(r"(?<![\d.,])\d+(?:\.\d+)?\s?%"),                               # percentages
]
LIST_NUMBER = re.compile(r"^\s*(?:\(?\d{1,2}[.)]|\d{1,2}\s?[-–:]\s)(?=\s*\D)")
NUMBER = re.compile(r"(?<![A-Za-wyz\d.£$€/,\-])(-?\d{1,3}(?:,\d{3})+|-?\d+)(\.\d+)?(?![A-Za-wyz\d/])"
                    r"|(?<=[\s:(=x])(-\d+)(?![\d/])")


def mask(text: str, spans=()) -> str:
    """`text` with everything that is not a count blanked out (same length, so offsets hold)."""
    chars = list(text)

    def blank(a, b):
        for i in range(a, b):
            if chars[i] not in "\n":
                chars[i] = " "
    for a, b in spans:
        blank(a, b)
    m = LIST_NUMBER.match(text)
    if m:
        blank(m.start(), m.end())
    cur = "".join(chars)
    for rx in MASKS:
        for m in rx.finditer(cur):
            blank(m.start(), m.end())
        cur = "".join(chars)
    return cur


def numbers(text: str, spans=(), service_spans=()) -> list[Num]:
    """Candidate counts in one clause. `spans`: stretches already read (months) to leave out;
    `service_spans`: where services are named (a number word next to one is a count)."""
    p = _patterns()
    masked = mask(text, spans)
    out: list[Num] = []
    for m in NUMBER.finditer(masked):
        s = m.group(0)
        a, b = m.start(), m.end()
        after, before = masked[b:b + 40], masked[max(0, a - 40):a]
        if p["measure"].match(after) or p["duration"].match(after):
            continue
        if p["reference"].search(before):
            continue
        try:
            value: int | float = int(s.replace(",", "")) if not m.group(2) else float(s.replace(",", ""))
        except ValueError:
            continue
        if isinstance(value, float) and value.is_integer() and re.fullmatch(r"-?\d+\.0+", s):
            value = int(value)
        out.append(Num(value, a, b, s, paren=_in_paren(masked, a),
                       superseded=bool(p["superseded"].search(before[-20:]))))
    for m in p["word_re"].finditer(masked):
        w = m.group(1).lower()
        value = p["words"].get(w)
        if value is None:
            continue
        if m.group(2):
            value += p["words"][m.group(2).lower()]
        a, b = m.start(), m.end()
        after, before = masked[b:b + 40], masked[max(0, a - 12):a]
        near_service = any(0 <= sa - b <= 30 for sa, _ in service_spans)
        labelled = bool(re.search(r"(?:[:=\-–]|\bx|\bwere|\bwas|\bgave|\bdid)\s*$", before, re.I))
        confirmed = bool(re.match(r"\s*\(\s*\d+\s*\)", after))
        if re.match(r"\s+(?:of|off|more|another|other|else)\b|-off\b", after, re.I) or w == "none" and not labelled:
            continue
        if value == 0 and not labelled:
            continue
        if not (labelled or confirmed or near_service or p["unit_after"].match(after)):
            continue
        out.append(Num(value, a, b, m.group(0), word=True, paren=_in_paren(masked, a),
                       superseded=bool(p["superseded"].search(before))))
    out.sort(key=lambda n: n.start)
    return out


def _in_paren(text: str, at: int) -> bool:
    opened = text.rfind("(", 0, at)
    return opened != -1 and text.rfind(")", 0, at) < opened


def choose(nums: list[Num], text: str) -> tuple[int | float | None, str, list[Num]]:
    """(count, how, used) from the candidates of one clause about one service.
    how: "" for a plain count, "sum" when several parts were added, "ambiguous" when the numbers
    disagree and nothing says how they go together."""
    live = [n for n in nums if not n.superseded]
    if not live:
        return None, "", []
    plain = [n for n in live if not n.paren]
    if plain:
        live = plain         # "nine (9)", "14 (7 main, 7 branch)": the figure outside brackets
    values = []
    for n in live:
        if n.value not in values:
            values.append(n.value)
    if len(values) == 1:
        return values[0], "", live
    between = [text[x.end:y.start] for x, y in zip(live, live[1:])]
    if all(re.search(r"[,;+&]|\band\b|\bplus\b", g, re.I) and re.search(r"[A-Za-z]", g + "a")
           for g in between) and all(isinstance(n.value, int) and n.value >= 0 for n in live):
        return sum(n.value for n in live), "sum", live
    return None, "ambiguous", live


# -- courtesy ----------------------------------------------------------------------------------
def is_thanks_only(text: str) -> bool:
    """A reply that only thanks or acknowledges ("Brilliant, thank you!"): nothing to act on.
    `text` is the sender's new text (quoted mail removed). See bot/reading/courtesy.py."""
    return is_courtesy(text)
