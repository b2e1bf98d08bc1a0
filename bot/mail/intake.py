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
import threading
from concurrent.futures import Future
from datetime import datetime, timezone
from pathlib import Path

from store import messages
from store import spool as spooled
from store.db import transaction
from store.spool import open_spool, spool_generation


def spool_path(settings) -> Path:
    return Path(settings.home) / "spool.db"


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
    return messages.first_imap_copy(conn, source_key)


def store(conn, raw: bytes, source: str, received_at: datetime | None = None, envelope_from=None,
          envelope_to=None, source_key=None) -> int:
    """Store one message straight into lesbot.db (files, tests); returns its id."""
    with transaction(conn):
        first = _imap_first(conn, source, source_key)
        new_id = messages.add(conn, _values(raw, source, received_at, envelope_from, envelope_to, source_key),
                              "duplicate" if first else "received", first)
    return new_id


def is_spooled_or_stored(spool, conn, source_key: str) -> bool:
    return spooled.holds(spool, source_key) or messages.first_imap_copy(conn, source_key) is not None


def move_spooled(spool, conn, limit: int = 500) -> int:
    """Move spooled messages into lesbot.db. Safe to repeat after a crash at any point."""
    rows = spooled.waiting(spool, limit)
    if not rows:
        return 0
    moved = 0
    gen = spool_generation(spool)
    with transaction(conn):
        for r in rows:
            key = None if gen == "legacy" else f"{gen}:{r['id']}"
            if messages.moved_already(conn, r["id"], key):
                continue    # moved before a crash; only the purge was lost
            first = _imap_first(conn, r["source"], r["source_key"])
            messages.add_spooled(conn, (r["received_at"], r["source"], r["source_key"], r["envelope_from"],
                                        r["envelope_to"], r["raw"], r["size"]),
                                 "duplicate" if first else "received", first,
                                 r["id"] if key is None else None, key)
            moved += 1
    spooled.purge(spool, rows[-1]["id"])
    return moved


def settle(outcomes: list[tuple]) -> None:
    """Give each waiter its spool id or error: thread waiters (a concurrent Future) directly,
    event-loop waiters ((loop, future)) in one call per loop."""
    per_loop: dict = {}
    for waiter, new_id, error in outcomes:
        if isinstance(waiter, Future):
            if error is None:
                waiter.set_result(new_id)
            else:
                waiter.set_exception(error)
        else:
            loop, fut = waiter
            per_loop.setdefault(loop, []).append((fut, new_id, error))
    for loop, items in per_loop.items():
        try:
            loop.call_soon_threadsafe(_settle_in_loop, items)
        except RuntimeError:
            pass        # that loop has closed: nobody is waiting any more


def _settle_in_loop(items) -> None:
    for fut, new_id, error in items:
        if fut.done():          # the client went away and its wait was cancelled
            continue
        if error is None:
            fut.set_result(new_id)
        else:
            fut.set_exception(error)


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

    async def store_async(self, raw: bytes, source: str, received_at=None, envelope_from=None, envelope_to=None,
                          source_key=None) -> int:
        """As submit, for the event loop: a whole commit's waiters are woken with one call
        into the loop, not one each."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        if self._stopping:
            raise RuntimeError("lesbot is shutting down")
        self._q.put(((loop, fut), _values(raw, source, received_at, envelope_from, envelope_to, source_key)))
        return await fut

    def stop(self):
        self._stopping = True
        self._q.put(None)
        self._thread.join(timeout=10)

    def _run(self):
        conn = open_spool(self.path)
        spooled.no_auto_checkpoint(conn)
        self._ready.set()
        while True:
            batch = self._next_batch()
            if batch is None:
                break
            try:
                with transaction(conn):
                    ids = spooled.add(conn, [values for _, values in batch])
                outcomes = [(waiter, new_id, None) for (waiter, _), new_id in zip(batch, ids)]
            except BaseException as e:
                spooled.end_failed_transaction(conn)
                outcomes = [(waiter, None, e) for waiter, _ in batch]
            settle(outcomes)
            if self.on_stored and any(e is None for _, _, e in outcomes):
                self.on_stored()
        conn.close()

    def _next_batch(self) -> list | None:
        """Everything waiting, up to max_batch: one commit, one fsync, for all of it. None: stop."""
        item = self._q.get()
        if item is None:
            return None
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
        return batch
