"""What a message's headers say: machine mail, bounces, receipts, lists, spoofing, the thread.

Each *_reason returns a short reason (truthy) or "": the rules (bot.pipeline.rules) decide
what to do with it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from bot.mail.parse import Parsed, bare_address, normalise_message_id
from handlers.contract.references import PATTERN as REF_RE


def is_report(p: Parsed, report_type: str) -> bool:
    ctype = p.msg.get("Content-Type", "") or ""
    return p.msg.get_content_type() == "multipart/report" and \
        re.search(r"report-type\s*=\s*\"?" + report_type, ctype, re.I) is not None


def bounce_reason(p: Parsed, envelope_from: str | None) -> str:
    if is_report(p, "delivery-status"):
        return "delivery status notification"
    if "x-ms-exchange-message-is-ndr" in p.headers:
        return "Exchange non-delivery report"
    local = p.from_addr.partition("@")[0]
    if local in ("mailer-daemon", "postmaster"):
        return "bounce from a mail server"
    if subject_says(p, "bounce"):
        return "non-delivery report (subject)"
    return ""


def receipt_reason(p: Parsed) -> str:
    if is_report(p, "disposition-notification"):
        return "read receipt"
    if subject_says(p, "receipt") and len(p.new_text.split()) < 80 and not p.attachments:
        return "read or delivery receipt (subject)"
    return ""


@lru_cache(maxsize=None)
def _subjects(kind: str) -> re.Pattern:
    """The kept list of subjects programs write (catalogue/lexicon/machine.toml), any language."""
    from handlers.contract.reading.forms import load_lexicon
    words = sorted(load_lexicon("machine")[kind]["subjects"], key=len, reverse=True)
    ends = r"\s*:" if kind == "receipt" else r"\s*(?::|-|–|$)"     # "Read:", never "Read - new form"
    return re.compile(r"^\s*(?:(?:re|aw|sv|antw|r|rv|tr|fw|fwd|wg)\s*:\s*)*(?:" +
                      "|".join(re.escape(w) for w in words) + r")" + ends, re.I)


@lru_cache(maxsize=None)
def _words(key: str) -> re.Pattern:
    from handlers.contract.reading.forms import load_lexicon
    words = sorted(load_lexicon("machine")["auto_reply"][key], key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\b", re.I)


def subject_says(p: Parsed, kind: str) -> bool:
    """Does the subject start as a program's would (kind: auto_reply, receipt, bounce)?"""
    return bool(_subjects(kind).match(p.subject))


def auto_reply_reason(p: Parsed, answers_us: bool = False) -> str:
    """An out-of-office or other automatic answer. answers_us: it replies to mail lesbot sent,
    which lets an out-of-office stated only in the body be recognised."""
    auto = p.header("auto-submitted").lower()
    if auto.startswith("auto-replied"):
        return "Auto-Submitted: auto-replied"
    if p.header("x-autoreply") or p.header("x-autorespond"):
        return "X-Autoreply"
    if subject_says(p, "auto_reply"):
        return "out-of-office subject"
    if answers_us and not p.attachments:
        text = p.new_text
        if len(text.split()) < 150 and _words("body_away").search(text) and _words("body_return").search(text):
            return "out-of-office in the body of a reply to lesbot"
    return ""


def list_reason(p: Parsed) -> str:
    """Mail sent to a list (RFC 2369 / 2919 headers, Precedence: list or bulk)."""
    if "list-id" in p.headers:
        return "mailing list (List-Id)"
    if "list-unsubscribe" in p.headers:
        return "mailing list (List-Unsubscribe)"
    if p.header("precedence").lower() in ("bulk", "list"):
        return f"Precedence: {p.header('precedence').lower()}"
    return ""


def _empty_return_path(p: Parsed) -> bool:
    rp = p.msg.get("Return-Path")
    return rp is not None and str(rp).strip().strip("<>").strip() == ""


def machine_reason(p: Parsed, envelope_from: str | None) -> str:
    """Mail a program sent: handle it, record it, but never answer it (RFC 3834)."""
    auto = p.header("auto-submitted").lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    if "x-auto-response-suppress" in p.headers:
        return "X-Auto-Response-Suppress"
    if p.header("precedence").lower() in ("bulk", "junk", "list"):
        return f"Precedence: {p.header('precedence').lower()}"
    if "list-id" in p.headers:
        return "List-Id (mailing list)"
    if envelope_from == "" or _empty_return_path(p):
        return "empty return path"
    local = p.from_addr.partition("@")[0]
    if local in ("mailer-daemon", "postmaster", "noreply", "no-reply", "donotreply"):
        return f"sent from {local}"
    return ""


