"""Working days in England: not Saturday, Sunday, an England bank holiday, or a
closure day the operator added. Everything that counts working days asks here.

`holidays` with subdiv="ENG": without it Easter Monday and the August bank
holiday are missing (they are not UK-wide).
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache

import holidays

from handlers.contract.periods import LONDON


@lru_cache(maxsize=64)
def _bank_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("GB", subdiv="ENG", years=[year]))


def is_working_day(d: date, closures=()) -> bool:
    return d.weekday() < 5 and d not in _bank_holidays(d.year) and d not in closures


def add_working_days(start: date | datetime, n: int, closures=()) -> date:
    """The date N working days after START (a datetime is read in London time)."""
    d = start.astimezone(LONDON).date() if isinstance(start, datetime) else start
    step = 1 if n >= 0 else -1
    left = abs(n)
    while left:
        d += timedelta(days=step)
        if is_working_day(d, closures):
            left -= 1
    return d


def next_working_day(d: date, closures=()) -> date:
    """D itself when it is a working day, else the first one after it."""
    while not is_working_day(d, closures):
        d += timedelta(days=1)
    return d


def previous_working_day(d: date, closures=()) -> date:
    while not is_working_day(d, closures):
        d -= timedelta(days=1)
    return d
