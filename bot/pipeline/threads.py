"""Which case a message belongs to, and whether it answers mail lesbot sent."""
from __future__ import annotations

from datetime import datetime, timedelta

from bot.pipeline.facts import utc
from bot.pipeline.headers import text_references
from store import cases, messages
from store import outbox as outbox_table


def find_case(conn, p, refs: list[str], org) -> int | None:
    """The case this message belongs to, found before it is classified (issue 10, principle 1):
    In-Reply-To or any References entry naming a message lesbot sent or stored, else an
    [LES-nnnnnn] in the subject or the quoted text of a case the sender's organisation is in."""
    case = case_by_outbox(conn, refs)
    if case is None:
        case = case_by_stored(conn, refs)
    if case is None and org:
        for ref in text_references(p):
            if cases.involves(conn, ref, org.ods_code):
                return ref
    return case


def case_by_outbox(conn, refs: list[str]) -> int | None:
    """The case of the first of these Message-IDs lesbot sent (None if that mail had no case)."""
    for r in refs:
        hit = outbox_table.sent_as(conn, r)
        if hit:
            return hit["case_id"]
    return None


def case_by_stored(conn, refs: list[str]) -> int | None:
    for r in refs:
        case = messages.case_of_message_id(conn, r)
        if case is not None:
            return case
    return None


def answers_us(conn, refs: list[str]) -> bool:
    return any(outbox_table.sent_as(conn, r) for r in refs[:20])


def quick_answer(conn, at: datetime, refs: list[str]) -> bool:
    """Does it answer mail lesbot sent less than a minute before it came?"""
    for r in refs[:20]:
        out = outbox_table.sent_as(conn, r)
        if out and timedelta(0) <= at - utc(out["created_at"]) <= timedelta(seconds=60):
            return True
    return False
