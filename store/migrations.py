"""Numbered schema migrations. Append only: never edit a step that has shipped."""
from __future__ import annotations

import sqlite_utils


def v1_core(db: sqlite_utils.Database) -> None:
    db["messages"].create({
        "id": int,
        "received_at": str,        # UTC ISO; the time that decides deadlines
        "source": str,             # smtp | imap | file
        "source_key": str,         # imap: mailbox/uidvalidity/uid; file: path
        "envelope_from": str,
        "envelope_to": str,
        "raw": bytes,
        "size": int,
        "state": str,              # received, accepted, ..., failed, dropped
        "kind": str,
        "message_id": str,
        "from_addr": str,
        "org_code": str,
        "content_hash": str,
        "duplicate_of": int,
        "case_id": int,
        "released": int,           # a human released it from quarantine
        "no_reply_reason": str,
        "errors": str,             # JSON list of {field, problem}
        "error": str,              # traceback or timeout for failed
        "attempts": int,
        "processed_at": str,
    }, pk="id", not_null={"received_at", "source", "raw", "state"},
        defaults={"state": "received", "attempts": 0, "released": 0})
    db["messages"].create_index(["state", "id"])
    db["messages"].create_index(["content_hash"])
    db["messages"].create_index(["message_id"])
    db["messages"].create_index(["source_key"])

    db["cases"].create({
        "id": int, "created_at": str, "org_code": str, "kind": str, "state": str,
        "first_message": int,
    }, pk="id")

    db["outbox"].create({
        "id": int,
        "created_at": str,
        "message": int,            # the message this answers
        "case_id": int,
        "to_addr": str,
        "envelope_from": str,
        "subject": str,
        "msgid": str,
        "raw": bytes,
        "state": str,              # queued, sent, failed, held
        "attempts": int,
        "next_attempt_at": str,
        "last_error": str,
        "sent_at": str,
    }, pk="id", defaults={"state": "queued", "attempts": 0})
    db["outbox"].create_index(["state", "next_attempt_at"])
    db["outbox"].create_index(["msgid"], unique=True)
    db["outbox"].create_index(["to_addr", "created_at"])

    db["audit"].create({
        "id": int, "at": str, "entity": str, "entity_id": str, "action": str,
        "actor": str, "detail": str,
    }, pk="id")
    db["audit"].create_index(["entity", "entity_id"])

    db["orgs"].create({
        "ods_code": str, "name": str, "kind": str, "services": str, "updated_at": str,
    }, pk="ods_code")
    db["org_emails"].create({"email": str, "ods_code": str}, pk="email",
                            foreign_keys=[("ods_code", "orgs", "ods_code")])

    db["suppressed"].create({
        "email": str, "since": str, "reason": str, "bounce_message": int,
    }, pk="email")

    db["bounces"].create({
        "id": int, "at": str, "message": int, "outbox": int, "case_id": int,
        "recipient": str, "status": str, "hard": int,
    }, pk="id")

    db["imap_state"].create({
        "mailbox": str, "uidvalidity": int, "last_uid": int, "updated_at": str,
    }, pk="mailbox")


def v2_spool(db: sqlite_utils.Database) -> None:
    """Messages taken in over SMTP/IMAP arrive through spool.db; remember which spool row."""
    db["messages"].add_column("spool_id", int)
    db["messages"].create_index(["spool_id"], unique=True)


def v3_claims(db: sqlite_utils.Database) -> None:
    """Claim lines: counts per practice, service and month; never patient details."""
    db["claims"].create({
        "id": int,
        "created_at": str,
        "message": int,
        "case_id": int,
        "org_code": str,
        "service": str,
        "month": str,              # YYYY-MM of the activity (first month of a quarter)
        "count": int,
        "tariff_pence": int,
        "amount_pence": int,
        "run": str,                # YYYY-MM payment run
        "state": str,              # accepted, replaced, rejected
        "reason": str,             # for rejected lines
        "source": str,             # where in the email the line was
        "replaces": int,
        "replaced_by": int,
        "claimed_by": str,
    }, pk="id")
    db["claims"].create_index(["org_code", "service", "month", "state"])
    db["claims"].create_index(["run", "state"])
    db["payment_runs"].create({"run": str, "closed_at": str, "closed_by": str}, pk="run")


