"""The IMSK standard referral and the triage team's decisions, read from text.

Every GP refers the same way (seed 002): one labelled form. What is missing or
unclear is listed with the fix, so the referrer learns the standard.
"""
from __future__ import annotations

import re

from bot import dates
from bot.letters import Labels, PatientFields, join_label_lines
from bot.referralparse import age_on

LABELS = {
    "patient_name": ("patient name", "patient's name", "name of patient", "patient", "name"),
    "dob": ("date of birth", "d.o.b.", "d.o.b", "dob"),
    "nhs_number": ("nhs number", "nhs no.", "nhs no", "nhs"),
    "registered_practice": ("registered gp practice", "registered practice", "gp practice", "registered with"),
    "specialty": ("referral specialty", "referral speciality", "specialty", "speciality", "referred to"),
    "clinical": ("clinical details", "clinical information", "reason for referral", "presenting complaint",
                 "history"),
    "red_flags": ("red flag symptoms present", "red flag symptoms", "red flags present", "red flags", "red flag"),
    "urgency": ("urgency", "priority"),
}
LABELLED = Labels(LABELS)
SPECIALTIES = {
    "physiotherapy": r"physio",
    "orthopaedics": r"ortho",
    "rheumatology": r"rheumat",
    "pain management": r"pain",
}
MECFS = re.compile(r"\bME\s*/\s*CFS\b|chronic fatigue|myalgic", re.I)

# the seven triage decisions of section 3.2.4, by the words a clinician uses
DECISIONS = [
    ("return_to_gp", r"return(?:ed)? (?:back )?to (?:the )?GP|back to (?:the )?GP"),
    ("secondary_care", r"re-?direct(?:ed)? to secondary care|secondary care|two week wait|2 ?ww"),
    ("mecfs", r"accept(?:ed)? into ME\s*/\s*CFS|ME\s*/\s*CFS"),
    ("pain_management", r"accept(?:ed)? into pain management|pain management"),
    ("rheumatology", r"accept(?:ed)? into rheumatology|rheumatology"),
    ("msk_assessment", r"MSK assessment|assessment and treatment|accept(?:ed)? into MSK"),
    ("physiotherapy", r"accept(?:ed)? into physio\w*|physiotherapy"),
]
DECISION_NAMES = {
    "return_to_gp": "return to GP", "physiotherapy": "accepted into physiotherapy",
    "msk_assessment": "accepted into MSK assessment and treatment", "rheumatology": "accepted into rheumatology",
    "pain_management": "accepted into pain management", "mecfs": "accepted into ME/CFS",
    "secondary_care": "re-directed to secondary care",
}
APPOINTMENT = re.compile(r"\b(?:first |1st )?appointment\b[^\n]{0,40}?(?:on|:|for)?\s*", re.I)


class ImskReferral(PatientFields):
    @property
    def specialty(self) -> str | None:
        text = self.get("specialty")
        if MECFS.search(text):
            return "rheumatology"          # ME/CFS arrives under rheumatology
        for name, rx in SPECIALTIES.items():
            if re.search(rx, text, re.I):
                return name
        return None

    @property
    def mecfs(self) -> bool:
        return bool(MECFS.search(self.get("specialty") + " " + self.get("clinical")))

    @property
    def red_flags(self) -> bool | None:
        v = self.get("red_flags").strip().lower()
        if re.match(r"^(y|yes|present|positive|true)\b", v):
            return True
        if re.match(r"^(n|no|none|nil|absent|negative|false)\b", v):
            return False
        return None

    @property
    def urgency(self) -> str | None:
        v = self.get("urgency").lower()
        if re.search(r"urgent|2\s?ww|two week|soon", v):
            return "urgent"
        if re.search(r"routine|non[- ]urgent", v):
            return "routine"
        return None

    def problems(self, on) -> list[tuple[str, str]]:
        out = [] if self.get("patient_name") else [("patient name", "is missing. Add 'Patient name: ...'.")]
        out += self.identity_problems(on)
        if not self.get("registered_practice"):
            out.append(("registered practice", "is missing. Add 'Registered practice: <name> (<ODS code>)'."))
        if not self.get("specialty"):
            out.append(("referral specialty", "is missing. Choose one: physiotherapy, orthopaedics, rheumatology "
                                              "or pain management (ME/CFS: rheumatology)."))
        elif self.specialty is None:
            out.append(("referral specialty", f"'{self.get('specialty')}' is not one the service takes: "
                                              "physiotherapy, orthopaedics, rheumatology or pain management "
                                              "(ME/CFS: rheumatology)."))
        if len(self.get("clinical").split()) < 3:
            out.append(("clinical details", "are missing. Describe the problem, its history and what has been "
                                            "tried."))
        if self.red_flags is None:
            out.append(("red flags", "say whether red-flag symptoms are present: 'Red flags: yes' or "
                                     "'Red flags: no'. (Red flags do not exclude a patient.)"))
        if self.urgency is None:
            out.append(("urgency", "is missing. Write 'Urgency: routine' or 'Urgency: urgent'."))
        return out

    def under_18(self, on) -> bool:
        return bool(self.dob and self.dob < on and age_on(self.dob, on) < 18)


def read_referral(text: str) -> ImskReferral:
    r = ImskReferral()
    for line in join_label_lines(text, LABELLED.only).splitlines():
        m = LABELLED.line.match(line)
        if m:
            r.fields.setdefault(LABELLED.key(m.group(1)), m.group(2).strip())
    return r


def read_decision(text: str) -> tuple[str | None, object, str]:
    """(decision, first appointment date, what the clinician wrote about it)."""
    decision = None
    # the labelled decision line when there is one, so other words in the note cannot mislead
    m = re.search(r"^\s*(?:triage )?(?:decision|outcome)\s*[:\-–]\s*(.+)$", text, re.I | re.M)
    for scope in ([m.group(1)] if m else []) + [text]:
        for key, rx in DECISIONS:
            if re.search(rx, scope, re.I):
                decision = key
                break
        if decision:
            break
    appt = None
    m = APPOINTMENT.search(text)
    if m:
        appt = dates.parse(text[m.end():m.end() + 40])
    return decision, appt, text.strip()[:2000]
