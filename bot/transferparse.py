"""Read a hospital's denosumab discharge / transfer-of-care letter and check it holds
what the service specification (section 2.2) requires. This checks contents,
not the specialist's clinical judgement.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from bot import dates, letters

LABELS = {
    "patient_name": ("patient name", "patient's name", "name of patient", "patient", "name"),
    "dob": ("date of birth", "d.o.b.", "d.o.b", "dob"),
    "nhs_number": ("nhs number", "nhs no.", "nhs no", "nhs"),
    "address": ("patient address", "home address", "address"),
    "practice": ("registered gp practice", "registered practice", "gp practice", "registered with", "gp surgery"),
    "initiated": ("date therapy initiated", "denosumab therapy initiated", "therapy initiated", "date initiated",
                  "treatment started", "date started", "start date"),
    "first_dose": ("first dose given", "date of first dose", "first dose"),
}
LABELLED = letters.Labels(LABELS)

H_DIAGNOSIS = r"diagnos[ie]s"
H_PLAN = r"recommendations?(?:\s*/\s*management plan)?|(?:individual\s+)?management plan|treatment plan"
H_THRESHOLD = r"threshold for (?:fast[- ]track )?re-?referral|fast[- ]track re-?referral|criteria for re-?referral|" \
              r"re-?referral criteria|when to re-?refer"
H_DEVIATION = r"where (?:this|our) advice (?:differs|deviates)|deviation from (?:local )?guidelines?|" \
              r"departure from (?:local )?guidelines?|variation from (?:local )?guidelines?"
H_INFO = r"information given to the patient|information (?:given )?(?:to|for) (?:the )?patient|patient information"
H_OTHER = r"treatment to date|yours sincerely|yours faithfully|cc:"
HEADINGS = [H_DIAGNOSIS, H_PLAN, H_THRESHOLD, H_DEVIATION, H_INFO, H_OTHER]

MENTIONS_DEVIATION = re.compile(
    r"\b(deviat\w*|differs?|depart\w*|not (?:in line|consistent) with|outside)\b(?:\W+\w+){0,5}?\W+"
    r"(?:local\s+)?(guidelines?|pathway|guidance)\b", re.I)
NO_DEVIATION = re.compile(r"^\W*(none|n/?a|no deviation|not applicable|in line with|consistent with|follows)\b", re.I)
INTERVAL = re.compile(r"\b(assessment interval|review interval|review(?:ed)? (?:at|every|each)|"
                      r"assess(?:ed|ment)? every|(?:6|six)[- ]monthly review)", re.I)
INITIATED = re.compile(r"\b(?:therapy|treatment|denosumab)\s+(?:was\s+)?(?:initiated|started|commenced)\b(.{0,80})",
                       re.I)
FIRST_DOSE = re.compile(r"\bfirst dose\b(.{0,200})", re.I | re.S)
TOLD = re.compile(r"\b(explained|informed|told|aware|understands?|discussed|advised|agrees?)\b", re.I)
PRIMARY = re.compile(r"\b(GP|general practi\w*|(?:the |her |his |their )?practice|primary care)\b", re.I)
FOLLOW_UP = re.compile(r"\b(follow[- ]?up|injections?|care|monitoring|recall|managed)\b", re.I)


@dataclass
class Letter(letters.PatientFields):
    diagnosis: str = ""
    plan: str = ""
    threshold: str = ""
    deviation: str = ""
    deviates: bool = False
    information: str = ""
    initiated: date | None = None
    first_dose: date | None = None
    stated_next_due: date | None = None
    text: str = ""


def read(text: str) -> Letter:
    joined = letters.join_label_lines(text, LABELLED.only)
    lt = Letter(text=joined)
    for line in joined.splitlines():
        m = LABELLED.line.match(line)
        if m:
            key = LABELLED.key(m.group(1))
            lt.fields.setdefault(key, m.group(2).strip())
    if "nhs_number" not in lt.fields:
        m = re.search(r"\bNHS\s*(?:No\.?|number)?[:\s]*(\d{3}[ -]?\d{3}[ -]?\d{4})\b", text, re.I)
        if m:
            lt.fields["nhs_number"] = m.group(1)
    lt.diagnosis = letters.section(joined, H_DIAGNOSIS, HEADINGS)
    lt.plan = letters.section(joined, H_PLAN, HEADINGS)
    lt.threshold = letters.section(joined, H_THRESHOLD, HEADINGS)
    lt.deviation = letters.section(joined, H_DEVIATION, HEADINGS)
    lt.information = letters.section(joined, H_INFO, HEADINGS)
    if lt.deviation and NO_DEVIATION.match(lt.deviation):
        lt.deviation, lt.deviates = "", False
    else:
        lt.deviates = bool(lt.deviation) or bool(MENTIONS_DEVIATION.search(
            re.sub(r"(?im)^.*\b(?:" + H_DEVIATION + r").*$", "", joined)))
        if lt.deviates and not lt.deviation:
            # no heading: the paragraph that says so is the explanation
            for para in re.split(r"\n\s*\n", joined):
                if MENTIONS_DEVIATION.search(para):
                    lt.deviation = para.strip()
                    break
    # a labelled value first; else the sentence (which may run onto the next line)
    m = INITIATED.search(joined)
    lt.initiated = dates.parse(lt.get("initiated")) or (dates.parse(m.group(1)) if m else None)
    m = FIRST_DOSE.search(joined)
    lt.first_dose = dates.parse(lt.get("first_dose")) or (dates.parse(m.group(1)) if m else None)
    m = re.search(r"\bnext (?:dose|injection) due\b(.{0,40})", joined, re.I)
    lt.stated_next_due = dates.parse(m.group(1)) if m else None
    return lt


def problems(lt: Letter, on: date) -> list[tuple[str, str]]:
    """What the specification requires and the letter lacks, each with what to add."""
    out = []
    if not lt.get("patient_name"):
        out.append(("patient name", "is missing. Add 'Patient: <full name>'."))
    if not lt.get("address"):
        out.append(("address", "is missing. Add the patient's address."))
    out += lt.identity_problems(on)
    if letters.words(lt.diagnosis) < 2:
        out.append(("diagnosis", "is missing. Add the diagnosis under a 'Diagnosis' heading."))
    if lt.initiated is None:
        out.append(("date therapy initiated", "is missing or not a real date. Add e.g. "
                                              "'Denosumab therapy initiated: 18/08/2026'."))
    elif lt.initiated > on:
        out.append(("date therapy initiated", f"{dates.uk(lt.initiated)} is in the future."))
    if lt.first_dose is None:
        out.append(("first dose", "the date of the first dose given in secondary care is missing. Add e.g. "
                                  "'First dose given: 18/08/2026'."))
    elif lt.first_dose > on:
        out.append(("first dose", f"{dates.uk(lt.first_dose)} is in the future: transfer after the first dose."))
    elif lt.initiated and lt.first_dose < lt.initiated:
        out.append(("first dose", f"{dates.uk(lt.first_dose)} is before therapy was initiated "
                                  f"({dates.uk(lt.initiated)})."))
    if letters.words(lt.plan) < 5:
        out.append(("management plan", "is missing. Add a 'Recommendation / management plan' section."))
    if not INTERVAL.search(lt.plan + "\n" + lt.threshold):
        out.append(("assessment interval", "the management plan does not give the assessment interval. Add e.g. "
                                           "'Assessment interval: review at each 6-monthly injection'."))
    if letters.words(lt.threshold) < 5 and not re.search(r"re-?refer", lt.plan, re.I):
        out.append(("fast-track re-referral", "the threshold for fast-track re-referral is missing. Add when and "
                                              "how the practice should refer back."))
    if lt.deviates and letters.words(lt.deviation) < 12:
        out.append(("deviation from local guidelines", "the letter says its advice differs from local guidelines "
                                                       "but does not explain why. Add the explanation, including "
                                                       "the management the patient has had to date."))
    sentences = re.split(r"(?<=[.!?])\s+|\n\s*\n", lt.information or lt.text)
    if not any(TOLD.search(x) and PRIMARY.search(x) and FOLLOW_UP.search(x) for x in sentences):
        out.append(("information given to the patient", (
            "the letter does not confirm the patient was told that their follow-up is now with their GP practice. "
            if lt.information else "is missing. Confirm what the patient has been told about their condition and "
            "that their follow-up is now with their GP practice.")))
    return out
