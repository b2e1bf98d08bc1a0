"""The commit phase: one transaction records a group of decided messages. For each, its final
state, the handler's writes, the case, the reply and notices in the outbox and the audit row
land together or not at all."""
from __future__ import annotations

import json
import logging
import traceback

from bot.mail import outbox
from bot.pipeline.facts import Facts
from bot.pipeline.headers import BounceInfo
from bot.settings.logs import for_the_record, scrub
from handlers.base import Decision
from handlers.contract.references import reference
from store import cases, messages
from store import outbox as outbox_table
from store.db import audit, transaction, utcnow

log = logging.getLogger("lesbot.pipeline")


def commit_group(conn, settings, items) -> list[dict | None]:
    """One transaction for several decided messages; each in its own savepoint,
    so one whose writes fail is recorded as failed without undoing the others."""
    results = []
    with transaction(conn):
        for row, decision, facts, err in items:
            messages.savepoint(conn)
            try:
                results.append(apply(conn, settings, row, decision, facts or Facts(), err))
            except Exception as e:
                messages.undo_to_savepoint(conn)
                log.exception("message %s failed while recording its result", row["id"])
                err = describe(e)
                facts = facts or Facts()
                facts.reply, facts.new_case = None, False
                if facts.case_id == row["id"]:
                    facts.case_id = None
                results.append(apply(conn, settings, row, Decision("failed", decision.kind or "error"), facts, err))
            messages.release_savepoint(conn)
    return results


def apply(conn, settings, row, decision: Decision, facts: Facts, err: str) -> dict | None:
    if messages.state_of(conn, row["id"]) != "received":
        return None      # someone else finished it first
    final = decision.outcome not in ("ignored", "duplicate", "failed")
    case_id = facts.case_id
    if final and facts.new_case:
        cases.open_case(conn, case_id, utcnow(), facts.org_code, decision.case_kind, decision.outcome, row["id"])
    elif final and case_id is not None:
        cases.set_state(conn, case_id, decision.outcome)
    if decision.apply and decision.outcome != "failed":
        decision.apply(conn, case_id)
    if facts.bounce:
        record_bounce(conn, row["id"], facts.bounce)
    reply_info, no_reply = None, facts.no_reply_reason
    if facts.reply and decision.outcome != "failed":
        reply_info, no_reply = outbox.queue(conn, settings, facts.from_addr, *facts.reply, case_id,
                                            message=row["id"])
    if decision.outcome != "failed":
        for to, subject, msgid, raw, notice_case in facts.notices:
            _, refused = outbox.queue(conn, settings, to, subject, msgid, raw, notice_case, message=row["id"])
            if refused:
                audit(conn, "message", row["id"], "notice not sent", "pipeline", {"reason": refused})
    messages.record_outcome(
        conn, row["id"], state=decision.outcome, kind=decision.kind, message_id=facts.message_id,
        from_addr=facts.from_addr, org_code=facts.org_code, content_hash=facts.content_hash,
        body_hash=facts.body_hash, duplicate_of=facts.duplicate_of, case_id=case_id,
        no_reply_reason=no_reply or None,
        errors=json.dumps([{k: for_the_record(str(v)) for k, v in e.items()} for e in decision.errors]),
        error=scrub(err) if err else None,       # a traceback: names kept, numbers masked
        processed_at=utcnow(),
        reading=json.dumps(decision.reading, default=str) if decision.reading else None,
        quick_answer=int(facts.quick_answer))
    audit(conn, "message", row["id"], decision.outcome, "pipeline",
          {"kind": decision.kind, "case": case_id, "duplicate_of": facts.duplicate_of,
           "no_reply": no_reply or None, "error": (err.splitlines() or [None])[0]})
    return {"message_id": facts.message_id or None, "kind": decision.kind, "outcome": decision.outcome,
            "reference": reference(case_id) if case_id else None, "errors": decision.errors,
            "reply": reply_info, "id": row["id"]}


def record_bounce(conn, msg_row: int, info: BounceInfo) -> None:
    """On the first reply the bounce names that lesbot sent: one bounce row per recipient."""
    for ref in info.references:
        out = outbox_table.sent_as(conn, ref)
        if not out:
            continue
        recipients = info.recipients or [(out["to_addr"], "")]
        for addr, status in recipients:
            # 5.x.x is permanent, except a full mailbox (x.2.2), which may clear.
            hard = status.startswith("5") and not status.startswith("5.2.2")
            outbox_table.add_bounce(conn, at=utcnow(), message=msg_row, outbox_id=out["id"],
                                    case_id=out["case_id"], recipient=addr, status=status, hard=hard)
            outbox_table.note_error(conn, out["id"], f"bounced {status}".strip())
            if hard and addr:
                outbox_table.suppress(conn, addr, utcnow(), f"hard bounce {status}", msg_row)
                audit(conn, "address", addr, "suppressed", "pipeline", {"status": status})
        return


def describe(e: Exception) -> str:
    """The error in one line, then the traceback, as recorded on a failed message."""
    return "".join(traceback.format_exception_only(type(e), e)).strip() + "\n" + traceback.format_exc()
