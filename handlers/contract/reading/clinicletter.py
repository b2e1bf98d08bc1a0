"""The UK clinic letter, read as hospitals write it (issue 10, principle 2).

    Re: Mrs Patricia Anne KEMBLE, DOB 14/03/1948, NHS No 999 148 7166
        22 Furnace Lane
        Southmere SQ5 9FL

or labelled fields ("Patient:", "DOB:", "NHS No:", an address over several lines), a
pasted Outlook table, PDF/DOCX text with each label on its own line; section headings by
synonym (Diagnosis / Impression / Problems; Plan / Recommendations / Actions for GP;
Re-refer if / Fast-track / Refer back if; Information given / Patient informed); dates
with the role the words before them give (born, clinic, typed, initiated, first dose,
last dose, next due), "today" being the letter's own date (the clinic, not the day it
was typed or sent).

Mail-agnostic: text in, a ClinicLetter out. No SQL, no mail, nothing logged (the text
holds patient details). The words live in catalogue/lexicon/letters.toml.
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field, replace
from datetime import date
from functools import lru_cache

from handlers.contract import dates
from handlers.contract import nhs
from handlers.contract.reading.lexicon import derived

POSTCODE = re.compile(r"\b([A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2})\b")
PHONE_CONTEXT = re.compile(r"\b(tel|telephone|phone|mob|mobile|fax|ring|call|switchboard|t:|f:|m:)\W{0,3}$", re.I)


def _alt(words) -> str:
    """A regex alternation of phrases, longest first; a space matches any white space."""
    return _alt_of(tuple(words))


@lru_cache(maxsize=None)
def _alt_of(words: tuple) -> str:
    return "|".join(r"\s+".join(re.escape(p) for p in w.split()) for w in sorted(set(words), key=len, reverse=True))


@dataclass(frozen=True)
class Lexicon:
    raw: dict

    def words(self, section: str, key: str) -> list[str]:
        return list(self.raw.get(section, {}).get(key, []))

    def rx(self, section: str, key: str, flags=re.I) -> "Phrases":
        return _compiled(self, section, key, flags)


class Phrases:
    """A compiled alternation of lexicon phrases that searches fast: a pattern of many literal
    branches is slow to try at every position of a letter, so `search` and `finditer` try it
    only where one of the phrases' first words starts (found with str.find). Same results as
    the pattern's own; anything else (sub, split, .pattern …) goes to the pattern."""

    def __init__(self, pattern: re.Pattern, words):
        self.rx = pattern
        self.hints = tuple({w.split()[0].lower() for w in words if w.split()})

    def __getattr__(self, name):
        return getattr(self.rx, name)

    def _lowered(self, text: str) -> str | None:
        lowered = text.lower()
        return lowered if len(lowered) == len(text) else None

    def finditer(self, text, *args):
        if args:
            return self.rx.finditer(text, *args)
        return _matches(self.rx, text, self._lowered(text), self.hints)

    def search(self, text, *args):
        if args:
            return self.rx.search(text, *args)
        return next(iter(self.finditer(text)), None)

    def in_each(self, texts) -> list[bool]:
        """[bool(self.search(t)) for t in texts], in one pass: the texts are joined with NULs
        (a phrase is words and white space, so no match runs over one, and at a NUL the
        pattern's word-boundary look-arounds see what they see at a text's ends)."""
        texts = list(texts)
        starts, at = [], 0
        for t in texts:
            starts.append(at)
            at += len(t) + 1
        hit = [False] * len(texts)
        for m in self.finditer("\0".join(texts)):
            hit[bisect.bisect_right(starts, m.start()) - 1] = True
        return hit

    def each(self, texts) -> list:
        """The texts that hold a phrase (see in_each)."""
        texts = list(texts)
        return [t for t, h in zip(texts, self.in_each(texts)) if h]


