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

LEX = forms.load_lexicon("imsk")
LABELS = LEX["labels"]
LABELLED = forms.LabelSet(LABELS)
SPECIALTIES = {k: v for k, v in LEX["specialties"].items() if k != "mecfs"}
MECFS = re.compile(r"(?<![a-z])(?:" + "|".join(re.escape(w) for w in LEX["specialties"]["mecfs"]) + r")(?![a-z])",
                   re.I)
DECISION_NAMES = {
    "return_to_gp": "return to GP", "physiotherapy": "accepted into physiotherapy",
    "msk_assessment": "accepted into MSK assessment and treatment", "rheumatology": "accepted into rheumatology",
    "pain_management": "accepted into pain management", "mecfs": "accepted into ME/CFS",
    "secondary_care": "re-directed to secondary care",
}
SELF_REFERRAL = re.compile(r"\bself[- ]?referr", re.I)


def _words(ws) -> str:
    return "|".join(re.escape(w) for w in sorted(ws, key=len, reverse=True))


def _rx(ws) -> re.Pattern:
    return re.compile(r"(?<![a-z0-9])(?:" + _words(ws) + r")(?![a-z0-9])", re.I)


_SPECIALTY_RX = {k: _rx(v) for k, v in SPECIALTIES.items()}
_URGENT, _ROUTINE = _rx(LEX["urgency"]["urgent"]), _rx(LEX["urgency"]["routine"])
_RF_NO = re.compile(r"^\W*(?:" + _words(LEX["red_flags"]["no"]) + r")(?![a-z])", re.I)
_RF_YES = re.compile(r"^\W*(?:" + _words(LEX["red_flags"]["yes"]) + r")(?![a-z])", re.I)
_RF_PROSE_NO, _RF_PROSE_YES = _rx(LEX["red_flags"]["prose_no"]), _rx(LEX["red_flags"]["prose_yes"])
PHONE_BEFORE = re.compile(r"(?:tel|telephone|phone|ph|mob|mobile|fax|contact|call|ring|switchboard|line|direct|dial|"
                          r"ext|extension|bleep|pager|whatsapp|sms|text|\+44|t|m|f)"
                          r"\s*(?:no\.?|number)?\s*[:.(]?\s*(?:\(?0?\)?\s*)?$", re.I)
NHS_BEFORE = re.compile(r"nhs\s*(?:no\.?|num(?:ber)?|#)?\s*(?:\([^)]{0,40}\))?\s*(?:is|:|-|=)?\s*$", re.I)
DOB_CUE = re.compile(r"\b(?:d\.?o\.?b\.?|date of birth|born(?: on)?|birth date)\s*[:\-]?\s*", re.I)
_NAME_WORD = r"(?!(?:DOB|NHS|D\.O\.B|Date|Born|Tel|Address)\b)[A-Z][A-Za-z'’-]+"
TITLE_NAME = re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Mx|Master|Dr)\.? (?:" + _NAME_WORD + r" ){0,4}" + _NAME_WORD)
PRACTICE_WORDS = re.compile(r"\b(?:surgery|practice|medical|health cent|centre|center|family doctors|doctors|"
                            r"clinic|group|partnership|mc|hc)\b|\b[A-Z]\d{5}\b", re.I)


def age_on(dob: date, on: date) -> int:
    """Whole years of age on a day (a birthday counts from that day)."""
    return on.year - dob.year - ((on.month, on.day) < (dob.month, dob.day))


def _two_digit_years(text: str, on: date) -> str:
    """"2nd April '79" -> "2nd April 1979" (a year not after `on`)."""
    def full(m):
        y = 2000 + int(m.group(1))
        return str(y if y <= on.year else y - 100)
    return re.sub(r"(?<=\s)[’']\s?(\d{2})\b", full, text)


def read_date(text: str, on: date | None = None, past: bool = False) -> date | None:
    """The first date written in text, day-first, with two-digit years read relative to `on`
    (a date of birth: '09.12.08' is 2008 when received in 2026, '3.10.48' is 1948)."""
    on = on or date.today()
    text = _two_digit_years(text or "", on)
    for _, d, _ in dates.find(text, pivot=on.year % 100 if past else (on.year + 1) % 100):
        return d
    return None


def _is_date_written(text: str, on: date) -> bool:
    return bool(dates.find(_two_digit_years(text or "", on)))


def _date_written(text: str, on: date) -> str | None:
    """The first date in text as written (two-digit years made whole): the field's value."""
    found = dates.find(_two_digit_years(text or "", on), pivot=on.year % 100)
    return found[0][2] if found else None


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


def specialty_of(value: str) -> str | None:
    """The referral specialty a value names (the first named wins); ME/CFS is rheumatology."""
    best = None
    for name, rx in _SPECIALTY_RX.items():
        m = rx.search(value or "")
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), name)
    if best:
        return best[1]
    return "rheumatology" if MECFS.search(value or "") else None


def red_flags_of(value: str) -> bool | None:
    v = (value or "").strip()
    if re.search(r"\b(?:except|apart from|other than|but|however|although|query|\?)", v, re.I) and \
            not re.match(r"^\W*(?:y|yes)\b", v, re.I):
        return None          # "none except night pain": a qualified answer is for the triage team to ask about
    if _RF_NO.match(v):
        return False
    if _RF_YES.match(v):
        return True
    return None