def spoof_reason(p: Parsed, envelope_from: str | None, settings, org_of=None) -> str:
    """Is the From address forged? Every NHS user shares nhs.net, so the whole envelope
    address must be the From address, or another directory address of the same organisation
    (a shared mailbox sent as by a member of staff), or one the operator trusts to send for
    others (settings.trusted_envelope_senders). `org_of(address)` gives an address's ODS code."""
    env = envelope_from
    if env is None:
        rp = p.msg.get("Return-Path")
        env = bare_address(str(rp))[1] if rp is not None else None
    env = (env or "").strip().strip("<>").strip().lower()
    if env:
        env_domain = env.rpartition("@")[2]
        from_domain = p.from_addr.rpartition("@")[2]
        if env_domain != from_domain:
            return (f"From domain {from_domain} differs from the envelope sender's domain "
                    f"{env_domain}")
        vouched = {a.lower() for a in settings.trusted_envelope_senders}
        if env != p.from_addr and env not in vouched and org_of is not None:
            mine, theirs = org_of(env), org_of(p.from_addr)
            if mine is None or mine != theirs:
                return ("the envelope sender is a different address from the From address"
                        + (" and not of the same organisation" if mine else " and not in the directory"))
    trusted = settings.trusted_authserv_id.strip().lower()
    if trusted:
        for value in p.all("Authentication-Results"):
            authserv = value.split(";", 1)[0].strip().lower()
            if trusted != "topmost" and authserv.split()[0:1] != [trusted]:
                continue
            bad = re.findall(r"\b(spf|dkim|dmarc)\s*=\s*(fail|softfail|permerror)", value, re.I)
            if bad:
                return "Authentication-Results: " + ", ".join(f"{k}={v}" for k, v in bad)
            if trusted == "topmost":
                break
    return ""


@dataclass
class BounceInfo:
    references: list[str] = field(default_factory=list)   # message-ids of what bounced
    recipients: list[tuple[str, str]] = field(default_factory=list)   # (address, status)


def bounce_details(p: Parsed) -> BounceInfo:
    info = BounceInfo()
    for h in ("in-reply-to", "references"):
        info.references += [normalise_message_id(x) for x in re.findall(r"<[^>]+>", p.header(h))]
    for part in p.msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/delivery-status":
            # compat32 parses the status groups as sub-messages.
            groups = part.get_payload() if part.is_multipart() else []
            if not isinstance(groups, list):
                groups = []
            for g in groups:
                rcpt = g.get("Final-Recipient") or g.get("Original-Recipient")
                status = (g.get("Status") or "").strip()
                if rcpt:
                    info.recipients.append((bare_address(str(rcpt).rpartition(";")[2])[1], status))
        elif ctype == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner:
                mid = inner[0].get("Message-ID")
                if mid:
                    info.references.append(normalise_message_id(str(mid)))
        elif ctype == "text/rfc822-headers":
            m = re.search(r"^Message-ID:\s*(<[^>]+>)", part.get_payload(), re.I | re.M)
            if m:
                info.references.append(normalise_message_id(m.group(1)))
    info.references = [r for r in dict.fromkeys(info.references) if r]
    return info


def references_of(p: Parsed) -> list[str]:
    """Message-IDs this message answers, nearest first: In-Reply-To, then References
    from the newest (References lists the thread oldest first)."""
    # decoded, as a few libraries encode long ids; normalise_message_id refuses what is unsafe
    refs = re.findall(r"<[^>]+>", p.header("in-reply-to"))
    refs += reversed(re.findall(r"<[^>]+>", p.header("references")))
    out: list[str] = []
    for r in refs:
        r = normalise_message_id(r)
        if r and r not in out:
            out.append(r)
    return out


def text_references(p: Parsed) -> list[int]:
    """[LES-nnnnnn] references: the subject's first, then any in the quoted text."""
    out: list[int] = []
    for text in (p.subject, p.text[:20000]):
        if "les-" not in text.lower() and "ſ" not in text:
            continue        # no reference can be here (the pattern, tried at every place, is slow); ſ is an s to re.I
        for m in REF_RE.finditer(text):
            n = int(m.group(2))
            if n not in out:
                out.append(n)
    return out


def subject_reference(p: Parsed) -> int | None:
    m = REF_RE.search(p.subject)
    return int(m.group(2)) if m else None
