"""What the IMSK triage team writes: a triage decision on a referral, told to the GP and checked
against the service's standards; a discharge; a transfer between disciplines; a self-referral."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from handlers import casework
from handlers.base import Context, Decision, Notice, Reply, error
from handlers.contract import dates
from handlers.contract import nhs
from handlers.contract import workdays
from handlers.contract.dates import months_after
from handlers.contract.periods import london
from handlers.contract.references import reference
from handlers.imsk.reader import read_decision, transfer_dates
from handlers.imsk.vocabulary import DECISION_NAMES
from store import imsk as imsk_store
from store.db import audit

DISCHARGED = re.compile(r"\bdischarged\b", re.I)
SELF_REFERRAL = re.compile(r"\bself[- ]referr", re.I)
TRANSFER = re.compile(r"\btransfer(?:red|ring)?\b", re.I)


def from_team(ctx: Context) -> Decision:
    conn = ctx.conn
    text = ctx.parsed.new_text
    today = london(ctx.received_at).date()
    row = imsk_store.referral(conn, ctx.case_id) if ctx.case_id else None
    if row is None:
        refs = [int(n) for n in re.findall(r"LES-(\d{6,})", text)]
        row = imsk_store.referral(conn, refs[0]) if refs else None
    if row is None and SELF_REFERRAL.search(text):
        # not in any referral's thread: the service recording a patient's self-referral
        return self_referral(ctx, text, today)
    if row is None:
        return Decision("rejected", "imsk_triage", [error("reference", "lesbot could not tell which referral this is "
                                                                     "about. Reply to the referral's email.")],
                        reply=Reply("imsk_triage_result", {"lines": []}))
    # the GP who referred, else the practice's shared address
    gp = imsk_store.message_sender(conn, row["message"]) or casework.address_of(conn, row["referrer_code"])
    if DISCHARGED.search(text) and row["state"] in ("triaged", "discharged"):
        return _discharge(ctx, row, text, today)
    if TRANSFER.search(text) and row["state"] == "triaged":
        return _transfer(ctx, row, text, today, gp)
    return _triage(ctx, row, text, today, gp)


def _discharge(ctx: Context, row, text: str, today: date) -> Decision:
    s = ctx.settings.imsk
    day = dates.parse(text) or today
    lines = [f"{reference(row['id'])}: discharged on {dates.uk(day)}; a self-referral for the same condition "
             f"until {dates.uk(months_after(day, s.self_referral_months))} is a follow-up."]

    def apply(wconn, cid):
        imsk_store.mark_discharged(wconn, row["id"], day.isoformat())
        audit(wconn, "imsk_referral", row["id"], "discharged", "pipeline", {})
    return Decision("accepted", "imsk_discharge", apply=apply, case_id=row["id"],
                    reply=Reply("imsk_triage_result", {"lines": lines}))


def _transfer(ctx: Context, row, text: str, today: date, gp: str | None) -> Decision:
    """A transfer within the service: a follow-up, to be seen within the transfer standard."""
    s = ctx.settings.imsk
    decision = _transfer_to(text)
    last, appt = transfer_dates(text, today)
    ok = bool(appt and last and appt <= last + timedelta(weeks=s.transfer_weeks))
    transfers = json.loads(row["transfers"] or "[]") + [{
        "to": decision, "at": today.isoformat(), "last_appointment": last.isoformat() if last else None,
        "appointment": appt.isoformat() if appt else None, "within_standard": ok}]
    to_name = DECISION_NAMES.get(decision, "another discipline").replace("accepted into ", "")
    lines = [f"{reference(row['id'])}: transfer to {to_name} recorded "
             "(a follow-up, not a new appointment)" + ("" if ok else
             f"; NOT within {s.transfer_weeks} weeks of the last appointment" if appt and last else
             "; give the last appointment and the new appointment dates to check the 3-week standard")]
    notices = []
    if gp:
        notices.append(Notice(gp, "imsk_outcome_to_gp", {
            "decision": f"transferred within the service to {to_name} (a follow-up, not a new first "
                        "appointment)", "appointment": dates.uk(appt),
            "patient": f"NHS number ending {row['nhs_number'][-4:]}" if row["nhs_number"] else "",
            "note": ""}, case_id=row["id"]))
    if appt and last and not ok and s.service_lead:
        notices.append(Notice(s.service_lead, "imsk_to_lead", {
            "problems": [f"Transfer to {to_name}: the new appointment {dates.uk(appt)} is more than "
                         f"{s.transfer_weeks} weeks after the last appointment ({dates.uk(last)}); routine "
                         f"transfers must be seen by {dates.uk(last + timedelta(weeks=s.transfer_weeks))}."]},
            case_id=row["id"]))

    def apply(wconn, cid):
        imsk_store.set_transfers(wconn, row["id"], json.dumps(transfers))
    return Decision("accepted", "imsk_transfer", apply=apply, case_id=row["id"], notices=notices,
                    reply=Reply("imsk_triage_result", {"lines": lines}))


@dataclass
class _Checks:
    """How a triage decision met the service's standards: True, False, or None when not checked."""
    received_on: date
    triage_ok: bool | None = None
    appointment_ok: bool | None = None
    redirect_ok: bool | None = None
    problems: list = field(default_factory=list)