def urgency_of(value: str) -> str | None:
    """routine / urgent: whichever word comes first ('Routine (soon please if possible)' is routine)."""
    u, r = _URGENT.search(value or ""), _ROUTINE.search(value or "")
    if u and (not r or u.start() < r.start()):
        return "urgent"
    return "routine" if r else None


# -- the recognisers ---------------------------------------------------------------------------
def clean(text: str) -> str:
    """Without NHSmail/confidentiality footers (they are not part of any referral)."""
    paras = re.split(r"\n\s*\n", text or "")
    keep = [p for p in paras if not re.search(
        r"may contain confidential|intended recipient|nhsmail is the secure|portal\.nhs\.net|^\s*\*{10,}\s*$|"
        r"do not disclose, copy", p, re.I | re.M)]
    return "\n\n".join(keep)


def nhs_numbers(text: str) -> tuple[list[str], list[str]]:
    """(NHS numbers written against an NHS label, unlabelled ones passing Modulus 11), each digits.
    Telephone numbers (Tel/Mob/Fax/+44 before them) are never NHS numbers, even when they pass."""
    labelled, loose = [], []
    for m in nhs.SEPARATED.finditer(text or ""):
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


def _dob_in_prose(text: str, on: date) -> str | None:
    for m in DOB_CUE.finditer(text):
        chunk = text[m.end():m.end() + 30].split("\n")[0]
        if _is_date_written(chunk, on):
            return _date_written(chunk, on)
    return None


def _name_in_prose(text: str) -> tuple[str, str] | None:
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


def _prose_specialty(text: str, subject: str) -> str | None:
    """The specialty asked for in a sentence ('could you see him in the orthopaedic service',
    'Referral for physiotherapy please', 'Referral - Persistent MSK Pain Management'), else the subject."""
    for sentence in re.split(r"(?<=[.!?])\s+|\n", text):
        if re.search(r"\brefer|\bseen?\b|\bservice\b|\bclinic\b|\bplease\b|\bteam\b|\bkindly\b|\barrange|"
                     r"\bassess|\bopinion\b", sentence, re.I) and \
                not re.search(r"\b(?:was|were|had been|previously|discharged|ago|in (?:19|20)\d\d)\b", sentence, re.I):
            if specialty_of(sentence):
                return sentence.strip()
    return subject.strip() if specialty_of(subject) else None


def _prose_red_flags(text: str) -> tuple[str, str] | None:
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


def _prose_urgency(text: str) -> str | None:
    for sentence in re.split(r"(?<=[.!?])\s+|\n", text):
        if re.search(r"\bif\b|anything urgent|for urgent|urgent referrals?\s*:", sentence, re.I):
            continue
        if urgency_of(sentence):
            return sentence.strip()
    return None


def _prose_clinical(text: str) -> str | None:
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


def _discharged_on(text: str, on: date) -> date | None:
    for m in re.finditer(r"\bdischarged?\b[^.\n]{0,80}", text, re.I):
        d = read_date(m.group(0), on, past=True)
        if d and d <= on:
            return d
    return None


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
        hit = _name_in_prose(flat)
        if hit:
            name, name_line = hit
            r.read["patient name"] = "from the letter's heading"
    # date of birth: labelled, else after DOB/born, else the date on the patient's heading line
    dob = first("dob", lambda v: _is_date_written(v, on)) or first("dob")
    if not dob:
        dob = _dob_in_prose(flat, on)
        if not dob and name_line and _is_date_written(name_line, on):
            dob = _date_written(name_line[name_line.find(name) + len(name):], on)
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
        prose = _prose_specialty(flat, subject)
        if prose:
            specialty = prose
            r.read["referral specialty"] = "from the letter" if prose != subject.strip() else "from the subject"
    clinical = " ".join(f.value for f in found.get("clinical", []) if len(f.value.split()) >= 3) or None
    if not clinical:
        clinical = _prose_clinical(flat)
        if clinical:
            r.read["clinical details"] = "the letter's clinical paragraph"
    red = first("red_flags", lambda v: red_flags_of(v) is not None) or first("red_flags")
    if red is None or red_flags_of(red) is None:
        prose = _prose_red_flags("\n".join(ln for ln in flat.splitlines() if not LABELLED.match_line(ln)) or flat)
        if prose:
            red = prose[0] + f" (the letter: \"{prose[1][:160]}\")"
            r.read["red flags"] = "from the letter"
    urgency = first("urgency", lambda v: urgency_of(v) is not None) or first("urgency")
    if urgency is None or urgency_of(urgency) is None:
        prose = _prose_urgency(flat)
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
        r.self_referral_back = _discharged_on(flat, on)
    return r


def looks_like_practice(value: str) -> bool:
    return bool(PRACTICE_WORDS.search(value or ""))


# -- the triage team's reply --------------------------------------------------------------------
_DEC = LEX["decisions"]
_STRONG = [(k, _rx(v["strong"])) for k, v in _DEC.items()]
_WEAK = [(k, _rx(v["weak"])) for k, v in _DEC.items()]
_BY_NUMBER = {v["number"]: k for k, v in _DEC.items()}
_DECISION_LINE = re.compile(r"^\s*(?:triage\s+)?(?:decision|outcome|triaged?)\b[^\n]*$", re.I | re.M)
_APPT = _rx(LEX["dates"]["appointment"])
_NOT_APPT = _rx(LEX["dates"]["not_appointment"])
_LAST = _rx(LEX["dates"]["last_appointment"])


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
    text = _two_digit_years(text or "", on)
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
