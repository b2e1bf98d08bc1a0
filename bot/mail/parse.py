"""Turn raw bytes into what the pipeline needs: decoded headers, a text body, attachments.

The stdlib parser with compat32 is ~5x faster than policy.default (whose header
registry we don't need), so we parse with compat32 and decode headers ourselves.
"""
from __future__ import annotations

import email
import email.header
import email.parser
import email.utils
import hashlib
import re
from functools import lru_cache
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import Message
import email.policy

from bot.mail.mime import message_tree


class _Policy(type(email.policy.compat32)):
    """compat32, except that a header sent with raw 8-bit bytes (Outlook's
    filename="Claim – Sept.csv") is read as UTF-8 text, not handed back as a Header object
    that the rest of the code would have to special-case."""

    def header_fetch_parse(self, name, value):
        if not value.isascii() and any("\udc80" <= c <= "\udcff" for c in value):
            raw = value.encode("ascii", "surrogateescape")
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                return raw.decode("windows-1252", "replace")
        return value


compat32 = _Policy()

# Headers a relay adds or rewrites: leave them out of the content hash, so the same
# message fetched by IMAP and delivered by SMTP hashes the same.
TRACE_HEADERS = {"received", "return-path", "delivered-to", "x-original-to", "received-spf",
                 "authentication-results", "arc-seal", "arc-message-signature",
                 "arc-authentication-results", "x-lesbot-received"}


@dataclass
class Attachment:
    filename: str
    content_type: str
    data: bytes
    inline: bool = False


