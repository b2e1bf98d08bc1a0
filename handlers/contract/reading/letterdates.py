"""Dates in a clinic letter with the role the words before them give (born, clinic, typed,
initiated, first dose, last dose, next due), and the dose dates a transfer letter gives, "today"
being the letter's own date (the clinic, not the day it was typed or sent).

Mail-agnostic: text in, dates out. No SQL, no mail, nothing logged.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

from handlers.contract import dates
from handlers.contract.reading.phrases import Lexicon, _matches, _places, lexicon
from handlers.contract.reading.phrases import lowered as lower_for_search

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


def _keywords(text: str, lex: Lexicon) -> list[tuple[int, int, str]]:
    return list(_keywords_of(text, lex))


ROLE_ORDER = ("dob", "clinic", "letter", "typed", "initiated", "first_dose", "last_dose", "doses", "next_due", "other")


@lru_cache(maxsize=None)
def _all_role_hints(lex: Lexicon) -> tuple[str, ...]:
    return tuple(sorted({h for role in ROLE_ORDER for h in _role_hints(lex, role)}))


@lru_cache(maxsize=16)        # a letter is read for several purposes: find its phrases once
def _keywords_of(text: str, lex: Lexicon) -> tuple[tuple[int, int, str], ...]:
    found = []
    lowered = lower_for_search(text)
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
    _dated_roles(out, found, fallback)
    keys = _keywords(text, lex)
    _undated_dose_words(out, text, found, keys, lex)
    _began_with_first_dose(out, text, keys)
    return out


def _dated_roles(out: DoseDates, found: list[Dated], fallback: date | None) -> None:
    """The letter's date, and each dose role's date, from dates that carry the role."""
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


def _sentence_around(text: str, start: int, end: int) -> tuple[int, int]:
    s0 = max([m.end() for m in SENTENCE_END.finditer(text, 0, start)] or [0])
    m_end = SENTENCE_END.search(text, end)
    return s0, (m_end.start() if m_end else len(text))


def _undated_dose_words(out: DoseDates, text: str, found: list[Dated], keys, lex: Lexicon) -> None:
    """Dose words with no date after them: "first dose given in clinic today", "... that day",
    "initiated on 01/12/2026 when the first dose was given"."""
    for start, end, role in keys:
        if role not in ("first_dose", "last_dose", "initiated"):
            continue
        value = _undated_value(out, text, found, start, end, role, lex)
        if value is None:
            continue
        if role == "first_dose" and out.first_dose is None:
            out.first_dose = value
        elif role == "last_dose":
            out.last_dose = max(out.last_dose or value, value)
        elif role == "initiated" and out.initiated is None:
            out.initiated = value


def _undated_value(out: DoseDates, text: str, found: list[Dated], start: int, end: int, role: str,
                   lex: Lexicon) -> date | None:
    """The date a dose word means when no date of its role follows it: 'today', 'yesterday',
    'that day' (the date before it), or the one date in its sentence."""
    nxt = next((d for d in found if d.pos >= end), None)
    attributed = nxt is not None and nxt.role == role and _same_sentence(text, end, nxt.pos) \
        and nxt.pos - end <= 150
    rel = _relative_after(text, end, nxt.pos if nxt else len(text), lex)
    if rel and (not attributed or rel[1] < nxt.pos and nxt.pos - rel[1] > 12):
        if rel[0] == "today":
            return out.letter_date
        if rel[0] == "yesterday":
            return out.letter_date and date.fromordinal(out.letter_date.toordinal() - 1)
        before = [d for d in found if d.end <= start and start - d.end <= 300 and d.date
                  and d.role not in ("dob", "other", "typed")]
        return before[-1].date if before else None
    if not attributed:
        # the one date in the same sentence
        s0, s1 = _sentence_around(text, start, end)
        inside = [d for d in found if s0 <= d.pos < s1 and d.date and d.role not in ("dob", "other", "typed")]
        if len({d.date for d in inside}) == 1:
            return inside[0].date
    return None


def _began_with_first_dose(out: DoseDates, text: str, keys) -> None:
    """Whether 'first dose' is a form's label, and the initiation date the first dose implies."""
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
            s0, s1 = _sentence_around(text, start, end)
            if any(k[2] == "first_dose" and s0 <= k[0] < s1 for k in keys):
                out.initiated, out.initiated_inferred = out.first_dose, True
                break
        if out.initiated is None and not out.first_dose_labelled:
            out.initiated, out.initiated_inferred = out.first_dose, True
