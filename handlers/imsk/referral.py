"""A GP's IMSK referral: read, checked against the exclusions (section 3.4), and passed to the
triage team when complete. Red flags do not exclude a patient (section 3.2.4): such referrals
are accepted and flagged to the triage team as urgent."""
from __future__ import annotations

import json
from datetime import date

from handlers import casework
from handlers.base import Context, Decision, Notice, Reply, error
from handlers.contract import dates
from handlers.contract import nhs
from handlers.contract import workdays
from handlers.contract.dates import months_after
from handlers.contract.periods import london
from handlers.contract.references import reference
from handlers.imsk.practice import resolve_practice
from handlers.imsk.reader import ImskReferral, looks_like_practice, read_referral
from handlers.imsk.vocabulary import LABELS, SERVICE, age_on
from store import imsk as imsk_store
from store.db import audit

FIELD_NAMES = {"patient_name": "Patient name", "dob": "Date of birth", "nhs_number": "NHS number",
               "registered_practice": "Registered practice", "specialty": "Referral specialty",
               "clinical": "Clinical details", "red_flags": "Red flags", "urgency": "Urgency"}


def _text(ctx: Context, whole: bool) -> str:
    """The body (with a forwarded chain when whole) and the text of PDF/DOCX attachments; Word files
    in reading order with their tick boxes. Kept on the context: a PDF is read once."""
    key = ("forms", whole)
    if key not in ctx.texts:
        parts = [ctx.parsed.text if whole else ctx.parsed.new_text, *casework.form_texts(ctx)]
        ctx.texts[key] = "\n\n".join(p for p in parts if p)
    return ctx.texts[key]


def referral(ctx: Context, earlier) -> Decision:
    """A new referral, or a reply completing an incomplete one (earlier: its row)."""
    conn, s = ctx.conn, ctx.settings.imsk
    received = ctx.received_at
    on = london(received).date()
    r = _read(ctx, earlier, on)
    problems = [error(f, p) for f, p in r.problems(on)]
    registered = _registered(ctx, r, problems)
    returned = _returned(conn, r, registered, on)
    state = "returned" if returned else "incomplete" if problems else "awaiting_triage"
    urgent = r.red_flags is True or r.urgency == "urgent"
    due = workdays.add_working_days(received, s.triage_working_days, tuple(ctx.settings.calendar.closures))
    followup_of, self_back = _follow_up(conn, r, state, on, s.self_referral_months)
    case_id = earlier["id"] if earlier is not None else None
    fields = dict(r.fields)

    def apply(wconn, cid):
        rid = case_id or cid
        imsk_store.save_gp_referral(
            wconn, rid, message=ctx.message_row, received_at=received.isoformat(), referrer_code=ctx.org.ods_code,
            registered_code=registered, nhs_number=r.nhs_number, patient=json.dumps(fields), specialty=r.specialty,
            mecfs=r.mecfs, red_flags=r.red_flags, urgency=r.urgency, clinical=r.get("clinical"), state=state,
            problems=json.dumps(problems), return_reason=returned or None,
            triage_due=due.isoformat() if state == "awaiting_triage" else None, followup_of=followup_of)
        audit(wconn, "imsk_referral", rid, state, "pipeline", {"urgent": urgent, "followup_of": followup_of})

    notices = []
    if state == "awaiting_triage" and s.triage_team:
        notices.append(_to_triage(ctx, r, urgent, due, followup_of, self_back, case_id))
    outcome = {"awaiting_triage": "accepted"}.get(state, "rejected")
    errors = problems if state == "incomplete" else [error("returned to GP", returned)] if returned else []
    return Decision(outcome, "imsk_referral", errors, case_kind="imsk_referral", apply=apply, notices=notices,
                    case_id=case_id, keys={f"nhs:{r.nhs_number}"} if r.nhs_number else set(),
                    reply=Reply("imsk_result", {"state": state, "returned": returned, "due": dates.uk(due),
                                                "urgent": urgent, "followup": bool(followup_of or self_back),
                                                "read": _echo(r), "assumed": r.read}))


def _read(ctx: Context, earlier, on: date) -> ImskReferral:
    """The referral as written; a reply completing an incomplete one adds what it says now."""
    if earlier is None:
        return read_referral(_text(ctx, whole=True), ctx.parsed.subject, on)
    r = read_referral(_text(ctx, whole=False), "", on)
    before = json.loads(earlier["patient"])
    r.fields = {**before, **{k: v for k, v in r.fields.items() if v}}
    r.practices = r.practices + ([before["registered_practice"]] if before.get("registered_practice") else [])
    if before.get("_self_referral_back") and not r.self_referral_back:
        r.self_referral_back = date.fromisoformat(before["_self_referral_back"])
    return r


