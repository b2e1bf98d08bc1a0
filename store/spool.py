"""spool.db: the small SQLite file arrivals are committed to before the 250.

It is a file of its own so that taking mail never waits for the worker's or the mailer's
writes to lesbot.db; the worker moves its rows on (bot.mail.intake.move_spooled).
"""
from __future__ import annotations

import sqlite3
import uuid

from store.db import connect
from store.messages import ARRIVAL

SPOOL_INSERT = f"INSERT INTO spool ({ARRIVAL}) VALUES (?,?,?,?,?,?,?)"


def open_spool(path) -> sqlite3.Connection:
    conn = connect(path)
    existed = conn.execute("SELECT 1 FROM sqlite_master WHERE name='spool'").fetchone() is not None
    # AUTOINCREMENT: ids never reused after the worker purges moved rows.
    conn.execute("CREATE TABLE IF NOT EXISTS spool (id INTEGER PRIMARY KEY AUTOINCREMENT, received_at TEXT, "
                 "source TEXT, source_key TEXT, envelope_from TEXT, envelope_to TEXT, raw BLOB, size INTEGER)")
    conn.execute("CREATE INDEX IF NOT EXISTS spool_key ON spool(source_key)")
    # A generation per spool file: ids restart if the file is deleted, so messages remember
    # "<generation>:<id>". A spool file from before generations keeps the old id-only keys.
    conn.execute("CREATE TABLE IF NOT EXISTS spool_meta (generation TEXT NOT NULL)")
    if not conn.execute("SELECT 1 FROM spool_meta").fetchone():
        conn.execute("INSERT INTO spool_meta VALUES (?)", ("legacy" if existed else uuid.uuid4().hex,))
    return conn


def spool_generation(spool) -> str:
    return spool.execute("SELECT generation FROM spool_meta").fetchone()[0]


def add(spool, batch: list[tuple]) -> list[int]:
    """Spool rows (values in ARRIVAL's order), inside the caller's transaction; their ids."""
    return [spool.execute(SPOOL_INSERT, values).lastrowid for values in batch]


def holds(spool, source_key: str) -> bool:
    return spool.execute("SELECT 1 FROM spool WHERE source_key=?", (source_key,)).fetchone() is not None


def waiting(spool, limit: int) -> list[sqlite3.Row]:
    """The oldest spooled rows: id and the ARRIVAL columns."""
    return spool.execute(f"SELECT id, {ARRIVAL} FROM spool ORDER BY id LIMIT ?", (limit,)).fetchall()


def purge(spool, up_to: int) -> None:
    spool.execute("DELETE FROM spool WHERE id<=?", (up_to,))


def no_auto_checkpoint(spool) -> None:
    """Checkpoints are left to the worker, off the path to the 250."""
    spool.execute("PRAGMA wal_autocheckpoint=0")


def checkpoint(spool) -> None:
    """Fold the spool's WAL back, without waiting for anyone."""
    spool.execute("PRAGMA wal_checkpoint(PASSIVE)")


def end_failed_transaction(conn) -> None:
    """Roll back what a failed batch left open (a failed COMMIT is not rolled back for us),
    so the next batch can begin; an error here changes nothing more."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except Exception:
            pass
