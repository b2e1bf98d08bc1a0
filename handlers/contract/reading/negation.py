"""Yes / No / not stated, as clinicians write it.

"Not on anticoagulants", "NKDA", "no known drug allergies", "non-diabetic", "takes no anticoagulants",
"has not had an injection before" are a recorded **No** - never "not stated" (issue 10: losing a
negation sends a practice the wrong safety picture). "On warfarin", "allergic to penicillin",
"T2DM on metformin" are a Yes with what was written.

    value(topic, written)      a labelled value ("None", "nil", "Not anticoagulated", "Penicillin") read
    from_prose(text)           {topic: Finding} for the extras written in sentences
    Finding.display()          what to show the receiving practice: "No (not on anticoagulants)"

Topics and words: catalogue/lexicon/referrals.toml [extras.*] and [negation]. Mail-agnostic; no SQL.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from handlers.contract.reading.lexicon import derived

TOPICS = ("anticoagulants", "allergies", "diabetes", "previous_injections")
NEG_BEFORE = re.compile(r"(?<![\w-])(?:not\s+on\s+any|not\s+on|not|no|non-?|nil|never|without|denies|takes\s+no|"
                        r"has\s+no|have\s+no|free\s+of|isn'?t|is\s+not|has\s+not\s+had|hasn'?t\s+had|"
                        r"has\s+never\s+had|no\s+history\s+of|no\s+known)(?![\w])", re.I)


@dataclass(frozen=True)
class Finding:
    answer: str      # "No", "Yes", or "" (written but neither)
    written: str     # the words as written

    def display(self) -> str:
        w = " ".join(self.written.split()).strip()
        if w.count(")") > w.count("("):
            w = w.rstrip(")").strip()
        if w.startswith("(") and w.count("(") > w.count(")"):
            w = w[1:].strip()
        if self.answer and w and w.lower() != self.answer.lower():
            return f"{self.answer} ({w})"
        return self.answer or w


def lexicon() -> dict:
    return derived("referrals", _build)


def _build(raw: dict) -> dict:
    extras = raw.get("extras", {})
    neg = raw.get("negation", {})
    return {"topic": {t: _rx(extras.get(t, {}).get("topic", [])) for t in TOPICS},
            "negative": {t: _rx(extras.get(t, {}).get("negative", [])) for t in TOPICS},
            "positive": {t: _rx(extras.get(t, {}).get("positive", [])) for t in TOPICS},
            "values_no": {v.lower() for v in neg.get("values_no", [])},
            "values_yes": {v.lower() for v in neg.get("values_yes", [])}}


def _rx(words) -> re.Pattern:
    if not words:
        return re.compile(r"(?!)")
    alt = "|".join(r"\s+".join(re.escape(p) for p in w.split()) for w in sorted(set(words), key=len, reverse=True))
    return re.compile(r"(?<![\w])(?:" + alt + r")(?![\w])", re.I)


_TRAILING = re.compile(r"[\s.]+$")
_HEAD_END = re.compile(r"\s*[-–,;:(]\s*|\s+(?=to\b)")


def value(topic: str, written: str) -> Finding:
    """A labelled value: 'None', 'nil', 'No', 'NKDA', 'Not anticoagulated' -> No; 'Yes - T2DM' or a
    drug/allergen -> Yes; empty -> not stated (answer '')."""
    w = (written or "").strip()
    if not w:
        return Finding("", "")
    lex = lexicon()
    low = _TRAILING.sub("", w.lower())
    from handlers.contract.reading.forms import ticked        # ☒ Yes ☐ No
    boxes = ticked(w)
    if boxes:
        first = boxes[0].strip().lower()
        if first in lex["values_no"]:
            return Finding("No", w)
        if first in lex["values_yes"]:
            return Finding("Yes", w)
    head = _HEAD_END.split(low, maxsplit=1)[0]
    if low in lex["values_no"] or head in lex["values_no"] or lex["negative"][topic].search(w):
        return Finding("No", w)
    found = from_prose(w).get(topic)
    if found and found.answer == "No":
        return Finding("No", w)
    if head in lex["values_yes"] or lex["positive"][topic].search(w):
        return Finding("Yes", w)
    if NEG_BEFORE.match(low):
        return Finding("No", w)
    # a drug, an allergen, a date: something is there
    return Finding("Yes", w)


_CLAUSE = re.compile(r"[.;\n]|,(?!\d)|\)\s|\(|\s+and\s+(?=(?:is|has|not|no|takes|she|he|they|non)\b)|\s+but\s+", re.I)


def clauses(text: str) -> list[str]:
    return [c.strip() for c in _CLAUSE.split(text or "") if c and c.strip()]


def from_prose(text: str) -> dict[str, Finding]:
    """Extras written in sentences, first finding per topic: 'She is not on anticoagulants, has no known
    drug allergies and is non-diabetic.' -> anticoagulants No, allergies No, diabetes No."""
    lex = lexicon()
    out: dict[str, Finding] = {}
    for clause in clauses(text):
        for t in TOPICS:
            if t in out:
                continue
            if lex["negative"][t].search(clause):
                out[t] = Finding("No", clause)
                continue
            m = lex["topic"][t].search(clause)
            if not m:
                continue
            before = clause[:m.start()]
            if NEG_BEFORE.search(before) or re.match(r"\s*(?:-\s*)?(?:none|nil|no)\b", clause[m.end():], re.I):
                out[t] = Finding("No", clause)
            elif lex["positive"][t].search(clause) or t != "previous_injections" or \
                    re.search(r"\b(?:previous|prior|last|ago|had)\b", clause, re.I):
                out[t] = Finding("Yes", clause)
    return out
