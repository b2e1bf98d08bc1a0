"""How claims word things: labels and column names (from the claims lexicon), totals, money,
counts and months as column headings. Shared by the text and the table readers."""
from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from handlers.contract.periods import parse_month
from handlers.contract.reading import months as rmonths
from handlers.contract.reading import services as rsvc

ODS_RE = re.compile(r"\b([A-Z]\d{5})\b")
CELL_SPLIT = re.compile(r"\s{2,}|\t|\s?\|\s?")
SEPARATOR = re.compile(r"\s*(?:[:=]|\s[-–—]\s|\s[-–—]$|[-–—]\s)\s*")
TOTAL_START = re.compile(r"^[\W\d]*(?:[A-Za-z0-9]+\s+){0,2}?(?:grand\s+)?totals?\b", re.I)


def money(text) -> Decimal | None:
    if text is None or text == "":
        return None
    if isinstance(text, (int, float, Decimal)):
        return Decimal(str(text)).quantize(Decimal("0.01"))
    t = re.sub(r"[£,\s]", "", str(text))
    try:
        return Decimal(t).quantize(Decimal("0.01"))
    except InvalidOperation:
        return None


def lexicon_words(kind: str, key: str) -> list[str]:
    return rsvc.lexicon().get(kind, {}).get(key, [])


def label_re(key: str) -> re.Pattern:
    cached = _LABEL_CACHE.get(key)
    if cached is None:
        words = sorted(lexicon_words("labels", key), key=len, reverse=True)
        cached = re.compile(r"(?<![a-z])(?:" + "|".join(rsvc._phrase(w) for w in words) + r")", re.I)
        _LABEL_CACHE[key] = cached
    return cached


_LABEL_CACHE: dict[str, re.Pattern] = {}


@lru_cache(maxsize=32)
def any_phrase(kind: str, key: str) -> re.Pattern | None:
    """One pattern for "any of these lexicon phrases" (None when the list is empty)."""
    words = lexicon_words(kind, key)
    return re.compile("|".join(f"(?:{rsvc._phrase(w)})" for w in words), re.I) if words else None


def is_total(text: str) -> bool:
    label = SEPARATOR.split(text, maxsplit=1)[0] if SEPARATOR.search(text) else text
    return bool(TOTAL_START.match(text)) or (
        len(label.split()) <= 5 and bool(label_re("total").search(label)) and label != text)


def columns(head: list[str]) -> dict[str, int]:
    """Which column holds what, by the lexicon's column names (the longest name that fits wins)."""
    names = rsvc.lexicon().get("columns", {})
    col: dict[str, int] = {}
    for i, h in enumerate(head):
        h = str(h or "").strip().lower()
        if not h:
            continue
        best, best_len = None, 0
        for kind, words in names.items():
            for w in words:
                w = w.lower()
                if (h == w or h.startswith(w + " ") or h.startswith(w + "(") or
                        (len(w) > 3 and h.startswith(w))) and len(w) > best_len:
                    best, best_len = kind, len(w)
        if best:
            col.setdefault(best, i)
    return col


def month_columns(head_cells, received) -> list[tuple[int, rmonths.MonthSpan]]:
    out = []
    for idx, c in enumerate(head_cells):
        if idx == 0 or not c:
            continue
        t = str(c).strip()
        if isinstance(c, (datetime, date)):
            d = parse_month(c, received)
            out.append((idx, rmonths.MonthSpan(0, 0, f"{d:%b-%y}", d, d)))
            continue
        if len(t) > 20:
            continue
        span = rmonths.one(t, received)
        if span and span.end - span.start >= len(t) - 2:
            out.append((idx, span))
    return out


def only_units(tail: str) -> bool:
    """After the count, nothing but a unit word ("5 injections", "4.", "3 in total")."""
    words = re.findall(r"[A-Za-z]+", tail)
    units = {u.lower() for u in lexicon_words("numbers", "units")} | {"in", "total", "only", "altogether", "please"}
    return len(words) <= 3 and all(w.lower() in units for w in words)


def unit_in(label: str) -> bool:
    units = lexicon_words("numbers", "units")
    return any(re.search(rsvc._phrase(u), label, re.I) for u in units if u not in ("given", "done", "seen"))


def num_text(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)
