"""Read inter-practice referrals (MSK joint injection) out of text as practices write them: a
secretary's form with her own labels, a GP's prose letter ("Could Kettlebrook Health Centre please
see Mrs Ellison, born 14/03/1952"), an Outlook table, an EMIS/SystmOne paste, a forwarded chain, the
text of a DOCX form (☒/☐ boxes) or PDF letter; one patient or several (numbered blocks, repeated
labels, or a table with a column per patient).

This reads and checks fields; it does not decide, store or send anything. Which practice is which is
for handlers/contract/reading/practices.py and the handler. Patient details stay in the returned
objects, never in logs. Label words live in catalogue/lexicon/referrals.toml. The text's layout is
read by layout.py, the patient's details by patient_details.py, the rest by clinical.py.
"""
from __future__ import annotations

import re
from datetime import date

from handlers.contract.letters import PatientFields
from handlers.contract.reading import negation, patient
from handlers.referrals import layout
from handlers.referrals.clinical import EXTRAS, read_clinical, read_practices
from handlers.referrals.lexicon import lexicon
from handlers.referrals.patient_details import read_contact, read_dob, read_name, read_nhs_number

PATIENT_KEYS = ("patient_name", "dob", "nhs_number", "address", "telephone")
CLINICAL_KEYS = ("registered_practice", "why_not_registered", "receiving_practice", "referring_practice",
                 "joint", "reason") + EXTRAS
ODS = re.compile(r"\(([A-Z]\d{5})\)|\b([A-Z]\d{5})\b")


class Referral(PatientFields):
    """One patient's referral: fields as written (fields), what was assumed or read from prose (notes)."""

    def __init__(self, fields: dict | None = None, notes: dict | None = None):
        super().__init__(dict(fields or {}))
        self.notes: dict[str, str] = dict(notes or {})     # field -> how it was read ("from the prose", ...)

    def ods(self, key: str) -> str | None:
        m = ODS.search(self.get(key))
        return (m.group(1) or m.group(2)) if m else None

    @property
    def dob(self) -> date | None:
        return patient.parse_date(self.get("dob"), self.on, birth=True) if self.get("dob") else None

    on: date | None = None

    def problems(self, on: date) -> list[tuple[str, str]]:
        """What is missing or wrong, each with the fix, as (field, problem)."""
        self.on = on
        out = self.identity_problems(on)
        if self.dob and self.dob < on and age_on(self.dob, on) < 18:
            out.append(("date of birth", "the patient is under 18; this service is for adults only "
                                         "(18 or over on the referral date)."))
        if not self.get("patient_name"):
            out.append(("patient name", "is missing."))
        for key, what in (("joint", "joint or site"), ("reason", "clinical reason")):
            if not self.get(key):
                out.append((what, "is missing."))
        return out

    def contact_problems(self) -> list[tuple[str, str]]:
        """The receiving practice must be able to reach the patient: an address or a telephone number."""
        if self.get("address") or self.get("telephone") or not lexicon()["require_contact"]:
            return []
        return [("address or contact number", "is missing. Add the patient's address or a telephone number "
                                              "the receiving practice can use to contact them.")]

    def extras(self) -> dict[str, str]:
        """Anticoagulants, allergies, diabetes, previous injections as the receiving practice should see
        them: a negation is a recorded No, never 'not stated'."""
        out = {}
        for k in EXTRAS:
            v = self.get(k)
            out[k] = negation.value(k, v).display() if v else "not stated"
        return out


def age_on(born: date, on: date) -> int:
    return patient.age_on(born, on)


def extract(text: str, on: date | None = None, subject: str = "") -> list[Referral]:
    """One Referral per patient found in text (empty when none is)."""
    lex = lexicon()
    labelset = lex["labelset"]
    text = layout.clean(text)
    columns = layout.columns(text, labelset)
    if columns:
        out = []
        for col in columns:
            out += extract(col, on, subject)[:1]
        return out
    before, blocks, after = layout.blocks(text, labelset)
    shared = before + "\n" + after
    shared_labels = labelset.find(shared) if len(blocks) > 1 else {}
    out = []
    for block in blocks:
        r = _read_one(block if len(blocks) > 1 else text, on, subject if len(blocks) == 1 else "",
                      lex, labelset, context=shared if len(blocks) > 1 else "")
        for key in ("receiving_practice", "registered_practice", "referring_practice", "why_not_registered"):
            if not r.get(key) and shared_labels.get(key):
                r.fields[key] = shared_labels[key][0].value
        if any(r.get(k) for k in ("nhs_number", "dob", "patient_name")) or r.notes.get("nhs_label_empty"):
            out.append(r)
    return out


def _read_one(text: str, on: date | None, subject: str, lex: dict, labelset, context: str = "") -> Referral:
    r = Referral()
    t = layout.Letter.read(text, labelset)
    read_name(r, t)
    read_nhs_number(r, t)
    read_dob(r, t, on)
    read_contact(r, t, labelset)
    read_practices(r, t)
    read_clinical(r, t, subject, labelset, lex)
    return r