@lru_cache(maxsize=None)
def _compiled(lex: Lexicon, section: str, key: str, flags) -> "Phrases":
    words = lex.words(section, key)
    rx = re.compile(r"(?<![\w-])(?:" + _alt(words) + r")(?![\w])", flags) if words else re.compile(r"(?!)")
    return Phrases(rx, words)


def lexicon() -> Lexicon:
    """The lexicon, re-read when the file changes (editable without code)."""
    return derived("letters", _build)


def _build(raw: dict) -> "Lexicon":
    return Lexicon(_Frozen(raw))


class _Frozen(dict):
    """A dict usable as part of a cache key (the lexicon is read-only once loaded)."""

    def __hash__(self):
        return id(self)


# -- dates with roles ---------------------------------------------------------------------------
DOSE_ROLES = ("first_dose", "last_dose", "doses", "initiated", "next_due")
WHEN_ROLES = ("clinic", "letter", "typed")
SHORT_DATE = re.compile(r"(?<![\w/.-])(\d{1,2})(?:st|nd|rd|th)?\s+(" + "|".join(
    sorted(dates.MONTHS, key=len, reverse=True)) + r")\.?(?![\w])(?!\s*,?\s*\d{2,4})", re.I)
SHORT_DATE_START = re.compile(r"\d{1,2}(?:st|nd|rd|th)?\s+[A-Za-z]", re.I)    # where one can begin
SENTENCE_END = re.compile(r"[.!?](?=\s+[A-Z(])|\n\s*\n")


@dataclass
class Dated:
    pos: int
    end: int
    date: date | None
    raw: str
    role: str = ""
    relative: str = ""       # "today", "same_day", "yesterday": resolved afterwards


def find_dates(text: str, pivot: int, near: date | None = None) -> list[Dated]:
    """Every date written in text (also '24th Sept' without a year, read as the one nearest `near`)."""
    out = [Dated(p, p + len(raw), d, raw) for p, d, raw in dates.find(text, pivot)]
    taken = [(x.pos, x.end) for x in out]
    if near:
        for m in dates.digit_led_matches(text, SHORT_DATE, SHORT_DATE_START):
            if any(a <= m.start() < b for a, b in taken):
                continue
            try:
                cands = [date(y, dates.MONTHS[m.group(2).lower()], int(m.group(1)))
                         for y in (near.year - 1, near.year, near.year + 1)]
            except ValueError:
                continue
            out.append(Dated(m.start(), m.end(), min(cands, key=lambda d: abs((d - near).days)), m.group(0)))
    return sorted(out, key=lambda x: x.pos)


@lru_cache(maxsize=None)
def _role_hints(lex: Lexicon, role: str) -> tuple[str, ...]:
    """The first word of each phrase for a date role, lower case: a role none of whose first
    words occurs in the text cannot match, and its (slow, many-branched) pattern is skipped."""
    return tuple({w.split()[0].lower() for w in lex.words("date_roles", role) if w.split()})


_STARTS: dict[tuple[str, tuple[str, ...]], list[int]] = {}


@lru_cache(maxsize=64)
def _automaton(hints: tuple[str, ...]):
    """All the hints found in one pass over a text (Aho-Corasick, in C): for a long list this
    beats a str.find per hint several times over; for a short one str.find is quicker."""
    import ahocorasick
    a = ahocorasick.Automaton()
    for h in hints:
        a.add_word(h, h)
    a.make_automaton()
    return a


def _places(lowered: str, hints: tuple[str, ...]) -> dict[str, list[int]]:
    """Where each hint is written in the (lower-case) text."""
    out: dict[str, list[int]] = {}
    if len(hints) >= 20:
        for end, h in _automaton(hints).iter(lowered):
            out.setdefault(h, []).append(end - len(h) + 1)
        return out
    for h in hints:
        i = lowered.find(h)
        while i >= 0:
            out.setdefault(h, []).append(i)
            i = lowered.find(h, i + 1)
    return out


