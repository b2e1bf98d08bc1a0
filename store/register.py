"""The denosumab register (entries, doses, untoward events) and practices' own returns."""
from __future__ import annotations

import sqlite3


def entry_for_patient(conn, nhs_number: str) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM register WHERE nhs_number=?", (nhs_number,)).fetchone()


def entry_for_case(conn, case_id: int) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM register WHERE case_id=?", (case_id,)).fetchone()


def case_on_register(conn, case_id: int) -> bool:
    return conn.execute("SELECT 1 FROM register WHERE case_id=?", (case_id,)).fetchone() is not None


def add_entry(conn, *, nhs_number: str, practice: str, hospital: str, patient: str, diagnosis, plan,
              initiated_on: str, first_dose_on: str, last_dose_on: str, next_due: str, case_id: int,
              message: int, now: str) -> int | None:
    """A new active entry; its id, or None when the patient is already on the register."""
    cur = conn.execute(
        "INSERT INTO register (nhs_number, practice_code, hospital_code, patient, diagnosis, plan, initiated_on, "
        "first_dose_on, last_dose_on, next_due, status, case_id, letter_message, created_at, updated_at) "
        "VALUES (?,?,?,?,?,?,?,?,?,?, 'active', ?,?,?,?) ON CONFLICT(nhs_number) DO NOTHING",
        (nhs_number, practice, hospital, patient, diagnosis, plan, initiated_on, first_dose_on, last_dose_on,
         next_due, case_id, message, now, now))
    return cur.lastrowid if cur.rowcount else None


def add_hospital_dose(conn, register_id: int, given_on: str, message: int, now: str) -> None:
    conn.execute("INSERT INTO doses (register_id, given_on, source, message, recorded_at) VALUES (?,?,?,?,?)",
                 (register_id, given_on, "hospital", message, now))


def link_case_org(conn, case_id: int, ods_code: str) -> None:
    conn.execute("INSERT OR IGNORE INTO case_orgs (case_id, ods_code) VALUES (?,?)", (case_id, ods_code))


def record_dose(conn, register_id: int, given_on: str, next_due: str, message: int, now: str) -> None:
    """A practice's dose; the entry moves on only when it is later than the last dose recorded."""
    conn.execute("INSERT OR IGNORE INTO doses (register_id, given_on, source, message, recorded_at) "
                 "VALUES (?,?,?,?,?)", (register_id, given_on, "practice", message, now))
    conn.execute("UPDATE register SET last_dose_on=?, next_due=?, updated_at=? WHERE id=? AND "
                 "(last_dose_on IS NULL OR last_dose_on<?)",
                 (given_on, next_due, now, register_id, given_on))


def record_event(conn, *, message: int, case_id: int, org_code: str, register_id: int, kind: str,
                 event_on: str | None, reported_at: str, late: bool, hours: float | None,
                 forwarded_to: str | None) -> None:
    conn.execute("INSERT INTO events (message, case_id, org_code, register_id, kind, event_on, reported_at, "
                 "late, hours, forwarded_to) VALUES (?,?,?,?,?,?,?,?,?,?)",
                 (message, case_id, org_code, register_id, kind, event_on, reported_at, int(late), hours,
                  forwarded_to))


def stop_recalls(conn, register_id: int, status: str, on: str, now: str) -> None:
    """died, left or stopped: no more recalls; the entry and its doses are kept."""
    conn.execute("UPDATE register SET status=?, status_on=?, next_due=NULL, updated_at=? WHERE id=? "
                 "AND status='active'", (status, on, now, register_id))


def record_return(conn, *, message: int, case_id: int, received_at: str, org_code: str, service: str,
                  kind: str, period: str, stated: str, recorded: str, differences: str) -> int:
    """A practice's monitoring or audit return (figures as JSON text); its id."""
    cur = conn.execute(
        "INSERT INTO returns (message, case_id, received_at, org_code, service, kind, period, stated, recorded, "
        "differences) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (message, case_id, received_at, org_code, service, kind, period, stated, recorded, differences))
    return cur.lastrowid
