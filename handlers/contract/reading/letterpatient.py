"""The patient block of a clinic letter: name, date of birth, NHS number and address, from a
"Re:" line with the address under it, labelled fields ("Patient:", "DOB:", "NHS No:", an address
over several lines), a pasted table, or PDF/DOCX text with each label on its own line.

Mail-agnostic: text in, a Patient out. No SQL, no mail, nothing logged (the text holds patient details).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache

from handlers.contract import dates
from handlers.contract import nhs
from handlers.contract.scan import matches_at
from handlers.contract.reading.phrases import Lexicon, _alt, _places, lexicon
from handlers.contract.reading.phrases import lowered as lower_for_search

POSTCODE = re.compile(r"\b([A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2})\b")
PHONE_CONTEXT = re.compile(r"\b(tel|telephone|phone|mob|mobile|fax|ring|call|switchboard|t:|f:|m:)\W{0,3}$", re.I)


@lru_cache(maxsize=64)            # built from the lexicon: once per lexicon, not per letter
def _label_rx(lex: Lexicon, key: str) -> re.Pattern:
    alt = _alt(lex.words("labels", key))
    # "Label: value", "Label - value", "Label | value", "Label<tab>value", "Label    value", "Label" alone
    return re.compile(r"^\s*(?:[-•*·]\s*)?(?:" + alt + r")(?:\s*[:|\t–]\s*|\s+-\s+|\s{2,}|\s*$)(.*)$", re.I)


@lru_cache(maxsize=8)
def _any_label(lex: Lexicon) -> re.Pattern:
    words = [w for key in lex.raw.get("labels", {}) if key not in ("re_line", "titles")
             for w in lex.words("labels", key)]
    words += [w for key in ("diagnosis", "plan", "threshold", "information", "deviation", "treatment")
              for w in lex.words("headings", key)]
    words += ["clinic", "clinic date", "date of clinic", "consultant", "typed", "dictated", "date", "our ref",
              "your ref", "ref", "cc", "copy"]
    return re.compile(r"^\s*(?:[-•*·]\s*)?(?:" + _alt(words) + r")\b\s*(?:[:|\t]|\s{2,}|\s*$)", re.I)


def _value_lines(lines: list[str], n: int, first: str, stop: re.Pattern, most: int) -> list[str]:
    """A labelled value and its continuation lines (indented, or under a label alone on its line)."""
    out = [first.strip()] if first.strip() else []
    indent = None
    for line in lines[n + 1:n + 1 + most]:
        if not line.strip() or stop.match(line):
            break
        lead = len(line) - len(line.lstrip())
        if out and indent is None and lead < 4 and first.strip() and not POSTCODE.search(first.upper()):
            # a value on the label's line continues on indented lines, or on the lines down to a postcode
            ahead = lines[n + 1:n + 4]
            upto = next((i for i, x in enumerate(ahead) if POSTCODE.search(x.upper())), None)
            if upto is None or any(not x.strip() or stop.match(x) for x in ahead[:upto + 1]):
                break
        indent = lead
        out.append(line.strip())
        if POSTCODE.search(line.upper()):
            break
    return out


NAME_TOKEN = r"[A-Z][A-Za-z'’\-]+"
NHS_LABEL = re.compile(r"\bNHS(?:\s*(?:number|num|no\.?|#)\s*[:.\-–|]?|\s*[:|]|(?=\s+\d))[ \t]*\n?[ \t]*"
                       r"([^\n]{0,60})", re.I)


def nhs_labels(text: str):
    """NHS_LABEL.finditer(text), found faster: the pattern is tried only where 'nhs' is written
    (a case-blind pattern's search tries it at every character of the letter)."""
    low = lower_for_search(text)
    if low is None:
        return NHS_LABEL.finditer(text)
    return matches_at(NHS_LABEL, text, _places(low, ("nhs",)).get("nhs", ()))


@lru_cache(maxsize=8)
def _re_line_rx(lex: Lexicon) -> re.Pattern:
    return re.compile(r"^\s*(?:" + _alt(lex.words("labels", "re_line")) + r")\s*[:\-]\s*(.+)$", re.I)


@lru_cache(maxsize=8)
def _title_line_rx(lex: Lexicon) -> re.Pattern:
    titles = _alt(lex.words("labels", "titles"))
    return re.compile(r"^\s*((?:" + titles + r")\.?\s+(?:" + NAME_TOKEN + r"\s?){1,5})", re.I)


def _looks_like_name(value: str, lex: Lexicon) -> bool:
    titles = lex.words("labels", "titles")
    words = re.findall(r"[A-Za-z'’\-]+", value)
    if not words or re.search(r"\d{3}", value):
        return False
    has_title = words[0].lower().rstrip(".") in titles
    caps = [w for w in words if w[0].isupper()]
    return (has_title and len(words) >= 2) or (len(caps) >= 2 and len(caps) == len(words) and len(words) <= 6)


def _clean_name(value: str) -> str:
    value = re.split(r",|\s{2,}|\t|\b(?:DOB|D\.O\.B|date of birth|born|NHS)\b", value, 1, flags=re.I)[0]
    return value.strip(" .:-")


@dataclass
class Patient:
    name: str = ""
    dob_raw: str = ""
    nhs_raw: str = ""              # as written after the label ('' when there is no number at all)
    nhs_labelled: bool = False     # an 'NHS number' label is present (its value may be words)
    address: str = ""
    anchor: int = -1               # line number of the patient block (Re: line, name line)


def nhs_numbers(text: str) -> list[tuple[str, bool, int]]:
    """(digits or '' , labelled, position) for each NHS-number mention; phone numbers are not."""
    out = []
    for m in nhs_labels(text or ""):
        value = m.group(1)
        g = nhs.SEPARATED.search(value)
        out.append(("".join(g.groups()) if g and g.start() <= 3 else "", True, m.start()))
    if not any(n for n, lab, _ in out):
        for m in nhs.separated(text):
            digits = "".join(m.groups())
            if nhs.is_valid(digits) and not PHONE_CONTEXT.search(text[max(0, m.start() - 25):m.start()]):
                out.append((digits, False, m.start()))
    return out


def patient(text: str) -> Patient:
    """The patient block of a letter (a copy: the reading is kept for the next caller)."""
    return replace(_patient(text))


@lru_cache(maxsize=16)
def _patient(text: str) -> Patient:
    lex = lexicon()
    lines = (text or "").splitlines()
    p = Patient()
    any_label = _any_label(lex)
    # NHS number: the first labelled one with digits, else the label's words, else one unlabelled number
    mentions = nhs_numbers(text)
    withnum = [m for m in mentions if m[0]]
    if withnum:
        p.nhs_raw, p.nhs_labelled = withnum[0][0], withnum[0][1]
    elif mentions:
        p.nhs_labelled = True
    # date of birth
    m = re.search(r"(?:\b(?:date\s+of\s+birth|birth\s+date|born(?:\s+on)?)\b|(?<![\w.])d\.?\s?o\.?\s?b\b\.?)"
                  r"\s*[:.\-–|]?\s*(?:\n\s*)?([^\n]{0,40})", text or "", re.I)
    if m:
        value = m.group(1)
        dm = dates.DATE_RE.search(value)
        if dm and dm.start() <= 3:
            p.dob_raw = dm.group(0)
        elif re.match(r"\s*\d", value):
            p.dob_raw = value.strip().split()[0]
    # the name: a label, the Re: line, or a title line beside the identity
    name_rx = _label_rx(lex, "patient_name")
    re_rx = _re_line_rx(lex)
    for n, line in enumerate(lines):
        mm = name_rx.match(line)
        if mm:
            value = mm.group(1).strip() or (lines[n + 1].strip() if n + 1 < len(lines) else "")
            if _looks_like_name(_clean_name(value), lex):
                p.name, p.anchor = _clean_name(value), n
                break
    if not p.name:
        for n, line in enumerate(lines):
            mm = re_rx.match(line)
            if mm and _looks_like_name(_clean_name(mm.group(1)), lex):
                p.name, p.anchor = _clean_name(mm.group(1)), n
                break
    if not p.name:
        title_line = _title_line_rx(lex)
        for n, line in enumerate(lines):
            mm = title_line.match(line)
            if not mm:
                continue
            near = "\n".join(lines[n:n + 3])
            if re.search(r"\b(DOB|D\.O\.B|date of birth|born|NHS)\b", near, re.I):
                p.name, p.anchor = _clean_name(mm.group(1)), n
                break
    # the address: a label (with the lines under it), else the block under the patient's line
    addr_rx = _label_rx(lex, "address")
    for n, line in enumerate(lines):
        mm = addr_rx.match(line)
        if mm:
            value = _value_lines(lines, n, mm.group(1), any_label, 6)
            if value:
                p.address = ", ".join(value)
                break
    if not p.address and p.anchor >= 0:
        block = []
        for line in lines[p.anchor + 1:p.anchor + 8]:
            if not line.strip():
                if block:
                    break
                continue
            if any_label.match(line) or re.search(r"\b(NHS|DOB|D\.O\.B|hospital (?:no|number))\b", line, re.I):
                if block:
                    break
                continue
            block.append(line.strip())
            if POSTCODE.search(line.upper()):
                break
        if block and POSTCODE.search(block[-1].upper()):
            p.address = ", ".join(block)
    return p