def _starts(lowered: str, hints: tuple[str, ...]) -> list[int]:
    """Where any of the hints is written in the (lower-case) text, in order. Remembered for the
    last few texts: readers try the same phrase list on the same letter more than once."""
    key = (lowered, hints)
    hit = _STARTS.get(key)
    if hit is None:
        if len(_STARTS) >= 256:
            _STARTS.clear()
        hit = _STARTS[key] = sorted({i for places in _places(lowered, hints).values() for i in places})
    return hit


def _matches(rx: re.Pattern, text: str, lowered: str | None, hints: tuple[str, ...], starts=None):
    """rx.finditer(text), found faster: the pattern (an alternation of many phrases, slow to try
    at every position) is tried only where one of its phrases' first words starts."""
    if lowered is None:
        yield from rx.finditer(text)
        return
    end = -1
    for i in _starts(lowered, hints) if starts is None else starts:
        if i < end:
            continue                      # inside the last match, as finditer would skip it
        if i and (lowered[i - 1].isalnum() or lowered[i - 1] in "_-"):
            continue                      # inside a word: the pattern's look-behind would refuse it
        m = rx.match(text, i)
        if m:
            yield m
            end = m.end()


def _keywords(text: str, lex: Lexicon) -> list[tuple[int, int, str]]:
    return list(_keywords_of(text, lex))


ROLE_ORDER = ("dob", "clinic", "letter", "typed", "initiated", "first_dose", "last_dose", "doses", "next_due", "other")


@lru_cache(maxsize=None)
def _all_role_hints(lex: Lexicon) -> tuple[str, ...]:
    return tuple(sorted({h for role in ROLE_ORDER for h in _role_hints(lex, role)}))


@lru_cache(maxsize=16)        # a letter is read for several purposes: find its phrases once
def _keywords_of(text: str, lex: Lexicon) -> tuple[tuple[int, int, str], ...]:
    found = []
    lowered = text.lower()
    if len(lowered) != len(text):
        lowered = None                    # a character whose lower case is longer: positions differ
    # the first words of all ten roles' phrases are found in one pass, then shared out
    places = _places(lowered, _all_role_hints(lex)) if lowered is not None else {}
    for role in ROLE_ORDER:
        hints = _role_hints(lex, role)
        starts = sorted({i for h in hints for i in places.get(h, ())})
        for m in _matches(lex.rx("date_roles", role).rx, text, lowered, hints, starts):
            found.append((m.start(), m.end(), role))
    # a longer phrase at the same place wins ("date of last" over "last")
    found.sort(key=lambda k: (k[0], -(k[1] - k[0])))
    out, last_end = [], -1
    for k in found:
        if k[0] >= last_end:
            out.append(k)
            last_end = max(last_end, k[1])
    return tuple(out)


def _same_sentence(text: str, a: int, b: int) -> bool:
    return not SENTENCE_END.search(text, a, b) if a < b else True


CLASS = {"dob": 3, "first_dose": 2, "last_dose": 2, "doses": 2, "initiated": 2, "next_due": 2,
         "clinic": 1, "letter": 1, "typed": 1, "other": 0}


def dated(text: str, pivot: int, near: date | None = None) -> list[Dated]:
    """Dates with their role from the words before them (nearest wins, but a dose word in the
    same clause beats 'clinic'; 'other' words such as DXA or fracture, when nearer, block)."""
    lex = lexicon()
    found = find_dates(text, pivot, near)
    keys = _keywords(text, lex)
    prev_end = 0
    for i, d in enumerate(found):
        window = [k for k in keys if prev_end <= k[0] and k[1] <= d.pos and d.pos - k[1] <= 150
                  and _same_sentence(text, k[1], d.pos)]
        if window:
            nearest = max(window, key=lambda k: k[1])
            role = nearest[2]
            if CLASS[role] == 1:
                dose = [k for k in window if CLASS[k[2]] == 2]
                if dose:
                    role = max(dose, key=lambda k: k[1])[2]
            if role == "dob" and d.pos - nearest[1] > 40:
                role = "other"
            d.role = role
        elif i and found[i - 1].role and re.fullmatch(r"[\s,;/&]*(?:and|or)?[\s,;/&]*", text[prev_end:d.pos]):
            d.role = found[i - 1].role                # a list: "Doses given: 14/05/2024, 11/11/2024, ..."
        else:
            line_start = text.rfind("\n", 0, d.pos) + 1
            line_end = text.find("\n", d.end)
            line = text[line_start:line_end if line_end >= 0 else len(text)]
            if re.fullmatch(r"\s*(?:date\s*:?\s*)?" + re.escape(d.raw) + r"\s*", line, re.I):
                d.role = "letter"                     # a date alone on a line: the letter's date
            else:
                after = [k for k in keys if d.end <= k[0] <= d.end + 60 and _same_sentence(text, d.end, k[0])
                         and (i + 1 >= len(found) or k[0] < found[i + 1].pos)]
                if after and CLASS[after[0][2]] == 2 and after[0][2] != "next_due":
                    d.role = after[0][2]
        prev_end = d.end
    return found