def _registered(ctx: Context, r: ImskReferral, problems: list) -> str | None:
    """The ODS code of the patient's practice, written into r; what is wrong with it added to problems."""
    conn = ctx.conn
    registered = next((c for c in (resolve_practice(conn, v) for v in r.practices) if c), None)
    if registered:
        r.fields["registered_practice"] = casework.name_of(conn, registered)
        return registered
    named = next((v for v in r.practices if looks_like_practice(v)), None)
    if named:
        problems.append(error("registered practice", f"'{named}' is not a practice lesbot knows. Give the "
                                                     "practice's name as the NHS lists it, or its ODS code."))
    elif ctx.org is not None and ctx.org.kind == "practice":
        # the practice writing about its own patient (principle 4): said in the acknowledgement
        registered = ctx.org.ods_code
        r.fields["registered_practice"] = casework.name_of(conn, registered)
        r.read["registered practice"] = "assumed: the referring practice (no other practice was named)"
    else:
        problems.append(error("registered practice", "is missing. Add 'Registered practice: <name> (<ODS code>)'."))
    return registered


def _returned(conn, r: ImskReferral, registered: str | None, on: date) -> str:
    """Why the patient is excluded (section 3.4) and the referral goes back to the GP; '' if not."""
    if r.under_18(on):
        return "the patient is under 18: the IMSK service sees adults only. Refer to paediatric services."
    if registered:
        org = casework.org(conn, registered)
        if org is None or SERVICE not in org.services:
            return (f"the patient's practice ({casework.name_of(conn, registered)}) is not one the IMSK service "
                    "covers: patients of practices not covered by the service are excluded, so the patient "
                    "cannot be seen here. Refer to the service for their area.")
    return ""


def _follow_up(conn, r: ImskReferral, state: str, on: date, months: int) -> tuple[int | None, date | None]:
    """(the referral this follows up, the discharge a self-referral back names): a return within
    `months` of discharge for the same condition is a follow-up, not a first appointment."""
    followup_of = None
    self_back = None
    if r.self_referral_back and on <= months_after(r.self_referral_back, months):
        self_back = r.self_referral_back
        r.fields["_self_referral_back"] = self_back.isoformat()
    if state == "awaiting_triage" and r.nhs_number:
        back = imsk_store.latest_discharge(conn, r.nhs_number, r.specialty)
        if back and on <= months_after(date.fromisoformat(back["discharged_on"]), months):
            followup_of = back["id"]
    return followup_of, self_back


def _to_triage(ctx: Context, r: ImskReferral, urgent: bool, due: date, followup_of: int | None,
               self_back: date | None, case_id: int | None) -> Notice:
    return Notice(ctx.settings.imsk.triage_team, "imsk_to_triage", {
        "fields": {k: r.get(k) for k in LABELS} | {
            "nhs_number": nhs.display(r.nhs_number)},
        "specialty": r.specialty, "mecfs": r.mecfs, "urgent": urgent, "red_flags": r.red_flags,
        "due": dates.uk(due), "referrer": casework.name_of(ctx.conn, ctx.org.ods_code),
        "followup_of": reference(followup_of) if followup_of else "",
        "self_referral_back": dates.uk(self_back) if self_back else ""}, case_id=case_id)


def _echo(r: ImskReferral) -> list[tuple[str, str]]:
    """What lesbot read, field by field, for the sender to check (principle 4). Nothing that
    identifies the patient: the name as found or not, the NHS number's last digits, the age."""
    out = []
    for key, label in FIELD_NAMES.items():
        value = r.get(key)
        if key == "patient_name" and value:
            value = "found"
        elif key == "nhs_number" and value:
            value = f"ending {r.nhs_number[-4:]}" if r.nhs_number else "(not 10 digits)"
        elif key == "dob" and value:
            value = f"found (age {age_on(r.dob, r.on)})" if r.dob and r.dob < r.on else "(not a real date)"
        elif key == "clinical" and value:
            value = f"found ({len(value.split())} words)"
        elif key == "specialty" and r.specialty:
            value = r.specialty.capitalize() + (" (ME/CFS)" if r.mecfs else "")
        elif key == "red_flags" and r.red_flags is not None:
            value = "yes" if r.red_flags else "no"
        elif key == "urgency" and r.urgency:
            value = r.urgency
        out.append((label, value or "(not found)"))
    return out
