"""Who a message is about: NHS numbers, patient names and dates of birth, as people write them.

Mail-agnostic: text in, candidates out (each with where it was found). No SQL, no mail, nothing
logged - the text identifies patients.

    nhs_numbers(text)            every NHS-number-like group: valid ones, and failing ones near an NHS label
    nhs_number(text)             the one valid NHS number the text gives, or None
    invalid_nhs_numbers(text)    groups near an NHS label that fail Modulus 11 (a typo to ask about)
    dates_of_birth(text, on)     dates written as a date of birth ("DOB", "born", "D.O.B:", "date of birth")
    date_of_birth(text, on)      the date of birth, or None
    parse_date(text, on)         one date, day-first, in many spellings ("3rd October 1948", "17.4.52",
                                 "1951-07-09", "14-Feb-1957"); two-digit years resolved into the past
    patient_names(text)          names from labels, "Re:" lines, "see Mrs X", "SURNAME, Forename"
    patient_name(text)           the best of those, or None

Phone numbers are not NHS numbers even when they pass Modulus 11: a group after "+44", "(0", or in a
Tel/Mob/Fax/Phone context on its line, is skipped (unless an NHS label is nearer).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from handlers.contract import dates
from handlers.contract import nhs

# -- NHS numbers -------------------------------------------------------------------------------------
# ten digits in groups split by single spaces, dashes or dots: 999 162 5348, 999-826-6106, 9991515992
_GROUPED = re.compile(r"(?<![\w+£.,/-])(\d(?:[ \u00a0.-]?\d){9})(?![\w/]|[.,]\d|-\d)")
NHS_LABEL = re.compile(r"\bNHS\b\s*(?:no\b\.?|num(?:ber)?\b|#|n[o°º]\.?)?|\bCHI\b|\bnhs\s*number", re.I)
PHONE_LABEL = re.compile(
    r"(?:\b(?:tel(?:ephone)?|phone|ph|mob(?:ile)?|fax|cell|home|work|landline|contact(?:\s+(?:no|number|tel))?|"
    r"ring|call|text|sms|whats\s?app|switchboard|bleep|ext)\b|\b[TMF]\s*:)", re.I)
_PHONE_PREFIX = re.compile(r"(?:\+\s?\d{1,3}\s*(?:\(0\)\s*)?|\(0\)\s*|00\s?44\s*)$")


@dataclass(frozen=True)
class NhsCandidate:
    digits: str          # the ten digits
    written: str         # as written
    start: int
    end: int
    valid: bool          # passes Modulus 11
    labelled: bool       # an NHS label is just before it (same or previous line)


def _labelled(text: str, start: int, label: re.Pattern = None, reach: int = 40) -> bool:
    """Is a label (default: an NHS label) just before start, with only punctuation and white space
    (at most one line break) between?"""
    label = label or NHS_LABEL
    before = text[max(0, start - reach - 20):start]
    for m in label.finditer(before):
        gap = before[m.end():]
        if len(gap) <= reach and gap.count("\n") <= 1 and re.fullmatch(r"[\s:.#\-–|=()]*", gap):
            return True
    return False


def _line_before(text: str, start: int) -> str:
    return text[text.rfind("\n", 0, start) + 1:start]


def _is_phone(text: str, start: int) -> bool:
    before = _line_before(text, start)
    if _PHONE_PREFIX.search(before):
        return True
    nhs_at = max((m.end() for m in NHS_LABEL.finditer(before)), default=-1)
    phone_at = max((m.end() for m in PHONE_LABEL.finditer(before)), default=-1)
    return phone_at > nhs_at


def nhs_numbers(text: str) -> list[NhsCandidate]:
    """Every group that may be an NHS number: ten digits (3-3-4, dashed, dotted, plain) that pass
    Modulus 11, or fail it right after an NHS label. Phone numbers (+44, Tel:/Mob:/Fax: on the line)
    are left out. In order of appearance."""
    return list(_nhs_numbers(text or ""))


@lru_cache(maxsize=64)        # a message's text is asked about by several readers
def _nhs_numbers(text: str) -> tuple[NhsCandidate, ...]:
    out = []
    for m in dates.digit_led_matches(text, _GROUPED, None):     # it starts a run of digits
        written = m.group(1)
        digits = re.sub(r"\D", "", written)
        if len(digits) != 10:
            continue
        seps = re.findall(r"[ \u00a0.-]", written)
        if len(set(seps)) > 1 or len(seps) > 3:
            continue                            # 1 2 3 4 ... or mixed separators: not a number as written
        labelled = _labelled(text, m.start())
        if _is_phone(text, m.start()) and not (labelled and _NHS_CLOSER(text, m.start())):
            continue
        if digits.startswith("0") and not labelled:
            continue                            # a UK phone number without its leading 0? not an NHS number
        valid = nhs.is_valid(digits)
        if valid or labelled:
            out.append(NhsCandidate(digits, written, m.start(), m.end(), valid, labelled))
    return tuple(out)


def _NHS_CLOSER(text: str, start: int) -> bool:
    before = _line_before(text, start)
    nhs_at = max((m.end() for m in NHS_LABEL.finditer(before)), default=-1)
    phone_at = max((m.end() for m in PHONE_LABEL.finditer(before)), default=-1)
    return nhs_at > phone_at


def valid_nhs_numbers(text: str) -> list[str]:
    """The distinct valid NHS numbers in order of appearance (ten digits each)."""
    return list(dict.fromkeys(c.digits for c in nhs_numbers(text) if c.valid))


def nhs_number(text: str) -> str | None:
    """The one valid NHS number the text gives (ten digits), or None when none or several differ.
    A labelled one wins over unlabelled ones."""
    cands = [c for c in nhs_numbers(text) if c.valid]
    labelled = list(dict.fromkeys(c.digits for c in cands if c.labelled))
    if len(labelled) == 1:
        return labelled[0]
    distinct = list(dict.fromkeys(c.digits for c in cands))
    return distinct[0] if len(distinct) == 1 else None


def invalid_nhs_numbers(text: str) -> list[NhsCandidate]:
    """Groups right after an NHS label that fail Modulus 11: an NHS number written wrongly."""
    return [c for c in nhs_numbers(text) if not c.valid]


def nhs_label_empty(text: str) -> bool:
    """An 'NHS No:' label with nothing after it on its line (a form left blank)."""
    return bool(re.search(r"(?im)^\s*(?:[-•*]\s*)?NHS\s*(?:no\.?|number|num|#)?\s*[:\-–]?\s*(?:\[\s*\]|_+|-+|n/?k|unknown|tbc)?\s*$",
                          text or ""))


# -- dates ------------------------------------------------------------------------------------------
DOB_LABEL = re.compile(r"(?:\bdate\s+of\s+birth\b|\bD\.?\s?O\.?\s?B\b\.?|\bborn\b(?:\s+on)?|\bbirth\s*date\b|"
                       r"\bb\.(?=\s*\d))\s*[:\-–]?\s*", re.I)
_ORD_MONTH_FIRST = re.compile(
    r"\b(?P<tm>" + "|".join(sorted(dates.MONTHS, key=len, reverse=True)) +
    r")\.?\s+(?P<td>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<ty>\d{4})\b", re.I)


def _resolve_two_digit(d: date, written: str, on: date | None) -> date:
    """A two-digit year read as a birth: never in the future."""
    if re.search(r"[/.-]\d{2}$", written.strip()) and on and d > on:
        try:
            return d.replace(year=d.year - 100)
        except ValueError:
            return d
    return d


def parse_date(text: str, on: date | None = None, birth: bool = False) -> date | None:
    """The first date in text, day-first: 03/10/1948, 3.10.48, 3rd October 1948, 3 Oct 1948,
    1948-10-03, 14-Feb-1957, 'October 3rd, 1948'. With birth=True a two-digit year is put in the
    past relative to `on`. None when there is none or it is not a real date."""
    text = text or ""
    found = dates.find(text, pivot=(on.year % 100) if (birth and on) else None)
    m = _ORD_MONTH_FIRST.search(text)
    if m and (not found or m.start() < found[0][0]):
        try:
            return date(int(m.group("ty")), dates.MONTHS[m.group("tm").lower()], int(m.group("td")))
        except ValueError:
            return None
    if not found:
        return None
    pos, d, written = found[0]
    if d and birth:
        d = _resolve_two_digit(d, written, on)
    return d


@dataclass(frozen=True)
class DateCandidate:
    date: date | None     # None: written like a date but not a real one
    written: str
    start: int
    labelled: bool        # right after a date-of-birth word


def dates_of_birth(text: str, on: date | None = None) -> list[DateCandidate]:
    """Dates written as a date of birth: after 'DOB', 'D.O.B:', 'date of birth', 'born', 'b.';
    in order of appearance. Two-digit years are read into the past relative to `on`."""
    # without `on`, a two-digit year is read against this year: part of what is remembered
    return list(_dates_of_birth(text or "", on, date.today().year if on is None else None))


@lru_cache(maxsize=64)
def _dates_of_birth(text: str, on: date | None, _year: int | None) -> tuple[DateCandidate, ...]:
    out = []
    for lab in DOB_LABEL.finditer(text):
        after = text[lab.end():lab.end() + 40]
        if re.match(r"\s*\n\s*\n", after):
            continue
        d = parse_date(after.split("\n")[0] if after.split("\n")[0].strip() else after, on, birth=True)
        raw = _first_date_text(after)
        if raw is None:
            continue
        # the date must start near the label ("DOB 3rd Oct 1948", "Date of birth:   14-Feb-1957")
        if after.find(raw) > 12:
            continue
        out.append(DateCandidate(d, raw, lab.end() + after.find(raw), True))
    return tuple(out)


def _first_date_text(s: str) -> str | None:
    found = dates.find(s)
    m = _ORD_MONTH_FIRST.search(s)
    if m and (not found or m.start() < found[0][0]):
        return m.group(0)
    return found[0][2] if found else None


def date_of_birth(text: str, on: date | None = None) -> date | None:
    """The date of birth the text gives (the first labelled one that is a real date), or None."""
    for c in dates_of_birth(text, on):
        if c.date:
            return c.date
    return None


def age_on(born: date, on: date) -> int:
    """Whole years: 18 on the 18th birthday itself."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