@dataclass
class DoseDates:
    letter_date: date | None = None        # the clinic (or the letter's) date: what "today" means
    letter_date_from: str = ""
    initiated: date | None = None
    initiated_inferred: bool = False
    first_dose: date | None = None
    first_dose_labelled: bool = False
    last_dose: date | None = None
    doses: list[date] = field(default_factory=list)
    stated_next_due: date | None = None
    found: list[Dated] = field(default_factory=list)

    @property
    def latest_dose(self) -> date | None:
        every = [d for d in [self.first_dose, self.last_dose, *self.doses] if d]
        return max(every) if every else None


def _relative_after(text: str, start: int, limit: int, lex: Lexicon) -> tuple[str, int] | None:
    """'today' / 'that day' / 'yesterday' after a dose word, in the same clause."""
    best = None
    for kind, key in (("today", "today"), ("same_day", "same_day"), ("yesterday", "yesterday")):
        m = lex.rx("date_roles", key).search(text, start, min(limit, start + 110))
        if m and _same_sentence(text, start, m.start()) and (best is None or m.start() < best[1]):
            best = (kind, m.start())
    return best


def dose_dates(text: str, pivot: int, fallback: date | None = None) -> DoseDates:
    """The dates a transfer letter gives: clinic, therapy initiated, first / last dose, next due."""
    lex = lexicon()
    found = dated(text, pivot, near=fallback)
    out = DoseDates(found=found)
    by = lambda role: [d for d in found if d.role == role and d.date]   # noqa: E731
    for role in ("clinic", "letter"):
        if by(role):
            out.letter_date, out.letter_date_from = by(role)[0].date, role
            break
    else:
        if by("typed"):
            out.letter_date, out.letter_date_from = min(d.date for d in by("typed")), "typed"
        elif fallback:
            out.letter_date, out.letter_date_from = fallback, "received"
    if by("initiated"):
        out.initiated = by("initiated")[0].date
    if by("first_dose"):
        out.first_dose = by("first_dose")[0].date
    out.doses = [d.date for d in by("doses")]
    if by("last_dose"):
        out.last_dose = max(d.date for d in by("last_dose"))
    if by("next_due"):
        out.stated_next_due = by("next_due")[0].date
    # dose words with no date after them: "first dose given in clinic today", "... that day",
    # "initiated on 01/12/2026 when the first dose was given"
    keys = _keywords(text, lex)
    for start, end, role in keys:
        if role not in ("first_dose", "last_dose", "initiated"):
            continue
        nxt = next((d for d in found if d.pos >= end), None)
        attributed = nxt is not None and nxt.role == role and _same_sentence(text, end, nxt.pos) \
            and nxt.pos - end <= 150
        rel = _relative_after(text, end, nxt.pos if nxt else len(text), lex)
        value = None
        if rel and (not attributed or rel[1] < nxt.pos and nxt.pos - rel[1] > 12):
            if rel[0] == "today":
                value = out.letter_date
            elif rel[0] == "yesterday":
                value = out.letter_date and date.fromordinal(out.letter_date.toordinal() - 1)
            else:
                before = [d for d in found if d.end <= start and start - d.end <= 300 and d.date
                          and d.role not in ("dob", "other", "typed")]
                value = before[-1].date if before else None
        elif not attributed:
            # the one date in the same sentence
            s0 = max([m.end() for m in SENTENCE_END.finditer(text, 0, start)] or [0])
            m_end = SENTENCE_END.search(text, end)
            s1 = m_end.start() if m_end else len(text)
            inside = [d for d in found if s0 <= d.pos < s1 and d.date and d.role not in ("dob", "other", "typed")]
            if len({d.date for d in inside}) == 1:
                value = inside[0].date
        if value is None:
            continue
        if role == "first_dose" and out.first_dose is None:
            out.first_dose = value
        elif role == "last_dose":
            out.last_dose = max(out.last_dose or value, value)
        elif role == "initiated" and out.initiated is None:
            out.initiated = value
    # "first dose" written as a form's label ("First dose: ... on 18/08/2026")
    for start, end, role in keys:
        if role == "first_dose":
            line_start = text.rfind("\n", 0, start) + 1
            if not text[line_start:start].strip(" \t-•*·") and re.match(r"\s*[:|]", text[end:]):
                out.first_dose_labelled = True
            break
    # initiation named in the same sentence as the first dose ("..., which is the date treatment was
    # initiated"), or a first dose in prose: the therapy began with it
    if out.initiated is None and out.first_dose:
        for start, end, role in keys:
            if role != "initiated":
                continue
            s0 = max([m.end() for m in SENTENCE_END.finditer(text, 0, start)] or [0])
            m_end = SENTENCE_END.search(text, end)
            s1 = m_end.start() if m_end else len(text)
            if any(k[2] == "first_dose" and s0 <= k[0] < s1 for k in keys):
                out.initiated, out.initiated_inferred = out.first_dose, True
                break
        if out.initiated is None and not out.first_dose_labelled:
            out.initiated, out.initiated_inferred = out.first_dose, True
    return out


