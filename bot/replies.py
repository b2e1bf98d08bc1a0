"""Render replies from templates/ into complete RFC 5322 messages.

Every reply: our own Message-ID, In-Reply-To/References to the original,
Auto-Submitted: auto-replied (RFC 3834), our loop header, the case reference in
the subject, and never anything from the original subject (it may name a patient).
"""
from __future__ import annotations

import email.utils
import uuid
from email.message import EmailMessage
from email.policy import SMTP
from functools import lru_cache
from pathlib import Path

import jinja2

from bot.rules import LOOP_HEADER

# Long Message-IDs must never be folded into encoded-words: allow 998-octet lines.
OUTGOING = SMTP.clone(max_line_length=998)
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"),
                                            default_for_string=False),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def reference(case_id: int) -> str:
    return f"LES-{case_id:06d}"


def render(template: str, **ctx) -> tuple[str, str, str]:
    """(subject, text, html) from templates/<template>.txt.j2 and .html.j2.

    The text template's first line is 'Subject: ...'.
    """
    env = environment()
    text = env.get_template(f"{template}.txt.j2").render(**ctx)
    first, _, body = text.partition("\n")
    if not first.startswith("Subject:"):
        raise ValueError(f"{template}.txt.j2 must start with a Subject: line")
    subject = first[len("Subject:"):].strip()
    html = env.get_template(f"{template}.html.j2").render(title=subject, **ctx)
    return subject, body.lstrip("\n"), html


def build(settings, *, to: str, subject: str, text: str, html: str, ref: str,
          in_reply_to: str | None = None, references: list[str] | None = None) -> EmailMessage:
    m = EmailMessage(policy=OUTGOING)
    m["From"] = email.utils.formataddr((settings.from_name, settings.from_address))
    m["To"] = to
    m["Subject"] = f"[{ref}] {subject}"
    m["Date"] = email.utils.formatdate(localtime=False)
    m["Message-ID"] = f"<{uuid.uuid4().hex}.{ref}@{settings.message_id_domain}>"
    if in_reply_to:
        m["In-Reply-To"] = f"<{in_reply_to}>"
        refs = [r for r in (references or []) if r] + [in_reply_to]
        m["References"] = " ".join(f"<{r}>" for r in dict.fromkeys(refs))
    m["Auto-Submitted"] = "auto-replied"
    # Ask Exchange not to answer us with out-of-office or read receipts.
    m["X-Auto-Response-Suppress"] = "All"
    m[LOOP_HEADER] = settings.instance
    m.set_content(text)
    m.add_alternative(html, subtype="html")
    return m
