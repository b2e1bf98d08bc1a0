"""Read inter-practice referrals (MSK joint injection) out of text: a form with
labels, a letter, a forwarded chain, or the text of a DOCX/PDF form.

Groundwork for the referrals issue: this reads and checks fields; it does not
decide, store or send anything. Patient details stay in the returned objects,
never in logs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from bot import nhs

LABELS = {
    "patient_name": ("patient name", "patient's name", "name of patient", "patient", "name"),
    "dob": ("date of birth", "d.o.b.", "d.o.b", "dob"),
    "nhs_number": ("nhs number", "nhs no.", "nhs no", "nhs"),
    "address": ("patient address", "address"),
    "telephone": ("contact telephone", "telephone", "tel", "phone", "contact number", "mobile"),
    "registered_practice": ("registered practice", "registered with", "gp practice"),
    "receiving_practice": ("receiving practice", "referred to"),
    "referring_practice": ("referring practice", "referred from", "referrer"),
    "joint": ("joint / site", "joint/site", "joint(s)", "joint", "site"),
    "reason": ("clinical reason", "reason for referral", "reason"),
    "anticoagulants": ("anticoagulants", "anticoagulation", "anticoagulant"),
    "allergies": ("allergies", "allergy"),
    "diabetes": ("diabetes", "diabetic"),
    "previous_injections": ("previous joint injections", "previous injections"),
}
_ALL = sorted(((lab, key) for key, labs in LABELS.items() for lab in labs), key=lambda x: -len(x[0]))
LABEL_LINE = re.compile(
    r"^\s*(?:[-•*·]\s*)?(" + "|".join(re.escape(lab) for lab, _ in _ALL) + r")\s*[:\-–]\s*(.+?)\s*$", re.I)
DOB_INLINE = re.compile(r"\b(?:DOB|D\.O\.B\.?|date of birth)[:\s]+(\d{1,2})[/.-](\d{1,2})[/.-](\d{2,4})", re.I)
NHS_INLINE = re.compile(r"\bNHS\s*(?:No\.?|number)?[:\s]*(\d{3}[ -]?\d{3}[ -]?\d{4})\b", re.I)
REGISTERED_INLINE = re.compile(r"\bregistered with\s+(.+?)\s*(?:\(([A-Z]\d{5})\))?\s*$", re.I | re.M)
ODS = re.compile(r"\(([A-Z]\d{5})\)")


@dataclass
class Referral:
    fields: dict[str, str] = field(default_factory=dict)

    def get(self, key: str) -> str:
        return self.fields.get(key, "")

    @property
    def nhs_number(self) -> str | None:
        return nhs.normalise(self.get("nhs_number"))

    @property
    def dob(self) -> date | None:
        return parse_dob(self.get("dob"))

    def ods(self, key: str) -> str | None:
        m = ODS.search(self.get(key))
        return m.group(1) if m else None

    def problems(self, on: date) -> list[tuple[str, str]]:
        """What is missing or wrong, each with the fix, as (field, problem)."""
        out = []
        raw = self.get("nhs_number")
        if not raw:
            out.append(("NHS number", "is missing. Add the patient's 10-digit NHS number."))
        elif self.nhs_number is None:
            out.append(("NHS number", "is not 10 digits. Check it against the patient's record."))
        elif not nhs.is_valid(self.nhs_number):
            out.append(("NHS number", f"{nhs.display(self.nhs_number)} fails the NHS number check digit: two "
                                      "digits may be swapped. Check it against the patient's record."))
        born = self.dob
        if not self.get("dob"):
            out.append(("date of birth", "is missing."))
        elif born is None or born > on:
            out.append(("date of birth", "is not a real date in the past (write it as DD/MM/YYYY)."))
        elif age_on(born, on) < 18:
            out.append(("date of birth", "the patient is under 18; this service is for adults only."))
        for key, what in (("patient_name", "patient name"), ("joint", "joint or site"),
                          ("reason", "clinical reason")):
            if not self.get(key):
                out.append((what, "is missing."))
        return out


def parse_dob(text: str) -> date | None:
    m = re.search(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4}|\d{2})", text or "")
    if not m:
        return None
    d, mth, y = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if y < 100:
        y += 1900 if y > 30 else 2000
    try:
        return date(y, mth, d)
    except ValueError:
        return None


def age_on(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def extract(text: str) -> list[Referral]:
    """One Referral per patient: a new one starts when a patient field repeats."""
    out: list[Referral] = []
    current = Referral()
    shared: dict[str, str] = {}         # practice fields written once for every patient
    for line in text.splitlines():
        m = LABEL_LINE.match(line)
        if m:
            key = next(k for lab, k in _ALL if lab == m.group(1).lower())
            value = m.group(2).strip()
            if key in ("receiving_practice", "referring_practice"):
                shared[key] = value
                continue
            if key in current.fields and key in ("patient_name", "nhs_number", "dob"):
                out.append(current)
                current = Referral()
            current.fields.setdefault(key, value)
            continue
        # Letter style: "Ms Siobhan KEANE, DOB 17/11/1971, NHS No 999 832 3638"
        dob = DOB_INLINE.search(line)
        number = NHS_INLINE.search(line)
        if dob or number:
            if any(k in current.fields for k in ("nhs_number", "dob")) and \
                    (number and "nhs_number" in current.fields or dob and "dob" in current.fields):
                out.append(current)
                current = Referral()
            if dob:
                current.fields.setdefault("dob", "/".join(dob.groups()))
            if number:
                current.fields.setdefault("nhs_number", number.group(1))
            name = re.split(r",\s*(?:DOB|D\.O\.B|date of birth|NHS)", line, maxsplit=1, flags=re.I)[0].strip()
            if name and name != line.strip() and len(name.split()) <= 6:
                current.fields.setdefault("patient_name", name)
            continue
        reg = REGISTERED_INLINE.search(line)
        if reg and "registered_practice" not in current.fields:
            current.fields["registered_practice"] = reg.group(1) + (f" ({reg.group(2)})" if reg.group(2) else "")
    if current.fields:
        out.append(current)
    for r in out:
        for k, v in shared.items():
            r.fields.setdefault(k, v)
    return [r for r in out if any(k in r.fields for k in ("nhs_number", "dob", "patient_name"))]
