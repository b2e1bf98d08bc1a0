"""The fallback: a known sender whose mail no handler understands.

They get a reply explaining what the inbox accepts, with an example claim they can copy; the
message is recorded (state rejected) and listed for the contract team under "Needs a human" in
the digest. What it seems to be about (a topic from catalogue/lexicon/enquiry.toml, never its
words) is kept in the message's `reading`, so the digest can summarise it without the subject
or the text, which may name a patient.
"""
from __future__ import annotations

import re

from handlers.contract.periods import add_months, label, london, month_start
from handlers.contract.reading import lexicon
from handlers.base import Context, Decision, Reply

name = "enquiry"
WORD = re.compile(r"\w+")
READ_CHARS = 4000               # a topic is plain from the first lines; never scan a huge body
EXAMPLE_COUNTS = (12, 3, 2, 1)  # example figures, one per service line


def match(ctx: Context) -> bool:
    return True


def handle(ctx: Context, _found: bool = True) -> Decision:
    p = ctx.parsed
    text = f"{p.subject}\n{p.new_text[:READ_CHARS]}"
    reading = {"topic": topic(text), "question": is_question(text)}
    if ctx.vetting.kept:
        reading["attachments"] = len(ctx.vetting.kept)
    s = ctx.settings
    return Decision(outcome="rejected", kind="enquiry", case_kind="enquiry", reading=reading,
                    reply=Reply("help", {"errors": [],
                                         "example_claim": example_claim(ctx) if ctx.service == "les" else [],
                                         "in_digest": bool(s.digest.enabled and s.contract_team)}))


def _build(raw: dict):
    topics = []
    for t in raw.get("topic", []):
        words = sorted({w.lower() for w in t.get("words", [])}, key=len, reverse=True)
        if words:
            firsts = {re.match(r"\w*", w).group() for w in words}
            if "" in firsts:
                firsts = None       # a word starting with a sign: always search
            topics.append((t["label"], re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, words)) + r")(?!\w)"),
                           firsts))
    starts = sorted({w.lower() for w in raw.get("question_starts", [])}, key=len, reverse=True)
    question = re.compile(r"(?:^|[.!\n]\s*)(?:" + "|".join(map(re.escape, starts)) + r")\b", re.I) \
        if starts else re.compile(r"(?!x)x")
    return topics, question


def topic(text: str) -> str:
    """The label of the topic with the most distinct matching words ('' if none)."""
    topics, _ = lexicon.derived("enquiry", _build)
    low = text.lower()
    # A word or phrase can only match where its first word stands whole in the text: topics
    # none of whose first words are there are not searched.
    present = set(WORD.findall(low))
    best, best_n = "", 0
    for lab, pattern, firsts in topics:
        if firsts is not None and present.isdisjoint(firsts):
            continue
        n = len(set(pattern.findall(low)))
        if n > best_n:
            best, best_n = lab, n
    return best


def is_question(text: str) -> bool:
    _, question = lexicon.derived("enquiry", _build)
    return "?" in text or bool(question.search(text))


def example_claim(ctx: Context) -> list[str]:
    """A claim in the body a practice can copy: its ODS code, last month, and one line per
    monthly service it is signed up for (all the catalogue's monthly services if it lists none).
    Lines the claim reader reads as written (a test sends them back as a claim)."""
    org, cat = ctx.org, ctx.settings.catalogue
    if org is None or org.kind != "practice":
        return []
    services = [s for s in (cat.get(c) for c in org.services) if s and s.period == "monthly"] or \
               [s for s in cat.service if s.period == "monthly"]
    if not services:
        return []
    month = add_months(month_start(london(ctx.received_at).date()), -1)
    lines = [f"Practice code: {org.ods_code}", f"Month: {label(month)}"]
    for svc, count in zip(services, EXAMPLE_COUNTS * len(services)):
        lines.append(f"{line_name(svc, cat)}: {count}")
    return lines


def line_name(svc, cat) -> str:
    """The service's name, without a long name's closing parenthesis when the shorter name
    still reads as the same service."""
    full = svc.name
    short = re.sub(r"\s*\([^()]*\)\s*$", "", full)
    if len(full) > 50 and short != full and cat.identify(short) is svc and not svc.not_payable_reason(short):
        return short
    return full
