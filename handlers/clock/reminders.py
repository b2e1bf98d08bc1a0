"""Reminders the scheduler sends: claims due, money about to be lost, referral
outcomes to chase, denosumab recalls, IMSK triage due or overdue.

Each reminder item has a key (kind + what + period). An email is committed in one
transaction with the keys of everything it reminds about (UNIQUE), so a reminder
is never sent twice: not after a restart, not when runs overlap, not on catch-up.

KINDS names each kind of reminder with the function that finds what is due; `due`
asks each in turn (those switched on in settings.reminders).
"""
from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Callable

from handlers.returns import activity
from handlers import casework
from handlers.contract import dates
from handlers.contract import nhs
from bot.mail import outbox
from handlers.contract import workdays
from handlers.contract.periods import LONDON, add_months, label, month_start
from bot.mail.compose import build, render
from handlers.contract.references import reference
from store import reminders as store
from store.db import audit, reserve_case_ids, transaction

log = logging.getLogger("lesbot.reminders")


@dataclass
class Email:
    kind: str
    org_code: str
    to: str
    template: str
    context: dict
    keys: list[str]
    case_id: int | None = None            # an existing case (the referral chased); else a new one


def at_time(d: date, clock: str) -> datetime:
    h, m, *s = (int(x) for x in clock.split(":"))
    return datetime.combine(d, time(h, m, s[0] if s else 0), LONDON)


def claims_occasion(settings, now: datetime) -> date | None:
    """The claims-due occasion to act on now: the latest reminder day this month (moved to a
    working day, never past the 10th) whose time has come, if within the grace period."""
    s, closures = settings.reminders, tuple(settings.calendar.closures)
    today = now.astimezone(LONDON).date()
    best = None
    for day in s.claims_due_days:
        d = workdays.next_working_day(today.replace(day=day), closures)
        if d.day >= 10:
            d = workdays.previous_working_day(today.replace(day=day), closures)
        when = at_time(d, s.time)
        if when <= now and now - when <= timedelta(hours=settings.scheduler.grace_hours) and d.day < 10:
            best = d
    return best


def not_claimed(conn, settings, month: date) -> dict[str, list[str]]:
    """Practice -> services (names) it has not claimed for MONTH: monthly services, and
    quarterly ones when MONTH ends a quarter."""
    cat = settings.catalogue
    out = {}
    for p in store.practices(conn):
        missing = []
        for code in filter(None, (p["services"] or "").split(";")):
            svc = cat.get(code)
            if svc is None:
                continue
            if svc.period == "quarterly":
                if month.month % 3:
                    continue
                key = f"{add_months(month, -2):%Y-%m}"
            else:
                key = f"{month:%Y-%m}"
            if not store.has_accepted_claim(conn, p["ods_code"], code, key):
                missing.append(svc.name + (" (quarter)" if svc.period == "quarterly" else ""))
        if missing:
            out[p["ods_code"]] = missing
    return out


# -- each kind of reminder: (conn, settings, now, fresh) -> emails; fresh(kind, key) is False once sent
def claims_due(conn, settings, now: datetime, fresh) -> list[Email]:
    """Practices that have not claimed last month yet, on the claims-due days."""
    occasion = claims_occasion(settings, now)
    if not occasion:
        return []
    today = now.astimezone(LONDON).date()
    month = add_months(month_start(today), -1)
    out = []
    for code, services in not_claimed(conn, settings, month).items():
        key = f"{code}:{month:%Y-%m}:{occasion.day}"
        to = casework.address_of(conn, code)
        if to and fresh("claims_due", key):
            out.append(Email("claims_due", code, to, "reminder_claims_due",
                             {"month": label(month), "services": services,
                              "deadline": dates.uk(today.replace(day=10))}, [key]))
    return out


