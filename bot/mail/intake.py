"""Store a raw message durably — the only thing done before we say 250.

Arrivals go to a spool: a small SQLite file of its own (spool.db), so taking
mail never waits for the worker's or the mailer's writes to lesbot.db. A writer
thread commits arrivals in groups: every message waiting when a commit starts
shares one fsync. The worker then moves spooled messages into lesbot.db
(`move_spooled`): exactly once, because each keeps its spool id there.
"""
from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
import uuid
from concurrent.futures import Future
from datetime import datetime, timezone
from pathlib import Path

from store.db import connect

COLUMNS = "received_at, source, source_key, envelope_from, envelope_to, raw, size"
INSERT = f"INSERT INTO messages ({COLUMNS}, state, duplicate_of) VALUES (?,?,?,?,?,?,?,?,?)"
SPOOL_INSERT = f"INSERT INTO spool ({COLUMNS}) VALUES (?,?,?,?,?,?,?)"


def spool_path(settings) -> Path:
    return Path(settings.home) / "spool.db"


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


def _values(raw: bytes, source: str, received_at: datetime | None, envelope_from, envelope_to,
            source_key) -> tuple:
    when = (received_at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return (when.isoformat(timespec="microseconds"), source, source_key, envelope_from,
            ",".join(envelope_to) if isinstance(envelope_to, (list, tuple)) else envelope_to,
            raw, len(raw))


def _imap_first(conn, source: str, source_key) -> int | None:
    """The same mailbox, UIDVALIDITY and UID: the very same message, already stored."""
    if source != "imap" or not source_key:
        return None
    row = conn.execute("SELECT id FROM messages WHERE source_key=? AND source='imap' ORDER BY id LIMIT 1",
                       (source_key,)).fetchone()
    return row[0] if row else None


def store(conn, raw: bytes, source: str, received_at: datetime | None = None, envelope_from=None,
          envelope_to=None, source_key=None) -> int:
    """Store one message straight into lesbot.db (files, tests); returns its id."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        first = _imap_first(conn, source, source_key)
        cur = conn.execute(INSERT, (*_values(raw, source, received_at, envelope_from, envelope_to, source_key),
                                    "duplicate" if first else "received", first))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return cur.lastrowid


def is_spooled_or_stored(spool, conn, source_key: str) -> bool:
    return bool(spool.execute("SELECT 1 FROM spool WHERE source_key=?", (source_key,)).fetchone() or
                conn.execute("SELECT 1 FROM messages WHERE source_key=? AND source='imap'",
                             (source_key,)).fetchone())


def move_spooled(spool, conn, limit: int = 500) -> int:
    """Move spooled messages into lesbot.db. Safe to repeat after a crash at any point."""
    rows = spool.execute(f"SELECT id, {COLUMNS} FROM spool ORDER BY id LIMIT ?", (limit,)).fetchall()
    if not rows:
        return 0
    moved = 0
    gen = spool_generation(spool)
    conn.execute("BEGIN IMMEDIATE")
    try:
        for r in rows:
            key = None if gen == "legacy" else f"{gen}:{r['id']}"
            done = conn.execute("SELECT 1 FROM messages WHERE spool_id=? AND spool_key IS NULL", (r["id"],)) \
                if key is None else conn.execute("SELECT 1 FROM messages WHERE spool_key=?", (key,))
            if done.fetchone():
                continue    # moved before a crash; only the purge was lost
            first = _imap_first(conn, r["source"], r["source_key"])
            conn.execute(f"INSERT INTO messages ({COLUMNS}, state, duplicate_of, spool_id, spool_key) "
                         "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                         (r["received_at"], r["source"], r["source_key"], r["envelope_from"], r["envelope_to"],
                          r["raw"], r["size"], "duplicate" if first else "received", first,
                          r["id"] if key is None else None, key))
            moved += 1
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    spool.execute("DELETE FROM spool WHERE id<=?", (rows[-1]["id"],))
    return moved


class IntakeWriter:
    """A thread owning the spool connection; callers get a Future of the spool id."""

    def __init__(self, path, on_stored=None, max_batch: int = 64):
        self.path = path
        self.on_stored = on_stored
        self.max_batch = max_batch
        self._q: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="lesbot-intake", daemon=True)
        self._stopping = False
        self._ready = threading.Event()

    def start(self):
        self._thread.start()
        self._ready.wait(10)
        return self

    def submit(self, raw: bytes, source: str, received_at=None, envelope_from=None, envelope_to=None,
               source_key=None) -> Future:
        fut: Future = Future()
        if self._stopping:
            fut.set_exception(RuntimeError("lesbot is shutting down"))
            return fut
        self._q.put((fut, _values(raw, source, received_at, envelope_from, envelope_to, source_key)))
        return fut

    async def store_async(self, *args, **kw) -> int:
        return await asyncio.wrap_future(self.submit(*args, **kw))

    def stop(self):
        self._stopping = True
        self._q.put(None)
        self._thread.join(timeout=10)

    def _run(self):
        conn = open_spool(self.path)
        # Checkpoints are left to the worker, off the path to the 250.
        conn.execute("PRAGMA wal_autocheckpoint=0")
        self._ready.set()
        while True:
            item = self._q.get()
            if item is None:
                break
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._q.put(None)
                    break
                batch.append(nxt)
            try:
                conn.execute("BEGIN IMMEDIATE")
                ids = [conn.execute(SPOOL_INSERT, values).lastrowid for _, values in batch]
                conn.execute("COMMIT")
            except BaseException as e:
                try:
                    conn.execute("ROLLBACK")
                except Exception:
                    pass
                for fut, _ in batch:
                    fut.set_exception(e)
                continue
            for (fut, _), new_id in zip(batch, ids):
                fut.set_result(new_id)
            if self.on_stored:
                self.on_stored()
        conn.close()
