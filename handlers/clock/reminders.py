"""Reminders the scheduler sends: claims due, money about to be lost, referral
outcomes to chase, denosumab recalls.

Each reminder item has a key (kind + what + period). An email is committed in one
transaction with the keys of everything it reminds about (UNIQUE), so a reminder
is never sent twice: not after a restart, not when runs overlap, not on catch-up.
"""
from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from handlers.returns import activity
from handlers import casework
from handlers.contract import dates
from handlers.contract import nhs
from bot.mail import outbox
from handlers.contract import workdays
from handlers.contract.periods import LONDON, add_months, label, month_start
from bot.mail.compose import build, render
from handlers.contract.references import reference
from store.db import audit, reserve_case_ids, utcnow

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


def _practices(conn):
    return conn.execute("SELECT ods_code, name, services FROM orgs WHERE kind='practice' ORDER BY ods_code").fetchall()


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
    for p in _practices(conn):
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
            if not conn.execute("SELECT 1 FROM claims WHERE org_code=? AND service=? AND month=? AND state='accepted'",
                                (p["ods_code"], code, key)).fetchone():
                missing.append(svc.name + (" (quarter)" if svc.period == "quarterly" else ""))
        if missing:
            out[p["ods_code"]] = missing
    return out


def due(conn, settings, now: datetime) -> list[Email]:
    """Every reminder email that is due at NOW and not sent before."""
    s = settings.reminders
    today = now.astimezone(LONDON).date()
    out: list[Email] = []
    sent = {(r[0], r[1]) for r in conn.execute("SELECT kind, key FROM reminders")}

    def fresh(kind, key):
        return (kind, key) not in sent

    if s.claims_due:
        occasion = claims_occasion(settings, now)
        if occasion:
            month = add_months(month_start(today), -1)
            for code, services in not_claimed(conn, settings, month).items():
                key = f"{code}:{month:%Y-%m}:{occasion.day}"
                to = casework.address_of(conn, code)
                if to and fresh("claims_due", key):
                    out.append(Email("claims_due", code, to, "reminder_claims_due",
                                     {"month": label(month), "services": services,
                                      "deadline": dates.uk(today.replace(day=10))}, [key]))
    if s.money_at_risk:
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
        for code, items in sorted(by_org.items()):
            to = casework.address_of(conn, code)
            if to:
                out.append(Email("money_at_risk", code, to, "reminder_money_at_risk", {"items": items},
                                 [i["key"] for i in items]))
    if s.outcome_chase:
        for r in conn.execute("SELECT id, receiving_code, forwarded_at, joint, nhs_number FROM referrals "
                              "WHERE state='forwarded' AND forwarded_at IS NOT NULL ORDER BY id"):
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
    if s.recall:
        by_org = {}
        soon = (today + timedelta(days=s.recall_days_before)).isoformat()
        late = (today - timedelta(days=s.recall_days_overdue)).isoformat()
        for r in conn.execute("SELECT id, practice_code, nhs_number, patient, next_due, case_id FROM register "
                              "WHERE status='active' AND next_due IS NOT NULL AND (next_due<=?) ORDER BY next_due",
                              (soon,)):
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
        for code, items in sorted(by_org.items()):
            to = casework.address_of(conn, code)
            if to:
                out.append(Email("recall", code, to, "reminder_recall", {
                    "due": [i for i in items if i["stage"] == "due"],
                    "overdue": [i for i in items if i["stage"] == "overdue"],
                    "days_before": s.recall_days_before, "days_overdue": s.recall_days_overdue},
                    [i["key"] for i in items]))
    out += _imsk_triage(conn, settings, today, fresh)
    return out


def _imsk_triage(conn, settings, today: date, fresh) -> list[Email]:
    """IMSK referrals whose triage is due today (to the triage team) or overdue (to the service lead)."""
    s = settings.imsk
    out = []
    for kind, to, rows in (
            ("imsk_triage_due", s.triage_team, conn.execute(
                "SELECT id, triage_due, urgency, red_flags FROM imsk_referrals WHERE state='awaiting_triage' "
                "AND triage_due=? ORDER BY id", (today.isoformat(),)).fetchall()),
            ("imsk_triage_overdue", s.service_lead, conn.execute(
                "SELECT id, triage_due, urgency, red_flags FROM imsk_referrals WHERE state='awaiting_triage' "
                "AND triage_due<? ORDER BY id", (today.isoformat(),)).fetchall())):
        items = [{"key": f"{r['id']}:{kind}", "reference": reference(r["id"]), "due": dates.uk(r["triage_due"]),
                  "urgent": r["urgency"] == "urgent" or r["red_flags"] == 1} for r in rows]
        items = [i for i in items if fresh(kind, i["key"])]
        if to and items:
            out.append(Email(kind, "", to, "reminder_imsk_triage", {"items": items, "overdue": kind.endswith("overdue")},
                             [i["key"] for i in items]))
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
        conn.execute("BEGIN IMMEDIATE")
        try:
            if not e.case_id:
                conn.execute("INSERT INTO cases (id, created_at, org_code, kind, state, first_message) "
                             "VALUES (?,?,?,?,?,NULL)", (case_id, utcnow(), e.org_code, f"reminder_{e.kind}", "sent"))
            info, refused = outbox.queue(conn, settings, e.to, f"[{ref}] {subject}", msgid, raw, case_id,
                                         actor=actor)
            for key in e.keys:
                conn.execute("INSERT INTO reminders (kind, key, org_code, case_id, msgid, state, why, sent_at) "
                             "VALUES (?,?,?,?,?,?,?,?)", (e.kind, key, e.org_code, case_id, msgid,
                                                          "refused" if refused else "sent", refused or None,
                                                          utcnow()))
            audit(conn, "reminder", case_id, "refused" if refused else "sent", actor,
                  {"kind": e.kind, "org": e.org_code, "items": len(e.keys), "why": refused or None})
            conn.execute("COMMIT")
        except sqlite3.IntegrityError:
            conn.execute("ROLLBACK")      # another run sent it first
            continue
        except BaseException:
            conn.execute("ROLLBACK")
            raise
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
