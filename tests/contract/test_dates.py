"""Day-first dates and month arithmetic used for recalls."""
from datetime import date

import pytest

from handlers.contract import dates


@pytest.mark.parametrize("text, want", [
    ("03/10/2026", date(2026, 10, 3)), ("3 Oct 2026", date(2026, 10, 3)), ("2026-10-03", date(2026, 10, 3)),
    ("3rd October 2026", date(2026, 10, 3)), ("03.10.26", date(2026, 10, 3)), ("3-Sept-2026", date(2026, 9, 3)),
    ("12/13/2026", None), ("31/02/2026", None), ("no date", None),
])
def test_day_first_and_impossible_dates_stay_impossible(text, want):
    assert dates.parse(text) == want


def test_six_months_on_keeps_the_day_or_the_month_end():
    assert dates.months_after(date(2026, 8, 18), 6) == date(2027, 2, 18)
    assert dates.months_after(date(2026, 8, 31), 6) == date(2027, 2, 28)
    assert dates.months_after(date(2027, 8, 31), 6) == date(2028, 2, 29)
    assert dates.months_after(date(2026, 12, 1), 6) == date(2027, 6, 1)


def test_quarters():
    assert dates.parse_quarter("2026Q3") == (date(2026, 7, 1), date(2026, 9, 30))
    assert dates.parse_quarter("Q4 2026") == (date(2026, 10, 1), date(2026, 12, 31))
    assert dates.parse_quarter("2026Q5") is None
    assert dates.quarter_of(date(2026, 9, 29)) == "2026Q3"
