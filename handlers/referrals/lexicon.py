"""The referral words (catalogue/lexicon/referrals.toml): labels, joints, clinical words, own-patient
phrases, outcome words. Re-read when the file changes, so an edit needs no restart."""
from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

from handlers.contract.reading import forms

LEXICON = Path(__file__).resolve().parents[2] / "catalogue" / "lexicon" / "referrals.toml"


def lexicon() -> dict:
    global _LEX_CACHE
    try:
        stamp = os.stat(LEXICON).st_mtime_ns      # every call, so an edit shows at once (os.stat: cheaper than Path.stat)
    except OSError:
        stamp = 0
    if _LEX_CACHE[0] != stamp:
        raw = tomllib.loads(LEXICON.read_text(encoding="utf-8")) if stamp else {}
        labels = {k: list(v) for k, v in raw.get("labels", {}).items()}
        joints = raw.get("joints", {}).get("words", [])
        clinical = raw.get("clinical", {}).get("words", [])
        own = raw.get("own_patient", {}).get("phrases", [])
        outcomes = raw.get("outcomes", {})
        _LEX_CACHE = (stamp, {
            "require_contact": bool(raw.get("requirements", {}).get("address_or_contact", False)),
            "labels": labels, "labelset": forms.LabelSet(labels),
            "joint": re.compile(r"\b((?:left|right|bilateral|both|l|r|lt|rt)\.?\s+)?(?:" + _alt(joints) +
                                r")(?:\s+joint)?\b", re.I),
            "clinical": re.compile(r"\b(?:" + _alt(clinical) + r")", re.I),
            "own": re.compile(r"\b(?:" + _alt(own) + r")\b", re.I),
            "outcomes": {k: re.compile(r"(?<![\w'])(?:" + _alt(v) + r")(?![\w'])", re.I) for k, v in outcomes.items()},
            "outcome_hints": {k: _first_words(v) for k, v in outcomes.items()},
        })
    return _LEX_CACHE[1]


_LEX_CACHE: tuple = (None, {})


def _first_words(phrases) -> tuple[str, ...] | None:
    """The lower-case first word of each phrase: where in an ASCII text one of them starts is the
    only place its pattern can match. None when that does not hold (a phrase with no words, or
    with a non-ASCII letter, which re.I may match to an ASCII one): then search as before."""
    firsts = set()
    for w in phrases:
        if not w.split() or not w.isascii():
            return None
        firsts.add(w.split()[0].lower())
    return tuple(sorted(firsts))


def _alt(words) -> str:
    return "|".join(r"\s+".join(re.escape(p) for p in w.split()) for w in sorted(set(words), key=len, reverse=True))


LABELS = {k: tuple(v) for k, v in tomllib.loads(LEXICON.read_text(encoding="utf-8"))["labels"].items()} \
    if LEXICON.exists() else {}