# -- sections -------------------------------------------------------------------------------------
SECTIONS = ("diagnosis", "plan", "follow_up", "threshold", "deviation", "information", "treatment")


LEAD = re.compile(r"^\s*(?:\d+[.)]\s*|[-•*·]\s*)?")     # white space, numbering or a bullet before a heading


@lru_cache(maxsize=4)
def _every_first(heads: tuple) -> tuple[str, ...]:
    return tuple({f for _, _, firsts in heads for f in firsts})


@lru_cache(maxsize=None)
def _heading_rx(lex: Lexicon) -> tuple[tuple[str, re.Pattern, tuple[str, ...]], ...]:
    """(section, its heading pattern, the first words its headings start with, lower case)."""
    out = []
    for key in SECTIONS:
        words = lex.words("headings", key)
        alt = _alt(words)
        out.append((key, re.compile(
            r"^\s*(?:\d+[.)]\s*|[-•*·]\s*)?(" + alt + r")(?:\s*:?\s*$|\s*(?:\([^)\n]{0,160}\))?\s*[:\-–](?:\s+(.*))?$)",
            re.I), tuple({w.split()[0].lower() for w in words if w.split()})))
    return tuple(out)


def sections(text: str) -> dict[str, str]:
    """Each known section's text (a heading line, 'Heading: text' inline, to the next heading)."""
    lex = lexicon()
    heads = _heading_rx(lex)
    every_first = _every_first(heads)
    closing = _closing_rx(lex)
    lines = (text or "").splitlines()
    found: list[tuple[int, str, str]] = []
    for n, line in enumerate(lines):
        if len(line.strip()) > 200:
            continue
        start = line[LEAD.match(line).end():].lower()
        if not start.startswith(every_first):
            continue                              # no heading starts this way (most lines)
        for key, rx, firsts in heads:
            if not start.startswith(firsts):
                continue                  # cannot be this section's heading: skip its pattern
            m = rx.match(line)
            if m and (m.group(2) or len(line.strip()) <= 80 or line.rstrip().endswith(":")):
                found.append((n, key, (m.group(2) or "").strip()))
                break
    out: dict[str, str] = {}
    for i, (n, key, inline) in enumerate(found):
        stop = found[i + 1][0] if i + 1 < len(found) else len(lines)
        body = [inline] if inline else []
        for line in lines[n + 1:stop]:
            if closing.match(line):
                break
            body.append(line)
        value = "\n".join(body).strip()
        if value:
            out[key] = (out[key] + "\n" + value) if key in out else value
    return out


