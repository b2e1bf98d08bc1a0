"""Cases: the pipeline opens them and records their state; threading asks who is in one."""
from __future__ import annotations


def involves(conn, case_id: int, ods_code: str) -> bool:
    """Is this organisation in the case: the one that opened it, or one added since?"""
    return conn.execute("SELECT 1 FROM cases WHERE id=? AND org_code=? UNION ALL "
                        "SELECT 1 FROM case_orgs WHERE case_id=? AND ods_code=?",
                        (case_id, ods_code, case_id, ods_code)).fetchone() is not None


def open_case(conn, case_id: int, created_at: str, org_code: str | None, kind: str, state: str,
              first_message: int) -> None:
    """A new case, numbered after the message that opened it. A message released from
    quarantine reopens the case it opened (ON CONFLICT)."""
    conn.execute("INSERT INTO cases (id, created_at, org_code, kind, state, first_message) "
                 "VALUES (?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET state=excluded.state, "
                 "kind=excluded.kind",
                 (case_id, created_at, org_code, kind, state, first_message))


def set_state(conn, case_id: int, state: str) -> None:
    conn.execute("UPDATE cases SET state=? WHERE id=?", (state, case_id))
