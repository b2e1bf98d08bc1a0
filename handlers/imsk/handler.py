"""Community integrated MSK (IMSK) single point of access: GP referrals in one
standard form, triaged within 2 working days; the triage team's decisions told to
the GP and checked against the service's standards.

Red flags do not exclude a patient (section 3.2.4): such referrals are accepted and
flagged to the triage team as urgent. Excluded (section 3.4), returned to the GP
with the reason: under 18; not registered with a practice the service covers.
"""
from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta


from handlers import casework
from handlers.contract import dates
from handlers.imsk import reader as imskparse
from handlers.contract import letters
from handlers.contract import nhs
from handlers.contract import workdays
from handlers.contract.dates import months_after
from handlers.contract.periods import london
from handlers.contract.reading import forms
from handlers.contract.references import reference
from handlers.base import Context, Decision, Notice, Reply, error
from store.db import audit

name = "imsk"
SERVICE = "imsk"
DISCHARGED = re.compile(r"\bdischarged\b", re.I)
SELF_REFERRAL = re.compile(r"\bself[- ]referr", re.I)
TRANSFER = re.compile(r"\btransfer(?:red|ring)?\b", re.I)
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


_ABBREV = forms.load_lexicon("imsk")["practice_abbreviations"]
_GENERIC = set(forms.load_lexicon("imsk")["practice_generic"]["words"])


def _resolve_practice(conn, value: str) -> str | None:
    """The one directory practice a written value names: ODS code, full name or postcode, then the
    name with its short forms written out ('Pendle Moss MC'), then its distinctive words."""
    code = letters.practice_from(conn, value)
    if code:
        return code
    words = re.findall(r"[a-z0-9]+", value.lower().replace("'", ""))
    expanded = " ".join(_ABBREV.get(w, w) for w in words)
    code = letters.practice_from(conn, expanded)
    if code:
        return code
    have = set(expanded.split())
    hits = []
    for row in conn.execute("SELECT ods_code, name FROM orgs WHERE kind='practice'"):
        distinct = {w for w in re.findall(r"[a-z0-9]+", row["name"].lower().replace("'", "")) if w not in _GENERIC}
        if distinct and distinct <= have:
            hits.append(row["ods_code"])
    if len(hits) == 1:
        return hits[0]
    try:                             # the shared practice reader: fuzzy names ('Pendel Moss Med Ctr')
        from handlers.contract.reading import practices
        found = practices.match_name(value, practices.Directory.of(conn))
    except Exception:                # not there yet, or a directory it cannot read: ask instead
        return None
    if len(found) == 1 or (len(found) > 1 and found[0][1] >= 90 and found[0][1] - found[1][1] >= 10):
        return found[0][0]
    return None


def _is_team(ctx: Context) -> bool:
    team = ctx.settings.imsk.triage_team.lower()
    if team and ctx.parsed.from_addr == team:
        return True
    return bool(ctx.org and ctx.org.kind == "provider" and SERVICE in ctx.org.services)


def match(ctx: Context) -> bool:
    return ctx.service == SERVICE and ctx.org is not None and (ctx.org.kind == "practice" or _is_team(ctx))


def handle(ctx: Context, _found: bool = True) -> Decision:
    if _is_team(ctx):
        return _from_team(ctx)
    row = ctx.conn.execute("SELECT * FROM imsk_referrals WHERE id=?", (ctx.case_id,)).fetchone() \
        if ctx.case_id else None
    if row is not None and row["state"] != "incomplete":
        # a GP writing about a referral already made: never a second referral over the first
        return Decision("rejected", "imsk_enquiry", [error(reference(row["id"]), _status(row))],
                        case_id=row["id"], reply=Reply("imsk_result", {"state": "status", "returned": "",
                                                                        "due": "", "urgent": False,
                                                                        "followup": False}))
    return _referral(ctx, row)


