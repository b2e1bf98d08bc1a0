"""Payment runs: which runs are closed, closing one, and what a run pays."""
from __future__ import annotations

import sqlite3


def run_closed(conn, run: str) -> sqlite3.Row | None:
    """(closed_at, closed_by) of a closed run; None while it is open."""
    return conn.execute("SELECT closed_at, closed_by FROM payment_runs WHERE run=? AND closed_at IS NOT NULL",
                        (run,)).fetchone()


def is_closed(conn, run: str) -> bool:
    return conn.execute("SELECT 1 FROM payment_runs WHERE run=? AND closed_at IS NOT NULL", (run,)).fetchone() \
        is not None


def mark_closed(conn, run: str, at: str, actor: str) -> None:
    """Close a run (a row may exist already, open). Call inside the caller's transaction."""
    conn.execute("INSERT INTO payment_runs (run, closed_at, closed_by) VALUES (?,?,?) "
                 "ON CONFLICT(run) DO UPDATE SET closed_at=excluded.closed_at, closed_by=excluded.closed_by",
                 (run, at, actor))


def schedule_rows(conn, run: str) -> list[sqlite3.Row]:
    """The run's accepted claims summed per practice, service and tariff: org_code, name (of the practice,
    None if it left the directory), service, tariff_pence, n, pence, months and cases (comma-separated)."""
    return conn.execute(
        "SELECT c.org_code, o.name, c.service, c.tariff_pence, sum(c.count) AS n, sum(c.amount_pence) AS pence, "
        "group_concat(DISTINCT c.month) AS months, group_concat(DISTINCT c.case_id) AS cases "
        "FROM claims c LEFT JOIN orgs o ON o.ods_code=c.org_code WHERE c.run=? AND c.state='accepted' "
        "GROUP BY c.org_code, c.service, c.tariff_pence", (run,)).fetchall()
