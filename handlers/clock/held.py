"""What needs a human, read from what the pipeline and the handlers already record: mail no
handler understood (the help reply), quarantined and failed messages, outgoing mail not
delivered, and replies held back by the daily cap.

Every entry says who (the practice from the directory, else the sender's domain), when, its
reference and a summary in lesbot's own words. Never the subject or the text: either may name
a patient. Shared by the digest and `lesbot ingest`'s summary (held_replies).
"""
from __future__ import annotations

import json
import re
from email.parser import BytesHeaderParser
from email.utils import parseaddr
from datetime import datetime, timezone

from store import reports
from store.directory import org_for
from handlers.contract.periods import LONDON
from handlers.contract.references import reference

# bot/outbox.py refuses a reply over limits.replies_per_sender_per_day with this reason, which the
# pipeline records on the message as no_reply_reason
CAP_REASON = "daily reply cap"
SHOWN = 25          # entries per group; the commands named in the digest list the rest

QUARANTINE = {       # messages.kind of a quarantined message -> why, in plain words
    "unknown_sender": "quarantined: sender not in the directory",
    "spoofed": "quarantined: sender address may be forged",
    "malformed": "quarantined: message structure nested too deep to read",
    "suspicious_attachment": "quarantined: an attachment may be harmful",
    "oversize": "quarantined: over the size limit, not downloaded",
    "auto_responder": "quarantined: looks like an automatic responder",
    "claim": "held: a second claim for a month in a closed payment run",
    "denosumab_transfer": "held: denosumab transfer letter, practice unclear",
    "referral_unclear": "held: MSK referral, practice unclear",
    "referral_outcome": "held: a change to a recorded referral outcome",
    "imsk_triage": "held: a change to a recorded triage decision",
}
OUTGOING = {
    "held": "not sent: the address is suppressed after a hard bounce",
    "failed": "not delivered: the relay refused it",
    "unknown": "may not have arrived: the relay's answer was lost (resend only once you know it never came)",
}
ERROR_CLASS = re.compile(r"^([A-Za-z_][\w.]*)(?::|$)")


def held_replies(conn, since: str | None = None, until: str | None = None,
                 message_ids: list[int] | None = None) -> dict:
    """Replies the daily cap held back, for messages processed in [since, until) (UTC ISO
    strings) or for the given message ids: {"replies", "senders", "by_sender": [{who, n}]}."""
    if message_ids is not None and not message_ids:
        return {"replies": 0, "senders": 0, "by_sender": []}
    rows = reports.capped_replies(conn, CAP_REASON, since, until, message_ids)
    names = reports.org_names(conn)
    return {"replies": sum(r[2] for r in rows), "senders": len(rows),
            "by_sender": [{"who": _who(names, r[1], r[0]), "n": r[2]} for r in rows]}


def needs_a_human(conn, since: str, until: str) -> dict:
    """{"groups": [{title, hint, n, entries: [{reference, label, who, received, summary}], more}]}.
    Mail no handler understood counts for [since, until); the rest is listed while it waits."""
    names = reports.org_names(conn)
    groups = []

    def group(title, hint, found, summary, outgoing=False):
        n, rows = found
        groups.append(_group(title, hint, n, rows, summary, names, conn, outgoing))

    group("Questions and mail lesbot could not place", "lesbot messages show ID",
          reports.unplaced_messages(conn, since, until, SHOWN), _enquiry)
    group("Quarantined messages", "lesbot quarantine list", reports.quarantined_messages(conn, SHOWN),
          lambda r: QUARANTINE.get(r["kind"] or "", "held for a person: " + (r["kind"] or "message").replace("_", " ")))
    group("Failed messages", "lesbot messages list --state failed; retry ID", reports.failed_messages(conn, SHOWN),
          _failed)
    group("Outgoing mail failed, held or unknown", "lesbot outbox list", reports.outgoing_not_delivered(conn, SHOWN),
          lambda r: f"{(r['kind'] or 'reply').replace('_', ' ')} to {r['from_addr']}: "
                    f"{OUTGOING.get(r['state'], r['state'])}", outgoing=True)
    return {"groups": groups}


def _group(title, hint, n, rows, summary, names, conn, outgoing=False) -> dict:
    entries = []
    for r in rows:
        if not r["from_addr"] and r.get("head"):
            r["from_addr"] = _from_header(r["head"])
        code = r["org_code"] or _org_of(conn, r["from_addr"]) or _org_of(conn, r["envelope_from"])
        entries.append({"id": r["id"], "reference": reference(r["case_id"]) if r["case_id"] else "",
                        "label": ("outbox " if outgoing else "message ") + f"#{r['id']}",
                        "who": _who(names, code, r["from_addr"] or r["envelope_from"]),
                        "received": _when(r["received_at"]), "summary": summary(r)})
    return {"title": title, "hint": hint, "n": n, "entries": entries, "more": max(0, n - len(entries))}


def _enquiry(r) -> str:
    if r["kind"] == "template_request":
        text = "asked for a claim form, but is not a practice"
    else:
        try:
            reading = json.loads(r["reading"] or "{}")
        except ValueError:
            reading = {}
        topic, question = reading.get("topic") or "", reading.get("question")
        text = (f"question about {topic}" if topic else "question, topic not recognised") if question else \
            (f"email about {topic}" if topic else "email lesbot could not place")
        n = reading.get("attachments") or 0
        if n:
            text += f", with {n} attachment{'s' if n != 1 else ''}"
    why = r["no_reply_reason"] or ""
    if why.startswith(CAP_REASON):
        text += "; no reply sent (daily reply cap)"
    elif why:
        text += "; no reply sent (automatic mail)"
    return text


def _failed(r) -> str:
    first = (r["error"] or "").splitlines()[0] if r["error"] else ""
    if first.startswith("handling took longer"):
        why = "took longer than the time limit"
    else:
        m = ERROR_CLASS.match(first)
        # the error's class only: its message could quote the mail
        why = f"{m.group(1).rsplit('.', 1)[-1]} while handling" if m else "error while handling"
    kind = r["kind"] if r["kind"] and r["kind"] != "error" else ""
    return f"failed: {why}" + (f" ({kind.replace('_', ' ')})" if kind else "")


def _from_header(head: bytes | None) -> str:
    if not head:
        return ""
    try:
        msg = BytesHeaderParser().parsebytes(bytes(head).split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0])
        return parseaddr(str(msg.get("From", "")))[1].lower()
    except Exception:         # a header too broken to read: the domain is then unknown
        return ""


def _org_of(conn, address: str | None) -> str | None:
    org = org_for(conn, address) if address else None
    return org.ods_code if org else None


def _who(names: dict, code: str | None, address: str | None) -> str:
    if code:
        return f"{names.get(code, code)} ({code})"
    domain = (address or "").rpartition("@")[2]
    return f"{domain} (not in the directory)" if domain else "unknown sender"


def _when(value: str | None) -> str:
    if not value:
        return ""
    d = datetime.fromisoformat(value)
    return (d if d.tzinfo else d.replace(tzinfo=timezone.utc)).astimezone(LONDON).strftime("%d/%m/%Y %H:%M")
