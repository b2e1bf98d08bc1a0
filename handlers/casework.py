"""Small helpers the referral, register and return handlers share."""
from __future__ import annotations

import json
import logging

from bot.mail.attachments import text_of
from store.directory import Org, _split, org_for

log = logging.getLogger("lesbot.casework")


def letter_text(ctx, whole: bool = True) -> str:
    """The body (with any forwarded chain when whole) and the text of PDF/DOCX attachments.
    Kept on the context: several handlers ask, and reading a PDF is slow."""
    key = ("letter", whole)
    if key not in ctx.texts:
        ctx.texts[key] = _letter_text(ctx, whole)
    return ctx.texts[key]


def _letter_text(ctx, whole: bool) -> str:
    parts = [ctx.parsed.text if whole else ctx.parsed.new_text]
    for att in ctx.vetting.kept:
        if att.kind in ("pdf", "docx"):
            try:
                parts.append(text_of(att))
            except Exception as e:       # a damaged file: the reply will say what is missing
                log.warning("could not read a %s attachment: %s", att.kind, type(e).__name__)
    return "\n\n".join(p for p in parts if p)


def form_texts(ctx) -> list[str]:
    """The text of each attached Word file (in reading order, tick boxes kept) and PDF. A damaged
    file is skipped: the reply then lists what is missing."""
    from handlers.contract.reading import forms
    out = []
    for att in ctx.vetting.kept:
        try:
            if att.kind == "docx":
                out.append(forms.docx_text(att.data))
            elif att.kind == "pdf":
                out.append(text_of(att))
        except Exception as e:
            log.warning("could not read a %s attachment: %s", att.kind, type(e).__name__)
    return out


def org(conn, code: str | None) -> Org | None:
    if not code:
        return None
    row = conn.execute("SELECT * FROM orgs WHERE ods_code=?", (code,)).fetchone()
    return Org(row["ods_code"], row["name"], row["kind"], _split(row["services"])) if row else None


def address_of(conn, code: str | None) -> str | None:
    """An organisation's first listed (shared) address."""
    row = conn.execute("SELECT email FROM org_emails WHERE ods_code=? ORDER BY rowid LIMIT 1",
                       (code,)).fetchone()
    return row[0] if row else None


def copied_orgs(conn, parsed) -> list[Org]:
    """Directory organisations in To/Cc (other than us)."""
    found = []
    for addr in parsed.addresses("to", "cc"):
        o = org_for(conn, addr) if addr else None
        if o and all(o.ods_code != f.ods_code for f in found):
            found.append(o)
    return found


def name_of(conn, code: str | None) -> str:
    o = org(conn, code)
    return f"{o.name} ({o.ods_code})" if o else (code or "")


def loads(value: str | None) -> dict:
    return json.loads(value) if value else {}
