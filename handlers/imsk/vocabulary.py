"""The IMSK lexicon (catalogue/lexicon/imsk.toml) and the readers of single values: a
specialty, a red-flags answer, an urgency, a date as GPs write it."""
from __future__ import annotations

import re
from datetime import date

from handlers.contract import dates
from handlers.contract.reading import forms

SERVICE = "imsk"                 # the service's name in the directory and the routes
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


def alternation(ws) -> str:
    return "|".join(re.escape(w) for w in sorted(ws, key=len, reverse=True))


def word_rx(ws) -> re.Pattern:
    return re.compile(r"(?<![a-z0-9])(?:" + alternation(ws) + r")(?![a-z0-9])", re.I)


_SPECIALTY_RX = {k: word_rx(v) for k, v in SPECIALTIES.items()}
_URGENT, _ROUTINE = word_rx(LEX["urgency"]["urgent"]), word_rx(LEX["urgency"]["routine"])
_RF_NO = re.compile(r"^\W*(?:" + alternation(LEX["red_flags"]["no"]) + r")(?![a-z])", re.I)
_RF_YES = re.compile(r"^\W*(?:" + alternation(LEX["red_flags"]["yes"]) + r")(?![a-z])", re.I)


def age_on(dob: date, on: date) -> int:
    """Whole years of age on a day (a birthday counts from that day)."""
    return on.year - dob.year - ((on.month, on.day) < (dob.month, dob.day))


def two_digit_years(text: str, on: date) -> str:
    """"2nd April '79" -> "2nd April 1979" (a year not after `on`)."""
    def full(m):
        y = 2000 + int(m.group(1))
        return str(y if y <= on.year else y - 100)
    return re.sub(r"(?<=\s)[’']\s?(\d{2})\b", full, text)


def read_date(text: str, on: date | None = None, past: bool = False) -> date | None:
    """The first date written in text, day-first, with two-digit years read relative to `on`
    (a date of birth: '09.12.08' is 2008 when received in 2026, '3.10.48' is 1948)."""
    on = on or date.today()
    text = two_digit_years(text or "", on)
    for _, d, _ in dates.find(text, pivot=on.year % 100 if past else (on.year + 1) % 100):
        return d
    return None


def is_date_written(text: str, on: date) -> bool:
    return bool(dates.find(two_digit_years(text or "", on)))


def date_written(text: str, on: date) -> str | None:
    """The first date in text as written (two-digit years made whole): the field's value."""
    found = dates.find(two_digit_years(text or "", on), pivot=on.year % 100)
    return found[0][2] if found else None


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


def clean(text: str) -> str:
    """Without NHSmail/confidentiality footers (they are not part of any referral)."""
    paras = re.split(r"\n\s*\n", text or "")
    keep = [p for p in paras if not re.search(
        r"may contain confidential|intended recipient|nhsmail is the secure|portal\.nhs\.net|^\s*\*{10,}\s*$|"
        r"do not disclose, copy", p, re.I | re.M)]
    return "\n\n".join(keep)
