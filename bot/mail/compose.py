"""Render replies from templates/ into complete RFC 5322 messages.

Every reply: our own Message-ID, In-Reply-To/References to the original,
Auto-Submitted: auto-replied (RFC 3834), our loop header, the case reference in
the subject, and never anything from the original subject (it may name a patient).
"""
from __future__ import annotations

import base64
import binascii
import email.utils
import time
import uuid
from email.header import Header
from functools import lru_cache
from pathlib import Path

import jinja2
import markupsafe

from bot.mail.parse import normalise_message_id
from bot.pipeline.rules import LOOP_HEADER

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    # auto_reload off: jinja would look at a template's file (and its parent's) on every use, which
    # cost more than rendering a short reply; template() looks at them every FRESH_FOR seconds
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"),
                                            default_for_string=False),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, auto_reload=False)


FRESH_FOR = 2.0               # seconds: a template edited on disk is used within this
_looked = [0.0]               # when the files were last looked at
_missing: set[str] = set()    # names with no file, as of then


def template(name: str) -> jinja2.Template | None:
    """templates/<name>, or None when there is no such file."""
    env = environment()
    now = time.monotonic()
    if now - _looked[0] >= FRESH_FOR:
        _looked[0] = now
        _missing.clear()
        if any(not t.is_up_to_date for t in list(env.cache.values())):
            env.cache.clear()           # an edited file: compile the templates again
    if name in _missing:
        return None
    try:
        return env.get_template(name)
    except jinja2.TemplateNotFound:
        _missing.add(name)
        return None


def _required(name: str) -> jinja2.Template:
    found = template(name)
    if found is None:
        raise jinja2.TemplateNotFound(name)
    return found


def render(template_name: str, **ctx) -> tuple[str, str, str]:
    """(subject, text, html) from templates/<template_name>.txt.j2 and .html.j2.

    The text template's first line is 'Subject: ...'.
    """
    text = _required(f"{template_name}.txt.j2").render(**ctx)
    first, _, body = text.partition("\n")
    if not first.startswith("Subject:"):
        raise ValueError(f"{template_name}.txt.j2 must start with a Subject: line")
    subject = first[len("Subject:"):].strip()
    body = body.lstrip("\n")
    own_html = template(f"{template_name}.html.j2")
    if own_html is not None:
        html = own_html.render(title=subject, **ctx)
    else:
        html = _required("_layout.html.j2").render(
            title=subject, body_html=html_from_text(body.split("\n--\n")[0]), **ctx)
    return subject, body, html


def html_from_text(text: str) -> markupsafe.Markup:
    """The HTML part of a reply whose template is text only: paragraphs and bullet lists."""
    out = []
    for para in text.strip().split("\n\n"):
        lines = para.splitlines()
        items = [ln.strip()[2:] for ln in lines if ln.strip().startswith("* ")]
        if items and len(items) == sum(1 for ln in lines if ln.strip().startswith("* ")) and \
                lines[0].strip().startswith("* "):
            # continuation lines belong to the bullet above them
            lis, cur = [], []
            for ln in lines:
                if ln.strip().startswith("* "):
                    if cur:
                        lis.append(" ".join(cur))
                    cur = [ln.strip()[2:]]
                else:
                    cur.append(ln.strip())
            lis.append(" ".join(cur))
            out.append("<ul>" + "".join(f"<li>{markupsafe.escape(x)}</li>" for x in lis) + "</ul>")
        else:
            head, *rest = lines
            if rest and all(ln.strip().startswith("* ") for ln in rest):
                out.append(f"<p>{markupsafe.escape(head)}</p><ul>" + "".join(
                    f"<li>{markupsafe.escape(ln.strip()[2:])}</li>" for ln in rest) + "</ul>")
            else:
                out.append("<p>" + "<br>\n".join(markupsafe.escape(ln) for ln in lines) + "</p>")
    return markupsafe.Markup("\n".join(out))


