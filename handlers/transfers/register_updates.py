"""A practice writes about a patient on its denosumab register: a dose given, the
patient left / died / stopped treatment, or an untoward event (forwarded to the
clinical governance lead; flagged when reported more than 72 hours after it).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time

from handlers.contract import dates
from handlers.contract import nhs
from handlers.contract.reading import clinicletter as cl
from handlers.contract.periods import LONDON, london
from handlers.contract.references import reference
from handlers.base import Context, Decision, Notice, Reply, error
from store import register
from store.db import audit, utcnow

name = "register_updates"
COUNTED = re.compile(r"\b(?:total\W+\d+|\d+\s+(?:\w+\s+)?(?:injections|doses))\b|\bnot (?:been )?claimed\b", re.I)
BIRTH = re.compile(r"\b(DOB|D\.O\.B|born|birth)\b\W*$", re.I)


def _rx(key: str) -> re.Pattern:
    """The lexicon's words for one kind of update (catalogue/lexicon/letters.toml, [updates])."""
    return cl.lexicon().rx("updates", key)


class _Words:
    """DENOSUMAB, EVENT, DIED, LEFT, STOPPED, DOSE: read from the lexicon when used."""

    def __getattr__(self, key):
        return _rx({"DENOSUMAB": "drug", "EVENT": "event", "DIED": "died", "LEFT": "left", "STOPPED": "stopped",
                    "DOSE": "dose"}[key])


W = _Words()


@dataclass
class Item:
    entry: object                      # register row
    what: str                          # dose, left, died, stopped, event
    on: date | None
    event_kind: str = ""
    notes: list[str] = field(default_factory=list)
    next_due: date | None = None
    hours: float | None = None      # from the end of the event's day to its report
    late: bool = False


def _entries(ctx: Context) -> tuple[list, list[dict]]:
    """Register rows the message is about: by NHS number, or the case it answers."""
    conn = ctx.conn
    text = ctx.parsed.new_text
    rows, problems = [], []
    numbers = list(dict.fromkeys("".join(m.groups()) for m in nhs.separated(text)))
    for n in numbers:
        if not nhs.is_valid(n):
            problems.append(error("NHS number", f"{nhs.display(n)} fails the NHS number check digit."))
            continue
        r = register.entry_for_patient(conn, n)
        if r is None:
            problems.append(error(f"NHS number {nhs.display(n)}", "is not on any practice's denosumab register, so "
                                  "nothing was recorded for this patient. If the patient is new to the service, ask "
                                  "the hospital to send the transfer letter."))
        else:
            rows.append(r)
    if not numbers and ctx.case_id is not None:
        r = register.entry_for_case(conn, ctx.case_id)
        if r:
            rows.append(r)
    return rows, problems


def match(ctx: Context) -> tuple[list, list] | None:
    """(register rows, problems) an update gives, else None."""
    if ctx.org is None or ctx.org.kind != "practice":
        return None
    text = ctx.parsed.subject + "\n" + ctx.parsed.new_text
    linked = ctx.case_id is not None and register.case_on_register(ctx.conn, ctx.case_id)
    if not (linked or W.DENOSUMAB.search(text)):
        return None
    if re.search(r"\bclaim", ctx.parsed.subject, re.I):
        return None
    if not (W.EVENT.search(text) or W.DIED.search(text) or W.LEFT.search(text) or W.STOPPED.search(text) or W.DOSE.search(text)):
        return None
    rows, problems = _entries(ctx)
    if not rows and COUNTED.search(text):
        return None     # a count of injections for patients on no register: a claim (principle 6), not an update
    return (rows, problems) if rows or problems else None


def _date_in(text: str, on: date | None = None, event: bool = False) -> date | None:
    """The date an update is about. Dates of birth (by label, or decades old in a table column)
    are not; 'today' / 'yesterday' count from the day the message was received; for an event the
    date after 'Date of event' / 'admitted on' / 'died on' comes first."""
    pivot = ((on or date.today()).year + 1) % 100
    found = [d for d in cl.dated(text, pivot, near=on)
             if d.role != "dob" and not BIRTH.search(text[max(0, d.pos - 30):d.pos])]
    real = [d for d in found if d.date]
    if on:
        recent = [d for d in real if (on - d.date).days <= 400]
        if real and not recent and not found[0].date is None:
            return None
        real = recent
    if event and real:
        labelled = cl.lexicon().rx("updates", "event_date")
        for d in real:
            m = None
            for m in labelled.finditer(text, max(0, d.pos - 40), d.pos):
                pass
            if m and m.group(0).lower() != "on" and re.fullmatch(r"[\s:\-–]*(?:\w+day\s+)?", text[m.end():d.pos]):
                return d.date
    if real:
        return real[0].date
    if found:
        return None if found[0].date is None else found[0].date
    if on:
        lex = cl.lexicon()
        if lex.rx("date_roles", "yesterday").search(text):
            return date.fromordinal(on.toordinal() - 1)
        if lex.rx("date_roles", "today").search(text):
            return on
    return None


def _lines_for(text: str, number: str) -> str:
    """The lines about one patient when several are listed; the whole text for one."""
    hits = [ln for ln in text.splitlines() if number in re.sub(r"[\s-]", "", ln)]
    return "\n".join(hits)