def _status(row) -> str:
    if row["state"] == "returned":
        return f"this referral was returned to you: {row['return_reason']} Send a new referral if that changes."
    if row["state"] == "awaiting_triage":
        return f"this referral is waiting for triage (due {dates.uk(row['triage_due'])})."
    return (f"this referral was triaged: {imskparse.DECISION_NAMES.get(row['decision'], row['decision'])}"
            + (f", first appointment {dates.uk(row['first_appointment'])}" if row["first_appointment"] else "")
            + ". For anything else, contact the service.")


# -- a GP's referral ------------------------------------------------------------------------
def _referral(ctx: Context, earlier) -> Decision:
    conn, s = ctx.conn, ctx.settings.imsk
    received = ctx.received_at
    on = london(received).date()
    if earlier is not None:           # a reply completing an incomplete referral: what it says now
        r = imskparse.read_referral(_text(ctx, whole=False), "", on)
        before = json.loads(earlier["patient"])
        r.fields = {**before, **{k: v for k, v in r.fields.items() if v}}
        r.practices = r.practices + ([before["registered_practice"]] if before.get("registered_practice") else [])
        if before.get("_self_referral_back") and not r.self_referral_back:
            r.self_referral_back = date.fromisoformat(before["_self_referral_back"])
    else:
        r = imskparse.read_referral(_text(ctx, whole=True), ctx.parsed.subject, on)
    problems = [error(f, p) for f, p in r.problems(on)]
    registered = next((c for c in (_resolve_practice(conn, v) for v in r.practices) if c), None)
    if registered:
        r.fields["registered_practice"] = casework.name_of(conn, registered)
    else:
        named = next((v for v in r.practices if imskparse.looks_like_practice(v)), None)
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
    returned = ""
    if r.under_18(on):
        returned = "the patient is under 18: the IMSK service sees adults only. Refer to paediatric services."
    elif registered:
        org = casework.org(conn, registered)
        if org is None or SERVICE not in org.services:
            returned = (f"the patient's practice ({casework.name_of(conn, registered)}) is not one the IMSK service "
                        "covers: patients of practices not covered by the service are excluded, so the patient "
                        "cannot be seen here. Refer to the service for their area.")
    state = "returned" if returned else "incomplete" if problems else "awaiting_triage"
    urgent = r.red_flags is True or r.urgency == "urgent"
    due = workdays.add_working_days(received, s.triage_working_days, tuple(ctx.settings.calendar.closures))
    followup_of = None
    self_back = None
    if r.self_referral_back and on <= months_after(r.self_referral_back, s.self_referral_months):
        self_back = r.self_referral_back
        r.fields["_self_referral_back"] = self_back.isoformat()
    if state == "awaiting_triage" and r.nhs_number:
        back = conn.execute("SELECT id, discharged_on FROM imsk_referrals WHERE nhs_number=? AND specialty=? AND "
                            "discharged_on IS NOT NULL ORDER BY discharged_on DESC LIMIT 1",
                            (r.nhs_number, r.specialty)).fetchone()
        if back and on <= months_after(date.fromisoformat(back["discharged_on"]), s.self_referral_months):
            followup_of = back["id"]
    case_id = earlier["id"] if earlier is not None else None
    fields = dict(r.fields)

    def apply(wconn, cid):
        rid = case_id or cid
        values = (ctx.message_row, received.isoformat(), ctx.org.ods_code, registered, r.nhs_number,
                  json.dumps(fields), r.specialty, int(r.mecfs), None if r.red_flags is None else int(r.red_flags),
                  r.urgency, r.get("clinical"), state, json.dumps(problems), returned or None,
                  due.isoformat() if state == "awaiting_triage" else None, followup_of)
        wconn.execute("INSERT OR REPLACE INTO imsk_referrals (id, kind, message, received_at, referrer_code, "
                      "registered_code, nhs_number, patient, specialty, mecfs, red_flags, urgency, clinical, state, "
                      "problems, return_reason, triage_due, followup_of) VALUES (?,'gp',?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                      (rid, *values))
        audit(wconn, "imsk_referral", rid, state, "pipeline", {"urgent": urgent, "followup_of": followup_of})

    notices = []
    if state == "awaiting_triage" and s.triage_team:
        notices.append(Notice(s.triage_team, "imsk_to_triage", {
            "fields": {k: r.get(k) for k in imskparse.LABELS} | {
                "nhs_number": nhs.display(r.nhs_number)},
            "specialty": r.specialty, "mecfs": r.mecfs, "urgent": urgent, "red_flags": r.red_flags,
            "due": dates.uk(due), "referrer": casework.name_of(conn, ctx.org.ods_code),
            "followup_of": reference(followup_of) if followup_of else "",
            "self_referral_back": dates.uk(self_back) if self_back else ""}, case_id=case_id))
    outcome = {"awaiting_triage": "accepted"}.get(state, "rejected")
    errors = problems if state == "incomplete" else [error("returned to GP", returned)] if returned else []
    return Decision(outcome, "imsk_referral", errors, case_kind="imsk_referral", apply=apply, notices=notices,
                    case_id=case_id, keys={f"nhs:{r.nhs_number}"} if r.nhs_number else set(),
                    reply=Reply("imsk_result", {"state": state, "returned": returned, "due": dates.uk(due),
                                                "urgent": urgent, "followup": bool(followup_of or self_back),
                                                "read": _echo(r), "assumed": r.read}))


def _echo(r) -> list[tuple[str, str]]:
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
            value = f"found (age {imskparse.age_on(r.dob, r.on)})" if r.dob and r.dob < r.on else "(not a real date)"
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


# -- the triage team ---------------------------------------------------------------------------
def _from_team(ctx: Context) -> Decision:
    conn, s = ctx.conn, ctx.settings.imsk
    text = ctx.parsed.new_text
    now = ctx.received_at
    today = london(now).date()
    row = conn.execute("SELECT * FROM imsk_referrals WHERE id=?", (ctx.case_id,)).fetchone() if ctx.case_id else None
    if row is None:
        refs = [int(n) for n in re.findall(r"LES-(\d{6,})", text)]
        row = conn.execute("SELECT * FROM imsk_referrals WHERE id=?", (refs[0],)).fetchone() if refs else None
    if row is None and SELF_REFERRAL.search(text):
        # not in any referral's thread: the service recording a patient's self-referral
        return _self_referral(ctx, text, today)
    if row is None:
        return Decision("rejected", "imsk_triage", [error("reference", "lesbot could not tell which referral this is "
                                                                     "about. Reply to the referral's email.")],
                        reply=Reply("imsk_triage_result", {"lines": []}))
    ref = reference(row["id"])
    lines, notices = [], []
    # the GP who referred, else the practice's shared address
    sender = conn.execute("SELECT from_addr FROM messages WHERE id=?", (row["message"],)).fetchone()
    gp = (sender[0] if sender and sender[0] else None) or casework.address_of(conn, row["referrer_code"])
    if DISCHARGED.search(text) and row["state"] in ("triaged", "discharged"):
        day = dates.parse(text) or today
        lines.append(f"{ref}: discharged on {dates.uk(day)}; a self-referral for the same condition until "
                     f"{dates.uk(months_after(day, s.self_referral_months))} is a follow-up.")

        def apply(wconn, cid):
            wconn.execute("UPDATE imsk_referrals SET state='discharged', discharged_on=? WHERE id=?",
                          (day.isoformat(), row["id"]))
            audit(wconn, "imsk_referral", row["id"], "discharged", "pipeline", {})
        return Decision("accepted", "imsk_discharge", apply=apply, case_id=row["id"],
                        reply=Reply("imsk_triage_result", {"lines": lines}))
    if TRANSFER.search(text) and row["state"] == "triaged":
        decision = _transfer_to(text)
        last, appt = imskparse.transfer_dates(text, today)
        ok = bool(appt and last and appt <= last + timedelta(weeks=s.transfer_weeks))
        transfers = json.loads(row["transfers"] or "[]") + [{
            "to": decision, "at": today.isoformat(), "last_appointment": last.isoformat() if last else None,
            "appointment": appt.isoformat() if appt else None, "within_standard": ok}]
        to_name = imskparse.DECISION_NAMES.get(decision, "another discipline").replace("accepted into ", "")
        lines.append(f"{ref}: transfer to {to_name} recorded "
                     "(a follow-up, not a new appointment)" + ("" if ok else
                     f"; NOT within {s.transfer_weeks} weeks of the last appointment" if appt and last else
                     "; give the last appointment and the new appointment dates to check the 3-week standard"))

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
            wconn.execute("UPDATE imsk_referrals SET transfers=? WHERE id=?", (json.dumps(transfers), row["id"]))
        return Decision("accepted", "imsk_transfer", apply=apply, case_id=row["id"], notices=notices,
                        reply=Reply("imsk_triage_result", {"lines": lines}))
    decision, appt, note = imskparse.read_decision(text, today)
    if decision is None:
        return Decision("rejected", "imsk_triage", [error("decision", (
            "lesbot could not find the triage decision. Write 'Decision: ' and one of: return to GP, "
            "physiotherapy, MSK assessment and treatment, rheumatology, pain management, ME/CFS, "
            "re-direct to secondary care."))], case_id=row["id"], reply=Reply("imsk_triage_result", {"lines": []}))
    if row["decision"]:
        return Decision("quarantined", "imsk_triage", [error(ref, "a triage decision is already recorded; a change "
                                                                  "needs the contract team")],
                        case_id=row["id"], reply=Reply("imsk_triage_result", {"lines": [], "held": True}))
    accepted_into = decision not in ("return_to_gp", "secondary_care")
    received_on = london(datetime.fromisoformat(row["received_at"])).date()
    triage_ok = today <= date.fromisoformat(row["triage_due"]) if row["triage_due"] else None
    appointment_ok = None
    problems = []
    if accepted_into:
        if appt is None:
            problems.append(error("first appointment", "give the first appointment date (DD/MM/YYYY)."))
        elif row["urgency"] == "routine" and not row["followup_of"] and \
                not casework.loads(row["patient"]).get("_self_referral_back"):
            appointment_ok = appt <= received_on + timedelta(weeks=s.routine_weeks)
    urgent = row["urgency"] == "urgent" or row["red_flags"] == 1
    redirect_ok = None
    if decision == "secondary_care" and urgent:
        redirected = _dated(text, r"re-?direct\w*|referred|2 ?ww|two week wait") or today
        redirect_ok = redirected == today
    lines.append(f"{ref}: {imskparse.DECISION_NAMES[decision]}" + (f", first appointment {dates.uk(appt)}" if appt
                                                                    else "") + ".")
    if triage_ok is False:
        lines.append(f"Triaged after the deadline ({dates.uk(row['triage_due'])}, {s.triage_working_days} working "
                     "days after receipt).")
    if appointment_ok is False:
        lines.append(f"The first appointment is more than {s.routine_weeks} weeks after the referral was received "
                     f"({dates.uk(received_on)}).")
    if redirect_ok is False:
        lines.append("An urgent re-direction must be made the same day it is identified.")
    if gp:
        notices.append(Notice(gp, "imsk_outcome_to_gp", {
            "decision": imskparse.DECISION_NAMES[decision], "appointment": dates.uk(appt),
            "patient": f"NHS number ending {row['nhs_number'][-4:]}" if row["nhs_number"] else "",
            "note": note if decision in ("return_to_gp", "secondary_care") else "",
            "followup": bool(row["followup_of"] or casework.loads(row["patient"]).get("_self_referral_back"))},
            case_id=row["id"]))
    flags = []
    if triage_ok is False:
        flags.append(f"Triaged late: the decision came on {dates.uk(today)}, after the due date "
                     f"{dates.uk(row['triage_due'])} ({s.triage_working_days} working days after the referral was "
                     f"received on {dates.uk(received_on)}).")
    if appointment_ok is False:
        flags.append(f"First appointment {dates.uk(appt)} is beyond the {s.routine_weeks}-week standard: routine "
                     f"patients must be seen within {s.routine_weeks} weeks of receipt ({dates.uk(received_on)}), "
                     f"that is by {dates.uk(received_on + timedelta(weeks=s.routine_weeks))}.")
    if redirect_ok is False:
        flags.append("An urgent re-direction to secondary care was not made the same day it was identified.")
    if flags and s.service_lead:
        notices.append(Notice(s.service_lead, "imsk_to_lead", {
            "problems": flags, "decision": imskparse.DECISION_NAMES[decision]}, case_id=row["id"]))

    def apply(wconn, cid):
        wconn.execute("UPDATE imsk_referrals SET state='triaged', triaged_at=?, decision=?, first_appointment=?, "
                      "triage_ok=?, appointment_ok=?, redirect_ok=? WHERE id=? AND decision IS NULL",
                      (now.isoformat(), decision, appt.isoformat() if appt else None,
                       None if triage_ok is None else int(triage_ok),
                       None if appointment_ok is None else int(appointment_ok),
                       None if redirect_ok is None else int(redirect_ok), row["id"]))
        audit(wconn, "imsk_referral", row["id"], "triaged", "pipeline",
              {"decision": decision, "triage_ok": triage_ok, "appointment_ok": appointment_ok})
    return Decision("partially_accepted" if problems else "accepted", "imsk_triage", problems, apply=apply,
                    notices=notices, case_id=row["id"], reply=Reply("imsk_triage_result", {"lines": lines}))


def _transfer_to(text: str) -> str | None:
    """The discipline a patient is transferred to ('Transferred within the service to rheumatology')."""
    m = re.search(r"\btransferr?(?:ed|ing)?\b[^.\n]{0,60}?\bto\s+(?:the\s+)?([^.\n]{0,60})", text, re.I)
    if m:
        decision, _, _ = imskparse.read_decision("Decision: " + m.group(1))
        if decision:
            return decision
    decision, _, _ = imskparse.read_decision(text)
    return decision


def _dated(text: str, cue: str) -> date | None:
    """The first date written just after one of the cue words."""
    for m in re.finditer(r"(?:" + cue + r")[^\n]{0,40}", text, re.I):
        d = dates.parse(m.group(0))
        if d:
            return d
    return None


def _self_referral(ctx: Context, text: str, today: date) -> Decision:
    """The service records a patient's self-referral: within 2 months of discharge for the same
    condition it is a follow-up, not a first appointment; the GP is told either way."""
    conn, s = ctx.conn, ctx.settings.imsk
    numbers = [n for n in ("".join(m.groups()) for m in nhs.SEPARATED.finditer(text)) if nhs.is_valid(n)]
    if not numbers:
        return Decision("rejected", "imsk_self_referral", [error("NHS number", "give the patient's NHS number.")],
                        reply=Reply("imsk_triage_result", {"lines": []}))
    number = numbers[0]
    last = conn.execute("SELECT * FROM imsk_referrals WHERE nhs_number=? ORDER BY id DESC LIMIT 1",
                        (number,)).fetchone()
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
        wconn.execute("INSERT INTO imsk_referrals (id, kind, message, received_at, referrer_code, registered_code, "
                      "nhs_number, specialty, state, triage_due, followup_of) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                      (cid, "self", ctx.message_row, ctx.received_at.isoformat(), None, registered, number,
                       last["specialty"] if last else None, "awaiting_triage",
                       workdays.add_working_days(ctx.received_at, s.triage_working_days,
                                                 tuple(ctx.settings.calendar.closures)).isoformat(),
                       last["id"] if within else None))
    return Decision("accepted", "imsk_self_referral", case_kind="imsk_referral", apply=apply, notices=notices,
                    keys={f"nhs:{number}"}, reply=Reply("imsk_triage_result", {"lines": lines}))
