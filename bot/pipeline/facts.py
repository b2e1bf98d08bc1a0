"""One stored message while it is decided (Incoming), and what deciding learned about it (Facts)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import hashlib

from bot.mail.parse import body_digest, content_hash, parse
from bot.pipeline.headers import BounceInfo, references_of
from store.directory import org_for

_UNSET = object()


@dataclass
class Facts:
    """What decide learned about the message, recorded beside the outcome."""
    message_id: str = ""
    from_addr: str = ""
    org_code: str | None = None
    org_name: str = ""
    content_hash: str = ""                          # the message's identity (mailparse.identity)
    body_hash: str = ""
    duplicate_of: int | None = None
    case_id: int | None = None
    no_reply_reason: str = ""
    references: list[str] = field(default_factory=list)
    bounce: BounceInfo | None = None
    new_case: bool = False
    reply: tuple[str, str, bytes] | None = None    # (subject, Message-ID, raw), rendered
    notices: list = field(default_factory=list)     # [(to, subject, Message-ID, raw)], rendered
    quick_answer: bool = False                      # answered our mail within a minute
    service: str = "les"                            # which inbox it came to (routes)
    inbox: str = ""


class Incoming:
    """A stored message as the rules see it: its row, its parse, the decide phase's read-only
    connection, and the Facts the rules fill in. The sender's organisation and the attachments'
    vetting are looked up once, when a rule first asks."""

    def __init__(self, settings, conn, row, vetter):
        self.settings, self.conn, self.row, self._vetter = settings, conn, row, vetter
        self.parsed = p = parse(row["raw"])
        self.envelope_from = row["envelope_from"]
        self.released = bool(row["released"])      # a person let it through quarantine
        self._org, self._vetting = _UNSET, None
        f = self.facts = Facts()
        f.message_id, f.from_addr = p.message_id, p.from_addr
        digest = body_digest(p)                 # hashing the whole text: once, for both hashes
        f.content_hash = identity_with(p, row["raw"], digest)
        f.references = references_of(p)
        f.service, f.inbox = settings.route(
            (row["envelope_to"] or "").split(",") + p.addresses("delivered-to", "x-original-to", "to", "cc"))
        f.body_hash = f"{f.service}:{digest}"      # the same words to another service are new

    @property
    def received_at(self) -> datetime:
        return utc(self.row["received_at"])

    @property
    def org(self):
        """The sender's organisation in the directory, or None."""
        if self._org is _UNSET:
            self._org = org_for(self.conn, self.parsed.from_addr)
        return self._org

    @property
    def vetting(self):
        if self._vetting is None:
            self._vetting = self._vetter.vet(self.parsed.attachments)
        return self._vetting


def identity_with(p, raw: bytes, digest: str) -> str:
    """bot.mail.parse.identity(p, raw), given body_digest(p) already worked out (the same formula:
    tests/contract/test_incoming_digest.py holds them equal)."""
    if not p.message_id:
        return content_hash(raw)
    key = f"{p.message_id.lower()}\n{p.from_addr}\n{digest}"
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()


def utc(value: str) -> datetime:
    d = datetime.fromisoformat(value)
    return d if d.tzinfo else d.replace(tzinfo=timezone.utc)
