"""The reminders' reads (what is due) and their sent-once record (reminders, UNIQUE on kind + key)."""
from __future__ import annotations

import sqlite3

from store.db import utcnow


def practices(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute("SELECT ods_code, name, services FROM orgs WHERE kind='practice' ORDER BY ods_code"
                        ).fetchall()


def has_accepted_claim(conn: sqlite3.Connection, code: str, service: str, month: str) -> bool:
    return conn.execute("SELECT 1 FROM claims WHERE org_code=? AND service=? AND month=? AND state='accepted'",
                        (code, service, month)).fetchone() is not None


def sent_keys(conn: sqlite3.Connection) -> set[tuple[str, str]]:
    """(kind, key) of every reminder sent or refused before."""
    return {(r[0], r[1]) for r in conn.execute("SELECT kind, key FROM reminders")}


def forwarded_referrals(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Referrals passed on and still waiting for their outcome."""
    return conn.execute("SELECT id, receiving_code, forwarded_at, joint, nhs_number FROM referrals "
                        "WHERE state='forwarded' AND forwarded_at IS NOT NULL ORDER BY id").fetchall()


def recalls_due_by(conn: sqlite3.Connection, day: str) -> list[sqlite3.Row]:
    """Active register entries whose next dose is due on or before DAY (ISO), soonest first."""
    return conn.execute("SELECT id, practice_code, nhs_number, patient, next_due, case_id FROM register "
                        "WHERE status='active' AND next_due IS NOT NULL AND (next_due<=?) ORDER BY next_due",
                        (day,)).fetchall()


def imsk_triage_due_on(conn: sqlite3.Connection, day: str) -> list[sqlite3.Row]:
    return conn.execute("SELECT id, triage_due, urgency, red_flags FROM imsk_referrals "
                        "WHERE state='awaiting_triage' AND triage_due=? ORDER BY id", (day,)).fetchall()


def imsk_triage_due_before(conn: sqlite3.Connection, day: str) -> list[sqlite3.Row]:
    return conn.execute("SELECT id, triage_due, urgency, red_flags FROM imsk_referrals "
                        "WHERE state='awaiting_triage' AND triage_due<? ORDER BY id", (day,)).fetchall()


# -- writes: call inside the transaction that queues the email ---------------------------------
def add_case(conn: sqlite3.Connection, case_id: int, org_code: str, kind: str) -> None:
    """The case a new reminder email is filed under."""
    conn.execute("INSERT INTO cases (id, created_at, org_code, kind, state, first_message) "
                 "VALUES (?,?,?,?,?,NULL)", (case_id, utcnow(), org_code, kind, "sent"))


def record(conn: sqlite3.Connection, kind: str, key: str, org_code: str, case_id: int, msgid: str,
           refused: str | None) -> None:
    """One reminded item. Raises sqlite3.IntegrityError if (kind, key) was recorded already."""
    conn.execute("INSERT INTO reminders (kind, key, org_code, case_id, msgid, state, why, sent_at) "
                 "VALUES (?,?,?,?,?,?,?,?)", (kind, key, org_code, case_id, msgid,
                                              "refused" if refused else "sent", refused or None, utcnow()))