def handle(ctx: Context, found: tuple[list, list]) -> Decision:
    rows, errors = found
    text = ctx.parsed.new_text
    on = london(ctx.received_at).date()
    code = ctx.org.ods_code
    items: list[Item] = []
    several = len(rows) > 1
    for r in rows:
        part = _lines_for(text, r["nhs_number"]) if several else text
        label = f"NHS number ending {r['nhs_number'][-4:]}"
        if r["practice_code"] != code:
            errors.append(error(label, "is not on your practice's denosumab register, so lesbot cannot record "
                                       "this for you. If the patient has moved to you, ask the contract team."))
            continue
        when = _date_in(part, on, event=bool(W.EVENT.search(part) or W.DIED.search(part)))
        if W.EVENT.search(part) or (W.DIED.search(part) and not several):
            kind = "death" if W.DIED.search(part) else "emergency admission" if re.search(
                r"admi(?:ssion|tted)", part, re.I) else "significant adverse event"
            items.append(Item(r, "event", when, kind))
            if kind == "death":
                items.append(Item(r, "died", when or on))
            continue
        for what, rx in (("died", W.DIED), ("left", W.LEFT), ("stopped", W.STOPPED)):
            if rx.search(part):
                if r["status"] != "active":
                    errors.append(error(label, f"recalls already stopped ({r['status']}); nothing changed."))
                else:
                    items.append(Item(r, what, when or on))
                break
        else:
            if when is None:
                errors.append(error(label, "the date the injection was given is missing or not a real date "
                                           "(DD/MM/YYYY)."))
            elif when > on:
                errors.append(error(label, f"{dates.uk(when)} is in the future. Report a dose once it is given."))
            elif r["status"] != "active":
                errors.append(error(label, f"recalls stopped ({r['status']}); a dose after that needs the "
                                           "contract team."))
            elif r["last_dose_on"] and when.isoformat() == r["last_dose_on"]:
                errors.append(error(label, f"a dose on {dates.uk(when)} is already recorded; nothing changed."))
            elif r["last_dose_on"] and when < date.fromisoformat(r["last_dose_on"]):
                errors.append(error(label, f"{dates.uk(when)} is before the last recorded dose "
                                           f"({dates.uk(r['last_dose_on'])}). Check the date."))
            else:
                item = Item(r, "dose", when)
                if r["last_dose_on"] and when < dates.months_after(date.fromisoformat(r["last_dose_on"]), 5):
                    item.notes.append("this is less than 5 months after the last dose")
                items.append(item)
    return _decide(ctx, items, errors, on)


def _decide(ctx: Context, items: list[Item], errors: list[dict], on: date) -> Decision:
    s = ctx.settings
    received = ctx.received_at
    lines, notices = [], []
    for it in items:
        label = f"NHS number ending {it.entry['nhs_number'][-4:]}"
        if it.what == "dose":
            it.next_due = dates.months_after(it.on, 6)
            lines.append(f"{label}: injection on {dates.uk(it.on)} recorded; next due {dates.uk(it.next_due)}."
                         + "".join(f" Note: {n}." for n in it.notes))
        elif it.what == "event":
            end_of_day = datetime.combine(it.on, time(23, 59, 59), LONDON) if it.on else None
            it.hours = (received - end_of_day).total_seconds() / 3600 if end_of_day else None
            it.late = it.hours is not None and it.hours > s.referrals.event_report_hours
            lines.append(f"{label}: {it.event_kind} recorded" + (
                f" ({dates.uk(it.on)})" if it.on else " (no date given)") +
                (f"; reported more than {s.referrals.event_report_hours} hours after it happened, which the "
                 "specification does not allow" if it.late else "") +
                ("; passed to the clinical governance lead." if s.clinical_governance else
                 "; the contract team will pass it to the clinical governance lead."))
            if s.clinical_governance:
                notices.append(Notice(s.clinical_governance, "event_to_governance", {
                    "practice": ctx.org.name, "kind": it.event_kind, "event_on": dates.uk(it.on) or "not given",
                    "late": it.late, "hours": round(it.hours) if it.hours is not None else None,
                    "register_ref": reference(it.entry["case_id"]) if it.entry["case_id"] else "",
                    "nhs_number": nhs.display(it.entry["nhs_number"]), "report": ctx.parsed.new_text}))
        else:
            lines.append(f"{label}: recorded as {({'died': 'died', 'left': 'left the practice', 'stopped': 'stopped treatment'})[it.what]}"
                         f" ({dates.uk(it.on)}); recalls stopped, the history is kept.")

    def apply(wconn, case_id):
        now = utcnow()
        for it in items:
            rid = it.entry["id"]
            if it.what == "dose":
                register.record_dose(wconn, rid, it.on.isoformat(), it.next_due.isoformat(), ctx.message_row, now)
                audit(wconn, "register", rid, "dose", "pipeline", {"message": ctx.message_row})
            elif it.what == "event":
                register.record_event(
                    wconn, message=ctx.message_row, case_id=case_id, org_code=ctx.org.ods_code, register_id=rid,
                    kind=it.event_kind, event_on=it.on.isoformat() if it.on else None,
                    reported_at=received.isoformat(), late=it.late, hours=it.hours,
                    forwarded_to=s.clinical_governance or None)
                audit(wconn, "register", rid, "event", "pipeline", {"kind": it.event_kind, "late": it.late})
            else:
                register.stop_recalls(wconn, rid, it.what, it.on.isoformat(), now)
                audit(wconn, "register", rid, it.what, "pipeline", {"message": ctx.message_row})

    outcome = "rejected" if not items else "partially_accepted" if errors else "accepted"
    kind = "untoward_event" if any(i.what == "event" for i in items) else \
        "denosumab_dose" if any(i.what == "dose" for i in items) else "register_update"
    return Decision(outcome, kind, errors, case_kind="register_update", apply=apply if items else None,
                    notices=notices, keys={f"nhs:{i.entry['nhs_number']}" for i in items},
                    reply=Reply("register_update", {"lines": lines}))

