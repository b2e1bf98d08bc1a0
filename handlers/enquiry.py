"""The fallback: a known sender whose mail no handler understands.

They get a reply explaining what the inbox accepts; the message is recorded
(state rejected) and shown to the contract team.
"""
from handlers.base import Context, Decision, Reply

name = "enquiry"


def match(ctx: Context) -> bool:
    return True


def handle(ctx: Context) -> Decision:
    return Decision(outcome="rejected", kind="enquiry", case_kind="enquiry",
                    reply=Reply("help", {"errors": []}))
