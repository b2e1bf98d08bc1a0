"""The UK clinic letter, read as hospitals write it (issue 10, principle 2).

    Re: Mrs Patricia Anne KEMBLE, DOB 14/03/1948, NHS No 999 148 7166
        22 Furnace Lane
        Southmere SQ5 9FL

or labelled fields ("Patient:", "DOB:", "NHS No:", an address over several lines), a
pasted Outlook table, PDF/DOCX text with each label on its own line; section headings by
synonym (Diagnosis / Impression / Problems; Plan / Recommendations / Actions for GP;
Re-refer if / Fast-track / Refer back if; Information given / Patient informed); dates
with the role the words before them give (born, clinic, typed, initiated, first dose,
last dose, next due), "today" being the letter's own date (the clinic, not the day it
was typed or sent).

The parts are read in their own modules (phrases, letterpatient, lettersections,
letterdates, letterpractices); this one puts a letter together and is where the letter
reader's users find them all (`from handlers.contract.reading import clinicletter as cl`).

Mail-agnostic: text in, a ClinicLetter out. No SQL, no mail, nothing logged (the text
holds patient details). The words live in catalogue/lexicon/letters.toml.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from handlers.contract import nhs
# the letter reader's parts, used through this module by transfers, letters and the tests
from handlers.contract.reading.letterdates import ROLE_ORDER, DoseDates, _keywords, dated, dose_dates
from handlers.contract.reading.letterpatient import Patient, nhs_numbers, patient
from handlers.contract.reading.letterpractices import norm_name, ods_codes_in, practice_mentions, practices_in
from handlers.contract.reading.lettersections import sections, sentences
from handlers.contract.reading.phrases import Phrases, _alt, lexicon

__all__ = ["ClinicLetter", "read", "strip_quoted_from", "looks_like_letter",
           "ROLE_ORDER", "DoseDates", "_keywords", "dated", "dose_dates", "Patient", "nhs_numbers", "patient",
           "norm_name", "ods_codes_in", "practice_mentions", "practices_in", "sections", "sentences",
           "Phrases", "_alt", "lexicon"]


@dataclass
class ClinicLetter:
    text: str
    patient: Patient
    sections: dict[str, str]
    dates: DoseDates
    mentions: list[str] = field(default_factory=list)

    @property
    def nhs_number(self) -> str | None:
        return nhs.normalise(self.patient.nhs_raw)


def read(text: str, received: date | None = None) -> ClinicLetter:
    pivot = ((received or date.today()).year + 1) % 100
    return ClinicLetter(text=text, patient=patient(text), sections=sections(text),
                        dates=dose_dates(text, pivot, fallback=received), mentions=practice_mentions(text))


def strip_quoted_from(text: str, addresses: set[str]) -> str:
    """Cut the quoted copies of mail these addresses sent (lesbot's own notices and rejections):
    from their 'From: ... <address>' header to the next quoted header or the end."""
    if not addresses or not text:
        return text
    lines = text.splitlines()
    lowered = text.lower()
    if not any(a in lowered for a in addresses):
        return "\n".join(lines)          # none of their mail is quoted here
    out, skipping = [], False
    header = re.compile(r"^\s*>?\s*(?:From|Van|De)\s*:\s*(.*)$", re.I)
    for line in lines:
        m = header.match(line)
        if m:
            addr = re.findall(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+", m.group(1))
            skipping = bool(addr) and addr[0].lower() in addresses
        elif re.match(r"^\s*-{2,}\s*Original Message\s*-{2,}", line, re.I):
            skipping = False
        if not skipping:
            out.append(line)
    return "\n".join(out)


def looks_like_letter(text: str) -> bool:
    """Enough of a patient to be a letter (not a covering note): an NHS number or a DOB with a name."""
    p = patient(text)
    return bool(p.nhs_raw or p.nhs_labelled or (p.dob_raw and p.name))