@dataclass
class Parsed:
    msg: Message
    headers: dict[str, str]          # lower-case name -> decoded value (first occurrence)
    message_id: str                  # normalised: lower-case, no <>, "" if none
    from_addr: str                   # lower-case bare address
    from_name: str
    subject: str
    text: str                        # the body as plain text
    attachments: list[Attachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    _new_text: str | None = field(default=None, repr=False)

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    @property
    def new_text(self) -> str:
        """What the sender wrote this time: quoted earlier messages, forwarded
        chains and the NHSmail disclaimer removed, so they are not read as fields.
        (A forwarded referral is in `text`; handlers choose which they need.)"""
        if self._new_text is None:
            self._new_text = latest_reply(self.text)
        return self._new_text

    def all(self, name: str) -> list[str]:
        return [decode_header(v) for v in self.msg.get_all(name, [])]

    def addresses(self, *names: str) -> list[str]:
        """The bare addresses in these headers, parsed before any encoded-word is decoded
        (a display name must never become an address)."""
        values = [re.sub(r"\r?\n[ \t]*", " ", str(v)) for n in names for v in self.msg.get_all(n, [])]
        return [a.strip().lower() for _, a in email.utils.getaddresses(values) if a and "@" in a]


def decode_header(value) -> str:
    if value is None:
        return ""
    try:
        parts = email.header.decode_header(str(value))
        out = []
        for chunk, charset in parts:
            if isinstance(chunk, bytes):
                out.append(decode_bytes(chunk, charset))
            else:
                out.append(chunk)
        text = "".join(out)
    except Exception:
        text = str(value)
    return re.sub(r"\s*\r?\n\s*", " ", text).strip()


def decode_bytes(data: bytes, charset: str | None) -> str:
    cs = (charset or "").strip().lower().strip('"') or "utf-8"
    # Mail labelled latin-1 or ascii is very often windows-1252 (£, curly quotes).
    if cs in ("iso-8859-1", "latin-1", "latin1", "us-ascii", "ascii", "iso8859-1"):
        cs = "windows-1252"
    try:
        return data.decode(cs)
    except (LookupError, UnicodeError):      # unknown charset, 'undefined', bytes that do not fit
        pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("windows-1252", errors="replace")


MSGID_OK = re.compile(r"[!-~]{1,250}")     # printable ASCII, no space, CR or LF


def normalise_message_id(value: str) -> str:
    """The id inside <...>, or "" when it is not one we can safely copy into a reply's
    In-Reply-To/References (non-ASCII, white space, control characters, over 250 chars)."""
    value = re.sub(r"\r?\n[ \t]*", "", str(value or "")).strip()
    m = re.search(r"<([^<>]+)>", value)
    if m:
        value = m.group(1)
    value = value.strip()
    return value if MSGID_OK.fullmatch(value) and "<" not in value and ">" not in value else ""


def bare_address(value: str) -> tuple[str, str]:
    """(display name, address) of an address header. Give it the header *as sent*: the address
    is parsed before the name is decoded, so an encoded-word name that decodes to
    '"Dr K Osei" <someone@nhs.net>,' is only ever a name."""
    name, addr = email.utils.parseaddr(re.sub(r"\r?\n[ \t]*", " ", str(value or "")))
    return decode_header(name), addr.strip().lower()


def content_hash(raw: bytes) -> str:
    """sha256 of the message without the trace headers a relay adds."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = raw.partition(b"\n\n")
    h = hashlib.sha256()
    skipping = False
    for line in head.splitlines():
        if line[:1] in (b" ", b"\t"):
            if not skipping:
                h.update(line.strip() + b"\n")
            continue
        name = line.split(b":", 1)[0].strip().lower().decode("latin-1")
        skipping = name in TRACE_HEADERS
        if not skipping:
            h.update(line.strip() + b"\n")
    h.update(b"\n")
    h.update(body.replace(b"\r\n", b"\n").rstrip())
    return h.hexdigest()


def body_digest(p: "Parsed") -> str:
    """sha256 of what the sender sent: the decoded text (white space folded) and each
    attachment's bytes. Re-encoding, new MIME boundaries and header churn leave it alone."""
    h = hashlib.sha256(" ".join(p.text.split()).encode("utf-8", "replace"))
    for a in sorted(hashlib.sha256(a.data).hexdigest() for a in p.attachments):
        h.update(b"\0" + a.encode())
    return h.hexdigest()


def identity(p: "Parsed", raw: bytes) -> str:
    """What identifies one message however often it is delivered: its Message-ID, its
    sender and its content. Without a Message-ID, the headers a relay does not touch."""
    if not p.message_id:
        return content_hash(raw)
    key = f"{p.message_id.lower()}\n{p.from_addr}\n{body_digest(p)}"
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()


DISCLAIMER_RE = re.compile(r"\n\*{20,}\n.*?(NHSmail|confidential).*?\n\*{20,}\s*", re.S | re.I)


@lru_cache(maxsize=1)
def _reply_parser():
    from mailparser_reply import EmailReplyParser
    return EmailReplyParser(languages=["en"])


QUOTE_HINT = re.compile(r"^\s*(>|from:|sent:|-{2,}\s*original|_{8,}|on\s.+\swrote:)", re.I | re.M)


# Where an Outlook/OWA/Gmail client starts the earlier message: a rule of underscores or
# "Original Message" over a From: line, or a From: line with Sent:/Date: close under it.
QUOTE_START = re.compile(
    r"^[ \t]*(?:_{8,}|-{3,}\s*original message\s*-{3,}|-{3,}\s*forwarded message\s*-{3,})[ \t]*$"
    r"|^[ \t]*\*?from:\*?[ \t].*\n(?:.*\n){0,2}?[ \t]*\*?(?:sent|date):\*?[ \t]"
    r"|^[ \t]*on\b.{4,120}\bwrote:[ \t]*$", re.I | re.M)


def latest_reply(text: str) -> str:
    if not QUOTE_HINT.search(text):
        return DISCLAIMER_RE.sub("\n", text).strip()     # nothing quoted: skip the (slow) parser
    m = QUOTE_START.search(text)
    if m and text[:m.start()].strip():
        # the client's own marker is surer than the heuristic parser
        return DISCLAIMER_RE.sub("\n", text[:m.start()]).strip()
    try:
        reply = _reply_parser().parse_reply(text=text)
    except Exception:     # the parser is heuristic; never let it lose a message
        reply = text
    return DISCLAIMER_RE.sub("\n", reply or text).strip()


def html_to_text(html: str) -> str:
    from inscriptis import get_text
    try:
        return get_text(html)
    except Exception:
        return re.sub(r"<[^>]+>", " ", html)


def part_text(part: Message) -> str:
    payload = part.get_payload(decode=True) or b""
    return decode_bytes(payload, part.get_content_charset())


MAX_DEPTH = 40          # MIME nesting a real client writes is a handful deep


def _parse_message(raw: bytes) -> tuple[Message, list[str]]:
    """The message, or for hostile nesting (a thousand multiparts) its headers alone."""
    msg = message_tree(raw.decode("ascii", "surrogateescape"), compat32, MAX_DEPTH)
    if msg is not None:
        return msg, []
    try:
        msg = email.message_from_bytes(raw, policy=compat32)
        if _depth(msg) <= MAX_DEPTH:
            return msg, []
    except RecursionError:
        pass
    return email.parser.BytesHeaderParser(policy=compat32).parsebytes(raw), [
        f"MIME parts nested more than {MAX_DEPTH} deep: the body was not read"]


def _depth(msg: Message) -> int:
    """How deep the parts go, counted without recursion."""
    deepest, stack = 0, [(msg, 1)]
    while stack:
        part, d = stack.pop()
        deepest = max(deepest, d)
        if d > MAX_DEPTH:
            break
        payload = part.get_payload() if part.is_multipart() else None
        if isinstance(payload, list):
            stack.extend((p, d + 1) for p in payload)
    return deepest


def parse(raw: bytes) -> Parsed:
    msg, too_deep = _parse_message(raw)
    headers: dict[str, str] = {}
    for k, v in msg.items():
        headers.setdefault(k.lower(), decode_header(v))
    raw_from = msg.get("From")
    from_name, from_addr = bare_address(raw_from if isinstance(raw_from, str) else headers.get("from", ""))
    plain, html, attachments, defects = [], [], [], [str(d) for d in msg.defects] + too_deep
    for part in ([] if too_deep else msg.walk()):
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        disp = str(part.get("Content-Disposition") or "").split(";")[0].strip().lower()
        filename = part.get_filename()
        filename = decode_header(filename) if filename else ""
        if not filename and disp != "attachment" and ctype in ("text/plain", "text/html"):
            (plain if ctype == "text/plain" else html).append(part_text(part))
            continue
        if ctype in ("message/delivery-status", "message/disposition-notification"):
            continue
        try:
            data = part.get_payload(decode=True) or b""
        except Exception as e:  # undecodable transfer encoding
            defects.append(f"{filename or ctype}: {e}")
            data = b""
        attachments.append(Attachment(filename=filename, content_type=ctype, data=data,
                                       inline=(disp == "inline" or (not disp and bool(part.get("Content-ID"))))))
    if plain:
        text = "\n".join(plain)
    elif html:
        text = "\n".join(html_to_text(h) for h in html)
    else:
        text = ""
    # Decoded (some libraries encode a long id), then checked: a decoded CR/LF or space rejects it.
    return Parsed(msg=msg, headers=headers, message_id=normalise_message_id(headers.get("message-id", "")),
                  from_addr=from_addr, from_name=from_name, subject=headers.get("subject", ""),
                  text=text.replace("\r\n", "\n"), attachments=attachments, defects=defects)


def received_time(raw_or_msg) -> datetime | None:
    """When the inbox received it: the topmost Received: header, else Date:.
    Reads the header block only: a hostile body (a thousand nested parts) cannot stop a
    message being stored."""
    try:
        msg = raw_or_msg if isinstance(raw_or_msg, Message) else \
            email.parser.BytesHeaderParser(policy=compat32).parsebytes(raw_or_msg)
    except Exception:
        return None
    for value in msg.get_all("Received", [])[:1]:
        stamp = str(value).rpartition(";")[2]
        when = _parse_date(stamp)
        if when:
            return when
    return _parse_date(msg.get("Date"))


def _parse_date(value) -> datetime | None:
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(re.sub(r"\s+", " ", str(value)).strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc)