def v4_referrals(db: sqlite_utils.Database) -> None:
    """Referrals, the denosumab register, doses, untoward events, practices' returns.

    messages gets AUTOINCREMENT so that reference numbers can be reserved past the
    last message (an email referring several patients needs one reference each)."""
    conn = db.conn
    table_sql = conn.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name='messages'").fetchone()[0]
    index_sql = [r[0] for r in conn.execute(
        "SELECT sql FROM sqlite_master WHERE type='index' AND tbl_name='messages' AND sql IS NOT NULL")]
    new_sql = table_sql.replace('"id" INTEGER PRIMARY KEY', '"id" INTEGER PRIMARY KEY AUTOINCREMENT', 1)
    new_sql = new_sql.replace('CREATE TABLE "messages"', 'CREATE TABLE "messages_v4"', 1)
    conn.execute(new_sql)
    conn.execute("INSERT INTO messages_v4 SELECT * FROM messages")
    conn.execute("DROP TABLE messages")
    conn.execute("ALTER TABLE messages_v4 RENAME TO messages")
    for sql in index_sql:
        conn.execute(sql)
    conn.execute("INSERT INTO sqlite_sequence (name, seq) "
                 "SELECT 'messages', max(coalesce((SELECT max(id) FROM messages), 0), "
                 "coalesce((SELECT max(id) FROM cases), 0))")

    # A practice named in a letter only by its address is matched on its postcode.
    db["orgs"].add_column("postcodes", str)

    # Other organisations taking part in a case (the receiving practice of a
    # referral), so that their replies with the reference find it.
    db["case_orgs"].create({"case_id": int, "ods_code": str}, pk=("case_id", "ods_code"))

    db["referrals"].create({
        "id": int,                  # the case id: LES-nnnnnn
        "message": int,
        "created_at": str,
        "updated_at": str,
        "referred_on": str,         # London date the referral reached us
        "state": str,               # incomplete, forwarded, not_eligible, seen
        "problems": str,            # JSON [{field, problem}] while incomplete
        "referrer_code": str,
        "referrer_email": str,
        "receiving_code": str,
        "registered_code": str,
        "nhs_number": str,          # 10 digits
        "patient": str,             # JSON: name, dob, address, telephone, texts as written
        "clinical": str,            # JSON: joint, reason, history
        "joint": str,
        "forwarded_at": str,
        "outcome_due": str,         # chase the receiving practice after this date
        "outcome": str,             # injection, no_injection, did_not_attend
        "seen_on": str,
        "outcome_message": int,
        "outcome_at": str,
        "payable": int,             # a no-injection consultation for a non-registered patient
        "quarter": str,             # YYYYQn of seen_on
    }, pk="id")
    db["referrals"].create_index(["receiving_code", "quarter"])
    db["referrals"].create_index(["nhs_number"])
    db["referrals"].create_index(["state", "outcome_due"])

    db["returns"].create({
        "id": int, "message": int, "case_id": int, "received_at": str, "org_code": str,
        "service": str, "kind": str,  # monitoring (a quarter) or audit (a year)
        "period": str, "stated": str, "recorded": str, "differences": str,
    }, pk="id")
    db["returns"].create_index(["org_code", "kind", "period"])

    db["register"].create({
        "id": int,
        "nhs_number": str,
        "practice_code": str,
        "hospital_code": str,
        "patient": str,             # JSON: name, dob, address
        "diagnosis": str,
        "plan": str,
        "initiated_on": str,
        "first_dose_on": str,
        "last_dose_on": str,
        "next_due": str,            # empty once recalls stop
        "status": str,              # active, left, died, stopped
        "status_on": str,
        "status_note": str,
        "case_id": int,
        "letter_message": int,
        "created_at": str,
        "updated_at": str,
    }, pk="id")
    db["register"].create_index(["nhs_number"], unique=True)
    db["register"].create_index(["practice_code", "status", "next_due"])
    db["register"].create_index(["status", "next_due"])      # recalls due, across practices
    db["doses"].create({
        "id": int, "register_id": int, "given_on": str, "source": str, "message": int,
        "recorded_at": str,
    }, pk="id")
    db["doses"].create_index(["register_id", "given_on"], unique=True)
    db["events"].create({
        "id": int, "message": int, "case_id": int, "org_code": str, "register_id": int,
        "kind": str, "event_on": str, "reported_at": str, "late": int, "hours": float,
        "forwarded_to": str,
    }, pk="id")


