"""Community integrated MSK (IMSK) single point of access: GP referrals in one
standard form, triaged within 2 working days; the triage team's decisions told to
the GP and checked against the service's standards.

Red flags do not exclude a patient (section 3.2.4): such referrals are accepted and
flagged to the triage team as urgent. Excluded (section 3.4), returned to the GP
with the reason: under 18; not registered with a practice the service covers.
A GP's referral: referral.py; what the triage team writes: triage.py.
"""
from __future__ import annotations

from handlers.base import Context, Decision, Reply, error
from handlers.contract import dates
from handlers.contract.references import reference
from handlers.imsk.referral import referral
from handlers.imsk.triage import from_team
from handlers.imsk.vocabulary import DECISION_NAMES, SERVICE
from store import imsk as imsk_store

name = "imsk"


def _is_team(ctx: Context) -> bool:
    team = ctx.settings.imsk.triage_team.lower()
    if team and ctx.parsed.from_addr == team:
        return True
    return bool(ctx.org and ctx.org.kind == "provider" and SERVICE in ctx.org.services)


def match(ctx: Context) -> bool:
    return ctx.service == SERVICE and ctx.org is not None and (ctx.org.kind == "practice" or _is_team(ctx))


def handle(ctx: Context, _found: bool = True) -> Decision:
    if _is_team(ctx):
        return from_team(ctx)
    row = imsk_store.referral(ctx.conn, ctx.case_id) if ctx.case_id else None
    if row is not None and row["state"] != "incomplete":
        # a GP writing about a referral already made: never a second referral over the first
        return Decision("rejected", "imsk_enquiry", [error(reference(row["id"]), _status(row))],
                        case_id=row["id"], reply=Reply("imsk_result", {"state": "status", "returned": "",
                                                                        "due": "", "urgent": False,
                                                                        "followup": False}))
    return referral(ctx, row)


def _status(row) -> str:
    if row["state"] == "returned":
        return f"this referral was returned to you: {row['return_reason']} Send a new referral if that changes."
    if row["state"] == "awaiting_triage":
        return f"this referral is waiting for triage (due {dates.uk(row['triage_due'])})."
    return (f"this referral was triaged: {DECISION_NAMES.get(row['decision'], row['decision'])}"
            + (f", first appointment {dates.uk(row['first_appointment'])}" if row["first_appointment"] else "")
            + ". For anything else, contact the service.")
