"""What a handler is given and what it gives back.

A handler decides; it does not write. Its Decision may carry an `apply`
callable, which the pipeline runs inside the one transaction that also records
the message's state and queues the reply — so a crash leaves all or nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from bot.mail.attachments import Vetting
from store.directory import Org
from bot.mail.parse import Parsed

OUTCOMES = ("accepted", "partially_accepted", "rejected", "quarantined", "ignored",
            "duplicate", "failed")


@dataclass
class Context:
    settings: Any
    conn: Any                 # read-only use: the decision phase must not write
    message_row: int
    parsed: Parsed
    vetting: Vetting
    org: Org | None
    received_at: datetime     # UTC
    case_id: int | None       # the case this message answers, if any
    # texts read from the message (body with attachments; reading a PDF is slow), so each is read
    # once however many handlers ask: key -> text
    texts: dict[tuple, str] = field(default_factory=dict)
    service: str = "les"      # the inbox's service (routes): les, imsk or training
    # what a person confirmed or corrected when releasing it from quarantine, e.g.
    # {"practice": "K96101"}: a handler takes these over its own reading
    hints: dict = field(default_factory=dict)


@dataclass
class Reply:
    template: str
    context: dict = field(default_factory=dict)
    attachments: list[tuple[str, str, bytes]] = field(default_factory=list)   # (filename, type, data)


@dataclass
class Notice:
    """A message to another directory address about this case (e.g. a referral passed on)."""
    to: str
    template: str
    context: dict = field(default_factory=dict)
    attachments: list[tuple[str, str, bytes]] = field(default_factory=list)
    case_id: int | None = None     # its own case (one referral of several); default the message's


@dataclass
class Decision:
    outcome: str
    kind: str
    errors: list[dict] = field(default_factory=list)
    reply: Reply | None = None
    apply: Callable[[Any, int | None], None] | None = None   # (conn, case_id)
    case_kind: str | None = None       # open a new case of this kind (if not answering one)
    case_id: int | None = None         # or file the message under this existing case
    notices: list[Notice] = field(default_factory=list)
    # What else this decision read and will change (e.g. "nhs:9990356793"): the
    # worker never commits two decisions sharing a key in one group, as for one sender.
    keys: set[str] = field(default_factory=set)
    # What lesbot read and, when it holds the message for a person, the competing
    # candidates ({"practice": ["K96101 Wyke Bridge (letter)", "K96104 ... (Cc)"]}); shown by
    # `lesbot quarantine show`. Never mailed.
    reading: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {self.outcome!r}")


def error(field_name: str, problem: str) -> dict:
    return {"field": field_name, "problem": problem}


def could_say(text: str, *words: str) -> bool:
    """False only when the text certainly holds none of the (lower-case) words, so a case-blind
    pattern that needs one of them cannot match: a str search instead of a regex over the whole
    mail. Non-ASCII text always says True (Unicode case folding matches more than lower())."""
    if not text.isascii():
        return True
    low = text.lower()
    return any(w in low for w in words)
