"""Training of practitioners LES: applications, the panel's decisions and the commitment
period (table training_applications)."""
from __future__ import annotations

import sqlite3


def application(conn, application_id: int) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM training_applications WHERE id=?", (application_id,)).fetchone()


def save_application(conn, application_id: int, *, message: int, org_code: str, applicant_email: str,
                     received_at: str, state: str, text: str, missing: str, gpwsi: str) -> None:
    """An application, new or completed by a reply (missing is JSON text)."""
    conn.execute("INSERT OR REPLACE INTO training_applications (id, message, org_code, applicant_email, "
                 "received_at, state, text, missing, gpwsi) VALUES (?,?,?,?,?,?,?,?,?)",
                 (application_id, message, org_code, applicant_email, received_at, state, text, missing, gpwsi))


def record_decision(conn, application_id: int, *, state: str, decided_at: str, reasons: str,
                    commitment_years: int | None) -> None:
    conn.execute("UPDATE training_applications SET state=?, decided_at=?, reasons=?, commitment_years=? "
                 "WHERE id=?", (state, decided_at, reasons, commitment_years, application_id))


def record_completion(conn, application_id: int, *, completed_on: str, commitment_ends: str) -> None:
    conn.execute("UPDATE training_applications SET training_completed_on=?, commitment_ends=? WHERE id=?",
                 (completed_on, commitment_ends, application_id))
