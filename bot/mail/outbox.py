"""Putting a rendered message in the outbox: replies, notices, reminders and digests all pass here."""
from __future__ import annotations

from datetime import datetime, timezone

from handlers.contract.periods import LONDON
from store import outbox as outbox_table
from store.db import audit, utcnow


def queue(conn, settings, to: str, subject_line: str, msgid: str, raw: bytes, case_id: int | None,
          message: int | None = None, actor: str = "pipeline", cap: bool = True) -> tuple[dict | None, str]:
    """Queue one message inside the caller's transaction, unless the address or today's
    count forbids it: (what was queued, '') or (None, why not).

    Only directory addresses (and the operator's trusted ones) ever get mail from lesbot:
    patient details must not reach an address nobody has vetted."""
    to = to.lower()
    if to not in settings.trusted_addresses and not outbox_table.is_directory_address(conn, to):
        return None, "not a directory address"
    limit = settings.limits.replies_per_sender_per_day
    if cap:
        day_start = datetime.now(LONDON).replace(hour=0, minute=0, second=0, microsecond=0)
        sent_today = outbox_table.count_since(conn, to, day_start.astimezone(timezone.utc).isoformat())
        if sent_today >= limit:
            return None, f"daily reply cap of {limit} reached for this address"
    held = outbox_table.suppression(conn, to)
    new_id = outbox_table.add(
        conn, created_at=utcnow(), message=message, case_id=case_id, to_addr=to,
        envelope_from=settings.bounce_address, subject=subject_line, msgid=msgid, raw=raw,
        state="held" if held else "queued", next_attempt_at=utcnow(),
        last_error=f"held: {held[0]}" if held else None)
    audit(conn, "outbox", new_id, "held" if held else "queued", actor, {"message": message})
    return {"to": to, "subject": subject_line}, ""