def v5_schedule(db: sqlite_utils.Database) -> None:
    """What the scheduler sent, so nothing is sent twice: reminders, digests, job runs."""
    db["reminders"].create({
        "id": int, "kind": str, "key": str, "org_code": str, "case_id": int, "msgid": str,
        "state": str,            # sent (queued in the outbox) or refused (with why)
        "why": str, "sent_at": str,
    }, pk="id")
    db["reminders"].create_index(["kind", "key"], unique=True)
    db["digests"].create({
        "id": int, "period": str, "key": str, "since": str, "created_at": str, "case_id": int,
        "msgid": str, "state": str, "why": str,
    }, pk="id")
    db["digests"].create_index(["period", "key"], unique=True)
    db["job_runs"].create({
        "id": int, "job": str, "due_at": str, "started_at": str, "finished_at": str, "error": str,
    }, pk="id")
    db["job_runs"].create_index(["job", "due_at"])
    db["outbox"].create_index(["case_id"])
    # the digest counts what was processed in a window without reading raw mail
    db["messages"].create_index(["processed_at", "kind", "state"])


def v6_services(db: sqlite_utils.Database) -> None:
    """The other services: IMSK referral triage, training-LES applications."""
    db["imsk_referrals"].create({
        "id": int,                 # the case id
        "message": int, "received_at": str, "kind": str,   # gp or self (a self-referral the service records)
        "referrer_code": str, "registered_code": str, "nhs_number": str, "patient": str,
        "specialty": str, "mecfs": int, "red_flags": int, "urgency": str, "clinical": str,
        "state": str,              # incomplete, returned, awaiting_triage, triaged, discharged
        "problems": str, "return_reason": str,
        "triage_due": str, "triaged_at": str, "decision": str, "first_appointment": str,
        "triage_ok": int, "appointment_ok": int, "redirect_ok": int,
        "followup_of": int,        # a return within the self-referral window: not a first appointment
        "discharged_on": str, "transfers": str,
    }, pk="id")
    db["imsk_referrals"].create_index(["state", "triage_due"])
    db["imsk_referrals"].create_index(["nhs_number"])
    db["imsk_referrals"].create_index(["referrer_code", "received_at"])
    db["training_applications"].create({
        "id": int, "message": int, "org_code": str, "applicant_email": str, "received_at": str,
        "state": str,              # incomplete, with_panel, approved, declined
        "text": str, "missing": str, "gpwsi": str, "decided_at": str, "reasons": str,
        "commitment_years": int, "training_completed_on": str, "commitment_ends": str,
    }, pk="id")


def v7_reading(db: sqlite_utils.Database) -> None:
    """content_hash now holds a message's identity (Message-ID + sender + content);
    body_hash its content alone, to know a resend under a new Message-ID."""
    db["messages"].add_column("body_hash", str)
    db["messages"].create_index(["body_hash", "from_addr"])
    # what lesbot read (fields, candidates) when it held a message for a person, and what the
    # person confirmed or corrected before releasing it (e.g. {"practice": "K96101"})
    db["messages"].add_column("reading", str)
    db["messages"].add_column("hints", str)
    # 1: it answered a mail lesbot sent within a minute (how an automatic responder looks)
    db["messages"].add_column("quick_answer", int)
    db["messages"].create_index(["from_addr", "quick_answer", "received_at"])
    # which spool row it came from, as "<spool file's generation>:<row id>": a spool.db deleted and
    # made anew starts its ids again, and must never match messages moved from the old one
    db["messages"].add_column("spool_key", str)
    db["messages"].create_index(["spool_key"], unique=True)


def v8_directory_version(db: sqlite_utils.Database) -> None:
    """A counter that any change to the directory (orgs, org_emails) moves on, from any connection
    or tool: readers keep the directory prepared in memory and ask only this one number."""
    db.execute("CREATE TABLE directory_version (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL)")
    db.execute("INSERT INTO directory_version (id, n) VALUES (1, 0)")
    for table in ("orgs", "org_emails"):
        for event in ("INSERT", "UPDATE", "DELETE"):
            db.execute(f"CREATE TRIGGER {table}_{event.lower()}_version AFTER {event} ON {table} "
                       "BEGIN UPDATE directory_version SET n = n + 1 WHERE id = 1; END")


def v9_relay_handover(db: sqlite_utils.Database) -> None:
    """What the mailer knows of a reply it claimed for the relay: `handing` 1 once it may have
    been handed over, and the machine's boot (`claimed_boot`) when it was claimed, since marks made
    without an fsync survive a killed process but not a power cut."""
    db["outbox"].add_column("handing", int, not_null_default=0)
    db["outbox"].add_column("claimed_boot", str)


MIGRATIONS = [v1_core, v2_spool, v3_claims, v4_referrals, v5_schedule, v6_services, v7_reading,
              v8_directory_version, v9_relay_handover]
