"""The SMTP door (aiosmtpd). Accepts mail for our addresses, stores it, says 250.

Nothing but the durable write happens before 250: parsing and handling run
later in the processor thread, so a slow handler never slows acceptance.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from bot.doors.smtp_data import Session

log = logging.getLogger("lesbot.smtp")


class InboxHandler:
    def __init__(self, settings, intake):
        self.accept = {a.lower() for a in settings.inboxes} | {settings.bounce_address.lower()}
        self.intake = intake

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() not in self.accept:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        try:
            new_id = await self.intake.store_async(
                raw, "smtp", datetime.now(timezone.utc), null_sender(envelope.mail_from),
                [a.lower() for a in envelope.rcpt_tos])
        except Exception as e:  # disk full, locked too long: ask the sender to retry
            log.error("could not store a message: %s", e)
            return "451 4.3.0 Temporary failure storing the message; try again later"
        return f"250 2.0.0 OK stored as {new_id}"


def null_sender(mail_from: str | None) -> str:
    """The envelope sender as a bare address; `MAIL FROM:<>` (a bounce) arrives as "<>"."""
    addr = (mail_from or "").strip()
    if addr.startswith("<") and addr.endswith(">"):
        addr = addr[1:-1].strip()
    return addr


def factory(settings, intake):
    handler = InboxHandler(settings, intake)

    def make():
        # hostname= avoids a DNS lookup per connection.
        return Session(handler, hostname="lesbot", data_size_limit=settings.limits.max_message_bytes,
                       enable_SMTPUTF8=True, decode_data=False, ident="lesbot")
    return make
