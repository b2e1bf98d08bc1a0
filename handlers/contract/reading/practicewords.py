"""The words practices are written with and the words that give a mention its role:
[practice_words] and [practice_roles] in catalogue/lexicon/referrals.toml (defaults below), and
the normalised forms a practice's name is written in ("Wyke Bridge Medical Practice", "Wyke Bridge").

Mail-agnostic, no SQL, nothing logged.
"""
from __future__ import annotations

import re
from functools import lru_cache

from handlers.contract.reading.lexicon import derived

DEFAULT_WORDS = {
    "generic": ["medical practice", "group practice", "family practice", "family doctors", "medical centre",
                "medical center", "health centre", "health center", "healthcare centre", "surgery", "practice",
                "hc", "mc", "mp", "gp", "clinic", "partnership", "doctors", "medical group", "primary care centre"],
    "drop": ["the", "nhs"],
}
DEFAULT_ROLES = {
    "receiving": ["refer to", "referred to", "referring to", "referral to", "receiving practice", "receiving",
                  "could", "would", "please see", "be seen at", "seen at", "see her at", "see him at", "attend",
                  "dear", "to:", "for", "at your", "your practice", "refer on to", "send to", "sent to",
                  "injecting practice", "practice to see", "practice seeing"],
    "registered": ["registered with", "registered at", "registered practice", "registered gp", "usual gp",
                   "usual practice", "gp practice", "patient of", "our patient", "remains registered",
                   "registered gp practice", "patient's practice", "own practice", "home practice"],
    "referring": ["referring practice", "referred from", "referred by", "referrer", "on behalf of"],
    "history": ["previous", "previously", "formerly", "former", "prior", "moved from", "transferred from",
                "used to", "was registered", "had", "last year", "in the past", "before", "elsewhere"],
}


def lexicon() -> dict:
    """[practice_words] and [practice_roles] from catalogue/lexicon/referrals.toml (re-read on change)."""
    return derived("referrals", _build)


def _build(raw: dict) -> dict:
    words = {**DEFAULT_WORDS, **raw.get("practice_words", {})}
    roles = {**DEFAULT_ROLES, **raw.get("practice_roles", {})}
    return {"words": words, "roles": roles,
            "generic": sorted({_norm(w) for w in words["generic"]}, key=len, reverse=True),
            "generic_set": frozenset(_norm(w) for w in words["generic"]),
            "role_memo": {},        # practices._role_in's answers, per window (this lexicon's words)
            "role_rx": {k: re.compile(r"(?<![\w])(?:" + "|".join(
                r"\s+".join(re.escape(p) for p in w.split()) for w in sorted(v, key=len, reverse=True))
                + r")(?![\w])", re.I) for k, v in roles.items()}}


@lru_cache(maxsize=8192)          # the same words recur in every letter
@lru_cache(maxsize=8192)      # a text's words, one at a time: the same words come again and again
def _norm(text: str) -> str:
    text = (text or "").lower().replace("&", " and ").replace("’", "'")
    text = re.sub(r"\bst\.?(?=\s)", "st", text)
    text = re.sub(r"'s\b", "s", text)
    text = re.sub(r"[^a-z0-9]+", " ", text)
    return " ".join(text.split())


def _forms_of(name: str) -> tuple[list[str], list[str]]:
    lex = lexicon()
    drop = set(lex["words"]["drop"])
    words = [w for w in _norm(name).split() if w not in drop]
    full = " ".join(words)
    core = full
    for g in lex["generic"]:
        if core.endswith(" " + g):
            core = core[: -len(g) - 1]
            break
    fulls = [full]
    if core != full:
        fulls += [f"{core} {g}" for g in lex["generic"] if f"{core} {g}" != full]
    return fulls, [core]