# -- names ------------------------------------------------------------------------------------------
TITLES = ("mr", "mrs", "miss", "ms", "mx", "dr", "master", "prof", "rev", "sir", "dame", "lady", "lord")
_TITLE = r"(?:" + "|".join(TITLES) + r")\.?"
_NAMEWORD = r"[A-ZÀ-ÖØ-Þ][^\W\d_'’\-]*(?:['’\-][^\W\d_]+)*"
NAME_LABEL = re.compile(
    r"^\s*(?:[-•*]\s*)?(?:patient(?:'s)?\s+(?:full\s+)?name|name\s+of\s+patient|full\s+name|pt\s+name|pt|"
    r"patient|name)\s*[:\-–|\t]\s*(?P<v>.+?)\s*$", re.I | re.M)
SURNAME_FORENAME = re.compile(
    r"^\s*(?:surname\s*/\s*forenames?|surname\s*,\s*forenames?|family\s+name\s*/\s*given\s+names?)\s*[:\-–|\t]\s*"
    r"(?P<s>[^/,\n]+?)\s*[/,]\s*(?P<f>[^\n]+?)\s*$", re.I | re.M)
SURNAME = re.compile(r"^\s*(?:surname|family\s+name|last\s+name)\s*[:\-–|\t]\s*(?P<v>[^\n]+?)\s*$", re.I | re.M)
FORENAME = re.compile(r"^\s*(?:forenames?|first\s+names?|given\s+names?|christian\s+names?)\s*[:\-–|\t]\s*"
                      r"(?P<v>[^\n]+?)\s*$", re.I | re.M)