def sentences(text: str) -> list[str]:
    return list(_sentences(text))


@lru_cache(maxsize=32)
def _sentences(text: str) -> tuple[str, ...]:
    """Sentences and list items, a PDF's wrapped lines joined."""
    out = []
    for para in PARAGRAPH.split(text or ""):
        para = " ".join(para.split())
        # split after . ! ? ; and the space that follows, where a capital or '(' starts the next
        # (found from the punctuation, which sre can jump to, not with a look-behind)
        at = 0
        for m in SENTENCE_GAP.finditer(para):
            if m.start() + 1 > at:
                out.append(para[at:m.start() + 1])
            at = m.end()
        if para[at:]:
            out.append(para[at:])
    return tuple(out)


PARAGRAPH = re.compile(r"\n\s*\n|\n(?=\s*(?:[-•*·]|\d+[.)])\s)")
SENTENCE_GAP = re.compile(r"[.!?;]\s+(?=[A-Z(])")


# -- patient details ------------------------------------------------------------------------------
@lru_cache(maxsize=64)            # built from the lexicon: once per lexicon, not per letter
def _label_rx(lex: Lexicon, key: str) -> re.Pattern:
    alt = _alt(lex.words("labels", key))
    # "Label: value", "Label - value", "Label | value", "Label<tab>value", "Label    value", "Label" alone
    return re.compile(r"^\s*(?:[-•*·]\s*)?(?:" + alt + r")(?:\s*[:|\t–]\s*|\s+-\s+|\s{2,}|\s*$)(.*)$", re.I)


@lru_cache(maxsize=8)
def _any_label(lex: Lexicon) -> re.Pattern:
    words = [w for key in lex.raw.get("labels", {}) if key not in ("re_line", "titles")
             for w in lex.words("labels", key)]
    words += [w for key in ("diagnosis", "plan", "threshold", "information", "deviation", "treatment")
              for w in lex.words("headings", key)]
    words += ["clinic", "clinic date", "date of clinic", "consultant", "typed", "dictated", "date", "our ref",
              "your ref", "ref", "cc", "copy"]
    return re.compile(r"^\s*(?:[-•*·]\s*)?(?:" + _alt(words) + r")\b\s*(?:[:|\t]|\s{2,}|\s*$)", re.I)


def _value_lines(lines: list[str], n: int, first: str, stop: re.Pattern, most: int) -> list[str]:
    """A labelled value and its continuation lines (indented, or under a label alone on its line)."""
    out = [first.strip()] if first.strip() else []
    indent = None
    for line in lines[n + 1:n + 1 + most]:
        if not line.strip() or stop.match(line):
            break
        lead = len(line) - len(line.lstrip())
        if out and indent is None and lead < 4 and first.strip() and not POSTCODE.search(first.upper()):
            # a value on the label's line continues on indented lines, or on the lines down to a postcode
            ahead = lines[n + 1:n + 4]
            upto = next((i for i, x in enumerate(ahead) if POSTCODE.search(x.upper())), None)
            if upto is None or any(not x.strip() or stop.match(x) for x in ahead[:upto + 1]):
                break
        indent = lead
        out.append(line.strip())
        if POSTCODE.search(line.upper()):
            break
    return out


NAME_TOKEN = r"[A-Z][A-Za-z'’\-]+"
NHS_LABEL = re.compile(r"\bNHS(?:\s*(?:number|num|no\.?|#)\s*[:.\-–|]?|\s*[:|]|(?=\s+\d))[ \t]*\n?[ \t]*"
                       r"([^\n]{0,60})", re.I)


