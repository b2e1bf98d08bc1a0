"""Dates as NHS staff write them, read day-first: 03/10/2026, 3 Oct 2026, 2026-10-03.

Why not dateutil or dateparser: with dayfirst=True dateutil reads 2026-10-03 as
10 March and quietly accepts 12/13/2026 as 13 December. A recall date a month out
is a clinical hazard, so an impossible date must stay impossible: three shapes,
no guessing.
"""
from __future__ import annotations

import calendar
import re
from datetime import date
from functools import lru_cache

from handlers.contract.scan import matches_at

MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m}
MONTHS |= {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}
MONTHS["sept"] = 9
_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))
DATE_RE = re.compile(
    r"(?<![\d/.-])(?:"
    r"(?P<iy>\d{4})-(?P<im>\d{1,2})-(?P<id>\d{1,2})"
    r"|(?P<d>\d{1,2})[/.-](?P<m>\d{1,2})[/.-](?P<y>\d{4}|\d{2})"
    r"|(?P<td>\d{1,2})(?:st|nd|rd|th)?(?:\s+of)?[\s-]+(?P<tm>" + _MONTH + r")\.?,?[\s-]+(?P<ty>\d{4})"
    r")(?![\d/])", re.I)


def _year(text: str, pivot: int) -> int:
    y = int(text)
    if len(text) == 2:        # 26 -> 2026, 58 -> 1958
        y += 2000 if y <= pivot else 1900
    return y


def find(text: str, pivot: int | None = None) -> list[tuple[int, date | None, str]]:
    """Every date-shaped thing in text: (position, date or None when it is not a real date, as written)."""
    pivot = (date.today().year + 1) % 100 if pivot is None else pivot
    return list(_find(text or "", pivot))


@lru_cache(maxsize=256)       # readers ask about the same letter's dates several times
def _find(text: str, pivot: int) -> tuple[tuple[int, date | None, str], ...]:
    out = []
    for m in digit_led_matches(text or ""):
        g = m.groupdict()
        try:
            if g["iy"]:
                d = date(int(g["iy"]), int(g["im"]), int(g["id"]))
            elif g["y"]:
                d = date(_year(g["y"], pivot), int(g["m"]), int(g["d"]))
            else:
                d = date(int(g["ty"]), MONTHS[g["tm"].lower()], int(g["td"]))
        except ValueError:
            d = None
        out.append((m.start(), d, m.group(0)))
    return tuple(out)


# Where a date can start: 1-4 digits then a separator and a digit, or a day then a word (a month).
# It opens with a digit, so sre jumps from digit to digit in C; a date's own pattern opens with a
# look-behind, which makes finditer try it at every position. A place this skips over (inside an
# earlier candidate) follows a digit, '/', '.' or '-', where no date starts.
DATE_START = re.compile(r"\d{1,4}(?:[/.\-]\d|(?:st|nd|rd|th)?(?:\s+of)?[\s-]+[A-Za-z])", re.I)
_DIGIT_FLAGS = bytes(0 if 48 <= b <= 57 else 1 for b in range(256))     # an ASCII digit -> 0, else 1


@lru_cache(maxsize=64)        # the date readers, and the short-date one, scan the same letter
def digit_runs(text: str) -> tuple[int, ...] | None:
    """Where each run of digits begins; None when the text holds a digit outside ASCII (then
    the patterns' own scan is used). sre, looking for a digit, tries its pattern at every
    character (~15 ns each); a byte table and bytes.find find the runs several times faster."""
    if not text.isascii() and any(c.isdecimal() for c in set(text) if ord(c) > 127):
        return None
    flags = text.encode("ascii", "replace").translate(_DIGIT_FLAGS)   # one byte per character
    out = [0] if flags[:1] == b"\0" else []
    i = flags.find(b"\1\0")
    while i >= 0:
        out.append(i + 1)
        i = flags.find(b"\1\0", i + 2)
    return tuple(out)


def digit_led_matches(text: str, rx: re.Pattern = DATE_RE, start: re.Pattern | None = DATE_START):
    """rx.finditer(text), found faster, for DATE_RE or a pattern like it: one that can only match
    at the first digit of a run of digits (its look-behind refuses a digit before it), and only
    where `start` finds a place (None: rx's own search, for a text with other digits)."""
    runs = digit_runs(text)
    if runs is None and start is None:
        return rx.finditer(text)
    return matches_at(rx, text, runs if runs is not None else (run.start() for run in start.finditer(text)))


def parse(text: str) -> date | None:
    """The first date written in text, or None (none, or not a real date)."""
    found = find(text)
    return found[0][1] if found else None


def months_after(d: date, months: int) -> date:
    """Same day n months on; the 31st becomes the month's last day (31 Aug + 6 = 28/29 Feb)."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def uk(d: date | str | None) -> str:
    if not d:
        return ""
    if isinstance(d, str):
        d = date.fromisoformat(d)
    return d.strftime("%d/%m/%Y")


def quarter_of(d: date) -> str:
    return f"{d.year}Q{(d.month - 1) // 3 + 1}"


def parse_quarter(text: str) -> tuple[date, date] | None:
    """'2026Q3', 'Q3 2026', '2026-Q3' -> first and last day (calendar quarters)."""
    m = re.fullmatch(r"\s*(?:(\d{4})\s*-?\s*Q([1-4])|Q([1-4])\s*-?\s*(\d{4}))\s*", text or "", re.I)
    if not m:
        return None
    year = int(m.group(1) or m.group(4))
    q = int(m.group(2) or m.group(3))
    start = date(year, 3 * q - 2, 1)
    end_month = 3 * q
    return start, date(year, end_month, calendar.monthrange(year, end_month)[1])
