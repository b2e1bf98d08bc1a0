"""Is a reply only a courtesy ("thank you", "noted") with nothing in it to act on?

Read on the sender's new text (quoted mail removed). Cheap, and cautious: a
question, a number, an action word or more than a few lines means it is not.
"""
from __future__ import annotations

import re

THANKS = re.compile(r"\b(thank(s| you| u)?|thx|cheers|ta|much appreciated|many thanks|noted|"
                    r"received|brilliant|great|perfect|lovely|super|excellent|got it|will do)\b", re.I)
# Words that ask for, give or change something: then a person or a handler must read it.
ACTION = re.compile(r"\b(please|pls|could|can you|would you|claim|attach\w*|enclos\w*|refer\w*|missing|"
                    r"correct\w*|amend\w*|wrong|error|mistake|change|update|cancel\w*|instead|however|"
                    r"but|query|question|why|when|how|what|resend|re-send|add|remove|seen|given|"
                    r"injection|dose|outcome|appointment|urgent)\b", re.I)
SIGN_OFF = re.compile(r"^\s*(kind |best |warm )?(regards|wishes|thanks|many thanks|thank you|cheers)\b.{0,20}$",
                      re.I)
MAX_WORDS = 30


def content(text: str) -> str:
    """The message before its signature: paragraphs up to a sign-off or a bare name."""
    kept = []
    for para in re.split(r"\n\s*\n", text.strip()):
        lines = [ln for ln in para.splitlines() if ln.strip()]
        if not lines:
            continue
        if kept and (SIGN_OFF.match(lines[0]) or len(lines[0].split()) <= 3):
            break
        kept.append(" ".join(lines))
    return "\n".join(kept)


def is_courtesy(text: str) -> bool:
    body = content(text)
    if not body or not THANKS.search(body) or "?" in body:
        return False
    if re.search(r"\d", body) or ACTION.search(body):
        return False
    return len(body.split()) <= MAX_WORDS