def build(settings, *, to: str, subject: str, text: str, html: str, ref: str,
          in_reply_to: str | None = None, references: list[str] | None = None,
          attachments: list[tuple[str, str, bytes]] | None = None,
          auto_submitted: str = "auto-replied",
          images: list[tuple[str, bytes]] | None = None, from_address: str = "") -> tuple[str, bytes]:
    """(Message-ID, the message as wire bytes).

    Written out directly rather than through email.message: the shape never varies
    (multipart/alternative, two UTF-8 quoted-printable parts) and the stdlib
    generator cost ~3 ms a reply, most of our per-message budget.
    """
    msgid = f"{uuid.uuid4().hex}.{ref}@{settings.message_id_domain}"
    headers = [
        ("From", email.utils.formataddr((settings.from_name, from_address or settings.from_address))),
        ("To", to),
        ("Subject", _encode(f"[{ref}] {subject}")),
        ("Date", email.utils.formatdate(localtime=False)),
        ("Message-ID", f"<{msgid}>"),
    ]
    # Copied ids were checked when read (mailparse.normalise_message_id); check again here, as
    # anything put in a header must never carry CR/LF or non-ASCII into our own message.
    in_reply_to = normalise_message_id(in_reply_to or "") or None
    references = [r for r in (normalise_message_id(x) for x in references or []) if r][-20:]
    if in_reply_to:
        refs = [r for r in (references or []) if r] + [in_reply_to]
        headers.append(("In-Reply-To", f"<{in_reply_to}>"))
        # One ID per line: folding between IDs is allowed, inside one it is not.
        headers.append(("References", "\r\n ".join(f"<{r}>" for r in dict.fromkeys(refs))))
    headers += [
        ("Auto-Submitted", auto_submitted),    # RFC 3834: auto-replied, or auto-generated for notices
        # Ask Exchange not to answer us with out-of-office or read receipts.
        ("X-Auto-Response-Suppress", "All"),
        (LOOP_HEADER, settings.instance),
        ("MIME-Version", "1.0"),
    ]
    boundary = "=_lesbot_" + uuid.uuid4().hex
    alternative = [f"--{boundary}"]
    for subtype, body in (("plain", text), ("html", html)):
        part = [f'Content-Type: text/{subtype}; charset="utf-8"',
                "Content-Transfer-Encoding: quoted-printable", "", _qp(body)]
        if subtype == "html" and images:
            # HTML with its pictures (cid: links) as Outlook expects: multipart/related
            related = "=_lesbot_related_" + uuid.uuid4().hex
            inner = [f"--{related}", *part]
            for cid, png in images:
                b64 = base64.encodebytes(png).decode("ascii").replace("\n", "\r\n").rstrip()
                inner += [f"--{related}", "Content-Type: image/png", f"Content-ID: <{cid}>",
                          f'Content-Disposition: inline; filename="{_filename(cid)}.png"',
                          "Content-Transfer-Encoding: base64", "", b64]
            part = [f'Content-Type: multipart/related; boundary="{related}"; type="text/html"', "",
                    *inner, f"--{related}--"]
        alternative += [*part, f"--{boundary}"]
    alternative[-1] += "--"
    if attachments:
        outer = "=_lesbot_mixed_" + uuid.uuid4().hex
        headers.append(("Content-Type", f'multipart/mixed; boundary="{outer}"'))
        body_lines = [f"--{outer}", f'Content-Type: multipart/alternative; boundary="{boundary}"', "",
                      *alternative]
        for filename, ctype, data in attachments:
            b64 = base64.encodebytes(data).decode("ascii").replace("\n", "\r\n").rstrip()
            body_lines += [f"--{outer}", f"Content-Type: {ctype}",
                           f'Content-Disposition: attachment; filename="{_filename(filename)}"',
                           "Content-Transfer-Encoding: base64", "", b64]
        body_lines.append(f"--{outer}--")
    else:
        headers.append(("Content-Type", f'multipart/alternative; boundary="{boundary}"'))
        body_lines = alternative
    out = [f"{k}: {v}" for k, v in headers] + [""] + body_lines + [""]
    return msgid, "\r\n".join(out).encode("ascii")


def _filename(name: str) -> str:
    # ASCII, no quotes: our own file names only (never a patient's name).
    return "".join(c for c in name if c.isascii() and c not in '"\\\r\n') or "attachment"


def _encode(value: str) -> str:
    return value if value.isascii() else Header(value, "utf-8", maxlinelen=998).encode()


def _qp(body: str) -> str:
    data = body.replace("\r\n", "\n").encode("utf-8")
    return binascii.b2a_qp(data).decode("ascii").replace("\n", "\r\n")
