"""Who the patient is and how to reach them: name, NHS number, date of birth, address, telephone.
A labelled value comes first; else what the letter says near the patient's details (a letterhead's
or signature's address and telephone are the practice's, not the patient's)."""
from __future__ import annotations

import re
from datetime import date

from handlers.contract import dates
from handlers.contract.reading import forms, patient
from handlers.referrals.layout import PRACTICE_LINE, Letter, labelled_value

POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b")
PHONE = re.compile(r"(?<![\d+])(?:\+44\s?\(?0?\)?\s?|0)\d{2,4}[\s-]?\d{3,4}[\s-]?\d{3,4}(?!\d)")
HOUSE = re.compile(r"(?:(?:flat|apartment|apt|unit)\s+\w+,?\s+)?(?<![\d/.-])\b\d{1,4}[A-Za-z]?,?\s+[A-Z][^\n():]*?" +
                   POSTCODE.pattern, re.I)


def read_name(r, t: Letter) -> None:
    name = labelled_value(t.labelled, "patient_name", t.text)
    if name:
        name = _name_from_label(name)
    sur, fore = labelled_value(t.labelled, "surname", t.text), labelled_value(t.labelled, "forename", t.text)
    if sur and fore and not name:
        title = labelled_value(t.labelled, "title", t.text)
        name = " ".join(x for x in (title, fore, sur) if x)
    if not name:
        for c in patient.patient_names(t.zone_text):
            if re.match(r"(?i)(?:dr|prof)\.?\s", c.name) and c.how not in ("label", "re_line", "surname_forename"):
                continue
            if re.search(r"\band\b", c.name):
                continue
            name = c.name
            r.notes["patient_name"] = "read from the letter"
            break
    if name:
        r.fields["patient_name"] = name


def read_nhs_number(r, t: Letter) -> None:
    written = labelled_value(t.labelled, "nhs_number", t.text)
    digits = re.sub(r"\D", "", written)
    if written and len(digits) >= 9:
        r.fields["nhs_number"] = written
    else:
        number = patient.nhs_number(t.zone_text) or patient.nhs_number(t.body)
        if number:
            r.fields["nhs_number"] = number
            r.notes["nhs_number"] = "read from the letter"
        else:
            bad = patient.invalid_nhs_numbers(t.zone_text)
            if bad:
                r.fields["nhs_number"] = bad[0].written
    if not r.get("nhs_number") and patient.nhs_label_empty(t.text):
        r.notes["nhs_label_empty"] = "yes"


def read_dob(r, t: Letter, on: date | None) -> None:
    dob = labelled_value(t.labelled, "dob", t.text)
    if dob and patient.parse_date(dob, on, birth=True):
        r.fields["dob"] = dob
    else:
        found = patient.dates_of_birth(t.zone_text, on) or patient.dates_of_birth(t.body, on)
        good = [c for c in found if c.date]
        if good:
            r.fields["dob"] = good[0].written
        elif found or dob:
            r.fields["dob"] = dob or found[0].written
        else:
            bare = _bare_dob(t.zone_text, on)
            if bare:
                r.fields["dob"] = bare
                r.notes["dob"] = "an unlabelled date beside the patient's details"


def read_contact(r, t: Letter, labelset) -> None:
    address = labelled_value(t.labelled, "address", t.text, t.zone, t.spans)
    if address:
        address = _address_run_on(t.text, t.labelled, address, labelset)
    else:
        address = _inline_address(t.zone_text)
    if address:
        r.fields["address"] = address
    tel = labelled_value(t.labelled, "telephone", t.text, t.zone, t.spans)
    if not tel:
        tel = _inline_phone(t.zone_text)
    if tel:
        r.fields["telephone"] = tel


def _name_from_label(value: str) -> str:
    """'CLEGG, Desmond' -> 'Desmond CLEGG'; 'Mrs Judith FEATHERSTONE (Female)' -> 'Mrs Judith FEATHERSTONE'."""
    v = re.sub(r"\s*\((?:male|female|m|f)\)\s*", " ", value, flags=re.I).strip()
    names = patient.patient_names(f"Patient name: {v}")
    return names[0].name if names else v


def _bare_dob(text: str, on: date | None) -> str:
    """A date alone on a line in a patient block ('Mr Barry Cunliffe' / '21/03/1947' / '9996726630'),
    old enough to be a birth date."""
    for line in text.splitlines():
        s = line.strip()
        if not s or len(s) > 40:
            continue
        found = dates.find(s)
        if len(found) == 1 and found[0][1]:
            pos, d, written = found[0]
            rest = (s[:pos] + s[pos + len(written):]).strip(" ,()")
            if rest and not re.fullmatch(r"(?:aged?\s*)?\d{1,3}\s*(?:y|yrs?|years?)?(?:\s*old)?", rest, re.I):
                continue
            ref = on or date.today()
            if d.year <= ref.year - 1:
                return written
    return ""


def _address_run_on(text: str, labelled: dict, value: str, labelset) -> str:
    """A labelled address split over lines (PDF text): the lines below it up to the postcode."""
    if POSTCODE.search(value):
        return value
    lines = forms.normalise(text).splitlines()
    for f in labelled.get("address", []):
        if f.value.strip() != value:
            continue
        parts, j = [value], f.line + 1
        while j < len(lines) and j <= f.line + 5:
            ln = lines[j].strip()
            if not ln or labelset.is_label_line(lines[j]):
                break
            if ln != value:
                parts.append(ln)
            if POSTCODE.search(ln):
                return ", ".join(dict.fromkeys(parts))
            j += 1
    return value


def _inline_address(text: str) -> str:
    for line in text.splitlines():
        if not POSTCODE.search(line) or PRACTICE_LINE.search(line):
            continue
        hits = []
        for start in (m.start() for m in re.finditer(r"(?<![\d/.-])\b\d{1,4}[A-Za-z]?,?\s+[A-Z]|\b(?i:flat|apartment|apt|unit)\s", line)):
            m = HOUSE.match(line, start)
            if m and not re.match(r"\d{4}\b", line[start:]):
                hits.append(m)
        if hits:
            best = min(hits, key=lambda m: len(m.group(0)))
            return best.group(0).strip(" ,.")
        pc = POSTCODE.search(line)
        head = line[:pc.end()]
        cut = max(head.rfind("("), head.rfind(")"), head.rfind(":"), head.lower().rfind(" of "))
        if cut >= 0:
            tail = head[cut + 1:].strip(" ,.")
            tail = re.sub(r"^of\s+", "", tail, flags=re.I)
            if 2 <= len(tail.split()) <= 12:
                return tail
        # 'The Bothy, Chapel Lane, Wyke WQ3 1BL' alone on its line
        s = re.split(r"\s{2,}|\s(?:tel|mob|phone|home|mobile)\b", line.strip(), flags=re.I)[0]
        if s and len(s.split()) <= 12 and not re.search(r"\b(?:dob|nhs)\b", s, re.I):
            return s.strip(" ,.")
    return ""


def _inline_phone(text: str) -> str:
    for line in text.splitlines():
        if PRACTICE_LINE.search(line):
            continue
        m = PHONE.search(line)
        if m:
            return m.group(0).strip()
    return ""
