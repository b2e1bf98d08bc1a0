"""The layout of a referral's text: footers out, one text per patient (a column each, numbered
items, repeated labels), where signatures are and where the patient's details start, and a
labelled value that is the patient's (not a letterhead's or signature's)."""
from __future__ import annotations

import re
from dataclasses import dataclass

from handlers.contract.reading import patient
from handlers.referrals.lexicon import lexicon

SIGN_OFF = re.compile(r"^\s*(?:kind(?:est)?\s+regards|best\s+regards|warm\s+regards|regards|many\s+thanks|"
                      r"thanks(?:\s+(?:again|very much))?|thank\s+you|with\s+thanks|yours\s+(?:sincerely|faithfully)|"
                      r"best\s+wishes|with\s+best\s+wishes|cheers|best)\s*[,.!]?\s*$", re.I)
CHAIN_START = re.compile(r"^\s*(?:From:|-{2,}\s*Original Message|-{2,}\s*Forwarded|_{8,}|-{20,}|Begin forwarded)",
                         re.I)
_DISCLAIMER_START = re.compile(r"^\s*\*{10,}\s*$")
_DISCLAIMER_WORDS = re.compile(r"this (?:e-?mail|message) (?:and any attachments? )?(?:may contain|is confidential)|"
                               r"nhsmail is the secure|joiningnhsmail|intended recipient", re.I)
PRACTICE_LINE = re.compile(r"\b(?:surgery|practice|medical\s+centre|health\s+centre|hospital|ods|clinic|"
                           r"family\s+doctors|nhs\s+trust)\b", re.I)


def clean(text: str) -> str:
    """Confidentiality footers out (the rest of a forwarded chain kept), line ends plain, trailing
    blanks off; Word-table rows 'Label | value' as 'Label: value'."""
    lines = (text or "").replace("\r\n", "\n").replace("\u00a0", " ").split("\n")
    out, skip = [], 0
    for line in lines:
        if _DISCLAIMER_START.match(line):
            skip = 14                       # a footer follows the asterisks: up to its last line
            continue
        if skip:
            if CHAIN_START.match(line):
                skip = 0
            else:
                skip -= 1
                if "joiningnhsmail" in line.lower():
                    skip = 0
                continue
        if _DISCLAIMER_WORDS.search(line) and len(line) > 40:
            continue
        out.append(line.rstrip())
    text = "\n".join(out)
    # strip the common indent (Outlook's HTML-to-text indents everything)
    indents = [len(ln) - len(ln.lstrip()) for ln in out if ln.strip()]
    common = min(indents) if indents else 0
    if common:
        text = "\n".join(ln[common:] if ln[:common].strip() == "" else ln for ln in text.split("\n"))
    return text


def columns(text: str, labelset) -> list[str] | None:
    """A table with a column per patient: 'Name: Mr A | Mrs B' / 'DOB: x | y' ... -> one text per column."""
    rows = []
    for n, line in enumerate(text.splitlines()):
        m = labelset.match_line(line)
        if m and "|" in m.group(2) and not re.search(r"[☐☒□■]", line):
            cells = [c.strip() for c in m.group(2).split("|")]
            rows.append((n, m.group(1), cells))
    if len(rows) < 3:
        return None
    width = max(len(c) for _, _, c in rows)
    keyed = [r for r in rows if len(r[2]) == width]
    keys = {labelset.key(lab) for _, lab, _ in keyed}
    if width < 2 or len(keyed) < 3 or not ({"nhs_number", "dob", "patient_name"} & keys):
        return None
    lines = text.splitlines()
    first, last = keyed[0][0], keyed[-1][0]
    head, tail = "\n".join(lines[:first]), "\n".join(lines[last + 1:])
    out = []
    for i in range(width):
        body = [f"{lab}: {cells[i]}" for _, lab, cells in keyed]
        out.append(head + "\n" + "\n".join(body) + "\n" + tail)
    return out


NUMBERED = re.compile(r"^\s*(?:\(?(\d{1,2})[.)]|patient\s*(\d{1,2})\s*[:.)\-–]?|#(\d{1,2}))\s+", re.I)


def blocks(text: str, labelset) -> tuple[str, list[str], str]:
    """(before, one block per patient, after). A new patient starts at a numbered item ('1)', '2.',
    'Patient 2:') holding identity details, or where a patient label (name, NHS number, date of birth)
    is written a second time."""
    lines = text.splitlines()
    starts = []
    for n, line in enumerate(lines):
        if NUMBERED.match(line):
            window = "\n".join(lines[n:n + 3])
            if patient.nhs_numbers(window) or patient.dates_of_birth(window) or \
                    re.search(r"\b(?:DOB|NHS)\b", window, re.I):
                starts.append(n)
    if len(starts) < 2:
        starts = []
        seen: set[str] = set()
        first_identity = None
        found = sorted((f.line, k) for k, fs in labelset.find(text).items() for f in fs
                       if k in ("patient_name", "surname", "forename", "title", "nhs_number", "dob"))
        prev_line = -10
        for n, key in found:
            if key in ("forename", "title"):
                continue
            if first_identity is None:
                first_identity = n
            if key in seen:
                # the new block starts at the first of the identity labels just above this one
                back = n
                ids = {ln for ln, _ in found}
                while back - 1 in ids and back - 1 > prev_line:
                    back -= 1
                if not starts:
                    starts.append(first_identity)
                starts.append(back)
                seen = set()
            seen.add(key)
            prev_line = n
    if len(starts) < 2:
        return "", [text], ""
    # a block runs to the next start; the last one to the first paragraph break after its details
    before = "\n".join(lines[:starts[0]])
    blocks = ["\n".join(lines[a:b]) for a, b in zip(starts, starts[1:])]
    rest = lines[starts[-1]:]
    cut = len(rest)
    for i, line in enumerate(rest):
        if i > 0 and not line.strip():
            nxt = next((ln for ln in rest[i + 1:] if ln.strip()), "")
            if not labelset.match_line(nxt) and not re.match(r"^\s{2,}\S", nxt):
                cut = i
                break
    blocks.append("\n".join(rest[:cut]))
    return before, blocks, "\n".join(rest[cut:])


