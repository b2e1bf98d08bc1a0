"""Months as claims name them: "September 2026", "Sep-26", "10/2026", "last month",
an Excel date cell or serial — judged from when the message was received.

Hand-written rather than dateparser: claims name a *month*, and general date
parsers read "Sep-26" as the 26th of September of this year.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")
MONTHS = {m: i for i, names in enumerate((
    (), ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",),
    ("june", "jun"), ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"),
    ("october", "oct"), ("november", "nov"), ("december", "dec"))) for m in names}
MONTH_NAME = r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|" \
             r"sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
NAME_YEAR = re.compile(MONTH_NAME + r"\.?[\s\-/']*(\d{4}|\d{2})?\b", re.I)
NUM_YEAR = re.compile(r"\b(\d{1,2})\s*[/\-.]\s*(\d{4})\b")
YEAR_NUM = re.compile(r"\b(\d{4})\s*[/\-.]\s*(\d{1,2})\b")
DMY = re.compile(r"\b(\d{1,2})[/\-.](\d{1,2})[/\-.](\d{4}|\d{2})\b")
RELATIVE = re.compile(r"\b(last|previous|this|current)\s+month\b", re.I)


def month_start(d: date) -> date:
    return date(d.year, d.month, 1)


def add_months(d: date, n: int) -> date:
    y, m = divmod(d.year * 12 + d.month - 1 + n, 12)
    return date(y, m + 1, 1)


def month_end(d: date) -> date:
    return add_months(d, 1) - timedelta(days=1)


def label(d: date) -> str:
    return d.strftime("%B %Y")


def key(d: date) -> str:
    return d.strftime("%Y-%m")


def london(when: datetime) -> datetime:
    return when.astimezone(LONDON)


def parse_month(value, received: datetime) -> date | None:
    """The month meant, or None. A month with no year is the latest such month
    not after the month received (claims are for past activity)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return month_start(value.date())
    if isinstance(value, date):
        return month_start(value)
    if isinstance(value, (int, float)):
        return _excel_serial(value)
    text = str(value).strip().lower()
    if not text:
        return None
    here = month_start(london(received).date())
    m = RELATIVE.search(text)
    if m:
        return add_months(here, -1) if m.group(1) in ("last", "previous") else here
    m = DMY.search(text)
    if m:
        day, mon, year = int(m.group(1)), int(m.group(2)), _year(m.group(3))
        if 1 <= mon <= 12 and 1 <= day <= 31:
            return date(year, mon, 1)
    m = YEAR_NUM.search(text)
    if m and 1 <= int(m.group(2)) <= 12:
        return date(int(m.group(1)), int(m.group(2)), 1)
    m = NUM_YEAR.search(text)
    if m and 1 <= int(m.group(1)) <= 12:
        return date(int(m.group(2)), int(m.group(1)), 1)
    m = NAME_YEAR.search(text)
    if m:
        mon = MONTHS[m.group(1).lower().rstrip(".")[:3] if m.group(1).lower() not in MONTHS
                     else m.group(1).lower()]
        if m.group(2):
            return date(_year(m.group(2)), mon, 1)
        guess = date(here.year, mon, 1)
        return guess if guess <= here else date(here.year - 1, mon, 1)
    if re.fullmatch(r"\d{5}(\.0+)?", text):
        return _excel_serial(float(text))
    return None


def _year(text: str) -> int:
    y = int(text)
    return 2000 + y if y < 100 else y


def _excel_serial(n: float) -> date | None:
    # Excel's day 1 is 1900-01-01, with its phantom 29 February 1900: serials after
    # 60 are days since 1899-12-30. Plausible claim dates only.
    if not 36526 <= n <= 73051:      # 2000-01-01 .. 2099-12-31
        return None
    return month_start(date(1899, 12, 30) + timedelta(days=int(n)))
