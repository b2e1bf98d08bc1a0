"""Putting a rendered message in the outbox: replies, notices, reminders and digests all pass here."""
from __future__ import annotations

from datetime import datetime, timezone

from handlers.contract.periods import LONDON
from store.db import audit, utcnow


def queue(conn, settings, to: str, subject_line: str, msgid: str, raw: bytes, case_id: int | None,
          message: int | None = None, actor: str = "pipeline", cap: bool = True) -> tuple[dict | None, str]:
    """Queue one message inside the caller's transaction, unless the address or today's
    count forbids it: (what was queued, '') or (None, why not).

    Only directory addresses (and the operator's trusted ones) ever get mail from lesbot:
    patient details must not reach an address nobody has vetted."""
    to = to.lower()
    if to not in settings.trusted_addresses and \
            not conn.execute("SELECT 1 FROM org_emails WHERE email=?", (to,)).fetchone():
        return None, "not a directory address"
    limit = settings.limits.replies_per_sender_per_day
    if cap:
        day_start = datetime.now(LONDON).replace(hour=0, minute=0, second=0, microsecond=0)
        sent_today = conn.execute("SELECT count(*) FROM outbox WHERE to_addr=? AND created_at>=?",
                                  (to, day_start.astimezone(timezone.utc).isoformat())).fetchone()[0]
        if sent_today >= limit:
            return None, f"daily reply cap of {limit} reached for this address"
    held = conn.execute("SELECT reason FROM suppressed WHERE email=?", (to,)).fetchone()
    cur = conn.execute(
        "INSERT INTO outbox (created_at, message, case_id, to_addr, envelope_from, subject, msgid, raw, "
        "state, next_attempt_at, last_error) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (utcnow(), message, case_id, to, settings.bounce_address, subject_line, msgid, raw,
         "held" if held else "queued", utcnow(), f"held: {held[0]}" if held else None))
    audit(conn, "outbox", cur.lastrowid, "held" if held else "queued", actor, {"message": message})
    return {"to": to, "subject": subject_line}, ""