RE_LINE = re.compile(r"^\s*(?:re|ref|regarding|patient)\s*[:\-–]\s*(?P<v>.+?)\s*$", re.I | re.M)
SEE_TITLE = re.compile(r"\b(?i:see|seeing|refer(?:ring)?|review|assess)[ \t]+(?P<v>(?i:" + _TITLE + r")[ \t]+(?:"
                       + _NAMEWORD + r"[ \t]+){0,3}" + _NAMEWORD + r")")
TITLED = re.compile(r"\b(?P<v>(?i:" + _TITLE + r")[ \t]+(?:" + _NAMEWORD + r"[ \t]+){0,3}" + _NAMEWORD + r")")
# "see Kieran Hollinrake (DOB 10/12/2008" - a name with no title, right before the date of birth
BEFORE_DOB = re.compile(r"(?P<v>" + _NAMEWORD + r"(?:[ \t]+" + _NAMEWORD + r"){1,3})[ \t]*[(,][ \t]*(?i:DOB|D\.O\.B|born|"
                        r"date of birth)\b")
_STOP_AT = re.compile(r"\s*(?:[,(;|]|\bDOB\b|\bD\.O\.B|\bdate of birth|\bborn\b|\bNHS\b|\baged?\b|\b\d).*$", re.I)


@dataclass(frozen=True)
class NameCandidate:
    name: str
    start: int
    how: str      # label, surname_forename, re_line, see, titled