def signature_spans(text: str) -> list[tuple[int, int]]:
    """Where the sender's sign-off and signature are: from a sign-off line to the next quoted header,
    separator or end."""
    spans, pos = [], 0
    lines = text.split("\n")
    offsets = []
    for ln in lines:
        offsets.append(pos)
        pos += len(ln) + 1
    i = 0
    while i < len(lines):
        if SIGN_OFF.match(lines[i]):
            j, kept = i + 1, 0
            while j < len(lines) and not CHAIN_START.match(lines[j]) and kept < 10:
                ln = lines[j].strip()
                if ln and (len(ln.split()) > 14 or lexicon()["labelset"].match_line(lines[j])):
                    break
                kept += 1 if ln else 0
                j += 1
            spans.append((offsets[i], offsets[j] if j < len(lines) else len(text)))
            i = j
        i += 1
    return spans


def within(spans, pos) -> bool:
    return any(a <= pos < b for a, b in spans)


def patient_zone(text: str, labelled: dict) -> int:
    """Where the patient's details start: the paragraph of the first identity detail. A letterhead
    above it (the practice's own address and telephone) is not the patient's."""
    marks = []
    for key in ("patient_name", "surname", "nhs_number", "dob"):
        for f in labelled.get(key, []):
            marks.append(line_offset(text, f.line))
    for c in patient.nhs_numbers(text):
        marks.append(c.start)
    for c in patient.dates_of_birth(text):
        marks.append(c.start)
    m = re.search(r"(?im)^\s*re\s*:", text)
    if m:
        marks.append(m.start())
    if not marks:
        return 0
    first = min(marks)
    para = max(text.rfind("\n\n", 0, first), text.rfind("\n \n", 0, first))
    line_start = text.rfind("\n", 0, first) + 1
    if para < 0 or text.count("\n", para, first) > 12:
        return line_start
    return para + 1


def line_offset(text: str, n: int) -> int:
    pos = 0
    for _ in range(n):
        nxt = text.find("\n", pos)
        if nxt < 0:
            return len(text)
        pos = nxt + 1
    return pos


@dataclass
class Letter:
    """One patient's text, read once: its labels, signatures, where the patient's details start, and
    the text without signatures (zone_text: also blank above the patient's details)."""
    text: str
    labelled: dict
    spans: list[tuple[int, int]]
    zone: int
    body: str
    zone_text: str

    @classmethod
    def read(cls, text: str, labelset) -> Letter:
        labelled = labelset.find(text)
        spans = signature_spans(text)
        zone = patient_zone(text, labelled)
        body = without(text, spans)                     # no signatures
        return cls(text, labelled, spans, zone, body, " " * zone + body[zone:])


def without(text: str, spans) -> str:
    """text with the spans blanked (same length, so positions hold)."""
    chars = list(text)
    for a, b in spans:
        for i in range(a, min(b, len(chars))):
            if chars[i] != "\n":
                chars[i] = " "
    return "".join(chars)


def labelled_value(labelled: dict, key: str, text: str, zone: int = 0, spans=()) -> str:
    for f in labelled.get(key, []):
        at = line_offset(text, f.line)
        if key in ("address", "telephone") and at < zone:
            continue               # a letterhead's address or telephone: the practice's, not the patient's
        if within(spans, at):
            continue
        if key in ("address", "telephone") and practice_paragraph(text, at):
            continue
        v = f.value.strip().strip("|").strip()
        if v:
            return v
    return ""


def practice_paragraph(text: str, at: int) -> bool:
    """Is the line at `at` in a letterhead or signature: a paragraph naming a practice and no patient?"""
    a = max(text.rfind("\n\n", 0, at), 0)
    b = text.find("\n\n", at)
    para = text[a:b if b >= 0 else len(text)]
    if len(para.splitlines()) > 8:
        lines = text[:at].count("\n")
        all_lines = text.splitlines()
        para = "\n".join(all_lines[max(0, lines - 3):lines + 2])
    return bool(PRACTICE_LINE.search(para)) and not patient.nhs_numbers(para) and not patient.dates_of_birth(para) \
        and not re.search(r"(?im)^\s*(?:patient|name|pt)\b", para)