def money_at_risk(conn, settings, now: datetime, fresh) -> list[Email]:
    """Recorded activity not claimed, within money_at_risk_days of the last day it can be."""
    s, today = settings.reminders, now.astimezone(LONDON).date()
    by_org: dict[str, list[dict]] = {}
    for f in activity.reconcile(conn, today):
        if f["kind"] != "unclaimed":
            continue
        left = (date.fromisoformat(f["claim_by"]) - today).days
        key = f"{f['ods_code']}:{f['service']}:{f['period']}"
        if 0 <= left <= s.money_at_risk_days and fresh("money_at_risk", key):
            svc = settings.catalogue.get(f["service"])
            by_org.setdefault(f["ods_code"], []).append({
                "key": key, "service": svc.name if svc else f["service"],
                "month": label(date.fromisoformat(f["period"] + "-01")), "missing": f["missing"],
                "claim_by": dates.uk(f["claim_by"])})
    out = []
    for code, items in sorted(by_org.items()):
        to = casework.address_of(conn, code)
        if to:
            out.append(Email("money_at_risk", code, to, "reminder_money_at_risk", {"items": items},
                             [i["key"] for i in items]))
    return out


def outcome_chase(conn, settings, now: datetime, fresh) -> list[Email]:
    """Referrals passed on with no outcome yet, at each of outcome_chase_days."""
    s, today = settings.reminders, now.astimezone(LONDON).date()
    out = []
    for r in store.forwarded_referrals(conn):
        passed = datetime.fromisoformat(r["forwarded_at"]).astimezone(LONDON).date()
        age = (today - passed).days
        stages = [n for n, d in enumerate(s.outcome_chase_days, start=1) if age >= d]
        if not stages:
            continue
        stage = stages[-1]
        key = f"{r['id']}:{stage}"
        to = casework.address_of(conn, r["receiving_code"])
        if to and fresh("outcome_chase", key):
            out.append(Email("outcome_chase", r["receiving_code"], to, "reminder_outcome_chase", {
                "stage": stage, "last": stage == len(s.outcome_chase_days), "days": age,
                "passed_on": dates.uk(passed), "joint": r["joint"] or "",
                "patient": f"NHS number ending {r['nhs_number'][-4:]}" if r["nhs_number"] else ""},
                [key], case_id=r["id"]))
    return out


def recall(conn, settings, now: datetime, fresh) -> list[Email]:
    """Denosumab patients due soon, or overdue by recall_days_overdue, per practice."""
    s, today = settings.reminders, now.astimezone(LONDON).date()
    by_org: dict[str, list[dict]] = {}
    soon = (today + timedelta(days=s.recall_days_before)).isoformat()
    late = (today - timedelta(days=s.recall_days_overdue)).isoformat()
    for r in store.recalls_due_by(conn, soon):
        if r["next_due"] <= late:
            stage = "overdue"
        elif r["next_due"] >= today.isoformat():
            stage = "due"
        else:
            continue          # overdue, but not yet by the set number of days
        key = f"{r['id']}:{r['next_due']}:{stage}"
        if fresh("recall", key):
            patient = casework.loads(r["patient"])
            by_org.setdefault(r["practice_code"], []).append({
                "key": key, "stage": stage, "due": dates.uk(r["next_due"]),
                "nhs_number": nhs.display(r["nhs_number"]), "name": patient.get("name", ""),
                "reference": reference(r["case_id"]) if r["case_id"] else ""})
    out = []
    for code, items in sorted(by_org.items()):
        to = casework.address_of(conn, code)
        if to:
            out.append(Email("recall", code, to, "reminder_recall", {
                "due": [i for i in items if i["stage"] == "due"],
                "overdue": [i for i in items if i["stage"] == "overdue"],
                "days_before": s.recall_days_before, "days_overdue": s.recall_days_overdue},
                [i["key"] for i in items]))
    return out


def imsk_triage_due(conn, settings, now: datetime, fresh) -> list[Email]:
    """IMSK referrals whose triage is due today, to the triage team."""
    today = now.astimezone(LONDON).date().isoformat()
    return _imsk_triage("imsk_triage_due", settings.imsk.triage_team, store.imsk_triage_due_on(conn, today), fresh)


def imsk_triage_overdue(conn, settings, now: datetime, fresh) -> list[Email]:
    """IMSK referrals whose triage is overdue, to the service lead."""
    today = now.astimezone(LONDON).date().isoformat()
    return _imsk_triage("imsk_triage_overdue", settings.imsk.service_lead,
                        store.imsk_triage_due_before(conn, today), fresh)


