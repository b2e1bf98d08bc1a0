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


MIGRATIONS = [v1_core, v2_spool, v3_claims]
