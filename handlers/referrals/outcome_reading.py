"""Outcomes as the receiving practice reports them: what happened (injection given, consultation
only, did not attend) and the date seen, for one patient or several in one message."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from handlers.contract import dates
from handlers.referrals.lexicon import lexicon

SEEN_CUE = re.compile(r"\b(seen|saw|consultation|attended|attend|appointment|reviewed|clinic|date|on|injected|"
                      r"given|examined)\b", re.I)
BIRTH_CUE = re.compile(r"\b(DOB|D\.O\.B|born|birth)\b\W*$", re.I)
DAY_MONTH = re.compile(r"(?<![\d/.-])(\d{1,2})[/.](\d{1,2})(?![\d/]|\.\d)")
RELATIVE = re.compile(r"\b(today|this morning|this afternoon|yesterday)\b", re.I)


@dataclass
class Outcome:
    kind: str | None          # injection, no_injection, did_not_attend
    seen_on: date | None
    seen_text: str = ""


def outcome_kind(text: str) -> str | None:
    """did_not_attend, no_injection or injection, from the words used (a DNA first; 'no injection
    given' is not 'injection given')."""
    lex = lexicon()
    rx, hints = lex["outcomes"], lex["outcome_hints"]
    text = text or ""
    lowered = text.lower() if text.isascii() else None
    for kind in ("did_not_attend", "no_injection", "injection"):
        if _said(rx[kind], hints.get(kind), text, lowered):
            return kind
    return None


def _said(rx: re.Pattern, hints: tuple[str, ...] | None, text: str, lowered: str | None) -> bool:
    """rx.search(text) is not None, found faster: an alternation of many phrases is slow to try at
    every position, so it is tried only where one of its phrases' first words is written (an ASCII
    text, so lower-casing keeps every position; rx.match still sees the look-behind)."""
    if hints is None or lowered is None:
        return rx.search(text) is not None
    for h in hints:
        i = lowered.find(h)
        while i >= 0:
            if rx.match(text, i):
                return True
            i = lowered.find(h, i + 1)
    return False


def seen_date(text: str, on: date | None = None) -> tuple[date | None, str]:
    """The date the patient was seen (or was due): a date after 'seen', 'attended', 'on', ...; a day
    and month without a year ('23/12') is the latest such date not after `on`; 'yesterday' / 'today'
    count from `on`. A date after 'DOB' / 'born' is never it."""
    text = text or ""
    found = [(p, d, w) for p, d, w in dates.find(text)]
    taken = [(p, p + len(w)) for p, _, w in found]
    if on:
        for m in DAY_MONTH.finditer(text):
            if any(a <= m.start() < b for a, b in taken):
                continue
            day, month = int(m.group(1)), int(m.group(2))
            for y in (on.year, on.year - 1):
                try:
                    d = date(y, month, day)
                except ValueError:
                    d = None
                    break
                if d <= on:
                    break
            if d:
                found.append((m.start(), d, m.group(0)))
    found.sort()
    seen, fallback = None, None
    for pos, d, written in found:
        if BIRTH_CUE.search(text[max(0, pos - 40):pos]) or d is None:
            continue
        if on and (on - d).days > 400:
            continue                  # a birth date or history, not this consultation
        if fallback is None:
            fallback = (d, written)
        if SEEN_CUE.search(text[max(0, pos - 60):pos]):
            seen = (d, written)
            break
    if seen is None and fallback:
        seen = fallback
    if seen is None and on:
        m = RELATIVE.search(text)
        if m:
            d = on if m.group(1).lower() != "yesterday" else date.fromordinal(on.toordinal() - 1)
            seen = (d, m.group(0))
    return seen if seen else (None, "")


def read_outcome(text: str, on: date | None = None) -> Outcome:
    """What the receiving practice says happened, and when."""
    d, written = seen_date(text, on)
    return Outcome(outcome_kind(text), d, written)


def _identifiers(name: str, nhs_number: str | None) -> list[re.Pattern]:
    out = []
    if nhs_number:
        out.append(re.compile(r"(?<!\d)" + r"[\s-]?".join(nhs_number) + r"(?!\d)"))
    words = [w for w in re.split(r"\s+", (name or "").strip()) if w]
    titles = [w for w in words if re.fullmatch(r"(?i)(?:mr|mrs|miss|ms|mx|dr|master)\.?", w)]
    rest = [w for w in words if w not in titles]
    if rest:
        surname = re.escape(rest[-1])
        if titles:
            out.append(re.compile(r"\b" + re.escape(titles[0].rstrip(".")) + r"\.?\s+(?:[A-Z][\w'-]*\s+){0,2}" +
                                  surname + r"\b", re.I))
        if len(rest) > 1:
            out.append(re.compile(r"\b" + re.escape(rest[0]) + r"\s+(?:[A-Z][\w'-]*\s+){0,1}" + surname + r"\b", re.I))
            out.append(re.compile(r"\b" + surname + r"\s*,\s*" + re.escape(rest[0]) + r"\b", re.I))
    return out


def read_outcomes(text: str, people: list[tuple], on: date | None = None) -> dict:
    """Outcomes for several patients written in one message (a table, a line each, 'Mr X - injected').
    people: [(key, name, nhs_number)]. Each line belongs to the one patient it names (and the lines after
    it); lines naming none or several are shared. Returns {key: Outcome} for the patients mentioned (or the
    only one)."""
    text = text or ""
    if len(people) == 1:
        key = people[0][0]
        return {key: read_outcome(text, on)}
    ids = {key: _identifiers(name, nhs) for key, name, nhs in people}
    owned: dict = {key: [] for key, _, _ in people}
    shared, current = [], None
    couple = re.compile(r"\b(?:mr|mrs|ms|miss)\s+(?:and|&)\s+(?:mr|mrs|ms|miss)\s+([A-Z][\w'-]+)", re.I)
    for line in text.splitlines():
        named = [k for k, rxs in ids.items() if any(rx.search(line) for rx in rxs)]
        c = couple.search(line)
        if c:
            named += [k for k, name, _ in people if c.group(1).lower() in (name or "").lower().split()
                      or c.group(1).lower() in (name or "").lower()]
            named = list(dict.fromkeys(named))
        if len(named) == 1:
            current = named[0]
            owned[current].append(line)
        elif named:
            current = None
            shared.append(line)
        elif current is not None and line.strip():
            owned[current].append(line)
        else:
            if not line.strip():
                current = None if current is None else current
            shared.append(line)
    common = "\n".join(shared)
    out = {}
    for key, lines in owned.items():
        if not lines:
            continue
        mine = "\n".join(lines)
        kind = outcome_kind(mine) or outcome_kind(common)
        d, written = seen_date(mine, on)
        if d is None:
            d, written = seen_date(common, on)
        out[key] = Outcome(kind, d, written)
    return out
