"""The reads behind the returns and the reconciliation (handlers/returns/activity.py): recorded
MSK referrals and outcomes, the denosumab register and its doses, and accepted claims.
Dates are ISO strings; START and END are inclusive."""
from __future__ import annotations

import sqlite3


def practices_offering(conn: sqlite3.Connection, service: str) -> list[sqlite3.Row]:
    return conn.execute("SELECT ods_code, name FROM orgs WHERE kind='practice' AND (';'||services||';') LIKE ? "
                        "ORDER BY ods_code", (f"%;{service};%",)).fetchall()


# -- MSK injection, for the practice as the receiving practice ------------------------------
def referrals_received(conn: sqlite3.Connection, code: str, start: str, end: str) -> int:
    return conn.execute(
        "SELECT count(*) FROM referrals WHERE receiving_code=? AND state IN ('forwarded','seen') "
        "AND referred_on BETWEEN ? AND ?", (code, start, end)).fetchone()[0]


def outcomes_seen(conn: sqlite3.Connection, code: str, start: str, end: str) -> dict[str, int]:
    """outcome -> referrals seen in the period."""
    return dict(conn.execute(
        "SELECT outcome, count(*) FROM referrals WHERE receiving_code=? AND seen_on BETWEEN ? AND ? "
        "GROUP BY outcome", (code, start, end)).fetchall())


def payable_consultations(conn: sqlite3.Connection, code: str, start: str, end: str) -> int:
    return conn.execute("SELECT count(*) FROM referrals WHERE receiving_code=? AND payable=1 "
                        "AND seen_on BETWEEN ? AND ?", (code, start, end)).fetchone()[0]


def awaiting_outcome(conn: sqlite3.Connection, code: str, end: str) -> int:
    return conn.execute(
        "SELECT count(*) FROM referrals WHERE receiving_code=? AND state='forwarded' AND referred_on<=?",
        (code, end)).fetchone()[0]


def patients_attending(conn: sqlite3.Connection, code: str, start: str, end: str) -> int:
    """Distinct patients who attended a consultation (injection or not) in the period."""
    return conn.execute(
        "SELECT count(DISTINCT nhs_number) FROM referrals WHERE receiving_code=? AND outcome IN "
        "('injection','no_injection') AND seen_on BETWEEN ? AND ?", (code, start, end)).fetchone()[0]


# -- denosumab ----------------------------------------------------------------------------
def patients_on_register(conn: sqlite3.Connection, code: str, end: str) -> int:
    """Entries made by END and still active then."""
    return conn.execute("SELECT count(*) FROM register WHERE practice_code=? AND created_at<=? AND "
                        "(status='active' OR status_on>?)", (code, end + "T23:59:59", end)).fetchone()[0]


def patients_added(conn: sqlite3.Connection, code: str, start: str, end: str) -> int:
    return conn.execute("SELECT count(*) FROM register WHERE practice_code=? AND substr(created_at,1,10) "
                        "BETWEEN ? AND ?", (code, start, end)).fetchone()[0]


def injections_given(conn: sqlite3.Connection, code: str, start: str, end: str) -> int:
    return conn.execute("SELECT count(*) FROM doses d JOIN register r ON r.id=d.register_id WHERE "
                        "r.practice_code=? AND d.source='practice' AND d.given_on BETWEEN ? AND ?",
                        (code, start, end)).fetchone()[0]


def overdue_on(conn: sqlite3.Connection, code: str, day: str) -> int:
    return conn.execute("SELECT count(*) FROM register WHERE practice_code=? AND status='active' AND next_due<?",
                        (code, day)).fetchone()[0]


def has_monitoring_return(conn: sqlite3.Connection, code: str, period: str, service: str) -> bool:
    """Whether the practice sent its own monitoring return for the period."""
    return conn.execute("SELECT stated FROM returns WHERE org_code=? AND kind='monitoring' AND period=? "
                        "AND service=? ORDER BY id DESC LIMIT 1", (code, period, service)).fetchone() is not None


# -- the reconciliation -------------------------------------------------------------------
def accepted_claims_by_month(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """(org_code, service, month, n) of accepted claims."""
    return conn.execute("SELECT org_code, service, month, sum(count) n FROM claims WHERE state='accepted' "
                        "GROUP BY org_code, service, month").fetchall()


def practices_with_register(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT DISTINCT practice_code FROM register")}


def doses_by_month(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """(practice, YYYY-MM, n): doses given or due in each month, counted by SQLite in one pass."""
    return conn.execute(
        "SELECT code, m, count(*) FROM (SELECT r.practice_code code, substr(d.given_on, 1, 7) m FROM doses d "
        "JOIN register r ON r.id=d.register_id UNION ALL SELECT practice_code, substr(next_due, 1, 7) "
        "FROM register WHERE next_due IS NOT NULL) GROUP BY code, m").fetchall()


def payable_by_quarter(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """(receiving_code, quarter, n) of payable MSK consultations recorded."""
    return conn.execute("SELECT receiving_code, quarter, count(*) n FROM referrals WHERE payable=1 "
                        "GROUP BY receiving_code, quarter").fetchall()


def recorded_by_month(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """(code, month, n, service): payable MSK consultations and practice-given denosumab doses
    per practice and month of activity."""
    return conn.execute(
        "SELECT receiving_code code, substr(seen_on,1,7) month, count(*) n, 'msk-injection' service "
        "FROM referrals WHERE payable=1 GROUP BY 1, 2 UNION ALL "
        "SELECT r.practice_code, substr(d.given_on,1,7), count(*), 'denosumab' FROM doses d "
        "JOIN register r ON r.id=d.register_id WHERE d.source='practice' GROUP BY 1, 2").fetchall()


def register_entries(conn: sqlite3.Connection, practice: str | None, due_before: str | None) -> list[tuple]:
    """(case_id, practice_code, nhs_number, first_dose_on, next_due, status, doses) per entry, DOSES a
    comma-separated list of dates in order; for one practice and/or active entries due before a day."""
    where, args = ["1=1"], []
    if practice:
        where.append("r.practice_code=?")
        args.append(practice)
    if due_before:
        where.append("r.status='active' AND r.next_due<?")
        args.append(due_before)
    # one pass: each patient's doses gathered by SQLite, not a query per patient
    sql = ("SELECT r.case_id, r.practice_code, r.nhs_number, r.first_dose_on, r.next_due, r.status, "
           "(SELECT group_concat(given_on, ',') FROM (SELECT given_on FROM doses d WHERE d.register_id=r.id "
           "ORDER BY given_on)) AS doses FROM register r WHERE " + " AND ".join(where) +
           " ORDER BY r.practice_code, r.next_due IS NULL, r.next_due, r.id")
    return conn.execute(sql, args).fetchall()
