"""Read claim lines out of a body, a CSV, an XLSX, a DOCX or a PDF, as practices write them.

Produces raw lines (what was written, where, and how its month was read: extracted.py) for the
handler to check. Every mention of a service ends as a line or in `Extracted.mentions` (named
without a number), so the handler can account for each one. Only counts are kept: patient details
found on the way are counted, not copied. Texts are read by text_reader.py, CSV and XLSX files by
tables.py.

Words (service synonyms, label and column names, number words) live in
catalogue/lexicon/claims.toml; the recognisers are in handlers/contract/reading/services.py and months.py.
"""
from __future__ import annotations

import re
from datetime import datetime

from handlers.claims.extracted import Extracted, merge
from handlers.claims.text_reader import TextReader
from handlers.contract import nhs
from handlers.contract.catalogue import Catalogue
from handlers.contract.reading import months as rmonths

FORWARDED = re.compile(r"^\s*(?:fw|fwd)\s*:|\bforward", re.I)


def subject_month(subject: str, received: datetime) -> rmonths.MonthSpan | None:
    return rmonths.one(re.sub(r"\[LES-\d+\]", "", subject or ""), received)


def from_body(text: str, catalogue: Catalogue, received: datetime, subject: str = "",
              full_text: str = "", name: str = "body") -> Extracted:
    ex = Extracted()
    ex.patient_identifiers += nhs.count_in(text)
    sm = subject_month(subject, received)
    _read_text(ex, text, catalogue, received, name, sm, "month taken from the subject")
    counted = [l for l in ex.lines if l.count_text]
    rest = full_text[len(text):] if full_text.startswith(text[:200]) else ""
    if not counted and rest.strip() and (FORWARDED.search(subject or "") or FORWARDED.search(text)
                                         or re.search(r"\bbelow\b", text, re.I)):
        fwd = Extracted()
        fwd.patient_identifiers += nhs.count_in(rest)
        _read_text(fwd, rest, catalogue, received, "forwarded message", sm, "month taken from the subject")
        if any(l.count_text for l in fwd.lines):
            ex.mentions = [m for m in ex.mentions if m[0] not in {l.service.code for l in fwd.lines if l.service}]
            fwd.practice_codes = set()      # the forwarded mail's signature is not this claim's practice
            merge(ex, fwd)
    return ex


def _read_text(ex, text, catalogue, received, name, fallback, fallback_how):
    r = TextReader(ex, catalogue, received, name, fallback, fallback_how)
    r.read(text)
    return r


def from_document(text: str, name: str, catalogue: Catalogue, received: datetime,
                  fallback: rmonths.MonthSpan | None = None, fallback_how: str = "") -> Extracted:
    """A claim form or letter as a DOCX or PDF (its text, Word tables as 'a | b' rows)."""
    ex = Extracted()
    ex.patient_identifiers += nhs.count_in(text)
    _read_text(ex, text, catalogue, received, name, fallback, fallback_how)
    return ex
