"""Store a raw message durably — the only thing done before we say 250.

The writer thread commits in groups: every message waiting when a commit starts
shares one fsync, so 16 parallel senders cost about one disk flush between them.
"""
from __future__ import annotations

import asyncio
import queue
import threading
from concurrent.futures import Future
from datetime import datetime, timezone

from store.db import connect

INSERT = ("INSERT INTO messages (received_at, source, source_key, envelope_from, envelope_to, raw, size, "
          "state, duplicate_of) VALUES (?,?,?,?,?,?,?,?,?)")


def _row(conn, raw: bytes, source: str, received_at: datetime | None, envelope_from, envelope_to,
         source_key) -> tuple:
    when = (received_at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    state, dup = "received", None
    if source == "imap" and source_key:
        # Same mailbox, UIDVALIDITY and UID: the very same stored message again.
        first = conn.execute("SELECT id FROM messages WHERE source_key=? AND source='imap' ORDER BY id LIMIT 1",
                             (source_key,)).fetchone()
        if first:
            state, dup = "duplicate", first[0]
    return (when.isoformat(timespec="microseconds"), source, source_key, envelope_from,
            ",".join(envelope_to) if isinstance(envelope_to, (list, tuple)) else envelope_to,
            raw, len(raw), state, dup)


def store(conn, raw: bytes, source: str, received_at: datetime | None = None, envelope_from=None,
          envelope_to=None, source_key=None) -> int:
    """Store one message in its own transaction; returns its id."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        cur = conn.execute(INSERT, _row(conn, raw, source, received_at, envelope_from, envelope_to, source_key))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return cur.lastrowid


class IntakeWriter:
    """A thread owning one connection; callers get a Future of the new row id."""

    def __init__(self, db_path, on_stored=None, max_batch: int = 64):
        self.db_path = db_path
        self.on_stored = on_stored
        self.max_batch = max_batch
        self._q: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="lesbot-intake", daemon=True)
        self._stopping = False

    def start(self):
        self._thread.start()
        return self

    def submit(self, raw: bytes, source: str, received_at=None, envelope_from=None, envelope_to=None,
               source_key=None) -> Future:
        fut: Future = Future()
        if self._stopping:
            fut.set_exception(RuntimeError("lesbot is shutting down"))
            return fut
        self._q.put((fut, (raw, source, received_at, envelope_from, envelope_to, source_key)))
        return fut

    async def store_async(self, *args, **kw) -> int:
        return await asyncio.wrap_future(self.submit(*args, **kw))

    def stop(self):
        self._stopping = True
        self._q.put(None)
        self._thread.join(timeout=10)

    def _run(self):
        conn = connect(self.db_path)
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
                ids = [conn.execute(INSERT, _row(conn, *args)).lastrowid for _, args in batch]
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
