"""The rule chain: what lesbot settles about a message before any service's handler reads it.

Each rule has a name, a one-line description and a check(incoming) that returns a Decision,
which ends the chain, or None: the next rule. Pipeline.decide runs RULES in order, then the
handlers. Two steps only note facts for the rules after them and never decide ("sender",
"thread"); their place in the list is where that is learned.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

from bot.pipeline import headers, threads
from bot.pipeline.facts import Incoming
from handlers.base import Decision, Reply, error
from handlers.contract.reading.courtesy import is_courtesy
from handlers.contract.references import reference
from store import messages
from store.directory import org_for

LOOP_HEADER = "X-Lesbot-Loop"
QUICK_ANSWERS = 2        # earlier answers within a minute, in an hour, before an address is held


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    check: Callable[[Incoming], Decision | None]


def rule(name: str, description: str):
    def make(check) -> Rule:
        return Rule(name, description, check)
    return make


def loop_reason(p, settings) -> str:
    if p.header(LOOP_HEADER):
        return f"carries our {LOOP_HEADER} header"
    if p.message_id.lower().endswith("@" + settings.message_id_domain.lower()):
        return "has a Message-ID at lesbot's own domain"
    if p.from_addr in settings.own_addresses:
        return "is from lesbot's own address"
    return ""


@rule("duplicate", "the same message again (same identity): recorded with a pointer to the first, never answered")
def duplicate(m: Incoming) -> Decision | None:
    first = messages.first_with_identity(m.conn, m.facts.content_hash, m.row["id"])
    if not first:
        return None
    m.facts.duplicate_of, m.facts.case_id = first["id"], first["case_id"]
    return Decision("duplicate", "duplicate")


@rule("resent", "the same words from the same sender within a day, already acted on: told where the first went")
def resent(m: Incoming) -> Decision | None:
    f = m.facts
    since = (m.received_at - timedelta(days=1)).isoformat()
    first = messages.first_acted_on(m.conn, f.body_hash, f.from_addr, m.row["id"], since)
    if not first:
        return None
    f.duplicate_of, f.case_id = first["id"], first["case_id"]
    org = m.org
    f.org_code, f.org_name = (org.ods_code, org.name) if org else (None, "")
    f.no_reply_reason = headers.machine_reason(m.parsed, m.envelope_from)
    return Decision("duplicate", "duplicate", reply=Reply("already_received", {
        "first_reference": reference(first["case_id"])}))


@rule("oversize", "too big to download (IMAP): its headers held for a person")
def oversize(m: Incoming) -> Decision | None:
    if "x-lesbot-truncated" not in m.parsed.headers:
        return None
    size = m.parsed.header("x-lesbot-truncated")
    return Decision("quarantined", "oversize", [error(
        "message", f"{size} bytes, over the {m.settings.limits.max_message_bytes} byte limit; not downloaded")])


@rule("loop", "lesbot's own mail coming back (loop header, its Message-ID domain, its address): ignored")
def loop(m: Incoming) -> Decision | None:
    why = loop_reason(m.parsed, m.settings)
    return Decision("ignored", "loop", [error("message", why)]) if why else None


@rule("bounce", "a non-delivery report: ignored, noted on the reply it returns; a hard bounce suppresses the address")
def bounce(m: Incoming) -> Decision | None:
    why = headers.bounce_reason(m.parsed, m.envelope_from)
    if not why:
        return None
    m.facts.bounce = headers.bounce_details(m.parsed)
    m.facts.case_id = threads.case_by_outbox(m.conn, m.facts.bounce.references)
    return Decision("ignored", "bounce", [error("message", why)])


@rule("read_receipt", "a read or delivery receipt: ignored, recorded against the case it answers")
def read_receipt(m: Incoming) -> Decision | None:
    why = headers.receipt_reason(m.parsed)
    if not why:
        return None
    m.facts.case_id = threads.case_by_outbox(m.conn, m.facts.references)
    return Decision("ignored", "read_receipt", [error("message", why)])


@rule("auto_reply", "an out-of-office or other automatic answer: ignored, recorded against the case it answers")
def auto_reply(m: Incoming) -> Decision | None:
    why = headers.auto_reply_reason(m.parsed, threads.answers_us(m.conn, m.facts.references))
    if not why:
        return None
    m.facts.case_id = threads.case_by_outbox(m.conn, m.facts.references)
    return Decision("ignored", "auto_reply", [error("message", why)])


@rule("auto_responder", "an address answering lesbot within a minute three times in an hour: held, not answered")
def auto_responder(m: Incoming) -> Decision | None:
    m.facts.quick_answer = threads.quick_answer(m.conn, m.received_at, m.facts.references)
    if not m.facts.quick_answer:
        return None
    hour_ago = (m.received_at - timedelta(hours=1)).isoformat()
    if messages.quick_answers_since(m.conn, m.parsed.from_addr, m.row["id"], hour_ago) < QUICK_ANSWERS:
        return None
    # a program answering every reply at once: stop the ping-pong before it spends the
    # practice's daily replies; a person looks at the address
    return Decision("quarantined", "auto_responder", [error(
        "from", f"answered lesbot's mail within a minute {QUICK_ANSWERS + 1} times in an hour: an "
                "automatic responder? Held, not answered")])


@rule("sender", "notes the sender's organisation from the directory; never decides")
def sender(m: Incoming) -> Decision | None:
    if m.org:
        m.facts.org_code, m.facts.org_name = m.org.ods_code, m.org.name
    return None


@rule("list", "list mail (List-Id, List-Unsubscribe, Precedence) from outside the directory: ignored")
def list_mail(m: Incoming) -> Decision | None:
    if m.released or m.org is not None:
        return None
    why = headers.list_reason(m.parsed)
    # a bulletin from outside the directory: nothing to hold, nothing to answer
    return Decision("ignored", "list", [error("message", why)]) if why else None


@rule("unknown_sender", "a sender not in the directory: held for a person")
def unknown_sender(m: Incoming) -> Decision | None:
    if m.released or m.org is not None:
        return None
    return Decision("quarantined", "unknown_sender",
                    [error("from", f"{m.parsed.from_addr or 'no sender'} is not in the directory")])


@rule("spoofed", "a forged From (envelope sender not vouched for) or failing Authentication-Results: held")
def spoofed(m: Incoming) -> Decision | None:
    if m.released:
        return None
    why = headers.spoof_reason(m.parsed, m.envelope_from, m.settings,
                               org_of=lambda a: getattr(org_for(m.conn, a), "ods_code", None))
    return Decision("quarantined", "spoofed", [error("from", why)]) if why else None


@rule("malformed", "MIME parts nested absurdly deep: held")
def malformed(m: Incoming) -> Decision | None:
    deep = [d for d in m.parsed.defects if d.startswith("MIME parts nested")]
    if deep and not m.released:
        return Decision("quarantined", "malformed", [error("message", deep[0])])
    return None


@rule("suspicious_attachment", "an attachment that may be malicious: held")
def suspicious_attachment(m: Incoming) -> Decision | None:
    vetting = m.vetting
    if vetting.dangerous and not m.released:
        return Decision("quarantined", "suspicious_attachment", [error(n, r) for n, r in vetting.dangerous])
    return None


@rule("thread", "notes the case the message belongs to and whether mail from it may be answered; never decides")
def thread(m: Incoming) -> Decision | None:
    m.facts.no_reply_reason = headers.machine_reason(m.parsed, m.envelope_from)
    m.facts.case_id = threads.find_case(m.conn, m.parsed, m.facts.references, m.org)
    return None


@rule("attachments_refused", "attachments lesbot does not take: rejected, the sender told which and why")
def attachments_refused(m: Incoming) -> Decision | None:
    refused = m.vetting.refused
    if not refused:
        return None
    return Decision("rejected", "attachments", [error(n, r) for n, r in refused],
                    reply=Reply("attachments_refused"), case_kind="attachments")


@rule("thanks", "a courtesy reply in a case's thread with nothing to act on: recorded against the case, never answered")
def thanks(m: Incoming) -> Decision | None:
    if m.facts.case_id is not None and not m.vetting.kept and is_courtesy(m.parsed.new_text):
        return Decision("ignored", "thanks", [error("message", "a courtesy reply with nothing to act on")],
                        case_id=m.facts.case_id)
    return None


# The order is the meaning: a duplicate before anything else, machine mail before the sender
# is looked at, who sent it before what it carries, then the thread, then what is in it.
RULES: list[Rule] = [
    duplicate, resent, oversize, loop, bounce, read_receipt, auto_reply, auto_responder,
    sender, list_mail, unknown_sender, spoofed, malformed, suspicious_attachment,
    thread, attachments_refused, thanks,
]