def _imsk_triage(kind: str, to: str, rows, fresh) -> list[Email]:
    items = [{"key": f"{r['id']}:{kind}", "reference": reference(r["id"]), "due": dates.uk(r["triage_due"]),
              "urgent": r["urgency"] == "urgent" or r["red_flags"] == 1} for r in rows]
    items = [i for i in items if fresh(kind, i["key"])]
    if to and items:
        return [Email(kind, "", to, "reminder_imsk_triage", {"items": items, "overdue": kind.endswith("overdue")},
                      [i["key"] for i in items])]
    return []


@dataclass(frozen=True)
class Reminder:
    kind: str
    about: str
    setting: str | None            # the settings.reminders switch; None: always on
    find: Callable[..., list[Email]]


KINDS = [
    Reminder("claims_due", "practices that have not claimed last month, on the claims-due days",
             "claims_due", claims_due),
    Reminder("money_at_risk", "recorded activity about to pass its last day for claiming", "money_at_risk",
             money_at_risk),
    Reminder("outcome_chase", "referral outcomes not yet recorded, chased in stages", "outcome_chase",
             outcome_chase),
    Reminder("recall", "denosumab patients due soon or overdue", "recall", recall),
    Reminder("imsk_triage_due", "IMSK triage due today, to the triage team", None, imsk_triage_due),
    Reminder("imsk_triage_overdue", "IMSK triage overdue, to the service lead", None, imsk_triage_overdue),
]


def due(conn, settings, now: datetime) -> list[Email]:
    """Every reminder email that is due at NOW and not sent before."""
    sent = store.sent_keys(conn)

    def fresh(kind, key):
        return (kind, key) not in sent

    out: list[Email] = []
    for r in KINDS:
        if r.setting is None or getattr(settings.reminders, r.setting):
            out += r.find(conn, settings, now, fresh)
    return out


def send(settings, conn, emails: list[Email], actor: str = "scheduler") -> list[dict]:
    """Queue each email in its own transaction with its keys; one already sent is skipped."""
    results = []
    for e in emails:
        case_id = e.case_id or reserve_case_ids(settings.db_path, 1)[0]
        ref = reference(case_id)
        org = casework.org(conn, e.org_code) if e.org_code else None
        inbox = settings.inbox_for("imsk" if e.kind.startswith("imsk_") else "les")
        subject, text, html = render(e.template, reference=ref, org_name=org.name if org else "colleague",
                                     inbox=inbox, **e.context)
        msgid, raw = build(settings, to=e.to, subject=subject, text=text, html=html, ref=ref,
                           auto_submitted="auto-generated", from_address=inbox)
        try:
            with transaction(conn):
                if not e.case_id:
                    store.add_case(conn, case_id, e.org_code, f"reminder_{e.kind}")
                info, refused = outbox.queue(conn, settings, e.to, f"[{ref}] {subject}", msgid, raw, case_id,
                                             actor=actor)
                for key in e.keys:
                    store.record(conn, e.kind, key, e.org_code, case_id, msgid, refused)
                audit(conn, "reminder", case_id, "refused" if refused else "sent", actor,
                      {"kind": e.kind, "org": e.org_code, "items": len(e.keys), "why": refused or None})
        except sqlite3.IntegrityError:
            continue      # another run sent it first (rolled back)
        log.info("reminder %s to %s (%s): %s", e.kind, e.org_code, ref, refused or "queued")
        results.append({"kind": e.kind, "org": e.org_code, "to": e.to, "reference": ref,
                        "subject": f"[{ref}] {subject}", "items": len(e.keys), "refused": refused or None})
    return results


def run(settings, conn, now: datetime, dry_run: bool = False) -> list[dict]:
    emails = due(conn, settings, now)
    if dry_run:
        return [{"kind": e.kind, "org": e.org_code, "to": e.to, "items": len(e.keys), "keys": e.keys}
                for e in emails]
    return send(settings, conn, emails)
