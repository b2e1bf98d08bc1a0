"""The IMSK standard referral and the triage team's decisions, read from mail as GPs write it.

A referral is read from every kind of evidence, labels being only one (issue 10): labelled
lines in any spelling, Word tables with tick boxes, Outlook tables, EMIS pastes, PDF text
with the answer under the label, and prose letters ("Re: Mr X, DOB ...", "could you see
him in the orthopaedic service", "I do not think there are any red flags"). Each field
keeps how it was found so the acknowledgement can echo what lesbot read. The words are
data: catalogue/lexicon/imsk.toml.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from handlers.contract import dates
from handlers.contract import nhs
from handlers.contract.letters import PatientFields
from handlers.contract.reading import forms
from handlers.imsk.prose import (discharged_on, dob_in_prose, name_in_prose, nhs_numbers, prose_clinical,
                                 prose_red_flags, prose_specialty, prose_urgency)
from handlers.imsk.vocabulary import (LABELLED, LEX, MECFS, age_on, clean, date_written, is_date_written, read_date,
                                      red_flags_of, specialty_of, two_digit_years, urgency_of, word_rx)

SELF_REFERRAL = re.compile(r"\bself[- ]?referr", re.I)
PRACTICE_WORDS = re.compile(r"\b(?:surgery|practice|medical|health cent|centre|center|family doctors|doctors|"
                            r"clinic|group|partnership|mc|hc)\b|\b[A-Z]\d{5}\b", re.I)


@dataclass
class ImskReferral(PatientFields):
    on: date = field(default_factory=date.today)
    read: dict = field(default_factory=dict)          # field -> how lesbot found it (echoed in replies)
    practices: list = field(default_factory=list)      # registered practice as written, best first
    self_referral_back: date | None = None             # discharge date when the patient self-refers back

    @property
    def dob(self) -> date | None:
        return read_date(self.get("dob"), self.on, past=True)

    @property
    def specialty(self) -> str | None:
        return specialty_of(self.get("specialty"))

    @property
    def mecfs(self) -> bool:
        return bool(MECFS.search(self.get("specialty")) or self.get("_mecfs"))

    @property
    def red_flags(self) -> bool | None:
        return red_flags_of(self.get("red_flags"))

    @property
    def urgency(self) -> str | None:
        return urgency_of(self.get("urgency"))

    def problems(self, on) -> list[tuple[str, str]]:
        out = [] if self.get("patient_name") else [("patient name", "is missing. Add 'Patient name: ...'.")]
        out += self.identity_problems(on)
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


def read_referral(text: str, subject: str = "", on: date | None = None) -> ImskReferral:
    """Every field of the standard referral the text gives, labelled or not."""
    on = on or date.today()
    text = clean(text)
    flat = forms.normalise(text)
    r = ImskReferral(on=on)
    found = LABELLED.find(text)

    def first(key, ok=lambda v: True):
        for f in found.get(key, []):
            if f.value and ok(f.value):
                return f.value
        return None

    name = first("patient_name", lambda v: bool(re.search(r"[A-Za-z]{2}", v)) and len(v.split()) <= 9
                 and not re.search(r"\d{3}", v))
    name_line = ""
    if name:
        r.read["patient name"] = "labelled"
    else:
        hit = name_in_prose(flat)
        if hit:
            name, name_line = hit
            r.read["patient name"] = "from the letter's heading"
    # date of birth: labelled, else after DOB/born, else the date on the patient's heading line
    dob = first("dob", lambda v: is_date_written(v, on)) or first("dob")
    if not dob:
        dob = dob_in_prose(flat, on)
        if not dob and name_line and is_date_written(name_line, on):
            dob = date_written(name_line[name_line.find(name) + len(name):], on)
        if dob:
            r.read["date of birth"] = "from the letter"
    # NHS number: a labelled value, else a number by an NHS label, else the one valid number in the text
    nhs_value = first("nhs_number", lambda v: nhs.normalise(re.sub(r"[^\d\s-]", " ", v).strip()) is not None)
    digits = nhs.normalise(re.sub(r"[^\d\s-]", " ", nhs_value).strip()) if nhs_value else None
    if digits is None:
        labelled, loose = nhs_numbers(flat)
        valid = [n for n in labelled if nhs.is_valid(n)]
        digits = (valid or labelled or (loose if len(loose) == 1 else []) or [None])[0]
        if digits:
            r.read["NHS number"] = "labelled" if digits in labelled else "the one valid NHS number in the mail"
    practices = [f.value for f in found.get("registered_practice", []) if f.value]
    for m in re.finditer(r"\bregistered\s+(?:with|at)\s+(?:us\s+(?:at|here at)\s+)?([^.\n]{3,80})", flat, re.I):
        practices.append(m.group(1).strip())
    specialty = first("specialty", lambda v: specialty_of(v) is not None) or first("specialty")
    if not specialty or specialty_of(specialty) is None:
        prose = prose_specialty(flat, subject)
        if prose:
            specialty = prose
            r.read["referral specialty"] = "from the letter" if prose != subject.strip() else "from the subject"
    clinical = " ".join(f.value for f in found.get("clinical", []) if len(f.value.split()) >= 3) or None
    if not clinical:
        clinical = prose_clinical(flat)
        if clinical:
            r.read["clinical details"] = "the letter's clinical paragraph"
    red = first("red_flags", lambda v: red_flags_of(v) is not None) or first("red_flags")
    if red is None or red_flags_of(red) is None:
        prose = prose_red_flags("\n".join(ln for ln in flat.splitlines() if not LABELLED.match_line(ln)) or flat)
        if prose:
            red = prose[0] + f" (the letter: \"{prose[1][:160]}\")"
            r.read["red flags"] = "from the letter"
    urgency = first("urgency", lambda v: urgency_of(v) is not None) or first("urgency")
    if urgency is None or urgency_of(urgency) is None:
        prose = prose_urgency(flat)
        if prose:
            urgency = prose
            r.read["urgency"] = "from the letter"
    values = {"patient_name": name, "dob": dob, "nhs_number": digits, "specialty": specialty,
              "clinical": clinical, "red_flags": red, "urgency": urgency,
              "registered_practice": practices[0] if practices else None}
    r.fields = {k: v.strip() for k, v in values.items() if v and v.strip()}
    r.practices = practices
    if MECFS.search(" ".join(f.value for f in found.get("specialty", []))) or \
            (specialty_of(specialty or "") == "rheumatology" and MECFS.search(clinical or "")):
        r.fields["_mecfs"] = "yes"
    if SELF_REFERRAL.search(flat):
        r.self_referral_back = discharged_on(flat, on)
    return r


def looks_like_practice(value: str) -> bool:
    return bool(PRACTICE_WORDS.search(value or ""))


# -- the triage team's reply --------------------------------------------------------------------
_DEC = LEX["decisions"]
_STRONG = [(k, word_rx(v["strong"])) for k, v in _DEC.items()]
_WEAK = [(k, word_rx(v["weak"])) for k, v in _DEC.items()]
_BY_NUMBER = {v["number"]: k for k, v in _DEC.items()}
_DECISION_LINE = re.compile(r"^\s*(?:triage\s+)?(?:decision|outcome|triaged?)\b[^\n]*$", re.I | re.M)
_APPT = word_rx(LEX["dates"]["appointment"])
_NOT_APPT = word_rx(LEX["dates"]["not_appointment"])
_LAST = word_rx(LEX["dates"]["last_appointment"])


def read_decision(text: str, on: date | None = None) -> tuple[str | None, date | None, str]:
    """(decision, first appointment date, what the clinician wrote)."""
    text = clean(text)
    decision = None
    strong = [(m.start(), k) for k, rx in _STRONG for m in [rx.search(text)] if m]
    if strong:
        decision = min(strong)[1]
    if decision is None:
        for line in _DECISION_LINE.findall(text):
            m = re.search(r"(?:decision|outcome)\s*(?:no\.?|number)?\s*[:\-–]?\s*\(?([1-7])\b|^\s*\D{0,30}?\b([1-7])\s*[).]",
                          line, re.I)
            if m:
                decision = _BY_NUMBER[int(m.group(1) or m.group(2))]
                break
            weak = [(mm.start(), k) for k, rx in _WEAK for mm in [rx.search(line)] if mm]
            if weak:
                decision = min(weak)[1]
                break
    if decision is None:
        m = re.search(r"\b(?:outcome|decision)\s*(?:no\.?|number)?\s*\(?([1-7])\b|^\s*([1-7])\)\s", text, re.I | re.M)
        if m:
            decision = _BY_NUMBER[int(m.group(1) or m.group(2))]
    if decision is None:
        for k, rx in _WEAK:
            if rx.search(text):
                decision = k
                break
    return decision, appointment(text, on), text.strip()[:2000]


def dated(text: str, on: date | None = None) -> list[tuple[date, str, str]]:
    """Each real date in text with the words before it on its line (up to 60 characters) and after it."""
    on = on or date.today()
    text = two_digit_years(text or "", on)
    out = []
    for pos, d, written in dates.find(text, pivot=(on.year + 1) % 100):
        if d is None:
            continue
        line_start = text.rfind("\n", 0, pos) + 1
        before = text[max(line_start, pos - 60):pos]
        line_end = text.find("\n", pos)
        after = text[pos + len(written):line_end if line_end >= 0 else None][:40]
        out.append((d, before, after))
    return out


def appointment(text: str, on: date | None = None) -> date | None:
    """The (first) appointment offered: a date the words before it call an appointment, not one
    that is when the patient was discharged, received, born or last seen."""
    cands = dated(text, on)
    cued = [d for d, before, _ in cands if _APPT.search(before) and not _NOT_APPT.search(before[-25:])]
    if cued:
        return cued[0]
    plain = [d for d, before, _ in cands if not _NOT_APPT.search(before) and (on is None or d >= on)]
    return plain[0] if plain else None


def transfer_dates(text: str, on: date | None = None) -> tuple[date | None, date | None]:
    """(last appointment, new appointment) in a transfer between disciplines."""
    cands = dated(text, on)
    last = next((d for d, before, after in cands if _LAST.search(before) or re.match(r"\s*\(?(?:first|last)\s+appointment",
                                                                                   after, re.I)), None)
    new = next((d for d, before, _ in cands if d != last and _APPT.search(before)
                and not _LAST.search(before)), None)
    if new is None:
        later = [d for d, _, _ in cands if d != last and (last is None or d > last)]
        new = later[0] if later else None
    if last is None:
        earlier = [d for d, _, _ in cands if new and d < new]
        last = earlier[-1] if earlier else None
    return last, new
