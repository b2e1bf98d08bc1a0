"""The reads behind the contract team's digest, its needs-a-human list and its chart, and the
digest's sent-once record (digests, UNIQUE on period + key). SINCE/UNTIL are UTC ISO strings,
a half-open window [since, until)."""
from __future__ import annotations

import sqlite3

from store.db import utcnow


def org_names(conn: sqlite3.Connection) -> dict[str, str]:
    return {r[0]: r[1] for r in conn.execute("SELECT ods_code, name FROM orgs")}


# -- the digest ------------------------------------------------------------------------------
def last_daily_digest(conn: sqlite3.Connection, before: str) -> str | None:
    """When the last daily digest sent before BEFORE was made."""
    return conn.execute("SELECT max(created_at) FROM digests WHERE period='day' AND state='sent' AND created_at<?",
                        (before,)).fetchone()[0]


def digest_record(conn: sqlite3.Connection, period: str, key: str) -> sqlite3.Row | None:
    return conn.execute("SELECT state, case_id, why FROM digests WHERE period=? AND key=?",
                        (period, key)).fetchone()


def messages_by_kind(conn: sqlite3.Connection, since: str, until: str) -> list[sqlite3.Row]:
    """(kind, state, count) of the messages processed in the window."""
    return conn.execute("SELECT kind, state, count(*) FROM messages WHERE processed_at>=? AND processed_at<? "
                        "GROUP BY kind, state", (since, until)).fetchall()


def run_lines(conn: sqlite3.Connection, run: str) -> list[sqlite3.Row]:
    """Accepted claims in payment run RUN (YYYY-MM), per practice and service."""
    return conn.execute(
        "SELECT org_code, service, sum(count) n, sum(amount_pence) pence FROM claims WHERE run=? AND state='accepted' "
        "GROUP BY org_code, service ORDER BY org_code, service", (run,)).fetchall()


def rejected_claims(conn: sqlite3.Connection, since: str, until: str) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT org_code, reason, count(*) n FROM claims WHERE state='rejected' AND created_at>=? AND created_at<? "
        "GROUP BY org_code, reason ORDER BY org_code", (since, until)).fetchall()


def accepted_claims(conn: sqlite3.Connection, since: str, until: str) -> list[sqlite3.Row]:
    """(org_code, created_at, run) of the claim lines accepted in the window."""
    return conn.execute("SELECT org_code, created_at, run FROM claims WHERE state='accepted' AND created_at>=? "
                        "AND created_at<?", (since, until)).fetchall()


def overdue_referrals(conn: sqlite3.Connection, day: str) -> list[sqlite3.Row]:
    """Referrals still waiting for an outcome that was due before DAY."""
    return conn.execute("SELECT id, receiving_code, forwarded_at FROM referrals WHERE state='forwarded' "
                        "AND outcome_due<?", (day,)).fetchall()


def overdue_recalls(conn: sqlite3.Connection, day: str) -> list[sqlite3.Row]:
    """(practice_code, patients, oldest next_due) of active register entries due before DAY."""
    return conn.execute("SELECT practice_code, count(*), min(next_due) FROM register WHERE status='active' "
                        "AND next_due<? GROUP BY practice_code ORDER BY practice_code", (day,)).fetchall()


def late_events(conn: sqlite3.Connection, since: str, until: str) -> list[sqlite3.Row]:
    return conn.execute("SELECT org_code, kind, hours, case_id FROM events WHERE late=1 AND reported_at>=? "
                        "AND reported_at<? ORDER BY id", (since, until)).fetchall()


def imsk_by_referrer(conn: sqlite3.Connection, since: str, until: str) -> list[sqlite3.Row]:
    """GP referrals to IMSK received in the window, per referring practice, with the standards' counts."""
    return conn.execute(
        "SELECT referrer_code, count(*) n, sum(state='returned') returned, "
        "sum(triage_ok IS NOT NULL) triaged, sum(triage_ok=1) triaged_ok, "
        "sum(appointment_ok IS NOT NULL) appts, sum(appointment_ok=1) appts_ok FROM imsk_referrals "
        "WHERE kind='gp' AND received_at>=? AND received_at<? GROUP BY referrer_code ORDER BY referrer_code",
        (since, until)).fetchall()


def imsk_returned(conn: sqlite3.Connection, since: str, until: str) -> list[sqlite3.Row]:
    """(return_reason, count) of IMSK referrals returned in the window."""
    return conn.execute("SELECT return_reason, count(*) FROM imsk_referrals WHERE state='returned' "
                        "AND received_at>=? AND received_at<? GROUP BY return_reason", (since, until)).fetchall()


