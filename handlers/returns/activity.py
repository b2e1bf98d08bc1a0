"""What lesbot recorded, as the returns the contract team needs: the quarterly
monitoring return, the yearly audit, and claims set against recorded activity.

Counts only: no patient identifiers leave through these reports.
"""
from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

from handlers.contract import dates
from handlers.contract.periods import add_months, month_end
from handlers.contract.references import reference_or_none
from store import activity as store

MSK = "msk-injection"
DENOSUMAB = "denosumab"
MSK_FIELDS = ["referrals_received", "attended", "injection_given", "no_injection", "did_not_attend",
              "awaiting_outcome", "payable_consultations"]


def msk_counts(conn, code: str, start: date, end: date) -> dict:
    """One practice's MSK figures for a period (it as the receiving practice)."""
    s, e = start.isoformat(), end.isoformat()
    received = store.referrals_received(conn, code, s, e)
    seen = store.outcomes_seen(conn, code, s, e)
    payable = store.payable_consultations(conn, code, s, e)
    awaiting = store.awaiting_outcome(conn, code, e)
    return {"referrals_received": received,
            "attended": seen.get("injection", 0) + seen.get("no_injection", 0),
            "injection_given": seen.get("injection", 0), "no_injection": seen.get("no_injection", 0),
            "did_not_attend": seen.get("did_not_attend", 0), "awaiting_outcome": awaiting,
            "payable_consultations": payable}


def denosumab_counts(conn, code: str, start: date, end: date) -> dict:
    s, e = start.isoformat(), end.isoformat()
    return {
        "patients_on_register": store.patients_on_register(conn, code, e),
        "added": store.patients_added(conn, code, s, e),
        "injections_given": store.injections_given(conn, code, s, e),
        "overdue_at_end": store.overdue_on(conn, code, e),
    }


def monitoring(conn, service: str, quarter: str, tariff: Decimal | None = None) -> list[dict]:
    span = dates.parse_quarter(quarter)
    if span is None:
        raise ValueError(f"{quarter!r} is not a quarter: write it as 2026Q3 (calendar quarters)")
    start, end = span
    rows = []
    for p in store.practices_offering(conn, service):
        counts = msk_counts(conn, p["ods_code"], start, end) if service == MSK else \
            denosumab_counts(conn, p["ods_code"], start, end)
        row = {"quarter": quarter.upper().replace(" ", ""), "ods_code": p["ods_code"], "practice": p["name"], **counts}
        if service == MSK and tariff is not None:
            row["amount"] = f"{tariff * counts['payable_consultations']:.2f}"
        stated = store.has_monitoring_return(conn, p["ods_code"], row["quarter"], service)
        row["practice_return"] = "received" if stated else "not received"
        rows.append(row)
    return rows


def yearly_audit(conn, year: int) -> list[dict]:
    """Per practice: patients attending the consultation, and the outcomes."""
    start, end = date(year, 1, 1).isoformat(), date(year, 12, 31).isoformat()
    rows = []
    for p in store.practices_offering(conn, MSK):
        code = p["ods_code"]
        attending = store.patients_attending(conn, code, start, end)
        c = msk_counts(conn, code, date(year, 1, 1), date(year, 12, 31))
        rows.append({"year": year, "ods_code": code, "practice": p["name"], "patients_attending": attending,
                     "consultations": c["attended"], "injection_given": c["injection_given"],
                     "no_injection": c["no_injection"], "did_not_attend": c["did_not_attend"],
                     "referrals_received": c["referrals_received"]})
    return rows


def to_csv(rows: list[dict]) -> str:
    if not rows:
        return ""
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    for r in rows:
        # a practice name could start with = or +: never a formula in a spreadsheet
        w.writerow({k: ("'" + v if isinstance(v, str) and v[:1] in "=+-@" else v) for k, v in r.items()})
    return out.getvalue()


