"""The rest of a referral as written: the practices (resolved later, against the directory), the
joint, the clinical reason and the extras (anticoagulants, allergies, ...). Labelled values first;
else read from the letter's prose, where a negation is a recorded No."""
from __future__ import annotations

import re

from handlers.contract.reading import negation, patient
from handlers.referrals.layout import Letter, labelled_value
from handlers.referrals.patient_details import POSTCODE

EXTRAS = ("anticoagulants", "allergies", "diabetes", "previous_injections")
REGISTERED_INLINE = re.compile(
    r"\b(?i:registered\s+(?:here\s+)?(?:with|at)\s+(?:us\s+(?:at|as)\s+|ourselves\s+at\s+)?)(?!us\b|this\b|our\b)"
    r"((?:the\s+)?[A-Z][^\n.;]*?(?:\([A-Z]\d{5}\))?)\s*(?:[.;,]|\(since|\s+since\b|$)", re.M)


def read_practices(r, t: Letter) -> None:
    """The practices as written (the handler resolves them against the directory)."""
    for key in ("registered_practice", "receiving_practice", "referring_practice", "why_not_registered", "referrer"):
        v = labelled_value(t.labelled, key, t.text)
        if v:
            r.fields[key] = v

    if not r.get("registered_practice"):
        m = REGISTERED_INLINE.search(t.body)
        if m and len(m.group(1).split()) <= 8:
            r.fields["registered_practice"] = m.group(1).strip(" ,.")
            r.notes["registered_practice"] = "read from the letter"


def read_clinical(r, t: Letter, subject: str, labelset, lex: dict) -> None:
    """Joint and reason, then the extras: labelled as written; otherwise read from sentences."""
    joint = labelled_value(t.labelled, "joint", t.text)
    reasons = [f.value.strip() for f in t.labelled.get("reason", []) if f.value.strip()]
    reason = " ".join(dict.fromkeys(reasons))
    prose = _prose(t.zone_text, labelset, lex)
    if not joint:
        joint = _joint(prose, lex) or _joint(reason, lex) or (_joint(subject, lex) if subject else "")
        if joint:
            r.notes["joint"] = "read from the letter"
    if joint:
        r.fields["joint"] = joint
    if not reason and prose:
        clinical = [p for p in prose if lex["clinical"].search(p) and len(p.split()) >= 8]
        if clinical:
            reason = max(clinical, key=len)
            r.notes["reason"] = "read from the letter"
    if reason:
        r.fields["reason"] = " ".join(reason.split())

    said = negation.from_prose("\n".join(prose))
    for key in EXTRAS:
        v = labelled_value(t.labelled, key, t.text)
        if v:
            r.fields[key] = v
        elif key in said:
            r.fields[key] = said[key].display()
            r.notes[key] = "read from the letter"


def _prose(text: str, labelset, lex) -> list[str]:
    """The paragraphs (and long lines) of a letter that are not labels, headers, identity lines or
    quoted headers."""
    out = []
    for para in re.split(r"\n\s*\n", text):
        keep, skip_next = [], False
        for ln in para.splitlines():
            s = ln.strip()
            if skip_next:
                skip_next = False
                continue
            if labelset.match_alone(ln):
                skip_next = True            # a PDF label alone: its value is the next line
                continue
            if not s or labelset.match_line(ln) or re.match(r"(?i)^(?:from|sent|to|cc|subject|date)\s*:", s):
                continue
            if patient.nhs_numbers(s) and len(s.split()) < 25:
                continue                    # an identity line
            if POSTCODE.search(s) and len(s.split()) <= 8:
                continue                    # an address line
            keep.append(s)
        if keep:
            out.append(" ".join(keep))
    return out


def _joint(texts, lex) -> str:
    """The site to inject: a sided mention ('left knee') in a sentence about the injection first, then
    any sided mention, then any mention."""
    if isinstance(texts, str):
        texts = [texts]
    found = []
    for t in texts:
        for sent in re.split(r"(?<=[.!?])\s+", t or ""):
            for m in lex["joint"].finditer(sent):
                found.append((bool(m.group(1)), bool(re.search(r"inject", sent, re.I)), " ".join(m.group(0).split())))
    for want in ((True, True), (True, False), (False, True), (False, False)):
        for sided, inj, written in found:
            if (sided, inj) == want:
                return written
    return ""
