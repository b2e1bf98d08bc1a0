"""job_runs: each run of a scheduled job (reminders, digests), so a missed one is caught up once."""
from __future__ import annotations

import sqlite3

from store.db import open_db


def open_for_jobs(path) -> sqlite3.Connection:
    """A job's own connection. synchronous=NORMAL: whatever a job sends is keyed in the database,
    so a run lost to a power cut is simply done again."""
    conn = open_db(path)
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def start_run(conn, job: str, due_at: str, started_at: str) -> int:
    return conn.execute("INSERT INTO job_runs (job, due_at, started_at) VALUES (?,?,?)",
                        (job, due_at, started_at)).lastrowid


def finish_run(conn, run_id: int, finished_at: str, error: str | None) -> None:
    conn.execute("UPDATE job_runs SET finished_at=?, error=? WHERE id=?", (finished_at, error, run_id))


def ran_since(conn, job: str, since: str) -> bool:
    return conn.execute("SELECT 1 FROM job_runs WHERE job=? AND started_at>=?", (job, since)).fetchone() is not None
