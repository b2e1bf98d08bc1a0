"""The queries behind the operators' commands (`lesbot messages|quarantine|outbox|bounces|claims|
referrals|events|reminders`): lists, one record in full, and the few writes a person makes by hand."""
from __future__ import annotations

import sqlite3


def distinct_values(conn, table: str, column: str) -> set:
    """Every value COLUMN holds in TABLE (names from code, never from a user)."""
    return {r[0] for r in conn.execute(f"SELECT DISTINCT {column} FROM {table}") if r[0]}


# -- messages and quarantine -------------------------------------------------
def latest_messages(conn, state: str | None, limit: int) -> list[sqlite3.Row]:
    """The newest messages, of one state or all."""
    where, args = ("WHERE state=?", (state,)) if state else ("", ())
    return conn.execute(
        "SELECT id, received_at, source, state, kind, from_addr, org_code, case_id, duplicate_of, "
        f"no_reply_reason, errors, error, size FROM messages {where} ORDER BY id DESC LIMIT ?",
        (*args, limit)).fetchall()


def message(conn, msg_id: int) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM messages WHERE id=?", (msg_id,)).fetchone()


def no_reply_reason(conn, msg_id: int) -> str | None:
    row = conn.execute("SELECT no_reply_reason FROM messages WHERE id=?", (msg_id,)).fetchone()
    return row[0] if row else None


def message_history(conn, msg_id: int) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT at, action, actor, detail FROM audit WHERE entity='message' AND entity_id=? ORDER BY id",
        (str(msg_id),)).fetchall()


def replies_to(conn, msg_id: int) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT id, to_addr, subject, state, attempts, last_error FROM outbox WHERE message=?", (msg_id,)).fetchall()


def state_and_hints(conn, msg_id: int) -> sqlite3.Row | None:
    return conn.execute("SELECT state, hints FROM messages WHERE id=?", (msg_id,)).fetchone()


def requeue_message(conn, msg_id: int, released: bool, hints_json: str | None) -> None:
    """Back to 'received' for the pipeline to take again. Call inside a transaction."""
    conn.execute("UPDATE messages SET state='received', error=NULL, released=?, hints=? WHERE id=?",
                 (1 if released else 0, hints_json, msg_id))


def quarantined_sender(conn, msg_id: int) -> str | None:
    """The sender of a message that is quarantined (None: not quarantined, or no sender)."""
    row = conn.execute("SELECT from_addr FROM messages WHERE id=? AND state='quarantined'", (msg_id,)).fetchone()
    return row["from_addr"] if row else None


def drop_quarantined(conn, msg_id: int) -> int:
    """Mark a quarantined message dropped; how many were (0 or 1). Call inside a transaction."""
    return conn.execute("UPDATE messages SET state='dropped' WHERE id=? AND state='quarantined'",
                        (msg_id,)).rowcount


# -- outbox and bounces ------------------------------------------------------
def latest_mail(conn, state: str | None, limit: int) -> list[dict]:
    where, args = ("WHERE state=?", (state,)) if state else ("", ())
    return [dict(r) for r in conn.execute(
        "SELECT id, created_at, message, to_addr, subject, state, attempts, next_attempt_at, "
        f"last_error FROM outbox {where} ORDER BY id DESC LIMIT ?", (*args, limit))]


def queue_again(conn, outbox_id: int, now: str) -> int:
    """Queue an unknown or failed mail again; how many were (0 or 1). Call inside a transaction."""
    return conn.execute("UPDATE outbox SET state='queued', next_attempt_at=? WHERE id=? AND state IN "
                        "('unknown','failed')", (now, outbox_id)).rowcount


def mail_state(conn, outbox_id: int) -> sqlite3.Row | None:
    """(state) of one mail in the outbox; None: no such mail."""
    return conn.execute("SELECT state FROM outbox WHERE id=?", (outbox_id,)).fetchone()


def suppressed(conn) -> list[sqlite3.Row]:
    """The addresses that bounced hard, oldest first."""
    return conn.execute("SELECT * FROM suppressed ORDER BY since").fetchall()


def unsuppress(conn, email: str) -> int:
    """How many addresses were cleared (0 or 1). Call inside a transaction."""
    return conn.execute("DELETE FROM suppressed WHERE email=?", (email,)).rowcount


# -- claims, referrals, events, reminders --------------------------------------
def claim_lines(conn, practice: str | None, month: str | None, run: str | None,
                show_all: bool) -> list[sqlite3.Row]:
    """Claim lines, newest first: accepted ones only unless SHOW_ALL."""
    where, args = [], []
    for col, val in (("org_code", practice), ("month", month), ("run", run)):
        if val:
            where.append(f"{col}=?")
            args.append(val)
    if not show_all:
        where.append("state='accepted'")
    sql = ("SELECT id, created_at, case_id, org_code, service, month, count, tariff_pence, amount_pence, run, state, "
           "reason, source FROM claims" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC")
    return conn.execute(sql, args).fetchall()


def referral_rows(conn, practice: str | None, state: str | None, quarter: str | None) -> list[sqlite3.Row]:
    """Referrals to or from PRACTICE, in STATE, seen in QUARTER (each if given), newest first."""
    where, args = [], []
    if practice:
        where.append("(referrer_code=? OR receiving_code=?)")
        args += [practice] * 2
    if state:
        where.append("state=?")
        args.append(state)
    if quarter:
        where.append("quarter=?")
        args.append(quarter)
    return conn.execute("SELECT * FROM referrals" + (" WHERE " + " AND ".join(where) if where else "") +
                        " ORDER BY id DESC", args).fetchall()


def referral(conn, referral_id: int) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM referrals WHERE id=?", (referral_id,)).fetchone()


def case_messages(conn, case_id: int, first: int, outcome: int) -> list[sqlite3.Row]:
    """The messages of a case, with the two that opened and closed it by id (0: none)."""
    return conn.execute(
        "SELECT id, received_at, from_addr, kind, state FROM messages WHERE case_id=? OR id IN (?, ?) ORDER BY id",
        (case_id, first, outcome)).fetchall()


def case_mail(conn, case_id: int) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT id, created_at, to_addr, subject, state FROM outbox WHERE case_id=? ORDER BY id", (case_id,)).fetchall()


def untoward_events(conn) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM events ORDER BY id DESC").fetchall()


def reminder_log(conn, kind: str | None, limit: int) -> list[sqlite3.Row]:
    return conn.execute("SELECT kind, key, org_code, case_id, state, why, sent_at FROM reminders" +
                        (" WHERE kind=?" if kind else "") + " ORDER BY id DESC LIMIT ?",
                        ((kind, limit) if kind else (limit,))).fetchall()


def recent_job_runs(conn, limit: int) -> list[sqlite3.Row]:
    return conn.execute("SELECT job, due_at, started_at, finished_at, error FROM job_runs ORDER BY id DESC "
                        "LIMIT ?", (limit,)).fetchall()
