"""Claim lines: the claims table as the claims handler reads and writes it."""
from __future__ import annotations

import sqlite3


def last_accepted(conn, org_code: str, service: str, month: str) -> sqlite3.Row | None:
    """The latest accepted line of a practice for a service and month (YYYY-MM):
    id, count, run, case_id, amount_pence."""
    return conn.execute(
        "SELECT id, count, run, case_id, amount_pence FROM claims WHERE org_code=? AND service=? AND month=? "
        "AND state='accepted' ORDER BY id DESC LIMIT 1", (org_code, service, month)).fetchone()


# -- writes: inside the pipeline's transaction (a Decision's apply) ------------------------
def add_accepted(conn, *, created_at: str, message: int, case_id: int | None, org_code: str, service: str,
                 month: str, count: int, tariff_pence: int, amount_pence: int, run: str, source: str,
                 replaces: int | None, claimed_by: str | None) -> int:
    """Record an accepted line; returns its id."""
    cur = conn.execute(
        "INSERT INTO claims (created_at, message, case_id, org_code, service, month, count, tariff_pence, "
        "amount_pence, run, state, source, replaces, claimed_by) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (created_at, message, case_id, org_code, service, month, count, tariff_pence, amount_pence, run,
         "accepted", source, replaces, claimed_by))
    return cur.lastrowid


def mark_replaced(conn, claim_id: int, by: int) -> None:
    conn.execute("UPDATE claims SET state='replaced', replaced_by=? WHERE id=?", (by, claim_id))


def add_rejected(conn, *, created_at: str, message: int, case_id: int | None, org_code: str, reason: str,
                 source: str) -> None:
    conn.execute("INSERT INTO claims (created_at, message, case_id, org_code, state, reason, source) "
                 "VALUES (?,?,?,?,?,?,?)", (created_at, message, case_id, org_code, "rejected", reason, source))
