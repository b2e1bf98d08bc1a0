"""Connections, migrations and the audit trail."""
from __future__ import annotations

import json
import os
import sqlite3
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import sqlite_utils

from store.migrations import MIGRATIONS

SCHEMA_VERSION = len(MIGRATIONS)


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


class Connection(sqlite3.Connection):
    """A connection that knows the lock its process's writers to the same file share."""
    write_lock: threading.RLock | None = None


_WRITE_LOCKS: dict[str, threading.RLock] = {}
_LOCKS_LOCK = threading.Lock()


def _write_lock(path: Path | str) -> threading.RLock | None:
    """Threads of one process writing one file queue here, and the next is woken the moment
    the lock is free; SQLite's own wait between processes polls, sleeping up to 100 ms a time."""
    if str(path) in ("", ":memory:"):
        return None
    key = os.path.realpath(path)
    with _LOCKS_LOCK:
        return _WRITE_LOCKS.setdefault(key, threading.RLock())


def connect(path: Path | str) -> sqlite3.Connection:
    """A raw connection in autocommit mode; callers open transactions explicitly.

    synchronous=FULL: a COMMIT is on disk before we answer 250, even on power loss.
    """
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False,
                           factory=Connection)
    conn.write_lock = _write_lock(path)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def open_db(path: Path | str) -> sqlite3.Connection:
    """Connect and bring the schema up to date."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    migrate(conn)
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection):
    """One write transaction: BEGIN IMMEDIATE (the write lock taken at once, so two writers queue
    instead of failing half-way), COMMIT when the block ends, ROLLBACK if it raises. Connections
    are in autocommit mode (see connect), so every write goes through here."""
    lock = getattr(conn, "write_lock", None)
    if lock is not None:
        lock.acquire()
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            # also when COMMIT itself fails (disk full): a transaction left open would make every
            # later BEGIN on this connection fail
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        if lock is not None:
            lock.release()


def migrate(conn: sqlite3.Connection) -> int:
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > SCHEMA_VERSION:
        raise RuntimeError(
            f"database schema {current} is newer than this lesbot ({SCHEMA_VERSION}); upgrade lesbot")
    if current == SCHEMA_VERSION:
        return current
    with transaction(conn):
        # Re-read inside the lock: two processes may start at once.
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        db = sqlite_utils.Database(conn)
        for version, step in enumerate(MIGRATIONS[current:], start=current + 1):
            step(db)
            conn.execute(f"PRAGMA user_version={version}")
    return SCHEMA_VERSION


def audit(conn: sqlite3.Connection, entity: str, entity_id, action: str,
          actor: str = "lesbot", detail: dict | str | None = None) -> None:
    """Record a state change. Call inside the transaction that makes the change."""
    if isinstance(detail, dict):
        detail = json.dumps(detail, sort_keys=True, default=str)
    conn.execute(
        "INSERT INTO audit (at, entity, entity_id, action, actor, detail) VALUES (?,?,?,?,?,?)",
        (utcnow(), entity, str(entity_id), action, actor, detail),
    )


def reserve_case_ids(path, count: int) -> list[int]:
    """Reference numbers no message will take: the messages sequence is moved past them.

    Its own short transaction on its own connection, so the decide phase stays
    read-only otherwise; an unused number only leaves a gap."""
    if count <= 0:
        return []
    conn = connect(path)
    try:
        conn.execute("PRAGMA synchronous=NORMAL")
        with transaction(conn):
            seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name='messages'").fetchone()
            top = max(seq[0] if seq else 0,
                      conn.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0],
                      conn.execute("SELECT coalesce(max(id), 0) FROM cases").fetchone()[0])
            conn.execute("UPDATE sqlite_sequence SET seq=? WHERE name='messages'", (top + count,))
        return list(range(top + 1, top + count + 1))
    finally:
        conn.close()


def directory_version(conn: sqlite3.Connection) -> tuple[str, int]:
    """(the database file, its directory's change counter): the key for anything kept in memory
    that is derived from the directory (migration v8 moves it on at every change)."""
    # one statement: readers ask several times per message
    path, n = conn.execute("SELECT (SELECT file FROM pragma_database_list WHERE name = 'main'), n "
                           "FROM directory_version WHERE id = 1").fetchone()
    return str(path or f"memory:{id(conn)}"), n


@contextmanager
def unsynced(conn: sqlite3.Connection):
    """Commits in this block are not fsynced (synchronous=NORMAL): they survive a killed process
    (the write is in the kernel already) but a power cut may take them back."""
    conn.execute("PRAGMA synchronous=NORMAL")
    try:
        yield conn
    finally:
        conn.execute("PRAGMA synchronous=FULL")


def boot_id() -> str | None:
    """This boot of the machine (Linux), to tell a killed process from a power cut; None elsewhere."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip() or None
    except OSError:
        return None