def _triage(ctx: Context, row, text: str, today: date, gp: str | None) -> Decision:
    """The triage decision: recorded once, told to the GP, and any standard missed told to the lead."""
    s = ctx.settings.imsk
    decision, appt, note = read_decision(text, today)
    if decision is None:
        return Decision("rejected", "imsk_triage", [error("decision", (
            "lesbot could not find the triage decision. Write 'Decision: ' and one of: return to GP, "
            "physiotherapy, MSK assessment and treatment, rheumatology, pain management, ME/CFS, "
            "re-direct to secondary care."))], case_id=row["id"], reply=Reply("imsk_triage_result", {"lines": []}))
    if row["decision"]:
        return Decision("quarantined", "imsk_triage", [error(reference(row["id"]), "a triage decision is already "
                                                                                  "recorded; a change needs the "
                                                                                  "contract team")],
                        case_id=row["id"], reply=Reply("imsk_triage_result", {"lines": [], "held": True}))
    c = _check(ctx, row, text, decision, appt, today)
    notices = []
    if gp:
        notices.append(Notice(gp, "imsk_outcome_to_gp", {
            "decision": DECISION_NAMES[decision], "appointment": dates.uk(appt),
            "patient": f"NHS number ending {row['nhs_number'][-4:]}" if row["nhs_number"] else "",
            "note": note if decision in ("return_to_gp", "secondary_care") else "",
            "followup": bool(row["followup_of"] or casework.loads(row["patient"]).get("_self_referral_back"))},
            case_id=row["id"]))
    flags = _lead_flags(s, row, appt, c, today)
    if flags and s.service_lead:
        notices.append(Notice(s.service_lead, "imsk_to_lead", {
            "problems": flags, "decision": DECISION_NAMES[decision]}, case_id=row["id"]))
    now = ctx.received_at

    def apply(wconn, cid):
        imsk_store.record_triage(wconn, row["id"], at=now.isoformat(), decision=decision,
                                 first_appointment=appt.isoformat() if appt else None, triage_ok=c.triage_ok,
                                 appointment_ok=c.appointment_ok, redirect_ok=c.redirect_ok)
        audit(wconn, "imsk_referral", row["id"], "triaged", "pipeline",
              {"decision": decision, "triage_ok": c.triage_ok, "appointment_ok": c.appointment_ok})
    return Decision("partially_accepted" if c.problems else "accepted", "imsk_triage", c.problems, apply=apply,
                    notices=notices, case_id=row["id"],
                    reply=Reply("imsk_triage_result", {"lines": _lines(s, row, decision, appt, c)}))


def _check(ctx: Context, row, text: str, decision: str, appt: date | None, today: date) -> _Checks:
    """Triaged by the due date; a routine first appointment within the standard weeks of receipt (not
    for a follow-up); an urgent re-direction to secondary care made the same day."""
    s = ctx.settings.imsk
    c = _Checks(received_on=london(datetime.fromisoformat(row["received_at"])).date())
    c.triage_ok = today <= date.fromisoformat(row["triage_due"]) if row["triage_due"] else None
    if decision not in ("return_to_gp", "secondary_care"):        # accepted into a discipline
        if appt is None:
            c.problems.append(error("first appointment", "give the first appointment date (DD/MM/YYYY)."))
        elif row["urgency"] == "routine" and not row["followup_of"] and \
                not casework.loads(row["patient"]).get("_self_referral_back"):
            c.appointment_ok = appt <= c.received_on + timedelta(weeks=s.routine_weeks)
    urgent = row["urgency"] == "urgent" or row["red_flags"] == 1
    if decision == "secondary_care" and urgent:
        redirected = _dated(text, r"re-?direct\w*|referred|2 ?ww|two week wait") or today
        c.redirect_ok = redirected == today
    return c


