"""The sections of a clinic letter, found by their headings' synonyms (Diagnosis / Impression /
Problems; Plan / Recommendations / Actions for GP; Re-refer if / Fast-track / Refer back if;
Information given / Patient informed), and its sentences.

Mail-agnostic: text in, text out. No SQL, no mail, nothing logged.
"""
from __future__ import annotations

import re
from functools import lru_cache

from handlers.contract.reading.phrases import Lexicon, _alt, lexicon

SECTIONS = ("diagnosis", "plan", "follow_up", "threshold", "deviation", "information", "treatment")


LEAD = re.compile(r"^\s*(?:\d+[.)]\s*|[-•*·]\s*)?")     # white space, numbering or a bullet before a heading


@lru_cache(maxsize=4)
def _every_first(heads: tuple) -> tuple[str, ...]:
    return tuple({f for _, _, firsts in heads for f in firsts})


@lru_cache(maxsize=None)
def _heading_rx(lex: Lexicon) -> tuple[tuple[str, re.Pattern, tuple[str, ...]], ...]:
    """(section, its heading pattern, the first words its headings start with, lower case)."""
    out = []
    for key in SECTIONS:
        words = lex.words("headings", key)
        alt = _alt(words)
        out.append((key, re.compile(
            r"^\s*(?:\d+[.)]\s*|[-•*·]\s*)?(" + alt + r")(?:\s*:?\s*$|\s*(?:\([^)\n]{0,160}\))?\s*[:\-–](?:\s+(.*))?$)",
            re.I), tuple({w.split()[0].lower() for w in words if w.split()})))
    return tuple(out)


def sections(text: str) -> dict[str, str]:
    """Each known section's text (a heading line, 'Heading: text' inline, to the next heading)."""
    lex = lexicon()
    heads = _heading_rx(lex)
    every_first = _every_first(heads)
    closing = _closing_rx(lex)
    lines = (text or "").splitlines()
    found: list[tuple[int, str, str]] = []
    for n, line in enumerate(lines):
        if len(line.strip()) > 200:
            continue
        start = line[LEAD.match(line).end():].lower()
        if not start.startswith(every_first):
            continue                              # no heading starts this way (most lines)
        for key, rx, firsts in heads:
            if not start.startswith(firsts):
                continue                  # cannot be this section's heading: skip its pattern
            m = rx.match(line)
            if m and (m.group(2) or len(line.strip()) <= 80 or line.rstrip().endswith(":")):
                found.append((n, key, (m.group(2) or "").strip()))
                break
    out: dict[str, str] = {}
    for i, (n, key, inline) in enumerate(found):
        stop = found[i + 1][0] if i + 1 < len(found) else len(lines)
        body = [inline] if inline else []
        for line in lines[n + 1:stop]:
            if closing.match(line):
                break
            body.append(line)
        value = "\n".join(body).strip()
        if value:
            out[key] = (out[key] + "\n" + value) if key in out else value
    return out


def sentences(text: str) -> list[str]:
    return list(_sentences(text))


@lru_cache(maxsize=32)
def _sentences(text: str) -> tuple[str, ...]:
    """Sentences and list items, a PDF's wrapped lines joined."""
    out = []
    for para in PARAGRAPH.split(text or ""):
        para = " ".join(para.split())
        # split after . ! ? ; and the space that follows, where a capital or '(' starts the next
        # (found from the punctuation, which sre can jump to, not with a look-behind)
        at = 0
        for m in SENTENCE_GAP.finditer(para):
            if m.start() + 1 > at:
                out.append(para[at:m.start() + 1])
            at = m.end()
        if para[at:]:
            out.append(para[at:])
    return tuple(out)


PARAGRAPH = re.compile(r"\n\s*\n|\n(?=\s*(?:[-•*·]|\d+[.)])\s)")
SENTENCE_GAP = re.compile(r"[.!?;]\s+(?=[A-Z(])")


@lru_cache(maxsize=8)
def _closing_rx(lex: Lexicon) -> re.Pattern:
    return re.compile(r"^\s*(?:" + _alt(lex.words("headings", "closing")) + r")\b", re.I)
