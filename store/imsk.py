"""IMSK referrals: GP referrals, self-referrals the service records, and the triage team's
decisions, discharges and transfers (table imsk_referrals)."""
from __future__ import annotations

import sqlite3


def _flag(value: bool | None) -> int | None:
    """A yes/no/unknown as the table keeps it: 1, 0 or NULL."""
    return None if value is None else int(value)


def referral(conn, referral_id: int) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM imsk_referrals WHERE id=?", (referral_id,)).fetchone()


def latest_discharge(conn, nhs_number: str, specialty: str | None) -> sqlite3.Row | None:
    """(id, discharged_on) of the patient's latest discharge in this specialty."""
    return conn.execute("SELECT id, discharged_on FROM imsk_referrals WHERE nhs_number=? AND specialty=? AND "
                        "discharged_on IS NOT NULL ORDER BY discharged_on DESC LIMIT 1",
                        (nhs_number, specialty)).fetchone()


def latest_for_patient(conn, nhs_number: str) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM imsk_referrals WHERE nhs_number=? ORDER BY id DESC LIMIT 1",
                        (nhs_number,)).fetchone()


def message_sender(conn, message_id: int) -> str | None:
    """The From address of a stored message (the GP who sent a referral)."""
    row = conn.execute("SELECT from_addr FROM messages WHERE id=?", (message_id,)).fetchone()
    return row[0] if row else None


def save_gp_referral(conn, referral_id: int, *, message: int, received_at: str, referrer_code: str,
                     registered_code: str | None, nhs_number: str | None, patient: str, specialty: str | None,
                     mecfs: bool, red_flags: bool | None, urgency: str | None, clinical: str | None, state: str,
                     problems: str, return_reason: str | None, triage_due: str | None,
                     followup_of: int | None) -> None:
    """A GP's referral, new or completed by a reply (patient and problems are JSON text)."""
    conn.execute("INSERT OR REPLACE INTO imsk_referrals (id, kind, message, received_at, referrer_code, "
                 "registered_code, nhs_number, patient, specialty, mecfs, red_flags, urgency, clinical, state, "
                 "problems, return_reason, triage_due, followup_of) VALUES (?,'gp',?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                 (referral_id, message, received_at, referrer_code, registered_code, nhs_number, patient,
                  specialty, int(mecfs), _flag(red_flags), urgency, clinical, state, problems, return_reason,
                  triage_due, followup_of))


def add_self_referral(conn, referral_id: int, *, message: int, received_at: str, registered_code: str | None,
                      nhs_number: str, specialty: str | None, triage_due: str, followup_of: int | None) -> None:
    """A self-referral the service records, waiting for triage."""
    conn.execute("INSERT INTO imsk_referrals (id, kind, message, received_at, referrer_code, registered_code, "
                 "nhs_number, specialty, state, triage_due, followup_of) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                 (referral_id, "self", message, received_at, None, registered_code, nhs_number, specialty,
                  "awaiting_triage", triage_due, followup_of))


def mark_discharged(conn, referral_id: int, day: str) -> None:
    conn.execute("UPDATE imsk_referrals SET state='discharged', discharged_on=? WHERE id=?", (day, referral_id))


def set_transfers(conn, referral_id: int, transfers: str) -> None:
    """The referral's transfers between disciplines (JSON text)."""
    conn.execute("UPDATE imsk_referrals SET transfers=? WHERE id=?", (transfers, referral_id))


def record_triage(conn, referral_id: int, *, at: str, decision: str, first_appointment: str | None,
                  triage_ok: bool | None, appointment_ok: bool | None, redirect_ok: bool | None) -> None:
    """The triage decision and how it met the standards; never over a decision already recorded."""
    conn.execute("UPDATE imsk_referrals SET state='triaged', triaged_at=?, decision=?, first_appointment=?, "
                 "triage_ok=?, appointment_ok=?, redirect_ok=? WHERE id=? AND decision IS NULL",
                 (at, decision, first_appointment, _flag(triage_ok), _flag(appointment_ok), _flag(redirect_ok),
                  referral_id))