@lru_cache(maxsize=8)
def _closing_rx(lex: Lexicon) -> re.Pattern:
    return re.compile(r"^\s*(?:" + _alt(lex.words("headings", "closing")) + r")\b", re.I)


@lru_cache(maxsize=8)
def _re_line_rx(lex: Lexicon) -> re.Pattern:
    return re.compile(r"^\s*(?:" + _alt(lex.words("labels", "re_line")) + r")\s*[:\-]\s*(.+)$", re.I)


@lru_cache(maxsize=8)
def _title_line_rx(lex: Lexicon) -> re.Pattern:
    titles = _alt(lex.words("labels", "titles"))
    return re.compile(r"^\s*((?:" + titles + r")\.?\s+(?:" + NAME_TOKEN + r"\s?){1,5})", re.I)


def _looks_like_name(value: str, lex: Lexicon) -> bool:
    titles = lex.words("labels", "titles")
    words = re.findall(r"[A-Za-z'’\-]+", value)
    if not words or re.search(r"\d{3}", value):
        return False
    has_title = words[0].lower().rstrip(".") in titles
    caps = [w for w in words if w[0].isupper()]
    return (has_title and len(words) >= 2) or (len(caps) >= 2 and len(caps) == len(words) and len(words) <= 6)


def _clean_name(value: str) -> str:
    value = re.split(r",|\s{2,}|\t|\b(?:DOB|D\.O\.B|date of birth|born|NHS)\b", value, 1, flags=re.I)[0]
    return value.strip(" .:-")


@dataclass
class Patient:
    name: str = ""
    dob_raw: str = ""
    nhs_raw: str = ""              # as written after the label ('' when there is no number at all)
    nhs_labelled: bool = False     # an 'NHS number' label is present (its value may be words)
    address: str = ""
    anchor: int = -1               # line number of the patient block (Re: line, name line)


def nhs_numbers(text: str) -> list[tuple[str, bool, int]]:
    """(digits or '' , labelled, position) for each NHS-number mention; phone numbers are not."""
    out = []
    for m in NHS_LABEL.finditer(text or ""):
        value = m.group(1)
        g = nhs.SEPARATED.search(value)
        out.append(("".join(g.groups()) if g and g.start() <= 3 else "", True, m.start()))
    if not any(n for n, lab, _ in out):
        for m in nhs.SEPARATED.finditer(text or ""):
            digits = "".join(m.groups())
            if nhs.is_valid(digits) and not PHONE_CONTEXT.search(text[max(0, m.start() - 25):m.start()]):
                out.append((digits, False, m.start()))
    return out


def patient(text: str) -> Patient:
    """The patient block of a letter (a copy: the reading is kept for the next caller)."""
    return replace(_patient(text))


