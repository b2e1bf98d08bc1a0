"""The case and the reply, settled while deciding (no lock held): the commit only records them."""
from __future__ import annotations

from zoneinfo import ZoneInfo

from bot.mail.compose import build, render
from bot.pipeline.facts import Facts, utc
from handlers.base import Decision
from handlers.contract.references import reference

LONDON = ZoneInfo("Europe/London")


def open_case(row, decision: Decision, facts: Facts) -> None:
    if decision.case_id and facts.case_id is None:
        facts.case_id = decision.case_id
        return
    if decision.outcome not in ("ignored", "duplicate", "failed") and facts.case_id is None \
            and decision.case_kind:
        facts.new_case = True
        facts.case_id = row["id"]      # a case is numbered after the message that opened it


def prepare_reply(settings, row, decision: Decision, facts: Facts) -> None:
    """Render the reply and any notices now; whether each may be sent is settled at commit."""
    if decision.outcome in ("failed", "ignored") or facts.case_id is None:
        return
    if decision.outcome == "duplicate" and not decision.reply:
        return
    if decision.outcome == "quarantined" and not (decision.reply or decision.notices):
        return
    s = settings
    ref = reference(facts.case_id)
    received = utc(row["received_at"]).astimezone(LONDON)
    base = {"reference": ref, "org_name": facts.org_name, "inbox": facts.inbox or s.inboxes[0],
            "received": received.strftime("%-d %B %Y at %H:%M"), "errors": decision.errors}
    if decision.reply and not facts.no_reply_reason and facts.org_code:
        subject, text, html = render(decision.reply.template, **{**base, **decision.reply.context})
        msgid, raw = build(s, to=facts.from_addr, subject=subject, text=text, html=html, ref=ref,
                           in_reply_to=facts.message_id or None, references=facts.references,
                           attachments=decision.reply.attachments, from_address=facts.inbox)
        facts.reply = (f"[{ref}] {subject}", msgid, raw)
    for n in decision.notices:
        nref = reference(n.case_id or facts.case_id)
        subject, text, html = render(n.template, **{**base, "reference": nref, **n.context})
        msgid, raw = build(s, to=n.to, subject=subject, text=text, html=html, ref=nref,
                           attachments=n.attachments, auto_submitted="auto-generated", from_address=facts.inbox)
        facts.notices.append((n.to.lower(), f"[{nref}] {subject}", msgid, raw, n.case_id or facts.case_id))
