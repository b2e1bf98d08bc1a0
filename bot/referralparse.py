"""Read inter-practice referrals (MSK joint injection) out of text: a form with
labels, a letter, a forwarded chain, or the text of a DOCX/PDF form.

This reads and checks fields; it does not decide, store or send anything.
Patient details stay in the returned objects, never in logs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from bot import dates
from bot.letters import ADDRESS_LINE, Labels, PatientFields, join_label_lines

LABELS = {
    "patient_name": ("patient name", "patient's name", "name of patient", "patient", "name"),
    "dob": ("date of birth", "d.o.b.", "d.o.b", "dob"),
    "nhs_number": ("nhs number", "nhs no.", "nhs no", "nhs"),
    "address": ("patient address", "address"),
    "telephone": ("contact telephone", "telephone", "tel", "phone", "contact number", "mobile"),
    "registered_practice": ("registered gp practice", "registered practice", "registered with",
                            "gp practice", "patient's practice", "patient's gp practice"),
    "why_not_registered": ("reason not registered", "why not registered", "referred on behalf of",
                           "referring on behalf of"),
    "receiving_practice": ("receiving practice", "referred to"),
    "referring_practice": ("referring practice", "referred from", "referrer"),
    "joint": ("joint / site", "joint/site", "joint(s)", "joint", "site"),
    "reason": ("clinical reason", "reason for referral", "clinical details", "reason"),
    "anticoagulants": ("anticoagulants", "anticoagulation", "anticoagulant"),
    "allergies": ("allergies", "allergy"),
    "diabetes": ("diabetes", "diabetic"),
    "previous_injections": ("previous joint injections", "previous injections"),
}
LABELLED = Labels(LABELS)
LABEL_LINE = LABELLED.line
DOB_INLINE = re.compile(r"\b(?:DOB|D\.O\.B\.?|date of birth)[:\s]+(.{6,30})", re.I)
NHS_INLINE = re.compile(r"\bNHS\s*(?:No\.?|number)?[:\s]*(\d{3}[ -]?\d{3}[ -]?\d{4})\b", re.I)
REGISTERED_INLINE = re.compile(r"\bregistered with\s+(.+?)\s*(?:\(([A-Z]\d{5})\))?\s*$", re.I | re.M)
POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b")
ODS = re.compile(r"\(([A-Z]\d{5})\)")


class Referral(PatientFields):
    def ods(self, key: str) -> str | None:
        m = ODS.search(self.get(key))
        return m.group(1) if m else None

    def problems(self, on: date) -> list[tuple[str, str]]:
        """What is missing or wrong, each with the fix, as (field, problem)."""
        out = self.identity_problems(on)
        if self.dob and self.dob < on and age_on(self.dob, on) < 18:
            out.append(("date of birth", "the patient is under 18; this service is for adults only."))
        for key, what in (("patient_name", "patient name"), ("joint", "joint or site"),
                          ("reason", "clinical reason")):
            if not self.get(key):
                out.append((what, "is missing."))
        return out


def age_on(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def extract(text: str) -> list[Referral]:
    """One Referral per patient: a new one starts when a patient field repeats."""
    out: list[Referral] = []
    current = Referral()
    shared: dict[str, str] = {}         # practice fields written once for every patient
    lines = join_label_lines(text, LABELLED.only).splitlines()
    for n, line in enumerate(lines):
        m = LABEL_LINE.match(line)
        if m:
            key = LABELLED.key(m.group(1))
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
            found = dates.find(dob.group(1)) if dob else []
            if found:
                current.fields.setdefault("dob", found[0][2])
            if number:
                current.fields.setdefault("nhs_number", number.group(1))
            after = lines[n + 1] if n + 1 < len(lines) else ""
            if POSTCODE.search(after) and not LABEL_LINE.match(after):
                current.fields.setdefault("address", after.strip())
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
    out = [r for r in out if any(k in r.fields for k in ("nhs_number", "dob", "patient_name"))]
    if len(out) == 1:      # a letter rather than a form: read the site and reason from its prose
        _from_prose(out[0], text)
    return out


JOINT = re.compile(
    r"\b((?:left|right|bilateral|both|L|R)\s+)?(knee|shoulder|hip|elbow|wrist|ankle|thumb|finger|hand|heel|"
    r"foot|subacromial|carpal tunnel|trigger finger|de quervain'?s?|plantar fascia|tennis elbow|golfer'?s elbow|"
    r"trochanteric bursa|acromioclavicular)(?:\s+joint)?\b", re.I)
CLINICAL = re.compile(r"\b(pain|history|symptom|arthritis|osteoarthritis|tendin|bursitis|effusion|stiff|"
                      r"impingement|capsulitis)", re.I)


def _from_prose(r: Referral, text: str) -> None:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    if not r.get("joint"):
        for p in paragraphs:
            if re.search(r"inject", p, re.I) and not any(ADDRESS_LINE.match(x) for x in p.splitlines()):
                m = JOINT.search(p)
                if m:
                    r.fields["joint"] = " ".join(m.group(0).split())
                    break
    if not r.get("reason"):
        clinical = [p for p in paragraphs if CLINICAL.search(p) and len(p.split()) >= 12
                    and not LABEL_LINE.match(p.splitlines()[0])]
        if clinical:
            r.fields["reason"] = " ".join(max(clinical, key=len).split())


# -- outcomes reported by the receiving practice --------------------------------
NO_INJECTION = re.compile(
    r"\b(no injection|not injected|injection (?:was |is )?not (?:given|indicated|needed|required|"
    r"necessary|performed|appropriate)|consultation only|did not (?:give|inject)|decided against|"
    r"without (?:an )?injection|did not (?:need|require) (?:an )?injection)\b", re.I)
INJECTED = re.compile(
    r"\b(injection (?:was |has been )?(?:given|performed|done|administered)|injected|"
    r"(?:was|were) (?:given|administered)|gave (?:an |the |a )?(?:\w+ ){0,3}injection)\b", re.I)
DNA = re.compile(r"\b(did not attend|didn'?t attend|DNA'?d?|failed to attend|no[- ]show)\b", re.I)
SEEN_CUE = re.compile(r"\b(seen|saw|consultation|attended|appointment|reviewed|clinic|date)\b", re.I)
BIRTH_CUE = re.compile(r"\b(DOB|D\.O\.B|born|birth)\b\W*$", re.I)


@dataclass
class Outcome:
    kind: str | None          # injection, no_injection, did_not_attend
    seen_on: date | None
    seen_text: str = ""


def read_outcome(text: str) -> Outcome:
    """What the receiving practice says happened, and when."""
    kind = None
    if DNA.search(text):
        kind = "did_not_attend"
    elif NO_INJECTION.search(text):
        kind = "no_injection"
    elif INJECTED.search(text):
        kind = "injection"
    seen, seen_text, fallback = None, "", None
    for pos, d, written in dates.find(text):
        before = text[max(0, pos - 40):pos]
        if BIRTH_CUE.search(before):
            continue
        if fallback is None:
            fallback = (d, written)
        if SEEN_CUE.search(text[max(0, pos - 60):pos]):
            seen, seen_text = d, written
            break
    if seen is None and fallback:
        seen, seen_text = fallback
    return Outcome(kind, seen, seen_text)
