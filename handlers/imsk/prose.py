"""Fields found in a letter without labels: "Re: Mr X, DOB ...", "could you see him in the
orthopaedic service", "I do not think there are any red flags"; and NHS numbers told from phone numbers."""
from __future__ import annotations

import re
from datetime import date

from handlers.contract import nhs
from handlers.imsk.vocabulary import (LABELLED, LEX, date_written, is_date_written, read_date, specialty_of,
                                      urgency_of, word_rx)

_RF_PROSE_NO, _RF_PROSE_YES = word_rx(LEX["red_flags"]["prose_no"]), word_rx(LEX["red_flags"]["prose_yes"])
PHONE_BEFORE = re.compile(r"(?:tel|telephone|phone|ph|mob|mobile|fax|contact|call|ring|switchboard|line|direct|dial|"
                          r"ext|extension|bleep|pager|whatsapp|sms|text|\+44|t|m|f)"
                          r"\s*(?:no\.?|number)?\s*[:.(]?\s*(?:\(?0?\)?\s*)?$", re.I)
NHS_BEFORE = re.compile(r"nhs\s*(?:no\.?|num(?:ber)?|#)?\s*(?:\([^)]{0,40}\))?\s*(?:is|:|-|=)?\s*$", re.I)
DOB_CUE = re.compile(r"\b(?:d\.?o\.?b\.?|date of birth|born(?: on)?|birth date)\s*[:\-]?\s*", re.I)
_NAME_WORD = r"(?!(?:DOB|NHS|D\.O\.B|Date|Born|Tel|Address)\b)[A-Z][A-Za-z'’-]+"
TITLE_NAME = re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Mx|Master|Dr)\.? (?:" + _NAME_WORD + r" ){0,4}" + _NAME_WORD)


def nhs_numbers(text: str) -> tuple[list[str], list[str]]:
    """(NHS numbers written against an NHS label, unlabelled ones passing Modulus 11), each digits.
    Telephone numbers (Tel/Mob/Fax/+44 before them) are never NHS numbers, even when they pass."""
    labelled, loose = [], []
    for m in nhs.separated(text):
        digits = "".join(m.groups())
        line_start = text.rfind("\n", 0, m.start()) + 1
        before = text[max(line_start, m.start() - 40):m.start()]
        if PHONE_BEFORE.search(before) or re.search(r"\+\d{1,3}\s*\(?0?\)?\s*$", before):
            continue
        if NHS_BEFORE.search(before):
            labelled.append(digits)
        elif nhs.is_valid(digits):
            loose.append(digits)
    return list(dict.fromkeys(labelled)), list(dict.fromkeys(loose))


def dob_in_prose(text: str, on: date) -> str | None:
    for m in DOB_CUE.finditer(text):
        chunk = text[m.end():m.end() + 30].split("\n")[0]
        if is_date_written(chunk, on):
            return date_written(chunk, on)
    return None


def name_in_prose(text: str) -> tuple[str, str] | None:
    """'Re: Mr Darren Paul Fitzsimmons  DOB ...', 'Mrs Tanya Pilkington, born ...': (name, its line)."""
    for m in TITLE_NAME.finditer(text):
        line_start = text.rfind("\n", 0, m.start()) + 1
        line_end = text.find("\n", m.end())
        line = text[line_start:line_end if line_end >= 0 else None]
        before = text[line_start:m.start()]
        after = text[m.end():m.end() + 30]
        if re.search(r"\b(?:re|patient|pt)\s*[:\-]?\s*$", before, re.I) or \
                re.match(r"\s*(?:\([^)]*\))?\s*[,;(]?\s*(?:d\.?o\.?b|date of birth|born|aged|age|\d)", after, re.I):
            return m.group(0).strip(), line
    return None


def prose_specialty(text: str, subject: str) -> str | None:
    """The specialty asked for in a sentence ('could you see him in the orthopaedic service',
    'Referral for physiotherapy please', 'Referral - Persistent MSK Pain Management'), else the subject."""
    for sentence in re.split(r"(?<=[.!?])\s+|\n", text):
        if re.search(r"\brefer|\bseen?\b|\bservice\b|\bclinic\b|\bplease\b|\bteam\b|\bkindly\b|\barrange|"
                     r"\bassess|\bopinion\b", sentence, re.I) and \
                not re.search(r"\b(?:was|were|had been|previously|discharged|ago|in (?:19|20)\d\d)\b", sentence, re.I):
            if specialty_of(sentence):
                return sentence.strip()
    return subject.strip() if specialty_of(subject) else None


def prose_red_flags(text: str) -> tuple[str, str] | None:
    """A sentence about red flags, read with its negation: ('No'|'Yes', the sentence)."""
    for sentence in re.split(r"(?<=[.!?])\s+|\n", text):
        m = re.search(r"red[- ]flags?", sentence, re.I)
        if not m:
            continue
        before = " ".join(sentence[:m.start()].split()[-6:])
        after = sentence[m.end():m.end() + 40]
        if _RF_PROSE_NO.search(before) or re.match(r"\s*(?:[:\-–]|were|are|is)?\s*(?:none|nil|no|absent|negative)\b",
                                                   after, re.I):
            return "No", sentence.strip()
        if _RF_PROSE_YES.search(after) or _RF_PROSE_YES.search(before):
            return "Yes", sentence.strip()
    return None


def prose_urgency(text: str) -> str | None:
    for sentence in re.split(r"(?<=[.!?])\s+|\n", text):
        if re.search(r"\bif\b|anything urgent|for urgent|urgent referrals?\s*:", sentence, re.I):
            continue
        if urgency_of(sentence):
            return sentence.strip()
    return None


def prose_clinical(text: str) -> str | None:
    """The unlabelled clinical paragraph of a letter: the longest paragraph of prose."""
    best = ""
    for para in re.split(r"\n\s*\n", text):
        lines = [ln for ln in para.splitlines() if ln.strip() and not LABELLED.match_line(ln)]
        body = " ".join(ln.strip() for ln in lines)
        if re.match(r"^(?:from|sent|to|subject)\s*:", body, re.I) or re.search(r"\b(?:regards|sincerely)\b", body, re.I):
            continue
        if len(body.split()) >= 12 and len(body) > len(best):
            best = body
    return best or None


def discharged_on(text: str, on: date) -> date | None:
    for m in re.finditer(r"\bdischarged?\b[^.\n]{0,80}", text, re.I):
        d = read_date(m.group(0), on, past=True)
        if d and d <= on:
            return d
    return None

