"""What the claim readers produce: raw lines as written, and what else the claim states."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from handlers.contract.catalogue import Service


@dataclass
class RawLine:
    label: str                      # how the line named the service
    service: Service | None
    month_text: str
    month: date | None
    count_text: str
    where: str                      # "body line 12", "claim.csv row 3"
    unit_price_text: str = ""
    total_text: str = ""
    times: int = 1                  # identical rows in one file
    month_last: date | None = None  # a run of months (a quarter, a date range): its last month
    month_how: str = ""             # how the month was found, echoed in the reply
    other: bool = False             # names something that is not a service in the catalogue
    notes: list[str] = field(default_factory=list)
    prose: bool = False             # read from a sentence rather than a labelled line or a table
    problem: str = ""               # why no count could be read (several numbers, ...)


@dataclass
class Extracted:
    lines: list[RawLine] = field(default_factory=list)
    practice_codes: set[str] = field(default_factory=set)    # stated ODS codes
    default_month: date | None = None
    default_month_how: str = ""
    claimed_by: str = ""
    stated_total: Decimal | None = None
    patient_identifiers: int = 0       # how many NHS numbers / patient columns were seen
    problems: list[tuple[str, str]] = field(default_factory=list)
    mentions: list[tuple[str, str, str]] = field(default_factory=list)   # (code, where, text): no number
    notes: list[str] = field(default_factory=list)


def merge(into: Extracted, other: Extracted):
    into.lines += other.lines
    into.practice_codes |= other.practice_codes
    into.default_month = into.default_month or other.default_month
    into.claimed_by = into.claimed_by or other.claimed_by
    into.stated_total = into.stated_total if into.stated_total is not None else other.stated_total
    into.default_month_how = into.default_month_how or other.default_month_how
    into.patient_identifiers += other.patient_identifiers
    into.problems += other.problems
    into.mentions += other.mentions
    into.notes += other.notes