def imsk_awaiting_triage(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM imsk_referrals WHERE state='awaiting_triage'").fetchone()[0]


def approved_training(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute("SELECT org_code, gpwsi, commitment_years, training_completed_on, commitment_ends "
                        "FROM training_applications WHERE state='approved' ORDER BY id").fetchall()


def training_pending(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM training_applications WHERE state IN "
                        "('incomplete','with_panel')").fetchone()[0]


def messages_in_state(conn: sqlite3.Connection, state: str) -> int:
    return conn.execute("SELECT count(*) FROM messages WHERE state=?", (state,)).fetchone()[0]


def outbox_not_delivered(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM outbox WHERE state IN ('failed','held','unknown')").fetchone()[0]


def bounces(conn: sqlite3.Connection, since: str, until: str) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT b.recipient, b.status, b.hard, c.kind FROM bounces b LEFT JOIN cases c ON c.id=b.case_id "
        "WHERE b.at>=? AND b.at<? ORDER BY b.id", (since, until)).fetchall()


def refused_reminders(conn: sqlite3.Connection, since: str, until: str) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT kind, org_code, why, count(*) n FROM reminders WHERE state='refused' AND sent_at>=? AND sent_at<? "
        "GROUP BY kind, org_code, why", (since, until)).fetchall()


# the digest's writes: call inside the transaction that queues it
def add_digest_case(conn: sqlite3.Connection, case_id: int) -> None:
    conn.execute("INSERT INTO cases (id, created_at, org_code, kind, state) VALUES (?,?,NULL,'digest','sent')",
                 (case_id, utcnow()))


def record_digest(conn: sqlite3.Connection, period: str, key: str, since: str, created_at: str, case_id: int,
                  msgid: str | None, refused: str | None) -> None:
    """Raises sqlite3.IntegrityError if this period's digest was recorded already."""
    conn.execute("INSERT INTO digests (period, key, since, created_at, case_id, msgid, state, why) "
                 "VALUES (?,?,?,?,?,?,?,?)", (period, key, since, created_at, case_id, msgid,
                                              "refused" if refused else "sent", refused or None))


# -- what needs a human ----------------------------------------------------------------------
def capped_replies(conn: sqlite3.Connection, reason: str, since: str | None = None, until: str | None = None,
                   message_ids: list[int] | None = None) -> list[sqlite3.Row]:
    """(from_addr, org_code, count) of messages whose reply was held back for REASON (a prefix),
    processed in the window or among MESSAGE_IDS, most first."""
    where, args = ["no_reply_reason LIKE ?"], [reason + "%"]
    if since:
        where.append("processed_at>=?")
        args.append(since)
    if until:
        where.append("processed_at<?")
        args.append(until)
    if message_ids is not None:
        where.append(f"id IN ({','.join('?' * len(message_ids))})")
        args += list(message_ids)
    return conn.execute("SELECT from_addr, org_code, count(*) FROM messages WHERE " + " AND ".join(where) +
                        " GROUP BY from_addr, org_code ORDER BY count(*) DESC, from_addr", args).fetchall()


def _count_and_first(conn, sql: str, args: tuple, limit: int) -> tuple[int, list[dict]]:
    # the count and the first LIMIT rows only: a flood of spam in quarantine costs no more than this
    n = conn.execute(f"SELECT count(*) FROM ({sql})", args).fetchone()[0]
    return n, [dict(r) for r in conn.execute(f"{sql} LIMIT {int(limit)}", args)]


def unplaced_messages(conn: sqlite3.Connection, since: str, until: str, limit: int) -> tuple[int, list[dict]]:
    """Enquiries, and claim-form requests refused, processed in the window."""
    return _count_and_first(
        conn, "SELECT id, case_id, received_at, org_code, from_addr, envelope_from, kind, reading, no_reply_reason "
              "FROM messages WHERE processed_at>=? AND processed_at<? AND (kind='enquiry' OR "
              "(kind='template_request' AND state='rejected')) ORDER BY id", (since, until), limit)


def quarantined_messages(conn: sqlite3.Connection, limit: int) -> tuple[int, list[dict]]:
    return _count_and_first(
        conn, "SELECT id, case_id, received_at, org_code, from_addr, envelope_from, kind FROM messages "
              "WHERE state='quarantined' ORDER BY id", (), limit)


def failed_messages(conn: sqlite3.Connection, limit: int) -> tuple[int, list[dict]]:
    # a message that failed while being decided has no sender recorded: its head (From header) says
    return _count_and_first(
        conn, "SELECT id, case_id, received_at, org_code, from_addr, envelope_from, kind, error, "
              "CASE WHEN coalesce(from_addr, '')='' THEN substr(raw, 1, 16384) END head FROM messages "
              "WHERE state='failed' ORDER BY id", (), limit)


def outgoing_not_delivered(conn: sqlite3.Connection, limit: int) -> tuple[int, list[dict]]:
    """Outbox rows failed, held or unknown, shaped like the message rows (to_addr as from_addr)."""
    return _count_and_first(
        conn, "SELECT o.id, o.case_id, o.created_at received_at, NULL org_code, o.to_addr from_addr, "
              "NULL envelope_from, o.state, c.kind FROM outbox o LEFT JOIN cases c ON c.id=o.case_id "
              "WHERE o.state IN ('failed','held','unknown') ORDER BY o.id", (), limit)


# -- the chart -------------------------------------------------------------------------------
def accepted_pence_by_service_month(conn: sqlite3.Connection, first_month: str) -> list[sqlite3.Row]:
    """(service, month, pence) of accepted claims for FIRST_MONTH (YYYY-MM) onwards."""
    return conn.execute("SELECT service, month, sum(amount_pence) FROM claims WHERE state='accepted' AND month>=? "
                        "GROUP BY service, month", (first_month,)).fetchall()
