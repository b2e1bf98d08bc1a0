"""Read a hospital's denosumab discharge / transfer-of-care letter and check it holds
what the service specification (seed 003, section 2.2) requires:

  1. patient details (name, address, date of birth, NHS number);
  2. the diagnosis, including the date the therapy was initiated (and the first dose, given in
     secondary care: its date, or the last hospital dose, sets the recall);
  3. a recommendation / management plan with the assessment interval and the threshold for
     fast-track re-referral;
  4. a clear explanation when the advice deviates from local guidelines (only then);
  5. confirmation that the patient was given information about the condition and told that
     follow-up is now in primary care.

This checks contents, not the specialist's clinical judgement. The reading itself (layout,
headings by synonym, dates with their roles) is bot/reading/clinicletter.py.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

from handlers.contract import dates
from handlers.contract import letters
from handlers.contract.reading import clinicletter as cl

GUIDELINE = re.compile(r"\b(guidelines?|guidance|pathway|NICE|TA\s?\d+|formulary|policy|position statement|"
                       r"protocol)\b", re.I)
DEVIATION_HEADING = re.compile(r"\b(differs?|deviat\w*|departure|variation|exception)\b", re.I)


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
    last_dose: date | None = None
    letter_date: date | None = None
    stated_next_due: date | None = None
    nhs_labelled: bool = False
    interval: str = ""
    told: str = ""
    mentions: list[str] = field(default_factory=list)
    dose_dates: cl.DoseDates | None = None
    text: str = ""

    @property
    def dob(self) -> date | None:
        d = dates.parse(self.get("dob"))
        if d and self.letter_date and d >= self.letter_date and d.year >= 2000 and \
                re.search(r"\D\d{2}\s*$", self.get("dob")):
            d = d.replace(year=d.year - 100)          # '05.05.58' is 1958, '12.3.20' 1920
        return d

    @property
    def latest_dose(self) -> date | None:
        return self.dose_dates.latest_dose if self.dose_dates else self.first_dose

    def identity_problems(self, on: date) -> list[tuple[str, str]]:
        out = super().identity_problems(on)
        if not self.get("nhs_number") and self.nhs_labelled:
            out = [(f, ("is missing: the letter's NHS number label holds no number (a hospital number is not "
                        "an NHS number). Add the patient's 10-digit NHS number.") if f == "NHS number" else p)
                   for f, p in out]
        return out


def _sentences_with(text: str, *rxs) -> list[str]:
    out = cl.sentences(text)
    for rx in rxs:
        out = rx.each(out) if isinstance(rx, cl.Phrases) else [s for s in out if rx.search(s)]
    return out


def read(text: str, received: date | None = None) -> Letter:
    lex = cl.lexicon()
    c = cl.read(text, received)
    s = c.sections
    lt = Letter(text=text, mentions=c.mentions, dose_dates=c.dates)
    for key, value in (("patient_name", c.patient.name), ("dob", c.patient.dob_raw),
                       ("nhs_number", c.patient.nhs_raw), ("address", c.patient.address)):
        if value:
            lt.fields[key] = value
    lt.nhs_labelled = c.patient.nhs_labelled
    d = c.dates
    lt.letter_date, lt.initiated, lt.first_dose, lt.last_dose = d.letter_date, d.initiated, d.first_dose, d.last_dose
    lt.stated_next_due = d.stated_next_due
    lt.diagnosis = s.get("diagnosis", "")
    lt.plan = "\n".join(x for x in (s.get("plan", ""), s.get("follow_up", "")) if x)
    body = "\n".join(x for x in (lt.plan, s.get("treatment", "")) if x)
    # the assessment interval: in the plan or follow-up (or the treatment paragraph)
    interval = lex.rx("phrases", "interval")
    hits = _sentences_with(body, interval) or _sentences_with(s.get("threshold", ""), interval)
    lt.interval = hits[0] if hits else ""
    # the fast-track threshold: its own section, else a sentence of the plan that says when to refer back
    rerefer = lex.rx("phrases", "rerefer")
    lt.threshold = s.get("threshold", "")
    if letters.words(lt.threshold) < 4:
        hits = _sentences_with(body, rerefer, re.compile(r"\b(if|should|when|where|in case|any|for)\b", re.I))
        lt.threshold = "\n".join(hits)
    # local guidelines: does the letter say it deviates, and if so does it explain why?
    lt.deviates, lt.deviation = _deviation(text, s.get("deviation", ""), lex)
    # information given to the patient
    told, primary, follow = (lex.rx("phrases", k) for k in ("told", "primary_care", "follow_up"))
    lt.information = s.get("information", "")
    # the sentences that say all three (each list is tried on what the one before kept)
    said = [x for x in follow.each(primary.each(told.each(cl.sentences(lt.information or "") + cl.sentences(text))))
            if not re.match(r"\s*cc\b", x, re.I)]
    lt.told = said[0] if said else ""
    return lt


@lru_cache(maxsize=8)
def _deviation_heading(words: tuple) -> re.Pattern:
    """A line starting with a deviation heading: compiled once per lexicon version."""
    return re.compile(r"(?im)^\s*(?:\d+[.)]\s*)?(" + cl._alt(words) + r")")


def _deviation(text: str, section: str, lex) -> tuple[bool, str]:
    """(deviates, the explanation given). A 'Local guidelines' heading alone says nothing; a heading
    that itself says the advice differs does, unless what follows says there is no deviation."""
    deviates_rx, conforms_rx = lex.rx("phrases", "deviates"), lex.rx("phrases", "conforms")
    head = _deviation_heading(tuple(lex.words("headings", "deviation"))).search(text or "")
    heading_says = bool(head and DEVIATION_HEADING.search(text[head.start():text.find("\n", head.start())]))
    statements = []
    for sent in deviates_rx.each(cl.sentences(text)):
        m = deviates_rx.search(sent)
        if m and (GUIDELINE.search(sent) or (section and sent in " ".join(section.split()))):
            if re.search(r"\b(not|no|never|nothing)\W+(?:\w+\W+)?$", sent[:m.start()], re.I) and \
                    not re.match(r"not\b", m.group(0), re.I):
                continue                       # "does not deviate", "is not outside"
            statements.append(sent)
    first = cl.sentences(section)[0] if section else ""
    if heading_says and first and conforms_rx.search(first) and not statements:
        return False, ""
    if not statements and not heading_says:
        return False, ""
    if not statements and heading_says and not section:
        return False, ""
    # the explanation: the deviation section, else the paragraph(s) around the statement
    told = lex.rx("phrases", "told")
    primary = lex.rx("phrases", "primary_care")
    source = section or "\n".join(statements)
    both = set(primary.each(told.each(cl.sentences(source))))
    kept = [x for x in cl.sentences(source) if x not in both]
    return True, " ".join(kept)


def explained(deviation: str) -> bool:
    because = cl.lexicon().rx("phrases", "because")
    return letters.words(deviation) >= 12 and bool(because.search(deviation))


def problems(lt: Letter, on: date) -> list[tuple[str, str]]:
    """What the specification requires and the letter lacks, each with what to add."""
    out = []
    if not lt.get("patient_name"):
        out.append(("patient name", "is missing. Add 'Patient: <full name>' (or a 'Re:' line with the name)."))
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
    latest = lt.latest_dose
    if latest is None:
        out.append(("first dose", "the date of the first dose given in secondary care (or, for a patient "
                                  "already on treatment, of the last dose) is missing. Add e.g. "
                                  "'First dose given: 18/08/2026'."))
    elif latest > on:
        out.append(("first dose", f"{dates.uk(latest)} is in the future: transfer after the first dose."))
    elif lt.initiated and lt.first_dose and lt.first_dose < lt.initiated:
        out.append(("first dose", f"{dates.uk(lt.first_dose)} is before therapy was initiated "
                                  f"({dates.uk(lt.initiated)})."))
    if letters.words(lt.plan) < 5:
        out.append(("management plan", "is missing. Add a 'Recommendation / management plan' section."))
    if not lt.interval:
        out.append(("assessment interval", "the management plan does not give the assessment interval. Add e.g. "
                                           "'Assessment interval: review at each 6-monthly injection'."))
    if letters.words(lt.threshold) < 4:
        out.append(("fast-track re-referral", "the threshold for fast-track re-referral is missing. Add when and "
                                              "how the practice should refer back."))
    if lt.deviates and not explained(lt.deviation):
        out.append(("deviation from local guidelines", "the letter says its advice differs from local guidelines "
                                                       "but does not explain why. Add the explanation, including "
                                                       "the management the patient has had to date."))
    if not lt.told:
        out.append(("information given to the patient", (
            "the letter does not confirm the patient was told that their follow-up is now with their GP practice. "
            if lt.information else "is missing. Confirm that the patient was given information about their "
            "condition and told that their follow-up is now with their GP practice.")))
    return out