def _lines(s, row, decision: str, appt: date | None, c: _Checks) -> list[str]:
    """The reply to the triage team: the decision recorded and any standard it missed."""
    lines = [f"{reference(row['id'])}: {DECISION_NAMES[decision]}"
             + (f", first appointment {dates.uk(appt)}" if appt else "") + "."]
    if c.triage_ok is False:
        lines.append(f"Triaged after the deadline ({dates.uk(row['triage_due'])}, {s.triage_working_days} working "
                     "days after receipt).")
    if c.appointment_ok is False:
        lines.append(f"The first appointment is more than {s.routine_weeks} weeks after the referral was received "
                     f"({dates.uk(c.received_on)}).")
    if c.redirect_ok is False:
        lines.append("An urgent re-direction must be made the same day it is identified.")
    return lines


def _lead_flags(s, row, appt: date | None, c: _Checks, today: date) -> list[str]:
    """The standards missed, for the service lead."""
    flags = []
    if c.triage_ok is False:
        flags.append(f"Triaged late: the decision came on {dates.uk(today)}, after the due date "
                     f"{dates.uk(row['triage_due'])} ({s.triage_working_days} working days after the referral was "
                     f"received on {dates.uk(c.received_on)}).")
    if c.appointment_ok is False:
        flags.append(f"First appointment {dates.uk(appt)} is beyond the {s.routine_weeks}-week standard: routine "
                     f"patients must be seen within {s.routine_weeks} weeks of receipt ({dates.uk(c.received_on)}), "
                     f"that is by {dates.uk(c.received_on + timedelta(weeks=s.routine_weeks))}.")
    if c.redirect_ok is False:
        flags.append("An urgent re-direction to secondary care was not made the same day it was identified.")
    return flags


def _transfer_to(text: str) -> str | None:
    """The discipline a patient is transferred to ('Transferred within the service to rheumatology')."""
    m = re.search(r"\btransferr?(?:ed|ing)?\b[^.\n]{0,60}?\bto\s+(?:the\s+)?([^.\n]{0,60})", text, re.I)
    if m:
        decision, _, _ = read_decision("Decision: " + m.group(1))
        if decision:
            return decision
    decision, _, _ = read_decision(text)
    return decision


def _dated(text: str, cue: str) -> date | None:
    """The first date written just after one of the cue words."""
    for m in re.finditer(r"(?:" + cue + r")[^\n]{0,40}", text, re.I):
        d = dates.parse(m.group(0))
        if d:
            return d
    return None


def self_referral(ctx: Context, text: str, today: date) -> Decision:
    """The service records a patient's self-referral: within 2 months of discharge for the same
    condition it is a follow-up, not a first appointment; the GP is told either way."""
    conn, s = ctx.conn, ctx.settings.imsk
    numbers = [n for n in ("".join(m.groups()) for m in nhs.separated(text)) if nhs.is_valid(n)]
    if not numbers:
        return Decision("rejected", "imsk_self_referral", [error("NHS number", "give the patient's NHS number.")],
                        reply=Reply("imsk_triage_result", {"lines": []}))
    number = numbers[0]
    last = imsk_store.latest_for_patient(conn, number)
    within = bool(last and last["discharged_on"] and
                  today <= months_after(date.fromisoformat(last["discharged_on"]), s.self_referral_months))
    lines = [("Recorded as a follow-up of " + reference(last["id"]) + ": a self-referral within "
              f"{s.self_referral_months} months of discharge is not a first appointment.") if within else
             "Recorded as a new self-referral (no discharge from this service in the last "
             f"{s.self_referral_months} months)."]
    registered = last["registered_code"] if last else None
    notices = []
    gp = casework.address_of(conn, registered) if registered else None
    if gp:
        notices.append(Notice(gp, "imsk_self_referral_to_gp", {
            "patient": f"NHS number ending {number[-4:]}", "followup": within}))

    def apply(wconn, cid):
        imsk_store.add_self_referral(
            wconn, cid, message=ctx.message_row, received_at=ctx.received_at.isoformat(), registered_code=registered,
            nhs_number=number, specialty=last["specialty"] if last else None,
            triage_due=workdays.add_working_days(ctx.received_at, s.triage_working_days,
                                                 tuple(ctx.settings.calendar.closures)).isoformat(),
            followup_of=last["id"] if within else None)
    return Decision("accepted", "imsk_self_referral", case_kind="imsk_referral", apply=apply, notices=notices,
                    keys={f"nhs:{number}"}, reply=Reply("imsk_triage_result", {"lines": lines}))