def _clean_name(value: str) -> str:
    v = _STOP_AT.sub("", value or "").strip(" :-–\t")
    v = re.sub(r"\s+", " ", v)
    words = v.split()
    if not words or len(words) > 6 or not re.search(r"[A-Za-z]", v):
        return ""
    if re.search(r"@|\bhttps?:|\b(?:practice|surgery|centre|center|clinic|hospital|referral|injection)\b", v, re.I):
        return ""
    return v


def patient_names(text: str) -> list[NameCandidate]:
    """Patient names: from a name label, 'Surname/Forename: CLEGG / Desmond', 'Surname:' + 'Forename:',
    a 'Re:' line, 'see Mrs X', a titled name; best kinds first, then in order of appearance."""
    text = text or ""
    out: list[NameCandidate] = []
    for m in SURNAME_FORENAME.finditer(text):
        s, f = _clean_name(m.group("s")), _clean_name(m.group("f"))
        if s and f:
            out.append(NameCandidate(f"{f} {s}", m.start(), "surname_forename"))
    sm, fm = SURNAME.search(text), FORENAME.search(text)
    if sm and fm:
        s, f = _clean_name(sm.group("v")), _clean_name(fm.group("v"))
        if s and f:
            out.append(NameCandidate(f"{f} {s}", min(sm.start(), fm.start()), "surname_forename"))
    for m in NAME_LABEL.finditer(text):
        v = m.group("v")
        comma = re.fullmatch(r"\s*([A-Z][A-Z'’\-]+)\s*,\s*(" + _TITLE + r"\s+)?([A-Z][A-Za-z'’\- ]+?)\s*", v)
        name = f"{(comma.group(2) or '').strip()} {comma.group(3)} {comma.group(1)}".strip() if comma else _clean_name(v)
        if name:
            out.append(NameCandidate(name, m.start(), "label"))
    for m in RE_LINE.finditer(text):
        name = _clean_name(m.group("v"))
        if name and (re.match(_TITLE + r"\s", name, re.I) or re.search(r"\b[A-Z]{2,}\b", name)):
            out.append(NameCandidate(name, m.start(), "re_line"))
    for m in SEE_TITLE.finditer(text):
        name = _clean_name(m.group("v"))
        if name:
            out.append(NameCandidate(name, m.start("v"), "see"))
    for m in TITLED.finditer(text):
        name = _clean_name(m.group("v"))
        if name and not any(c.start <= m.start() < c.start + len(c.name) for c in out):
            out.append(NameCandidate(name, m.start(), "titled"))
    for m in BEFORE_DOB.finditer(text):
        name = _clean_name(m.group("v"))
        if name and not re.match(_TITLE + r"\s", name, re.I) and \
                not any(c.start <= m.start("v") < c.start + len(c.name) + 1 for c in out):
            out.append(NameCandidate(name, m.start("v"), "before_dob"))
    rank = {"surname_forename": 0, "label": 1, "re_line": 2, "see": 3, "titled": 4, "before_dob": 5}
    return sorted(out, key=lambda c: (rank[c.how], c.start))


def patient_name(text: str) -> str | None:
    """The patient's name as best read (see patient_names), or None."""
    names = patient_names(text)
    return names[0].name if names else None


def surname_of(name: str) -> str:
    """The surname of a name as read ('Mrs Judith FEATHERSTONE' -> 'FEATHERSTONE')."""
    words = [w for w in re.split(r"\s+", (name or "").strip()) if w and not re.fullmatch(_TITLE, w, re.I)]
    return words[-1] if words else ""
