"""Small helpers the referral, register and return handlers share."""
from __future__ import annotations

import json
import logging

from bot.mail.attachments import text_of
from handlers.contract import letters
from store.db import directory_version
from handlers.contract.reading import practices
from store.directory import Org, first_address, list_orgs, org_by_code, org_for, orgs_of_kinds

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


def directory(conn) -> practices.Directory:
    """The directory in the store as the reading layer needs it, rebuilt only when it changes."""
    return practices.Directory.kept((id(type(conn)), directory_version(conn)), lambda: list_orgs(conn))


def org(conn, code: str | None) -> Org | None:
    if not code:
        return None
    return org_by_code(conn, code)


def address_of(conn, code: str | None) -> str | None:
    """An organisation's first listed (shared) address."""
    return first_address(conn, code)


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


_NAMES: dict = {}


def _directory(conn, kinds: tuple) -> list[tuple[str, str, set]]:
    """The directory as letters.named_in compares it: built once per directory change."""
    global _NAMES
    key = (kinds, directory_version(conn))      # any change to the directory misses
    hit = _NAMES.get(key)
    if hit is None:
        hit = letters.compared(orgs_of_kinds(conn, kinds))
        _NAMES = {key: hit}      # replaced whole: a reader in another thread never sees it half-built
    return hit


def _compared_of(conn, kinds: tuple, known: practices.Directory) -> list[tuple[str, str, set]]:
    """As _directory, kept on a Directory the caller already holds (so built once per directory
    version too) - without asking the database for the version again on every field."""
    hit = known._compared.get(kinds)
    if hit is None:
        hit = known._compared[kinds] = letters.compared(orgs_of_kinds(conn, kinds))
    return hit


def practices_named(conn, text: str, kinds=("practice",), directory: practices.Directory | None = None) -> list[str]:
    """ODS codes of directory organisations the text names: by code, full name or postcode.
    directory: the one from directory(conn) the caller is already using, if any."""
    kinds = tuple(kinds)
    orgs = _compared_of(conn, kinds, directory) if directory is not None else _directory(conn, kinds)
    return letters.named_in(orgs, text)


def practice_from(conn, value: str, kinds=("practice",), directory: practices.Directory | None = None) -> str | None:
    """The one directory organisation a field such as 'Registered practice: X (Z98101)' names."""
    hits = practices_named(conn, value, kinds, directory)
    return hits[0] if len(hits) == 1 else None