# -- claims against what lesbot recorded ----------------------------------------------------
def reconcile(conn, today: date) -> list[dict]:
    """Flags for the contract team (never refusals):
    - msk-injection claimed for a quarter beyond the no-injection consultations recorded;
    - denosumab injections claimed in a month beyond the practice's patients due then; while
      lesbot holds no register entry at all for the practice there is nothing to compare with,
      and the flag says so (`no_register`) instead of calling the claim implausible;
    - recorded activity not claimed, with the last day it can still be claimed."""
    flags = []
    claimed = store.accepted_claims_by_month(conn)
    # Judged per practice, not for the register as a whole: another practice's transfer letters say
    # nothing about this one's patients, and a practice whose patients all began before lesbot kept
    # the register (the first months of the contract) has no entries to set its claims against.
    registered = store.practices_with_register(conn)
    # practice -> month -> doses given or due that month, counted by SQLite in one pass. Doses are
    # six months apart, so a patient counts once in any three-month window.
    dose_months: dict[str, dict[str, int]] = {}
    for code, month, n in store.doses_by_month(conn):
        dose_months.setdefault(code, {})[month] = n
    msk_q: dict[tuple, int] = {}
    for c in claimed:
        m = date.fromisoformat(c["month"] + "-01")
        if c["service"] == MSK:
            key = (c["org_code"], dates.quarter_of(m))
            msk_q[key] = msk_q.get(key, 0) + c["n"]
        elif c["service"] == DENOSUMAB and c["org_code"] not in registered:
            flags.append({"kind": "no_register", "ods_code": c["org_code"], "service": DENOSUMAB,
                          "period": c["month"], "claimed": c["n"], "recorded": None,
                          "detail": f"{c['n']} injections claimed for {c['month']}; lesbot has no denosumab "
                                    "register entries for this practice yet (no transfer letter recorded), so "
                                    "the claim could not be checked against the register"})
        elif c["service"] == DENOSUMAB:
            months = dose_months.get(c["org_code"], {})
            due = sum(months.get(f"{add_months(m, k):%Y-%m}", 0) for k in (-1, 0, 1))
            if c["n"] > due:
                flags.append({"kind": "implausible_claim", "ods_code": c["org_code"], "service": DENOSUMAB,
                              "period": c["month"], "claimed": c["n"], "recorded": due,
                              "detail": f"{c['n']} injections claimed for {c['month']}; {due} patients on the "
                                        "register had a dose due within a month either side"})
    recorded_q: dict[tuple, int] = {}
    for r in store.payable_by_quarter(conn):
        recorded_q[(r["receiving_code"], r["quarter"])] = r["n"]
    for key in sorted(set(msk_q) | set(recorded_q)):
        n_claimed, n_recorded = msk_q.get(key, 0), recorded_q.get(key, 0)
        if n_claimed > n_recorded:
            flags.append({"kind": "claim_exceeds_recorded", "ods_code": key[0], "service": MSK, "period": key[1],
                          "claimed": n_claimed, "recorded": n_recorded,
                          "detail": f"{n_claimed} no-injection consultations claimed for {key[1]}; "
                                    f"{n_recorded} recorded"})
    # unclaimed: per practice and month of activity, while it can still be claimed
    unclaimed = store.recorded_by_month(conn)
    claimed_m = {(c["org_code"], c["service"], c["month"]): c["n"] for c in claimed}
    for u in unclaimed:
        month = date.fromisoformat(u["month"] + "-01")
        last_day = month_end(add_months(month, 3))
        missing = u["n"] - claimed_m.get((u["code"], u["service"], u["month"]), 0)
        if missing > 0 and today <= last_day:
            flags.append({"kind": "unclaimed", "ods_code": u["code"], "service": u["service"], "period": u["month"],
                          "claimed": claimed_m.get((u["code"], u["service"], u["month"]), 0), "recorded": u["n"],
                          "missing": missing, "claim_by": last_day.isoformat(),
                          "detail": f"{missing} recorded but not claimed; claim by {dates.uk(last_day)}"})
    return flags


def register_rows(conn, practice: str | None, due_before: date | None, today: date) -> list[dict]:
    out = []
    today_s = today.isoformat()
    for case_id, practice_code, number, first, next_due, status, doses in store.register_entries(
            conn, practice.upper() if practice else None, due_before.isoformat() if due_before else None):
        out.append({"reference": reference_or_none(case_id) or "", "practice": practice_code,
                    "nhs_number": number, "first_dose": first,
                    "later_doses": [d for d in (doses or "").split(",") if d and d != first],
                    "next_due": next_due or "", "status": status,
                    "overdue": bool(status == "active" and next_due and next_due < today_s)})
    return out
