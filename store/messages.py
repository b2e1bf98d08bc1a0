"""The messages table: storing arrivals, what the pipeline looks up, and its record of each outcome."""
from __future__ import annotations

import sqlite3

from store.db import connect

# The columns an arrival brings, in the order intake gives them (spool rows have the same).
ARRIVAL = "received_at, source, source_key, envelope_from, envelope_to, raw, size"


# -- storing arrivals ---------------------------------------------------------
def add(conn, values: tuple, state: str, duplicate_of: int | None) -> int:
    """Store one arrival (values in ARRIVAL's order); its id."""
    return conn.execute(f"INSERT INTO messages ({ARRIVAL}, state, duplicate_of) VALUES (?,?,?,?,?,?,?,?,?)",
                        (*values, state, duplicate_of)).lastrowid


def add_spooled(conn, values: tuple, state: str, duplicate_of: int | None, spool_id: int | None,
                spool_key: str | None) -> None:
    """Store an arrival moved from the spool, with the spool id it came under."""
    conn.execute(f"INSERT INTO messages ({ARRIVAL}, state, duplicate_of, spool_id, spool_key) "
                 "VALUES (?,?,?,?,?,?,?,?,?,?,?)", (*values, state, duplicate_of, spool_id, spool_key))


def moved_already(conn, spool_id: int, spool_key: str | None) -> bool:
    """Was this spool row moved before (a crash lost only the purge)? spool_key None: a spool
    file from before generations, known by its id alone."""
    if spool_key is None:
        found = conn.execute("SELECT 1 FROM messages WHERE spool_id=? AND spool_key IS NULL", (spool_id,))
    else:
        found = conn.execute("SELECT 1 FROM messages WHERE spool_key=?", (spool_key,))
    return found.fetchone() is not None


def first_imap_copy(conn, source_key: str) -> int | None:
    """The message stored from this mailbox/UIDVALIDITY/UID, if any."""
    row = conn.execute("SELECT id FROM messages WHERE source_key=? AND source='imap' ORDER BY id LIMIT 1",
                       (source_key,)).fetchone()
    return row[0] if row else None


def imap_position(conn, mailbox: str) -> sqlite3.Row | None:
    """(uidvalidity, last_uid) remembered for an IMAP folder."""
    return conn.execute("SELECT uidvalidity, last_uid FROM imap_state WHERE mailbox=?", (mailbox,)).fetchone()


def remember_imap_position(conn, mailbox: str, uidvalidity: int, uid: int, at: str) -> None:
    conn.execute(
        "INSERT INTO imap_state (mailbox, uidvalidity, last_uid, updated_at) VALUES (?,?,?,?) "
        "ON CONFLICT(mailbox) DO UPDATE SET uidvalidity=excluded.uidvalidity, last_uid=excluded.last_uid, "
        "updated_at=excluded.updated_at", (mailbox, uidvalidity, uid, at))


# -- what the pipeline looks up -------------------------------------------------
def connect_for_processing(path) -> sqlite3.Connection:
    """The worker's connection. The message itself was stored with synchronous=FULL; a result
    lost to a power cut means it is processed again, and the mailer syncs before sending."""
    conn = connect(path)
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def pending(conn) -> list[int]:
    return [r[0] for r in conn.execute("SELECT id FROM messages WHERE state='received' ORDER BY id")]


def for_processing(conn, msg_id: int) -> sqlite3.Row | None:
    return conn.execute(
        "SELECT id, raw, received_at, envelope_from, envelope_to, state, released, hints FROM messages WHERE id=?",
        (msg_id,)).fetchone()


def state_of(conn, msg_id: int) -> str | None:
    row = conn.execute("SELECT state FROM messages WHERE id=?", (msg_id,)).fetchone()
    return row[0] if row else None


def first_with_identity(conn, content_hash: str, before: int) -> sqlite3.Row | None:
    """(id, case_id) of the first earlier message, already decided, with this identity."""
    return conn.execute(
        "SELECT id, case_id FROM messages WHERE content_hash=? AND id<? AND state!='received' "
        "ORDER BY id LIMIT 1", (content_hash, before)).fetchone()


def first_acted_on(conn, body_hash: str, from_addr: str, before: int, since: str) -> sqlite3.Row | None:
    """(id, case_id) of the first earlier message since `since` with these words from this sender
    that was accepted (wholly or in part) into a case."""
    return conn.execute(
        "SELECT id, case_id FROM messages WHERE body_hash=? AND from_addr=? AND id<? AND received_at>=? "
        "AND state IN ('accepted','partially_accepted') AND case_id IS NOT NULL ORDER BY id LIMIT 1",
        (body_hash, from_addr, before, since)).fetchone()


def quick_answers_since(conn, from_addr: str, before: int, since: str) -> int:
    """How many earlier messages from this address since `since` answered lesbot within a minute."""
    return conn.execute(
        "SELECT count(*) FROM messages WHERE from_addr=? AND quick_answer=1 AND id<? AND received_at>=?",
        (from_addr, before, since)).fetchone()[0]


def case_of_message_id(conn, message_id: str) -> int | None:
    """The case of the first stored message with this Message-ID that is in one."""
    hit = conn.execute("SELECT case_id FROM messages WHERE message_id=? AND case_id IS NOT NULL "
                       "ORDER BY id LIMIT 1", (message_id,)).fetchone()
    return hit["case_id"] if hit else None


# -- the pipeline's record -------------------------------------------------------
def record_outcome(conn, msg_id: int, *, state: str, kind: str, message_id: str, from_addr: str,
                   org_code: str | None, content_hash: str, body_hash: str, duplicate_of: int | None,
                   case_id: int | None, no_reply_reason: str | None, errors: str, error: str | None,
                   processed_at: str, reading: str | None, quick_answer: int) -> None:
    """A message's final state and what was learned about it; counts one more attempt."""
    conn.execute(
        "UPDATE messages SET state=?, kind=?, message_id=?, from_addr=?, org_code=?, content_hash=?, "
        "body_hash=?, duplicate_of=?, case_id=?, no_reply_reason=?, errors=?, error=?, attempts=attempts+1, "
        "processed_at=?, reading=?, quick_answer=? WHERE id=?",
        (state, kind, message_id, from_addr, org_code, content_hash, body_hash, duplicate_of, case_id,
         no_reply_reason, errors, error, processed_at, reading, quick_answer, msg_id))


# One savepoint per message inside a group's transaction: a message whose writes fail is
# undone alone and recorded as failed, the others stay.
def savepoint(conn) -> None:
    conn.execute("SAVEPOINT one")


def undo_to_savepoint(conn) -> None:
    conn.execute("ROLLBACK TO one")


def release_savepoint(conn) -> None:
    conn.execute("RELEASE one")
