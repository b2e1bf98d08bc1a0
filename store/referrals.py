"""Inter-practice MSK injection referrals: the referrals table, and the case rows a referral opens."""
from __future__ import annotations

import json
import sqlite3


# -- reads --------------------------------------------------------------------------------
def forwarded_to_with_numbers(conn, receiving_code: str, nhs_numbers: list[str]) -> list[sqlite3.Row]:
    """Referrals passed to (or seen by) a receiving practice for any of these NHS numbers."""
    return conn.execute(
        f"SELECT * FROM referrals WHERE receiving_code=? AND state IN ('forwarded','seen') AND nhs_number IN "
        f"({','.join('?' * len(nhs_numbers))}) ORDER BY id", (receiving_code, *nhs_numbers)).fetchall()


def referral_and_siblings(conn, referral_id: int) -> list[sqlite3.Row]:
    """The referral and every other one opened by the same message."""
    return conn.execute(
        "SELECT * FROM referrals WHERE id=? OR message=(SELECT message FROM referrals WHERE id=?) ORDER BY id",
        (referral_id, referral_id)).fetchall()


def case_opened_by(conn, case_id: int, ods_code: str) -> bool:
    return conn.execute("SELECT 1 FROM cases WHERE id=? AND org_code=?", (case_id, ods_code)).fetchone() is not None


def open_referral(conn, nhs_number: str, receiving_code: str) -> sqlite3.Row | None:
    """The first referral of this patient to this practice still incomplete or awaiting an outcome (id, state)."""
    return conn.execute("SELECT id, state FROM referrals WHERE nhs_number=? AND receiving_code=? "
                        "AND state IN ('incomplete','forwarded') ORDER BY id LIMIT 1",
                        (nhs_number, receiving_code)).fetchone()


def practice_names_offering(conn, service: str) -> list[str]:
    """Names of the practices signed up to a service, A to Z."""
    return [row["name"] for row in conn.execute(
        "SELECT name FROM orgs WHERE kind='practice' AND (';'||services||';') LIKE ? ORDER BY name",
        (f"%;{service};%",))]


# -- writes (inside the caller's transaction) ----------------------------------------------
def open_case(conn, case_id: int, *, now: str, org_code: str, state: str, first_message: int) -> None:
    conn.execute("INSERT OR IGNORE INTO cases (id, created_at, org_code, kind, state, first_message) "
                 "VALUES (?,?,?,?,?,?)", (case_id, now, org_code, "referral", state, first_message))


def set_case_state(conn, case_id: int, state: str) -> None:
    conn.execute("UPDATE cases SET state=? WHERE id=?", (state, case_id))


def link_parties(conn, case_id: int, *codes: str | None) -> None:
    """Every practice a referral concerns can see its case (empty codes skipped)."""
    for code in {c for c in codes if c}:
        conn.execute("INSERT OR IGNORE INTO case_orgs (case_id, ods_code) VALUES (?,?)", (case_id, code))


def drop_incomplete(conn, referral_id: int) -> None:
    """An incomplete referral sent again: its old row goes, the new one takes its id."""
    conn.execute("DELETE FROM referrals WHERE id=? AND state='incomplete'", (referral_id,))


def add_referral(conn, referral_id: int, *, message: int, now: str, referred_on: str, state: str,
                 problems: list, referrer: str | None, referrer_email: str, receiving: str | None,
                 registered: str | None, nhs_number: str | None, patient: dict, clinical: dict,
                 joint: str | None, forwarded_at: str | None, outcome_due: str | None) -> None:
    conn.execute(
        "INSERT INTO referrals (id, message, created_at, updated_at, referred_on, state, problems, "
        "referrer_code, referrer_email, receiving_code, registered_code, nhs_number, patient, clinical, "
        "joint, forwarded_at, outcome_due, payable) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,0)",
        (referral_id, message, now, now, referred_on, state, json.dumps(problems), referrer, referrer_email,
         receiving, registered, nhs_number, json.dumps(patient), json.dumps(clinical), joint, forwarded_at,
         outcome_due))


def update_referral(conn, referral_id: int, *, state: str, problems: list, nhs_number: str | None,
                    patient: dict, clinical: dict, receiving: str | None, joint: str | None, now: str,
                    forwarded_at: str | None, outcome_due: str | None) -> None:
    """An incomplete referral after a reply that supplied (some of) what was missing."""
    conn.execute(
        "UPDATE referrals SET state=?, problems=?, nhs_number=?, patient=?, clinical=?, receiving_code=?, "
        "joint=?, updated_at=?, forwarded_at=?, outcome_due=? WHERE id=?",
        (state, json.dumps(problems), nhs_number, json.dumps(patient), json.dumps(clinical), receiving, joint,
         now, forwarded_at, outcome_due, referral_id))


def record_outcome(conn, referral_id: int, *, outcome: str, seen_on: str, message: int, now: str,
                   payable: bool, quarter: str) -> None:
    """The receiving practice's outcome; never over one already recorded."""
    conn.execute(
        "UPDATE referrals SET state='seen', outcome=?, seen_on=?, outcome_message=?, outcome_at=?, "
        "payable=?, quarter=?, updated_at=? WHERE id=? AND outcome IS NULL",
        (outcome, seen_on, message, now, int(payable), quarter, now, referral_id))