@lru_cache(maxsize=16)
def _patient(text: str) -> Patient:
    lex = lexicon()
    lines = (text or "").splitlines()
    p = Patient()
    any_label = _any_label(lex)
    # NHS number: the first labelled one with digits, else the label's words, else one unlabelled number
    mentions = nhs_numbers(text)
    withnum = [m for m in mentions if m[0]]
    if withnum:
        p.nhs_raw, p.nhs_labelled = withnum[0][0], withnum[0][1]
    elif mentions:
        p.nhs_labelled = True
    # date of birth
    m = re.search(r"(?:\b(?:date\s+of\s+birth|birth\s+date|born(?:\s+on)?)\b|(?<![\w.])d\.?\s?o\.?\s?b\b\.?)"
                  r"\s*[:.\-–|]?\s*(?:\n\s*)?([^\n]{0,40})", text or "", re.I)
    if m:
        value = m.group(1)
        dm = dates.DATE_RE.search(value)
        if dm and dm.start() <= 3:
            p.dob_raw = dm.group(0)
        elif re.match(r"\s*\d", value):
            p.dob_raw = value.strip().split()[0]
    # the name: a label, the Re: line, or a title line beside the identity
    name_rx = _label_rx(lex, "patient_name")
    re_rx = _re_line_rx(lex)
    for n, line in enumerate(lines):
        mm = name_rx.match(line)
        if mm:
            value = mm.group(1).strip() or (lines[n + 1].strip() if n + 1 < len(lines) else "")
            if _looks_like_name(_clean_name(value), lex):
                p.name, p.anchor = _clean_name(value), n
                break
    if not p.name:
        for n, line in enumerate(lines):
            mm = re_rx.match(line)
            if mm and _looks_like_name(_clean_name(mm.group(1)), lex):
                p.name, p.anchor = _clean_name(mm.group(1)), n
                break
    if not p.name:
        title_line = _title_line_rx(lex)
        for n, line in enumerate(lines):
            mm = title_line.match(line)
            if not mm:
                continue
            near = "\n".join(lines[n:n + 3])
            if re.search(r"\b(DOB|D\.O\.B|date of birth|born|NHS)\b", near, re.I):
                p.name, p.anchor = _clean_name(mm.group(1)), n
                break
    # the address: a label (with the lines under it), else the block under the patient's line
    addr_rx = _label_rx(lex, "address")
    for n, line in enumerate(lines):
        mm = addr_rx.match(line)
        if mm:
            value = _value_lines(lines, n, mm.group(1), any_label, 6)
            if value:
                p.address = ", ".join(value)
                break
    if not p.address and p.anchor >= 0:
        block = []
        for line in lines[p.anchor + 1:p.anchor + 8]:
            if not line.strip():
                if block:
                    break
                continue
            if any_label.match(line) or re.search(r"\b(NHS|DOB|D\.O\.B|hospital (?:no|number))\b", line, re.I):
                if block:
                    break
                continue
            block.append(line.strip())
            if POSTCODE.search(line.upper()):
                break
        if block and POSTCODE.search(block[-1].upper()):
            p.address = ", ".join(block)
    return p


# -- the practice a letter names ------------------------------------------------------------------
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
    lowered = text.lower()
    if len(lowered) != len(text):
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


# -- the whole letter -----------------------------------------------------------------------------
@dataclass
class ClinicLetter:
    text: str
    patient: Patient
    sections: dict[str, str]
    dates: DoseDates
    mentions: list[str] = field(default_factory=list)

    @property
    def nhs_number(self) -> str | None:
        return nhs.normalise(self.patient.nhs_raw)


def read(text: str, received: date | None = None) -> ClinicLetter:
    pivot = ((received or date.today()).year + 1) % 100
    return ClinicLetter(text=text, patient=patient(text), sections=sections(text),
                        dates=dose_dates(text, pivot, fallback=received), mentions=practice_mentions(text))


def strip_quoted_from(text: str, addresses: set[str]) -> str:
    """Cut the quoted copies of mail these addresses sent (lesbot's own notices and rejections):
    from their 'From: ... <address>' header to the next quoted header or the end."""
    if not addresses or not text:
        return text
    lines = text.splitlines()
    lowered = text.lower()
    if not any(a in lowered for a in addresses):
        return "\n".join(lines)          # none of their mail is quoted here
    out, skipping = [], False
    header = re.compile(r"^\s*>?\s*(?:From|Van|De)\s*:\s*(.*)$", re.I)
    for line in lines:
        m = header.match(line)
        if m:
            addr = re.findall(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+", m.group(1))
            skipping = bool(addr) and addr[0].lower() in addresses
        elif re.match(r"^\s*-{2,}\s*Original Message\s*-{2,}", line, re.I):
            skipping = False
        if not skipping:
            out.append(line)
    return "\n".join(out)


def looks_like_letter(text: str) -> bool:
    """Enough of a patient to be a letter (not a covering note): an NHS number or a DOB with a name."""
    p = patient(text)
    return bool(p.nhs_raw or p.nhs_labelled or (p.dob_raw and p.name))
