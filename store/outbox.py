"""The outbox table (replies, notices, reminders, digests), its bounces and the suppressed addresses."""
from __future__ import annotations

import sqlite3


# -- queueing ---------------------------------------------------------------------
def is_directory_address(conn, email: str) -> bool:
    return conn.execute("SELECT 1 FROM org_emails WHERE email=?", (email,)).fetchone() is not None


def count_since(conn, to_addr: str, since: str) -> int:
    """Messages queued to this address since `since` (an ISO time in UTC)."""
    return conn.execute("SELECT count(*) FROM outbox WHERE to_addr=? AND created_at>=?",
                        (to_addr, since)).fetchone()[0]


def suppression(conn, email: str) -> sqlite3.Row | None:
    """(reason,) when mail to this address is held (a hard bounce), else None."""
    return conn.execute("SELECT reason FROM suppressed WHERE email=?", (email,)).fetchone()


def add(conn, *, created_at: str, message: int | None, case_id: int | None, to_addr: str, envelope_from: str,
        subject: str, msgid: str, raw: bytes, state: str, next_attempt_at: str, last_error: str | None) -> int:
    """Queue (or hold) one rendered message; its outbox id."""
    return conn.execute(
        "INSERT INTO outbox (created_at, message, case_id, to_addr, envelope_from, subject, msgid, raw, "
        "state, next_attempt_at, last_error) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (created_at, message, case_id, to_addr, envelope_from, subject, msgid, raw, state, next_attempt_at,
         last_error)).lastrowid


def sent_as(conn, msgid: str) -> sqlite3.Row | None:
    """(id, case_id, to_addr, created_at) of what lesbot sent under this Message-ID, if it did."""
    return conn.execute("SELECT id, case_id, to_addr, created_at FROM outbox WHERE msgid=?", (msgid,)).fetchone()


# -- bounces ------------------------------------------------------------------------
def add_bounce(conn, *, at: str, message: int, outbox_id: int, case_id: int | None, recipient: str,
               status: str, hard: bool) -> None:
    conn.execute("INSERT INTO bounces (at, message, outbox, case_id, recipient, status, hard) "
                 "VALUES (?,?,?,?,?,?,?)", (at, message, outbox_id, case_id, recipient, status, int(hard)))


def note_error(conn, outbox_id: int, error: str) -> None:
    conn.execute("UPDATE outbox SET last_error=? WHERE id=?", (error, outbox_id))


def suppress(conn, email: str, since: str, reason: str, bounce_message: int) -> None:
    """No more mail to this address until a person clears it (kept as first suppressed)."""
    conn.execute("INSERT OR IGNORE INTO suppressed (email, since, reason, bounce_message) "
                 "VALUES (?,?,?,?)", (email, since, reason, bounce_message))


# -- delivery (the mailer) -----------------------------------------------------------
def due(conn, now: str, limit: int) -> list[sqlite3.Row]:
    """Queued rows whose time has come, oldest first."""
    return conn.execute(
        "SELECT id, to_addr, envelope_from, msgid, raw, attempts FROM outbox "
        "WHERE state='queued' AND next_attempt_at<=? ORDER BY id LIMIT ?", (now, limit)).fetchall()


def claim(conn, outbox_id: int, boot: str | None = None) -> bool:
    """Mark a queued row 'sending' (not yet handed over; claimed in this boot of the machine);
    False if it is no longer queued."""
    return bool(conn.execute("UPDATE outbox SET state='sending', handing=0, claimed_boot=? "
                             "WHERE id=? AND state='queued'", (boot, outbox_id)).rowcount)


def mark_handing(conn, outbox_id: int) -> None:
    """From here the relay may have it."""
    conn.execute("UPDATE outbox SET handing=1 WHERE id=?", (outbox_id,))


def unhand(conn, ids: list[int]) -> None:
    """Claimed rows never handed over go back to the queue."""
    conn.executemany("UPDATE outbox SET state='queued' WHERE id=? AND state='sending' AND handing=0",
                     [(i,) for i in ids])


def mark_sent(conn, outbox_id: int, at: str) -> None:
    conn.execute("UPDATE outbox SET state='sent', sent_at=?, attempts=attempts+1 WHERE id=?", (at, outbox_id))


def mark_unknown(conn, outbox_id: int, why: str) -> None:
    conn.execute("UPDATE outbox SET state='unknown', attempts=attempts+1, last_error=? WHERE id=?",
                 (why, outbox_id))


def mark_failed(conn, outbox_id: int, attempts: int, error: str) -> None:
    conn.execute("UPDATE outbox SET state='failed', attempts=?, last_error=? WHERE id=?",
                 (attempts, error, outbox_id))


def retry_later(conn, outbox_id: int, attempts: int, error: str, next_attempt_at: str) -> None:
    conn.execute("UPDATE outbox SET state='queued', attempts=?, last_error=?, next_attempt_at=? "
                 "WHERE id=?", (attempts, error, next_attempt_at, outbox_id))


def requeue_sending(conn) -> None:
    """Rows left 'sending' by a crash go back to the queue."""
    conn.execute("UPDATE outbox SET state='queued' WHERE state='sending'")


def sending(conn) -> list[int]:
    return [r[0] for r in conn.execute("SELECT id FROM outbox WHERE state='sending'").fetchall()]


def sending_rows(conn) -> list[sqlite3.Row]:
    """id, handing and claimed_boot of each row left 'sending'."""
    return conn.execute("SELECT id, handing, claimed_boot FROM outbox WHERE state='sending'").fetchall()
