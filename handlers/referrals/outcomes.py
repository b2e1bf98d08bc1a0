"""What the receiving practice's outcome means: its checks, whether it is payable under this LES,
and the words the reply and the referrer's notice use."""
from __future__ import annotations

import re
from datetime import date

from handlers import casework
from handlers.base import error
from handlers.contract import dates, nhs
from handlers.referrals.assess import SERVICE

OUTCOME_NAMES = {"injection": "injection given (paid under the Minor Surgery DES, not this LES)",
                 "no_injection": "consultation only, no injection",
                 "did_not_attend": "did not attend"}


def people(rows) -> list[tuple]:
    """(id, name, NHS number) of stored referrals, for telling apart outcomes in one message."""
    return [(r["id"], casework.loads(r["patient"]).get("patient_name", ""), r["nhs_number"]) for r in rows]


def outcome_problems(row, o, on: date) -> list[dict]:
    if o.seen_on is None:
        return [error("date seen", "is missing or not a real date. Give the consultation date as DD/MM/YYYY.")]
    if o.seen_on > on:
        return [error("date seen", f"{dates.uk(o.seen_on)} is in the future. Report the outcome after the "
                                   "consultation.")]
    if o.seen_on < date.fromisoformat(row["referred_on"]):
        return [error("date seen", f"{dates.uk(o.seen_on)} is before the referral was made "
                                   f"({dates.uk(row['referred_on'])}). Check the date.")]
    return []


def registered_here(text: str) -> bool:
    """The receiving practice says the patient is its own registered patient."""
    t = text or ""
    if re.search(r"\bnot\s+(?:\w+\s+)?registered\s+with\s+us\b|\bnot\s+our\s+(?:own\s+)?patient", t, re.I):
        return False
    return bool(re.search(r"\b(?:registered\s+with\s+us|our\s+own\s+(?:registered\s+)?patient|"
                          r"registered\s+here|joined\s+our\s+list|registered\s+at\s+this\s+practice)\b", t, re.I))


def tariff(catalogue, seen_on: date) -> str:
    """The consultation's price from the catalogue, in pounds and pence: the tariff in force on the
    day seen (the first tariff for a day before it)."""
    service = catalogue.get(SERVICE)
    rate = service.rate_on(seen_on)
    if rate is None:
        rate = min(service.tariff, key=lambda t: t.from_).pounds
    return f"£{rate:.2f}"


def outcome_line(ref: str, kind: str, seen_on: date, payable: bool, catalogue) -> str:
    """The reply's line about one outcome: what happened, when, and whether this LES pays for it."""
    if payable:
        pay = f" - payable under this LES ({tariff(catalogue, seen_on)})."
    elif kind == "no_injection":
        pay = (" - not payable under this LES: the patient is registered with your practice, and the "
               "LES pays only for patients registered elsewhere.")
    elif kind == "did_not_attend":
        pay = " - not payable under this LES (no consultation took place)."
    else:
        pay = " - nothing is payable under this LES; claim it under the Minor Surgery DES."
    return f"{ref}: {OUTCOME_NAMES[kind]} on {dates.uk(seen_on)}" + pay


def named(row) -> str:
    """The patient as the referrer knows them (this goes only to the referrer's directory address)."""
    name = casework.loads(row["patient"]).get("patient_name") or ""
    number = f"NHS number {nhs.display(row['nhs_number'])}" if row["nhs_number"] else "no NHS number"
    return f"{name}, {number}" if name else number
