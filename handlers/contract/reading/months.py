"""Months and runs of months in free text, as claims name them.

"November 2026", "Nov-26", "nov", "December's", "11/2026", "2026-11", "01/11/26-30/11/26",
"Q3 2026/27" (NHS financial-year quarters: Q1 is April to June), "Q2 (Jul-Sep)", "July to
September 2026", "last month" — each found with where it sits in the text, so a reader can blank
it out before looking for counts ("Nov-26: 9" holds one count, not two).

A month with no year is the latest such month not after the month the mail was received (claims
are for past activity); "last month" is the month before the one the inbox received it in, in
Europe/London. Mail-agnostic: no SQL, no sending.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache

from handlers.contract.periods import MONTHS, add_months, london, month_start

_MON = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
        r"sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
_YEAR = r"(?:20\d{2}|'?\d{2})"
_DMY = r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4}|\d{2})"
_RANGE_SEP = r"\s*(?:-|–|—|to|until|till|through|thru)\s*"

DATE_RANGE = re.compile(r"(?<![\d/])" + _DMY + _RANGE_SEP + _DMY + r"(?![\d/])", re.I)
QUARTER = re.compile(
    r"\b(?:q|quarter\s*)([1-4])\b"
    r"(?:\s*(?:activity|figures|return|claim)?\s*[(\s,]*(?:fy\s*)?(20\d{2})\s*[/\-–]\s*(\d{2}|20\d{2})\)?)?"
    r"(?:\s*\(?\s*(" + _MON + r")\s*(?:-|–|to)\s*(" + _MON + r")\s*\)?)?", re.I)
NAME_RANGE = re.compile(r"\b(" + _MON + r")\.?(?:\s*(" + _YEAR + r"))?" + r"\s*(?:-|–|—|to|until|through)\s*"
                        r"(" + _MON + r")\.?(?:[\s\-/']*(" + _YEAR + r"))?\b", re.I)
DMY = re.compile(r"(?<![\d/£.])" + _DMY + r"(?![\d/])")
DM = re.compile(r"(?<![\d/£.])(\d{1,2})/(\d{1,2})(?![\d/])")
NUM_YEAR = re.compile(r"(?<![\d/£.])(\d{1,2})[/\-.](20\d{2})(?![\d/])")
YEAR_NUM = re.compile(r"(?<![\d/£.])(20\d{2})[/\-.](\d{1,2})(?![\d/.])")
NAME = re.compile(r"\b(" + _MON + r")(?:'s|’s)?\.?(?:[\s\-/']*(20\d{2}|\d{2})(?![\d/]))?\b", re.I)
MONTHISH = re.compile(r"\d|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|month|q[1-4]|quarter", re.I)
RELATIVE = re.compile(r"\b(last|previous|prior|this|current)\s+month(?:'s|’s)?\b", re.I)


@dataclass
class MonthSpan:
    start: int                  # where it sits in the text
    end: int
    text: str
    first: date                 # first month of the run
    last: date                  # last month (== first for a single month)
    how: str = ""               # "last month" read relative to when received, etc.

    @property
    def months(self) -> list[date]:
        out, m = [], self.first
        while m <= self.last:
            out.append(m)
            m = add_months(m, 1)
        return out

    @property
    def single(self) -> bool:
        return self.first == self.last


def _year(text: str) -> int:
    y = int(text.lstrip("'"))
    return 2000 + y if y < 100 else y


def _mon(name: str) -> int:
    n = name.lower().rstrip(".")
    return MONTHS.get(n) or MONTHS[n[:3]]


def _latest(mon: int, here: date) -> date:
    guess = date(here.year, mon, 1)
    return guess if guess <= here else date(here.year - 1, mon, 1)


def _fy_quarter(q: int, fy_start: int) -> tuple[date, date]:
    first = add_months(date(fy_start, 4, 1), 3 * (q - 1))
    return first, add_months(first, 2)


def find(text: str, received: datetime) -> list[MonthSpan]:
    """Every month or run of months named in `text`, left to right, none overlapping."""
    return list(_find(text, received))


@lru_cache(maxsize=256)
def _find(text: str, received: datetime) -> tuple[MonthSpan, ...]:
    # cached: a claim's clause is read for months more than once; spans are never changed
    return tuple(_scan(text, received))


class _Spans:
    """The spans found so far; a later pattern may not take text an earlier one took."""

    def __init__(self):
        self.out: list[MonthSpan] = []
        self.taken: list[tuple[int, int]] = []

    def free(self, a, b):
        return all(b <= s or a >= e for s, e in self.taken)

    def add(self, m, first, last, how=""):
        if first is None or last is None or last < first or not self.free(m.start(), m.end()):
            return
        self.taken.append((m.start(), m.end()))
        self.out.append(MonthSpan(m.start(), m.end(), m.group(0), first, last, how))


def _scan(text: str, received: datetime) -> list[MonthSpan]:
    if not MONTHISH.search(text):
        return []
    here = month_start(london(received).date())
    spans = _Spans()
    # the order matters: runs before single months, whole dates before a month and a year
    _date_ranges(spans, text)
    _quarters(spans, text, here)
    _name_ranges(spans, text, here)
    for m in RELATIVE.finditer(text):
        d = add_months(here, -1) if m.group(1).lower() in ("last", "previous", "prior") else here
        spans.add(m, d, d, f"'{m.group(0)}' read from when the mail was received")
    _numeric_months(spans, text)
    _month_names(spans, text, here)
    for m in DM.finditer(text):     # "07/12": a day and month, no year
        day, mon = int(m.group(1)), int(m.group(2))
        if 1 <= mon <= 12 and 1 <= day <= 31:
            spans.add(m, _latest(mon, here), _latest(mon, here), "date without a year")
    spans.out.sort(key=lambda s: s.start)
    return spans.out


def _date_ranges(spans: _Spans, text: str) -> None:
    for m in DATE_RANGE.finditer(text):
        try:
            a = date(_year(m.group(3)), int(m.group(2)), int(m.group(1)))
            b = date(_year(m.group(6)), int(m.group(5)), int(m.group(4)))
        except ValueError:
            continue
        spans.add(m, month_start(a), month_start(b), "dates")


def _quarters(spans: _Spans, text: str, here: date) -> None:
    for m in QUARTER.finditer(text):
        q = int(m.group(1))
        if m.group(4) and m.group(5):
            a, b = _mon(m.group(4)), _mon(m.group(5))
            first = _latest(a, here)
            last = date(first.year + (b < a), b, 1)
            spans.add(m, first, last, "quarter")
        elif m.group(2):
            spans.add(m, *_fy_quarter(q, int(m.group(2))), "quarter")
        else:
            # the latest such financial-year quarter that has begun
            fy = here.year if here.month >= 4 else here.year - 1
            first, last = _fy_quarter(q, fy)
            if first > here:
                first, last = _fy_quarter(q, fy - 1)
            spans.add(m, first, last, "quarter without a year")


def _name_ranges(spans: _Spans, text: str, here: date) -> None:
    for m in NAME_RANGE.finditer(text):
        a, b = _mon(m.group(1)), _mon(m.group(3))
        if m.group(4):
            last = date(_year(m.group(4)), b, 1)
            first = date(last.year - (a > b), a, 1)
        elif m.group(2):
            first = date(_year(m.group(2)), a, 1)
            last = date(first.year + (b < a), b, 1)
        else:
            last = _latest(b, here)
            first = date(last.year - (a > b), a, 1)
        spans.add(m, first, last)


def _numeric_months(spans: _Spans, text: str) -> None:
    for m in DMY.finditer(text):
        try:
            d = date(_year(m.group(3)), int(m.group(2)), int(m.group(1)))
        except ValueError:
            continue
        spans.add(m, month_start(d), month_start(d), "date")
    for m in YEAR_NUM.finditer(text):
        if 1 <= int(m.group(2)) <= 12:
            d = date(int(m.group(1)), int(m.group(2)), 1)
            spans.add(m, d, d)
    for m in NUM_YEAR.finditer(text):
        if 1 <= int(m.group(1)) <= 12:
            d = date(int(m.group(2)), int(m.group(1)), 1)
            spans.add(m, d, d)


def _month_names(spans: _Spans, text: str, here: date) -> None:
    for m in NAME.finditer(text):
        word = m.group(1)
        if word.lower() == "may" and not (word[0] == "M" and (m.group(2) or _after_preposition(text, m.start()))):
            continue      # "may" the verb
        if word.lower() in ("mar", "jan") and word[0] != word[0].upper() and not m.group(2):
            continue
        mon = _mon(word)
        y = m.group(2)
        if y and len(y) == 2:
            sep = m.group(0)[m.end(1) - m.start():m.start(2) - m.start()].lstrip(".").replace("'s", "")
            if sep not in ("-", "/", "'", " ", "", "-'", " '") or (sep == " " and abs(_year(y) - here.year) > 1):
                y = None      # "nov 12" or "Sept - 12": twelve in that month, not 2012
        if y:
            d = date(_year(y), mon, 1)
            spans.add(m, d, d)
        else:
            d = _latest(mon, here)
            end = m.start(1) + len(m.group(0).split()[0].rstrip(".")) if m.group(2) else m.end()
            if m.group(2):
                if not spans.free(m.start(), end):
                    continue
                spans.taken.append((m.start(), end))
                spans.out.append(MonthSpan(m.start(), end, text[m.start():end], d, d, "year not given"))
            else:
                spans.add(m, d, d, "year not given")


def _after_preposition(text: str, at: int) -> bool:
    return bool(re.search(r"\b(in|for|of|during|from|since|until|by)\s+$", text[max(0, at - 12):at], re.I))


def one(text: str, received: datetime) -> MonthSpan | None:
    """The run of months `text` names, if it names exactly one (repeats of it allowed)."""
    spans = find(text, received)
    distinct = {(s.first, s.last) for s in spans}
    if len(distinct) == 1:
        return spans[0]
    return None


def describe(first: date, last: date) -> str:
    if first == last:
        return f"{first:%B %Y}"
    if first.year == last.year:
        return f"{first:%B} to {last:%B %Y}"
    return f"{first:%B %Y} to {last:%B %Y}"
