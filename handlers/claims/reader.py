"""Read claim lines out of a body, a CSV, an XLSX, a DOCX or a PDF, as practices write them.

Produces raw lines (what was written, where, and how its month was read) for handlers/claims.py
to check. Every mention of a service ends as a line or in `Extracted.mentions` (named without a
number), so the handler can account for each one. Only counts are kept: patient details found on
the way are counted, not copied.

Words (service synonyms, label and column names, number words) live in
catalogue/lexicon/claims.toml; the recognisers are in bot/reading/services.py and months.py.
"""
from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from handlers.contract import nhs
from handlers.contract.catalogue import Catalogue, Service
from bot.mail.parse import decode_bytes
from handlers.contract.periods import parse_month
from handlers.contract.reading import months as rmonths
from handlers.contract.reading import services as rsvc

ODS_RE = re.compile(r"\b([A-Z]\d{5})\b")
MAX_ROWS = 100_000


@dataclass
class RawLine:
    label: str                      # how the line named the service
    service: Service | None
    month_text: str
    month: date | None
    count_text: str
    where: str                      # "body line 12", "claim.csv row 3"
    unit_price_text: str = ""
    total_text: str = ""
    times: int = 1                  # identical rows in one file
    month_last: date | None = None  # a run of months (a quarter, a date range): its last month
    month_how: str = ""             # how the month was found, echoed in the reply
    other: bool = False             # names something that is not a service in the catalogue
    notes: list[str] = field(default_factory=list)
    prose: bool = False             # read from a sentence rather than a labelled line or a table
    problem: str = ""               # why no count could be read (several numbers, ...)


@dataclass
class Extracted:
    lines: list[RawLine] = field(default_factory=list)
    practice_codes: set[str] = field(default_factory=set)    # stated ODS codes
    default_month: date | None = None
    default_month_how: str = ""
    claimed_by: str = ""
    stated_total: Decimal | None = None
    patient_identifiers: int = 0       # how many NHS numbers / patient columns were seen
    problems: list[tuple[str, str]] = field(default_factory=list)
    mentions: list[tuple[str, str, str]] = field(default_factory=list)   # (code, where, text): no number
    notes: list[str] = field(default_factory=list)


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


def _words(kind: str, key: str) -> list[str]:
    return rsvc.lexicon().get(kind, {}).get(key, [])


def _label_re(key: str) -> re.Pattern:
    cached = _LABEL_CACHE.get(key)
    if cached is None:
        words = sorted(_words("labels", key), key=len, reverse=True)
        cached = re.compile(r"(?<![a-z])(?:" + "|".join(rsvc._phrase(w) for w in words) + r")", re.I)
        _LABEL_CACHE[key] = cached
    return cached


_LABEL_CACHE: dict[str, re.Pattern] = {}


@lru_cache(maxsize=32)
def _any_phrase(kind: str, key: str) -> re.Pattern | None:
    """One pattern for "any of these lexicon phrases" (None when the list is empty)."""
    words = _words(kind, key)
    return re.compile("|".join(f"(?:{rsvc._phrase(w)})" for w in words), re.I) if words else None

# -- body -------------------------------------------------------------------------
CELL_SPLIT = re.compile(r"\s{2,}|\t|\s?\|\s?")
SEPARATOR = re.compile(r"\s*(?:[:=]|\s[-–—]\s|\s[-–—]$|[-–—]\s)\s*")
SENTENCE_END = re.compile(r"(?<=[a-z0-9)\]'’])[.!?](?=\s+(?:[A-Z0-9(]|$))|(?<=[a-z])[.!?]$")
SEGMENT_SPLIT = re.compile(r"\s*(?:[;,]\s*(?:and\s+|plus\s+|also\s+)?|\s+(?:and|plus)\s+(?:also\s+)?|"
                           r"\s+also\s+)\s*", re.I)
TOTAL_START = re.compile(r"^[\W\d]*(?:[A-Za-z0-9]+\s+){0,2}?(?:grand\s+)?totals?\b", re.I)
BULLET = re.compile(r"^\s*(?:[•\-*·●▪–◦>]+|\(?\d{1,2}[.)]|\(?[a-z][.)])\s+")
LIST_INTRO = re.compile(r"(?::\s*$|\b(?:below|as follows|following|these are|are:)\b)", re.I)
QUESTION = re.compile(r"^\W*(?:can|could|may|might|should|shall|would|will|is|are|do|does|did|what|how|"
                      r"why|when|which|if|whether)\b[^?]*\?\s*$", re.I)
QUICK = re.compile(r"\d|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|month|quarter|total|claimed|"
                   r"nil|none|zero|one|two|three|four|five|six|seven|eight|nine|ten|twelve|twenty|thirty",
                   re.I)
FORWARDED = re.compile(r"^\s*(?:fw|fwd)\s*:|\bforward", re.I)


@dataclass
class _Clause:
    text: str
    where: str
    line_no: int
    labelled: bool           # "label: value" shape, short label
    line_text: str


def _clauses(line: str) -> list[str]:
    """A line split into sentences."""
    parts, last = [], 0
    for m in SENTENCE_END.finditer(line):
        parts.append(line[last:m.end()])
        last = m.end()
    parts.append(line[last:])
    return [p.strip() for p in parts if p.strip()]


def _is_total(text: str) -> bool:
    label = SEPARATOR.split(text, maxsplit=1)[0] if SEPARATOR.search(text) else text
    return bool(TOTAL_START.match(text)) or (
        len(label.split()) <= 5 and bool(_label_re("total").search(label)) and label != text)


class _Reader:
    """Reads one text (a body, a forwarded part, a DOCX or PDF's text) line by line."""

    def __init__(self, ex: Extracted, catalogue: Catalogue, received: datetime, name: str,
                 fallback: rmonths.MonthSpan | None, fallback_how: str):
        self.ex, self.cat, self.received, self.name = ex, catalogue, received, name
        self.finder = rsvc.finder(catalogue)
        self.heading: tuple[rmonths.MonthSpan, str] | None = None
        self.fallback, self.fallback_how = fallback, fallback_how
        self.context: tuple[str, str] | None = None        # (code, heading text) for a list below
        self.pending: list[tuple[str, str, str, int]] = []  # mentions waiting for a list or a total
        self.last_service_line = -5
        self.codes_in_text: list[str] = []
        self.skip_to = 0             # lines already read as the cells of a vertical table
        self.headings: set = set()   # the distinct months given on lines of their own
        self.first_line = 0

    def where(self, n: int) -> str:
        return f"{self.name} line {n}"

    # months -------------------------------------------------------------------------------------
    def month_for(self, own: rmonths.MonthSpan | None) -> tuple[rmonths.MonthSpan | None, str]:
        if own:
            if own.how.startswith("quarter"):
                return own, (f"'{own.text.strip()}' read as {rmonths.describe(own.first, own.last)} (NHS financial-"
                             f"year quarters: Q1 is April to June{'; no year given' if 'without' in own.how else ''})")
            if own.how == "dates":
                return own, f"dates '{own.text.strip()}' read as {rmonths.describe(own.first, own.last)}"
            return own, "month given on the line"
        if self.heading:
            span, text = self.heading
            return span, f"month taken from '{text.strip()[:60]}'"
        if self.fallback:
            return self.fallback, self.fallback_how
        return None, ""

    def line(self, label, code, count_text, n, own_month, *, prose=False, price="", total="", notes=None,
             problem=""):
        span, how = self.month_for(own_month)
        svc = self.cat.get(code) if code and code != "other" else None
        if span and span.how.startswith("'"):
            how = f"{span.how.split(' read')[0]} read as {rmonths.describe(span.first, span.last)} " \
                  f"(from when the mail was received)"
        self.ex.lines.append(RawLine(
            label.strip(), svc, span.text if span else "", span.first if span else None, count_text,
            self.where(n), price, total, 1, span.last if span and not span.single else None, how,
            other=(code == "other"), notes=list(notes or []), prose=prose, problem=problem))
        self.last_service_line = n
        self.pending = [p for p in self.pending if p[0] != code]

    # one text ---------------------------------------------------------------------------------
    def read(self, text: str):
        lines = text.splitlines()
        self.codes_in_text = self.finder.codes(text)
        self.first_line = len(self.ex.lines)
        i = 0
        while i < len(lines):
            n = i + 1
            raw = lines[i]
            s = raw.strip()
            if not s or i < self.skip_to:
                i += 1
                continue
            cells = [c.strip() for c in CELL_SPLIT.split(s)]
            cells_nonempty = [c for c in cells if c]
            if len(cells_nonempty) >= 3 or ("|" in s and len(cells_nonempty) >= 2 and len(cells) >= 3):
                used = self.table(lines, i, cells)
                if used:
                    i += used
                    continue
            if len(cells_nonempty) == 2 and ("|" in s or "\t" in s or "  " in s):
                s = f"{cells_nonempty[0]}: {cells_nonempty[1]}"      # a Word table's label | value
            self.text_line(s, n, lines, i)
            i += 1
        for code, where, text, _ in self.pending:
            self.ex.mentions.append((code, where, text))
        self.pending = []
        if self.heading and len(self.headings) == 1:
            # "Month: November" written after the lines: it is still the claim's month
            span, htext = self.heading
            for l in self.ex.lines[self.first_line:]:
                if l.month is None and not l.month_text:
                    l.month, l.month_text = span.first, span.text
                    l.month_last = span.last if not span.single else None
                    l.month_how = f"month taken from '{htext.strip()[:60]}'"

    def text_line(self, s: str, n: int, lines: list[str], i: int):
        ex = self.ex
        for code in ODS_RE.findall(s):
            if _label_re("practice").search(s) or re.search(r"\(" + code + r"\)", s):
                ex.practice_codes.add(code)
        body = BULLET.sub("", s, count=1)
        for clause in _clauses(body):
            self.clause(clause, n, lines, i, bulleted=body != s)

    def clause(self, c: str, n: int, lines, i, bulleted=False):
        ex = self.ex
        if not QUICK.search(c) and not self.finder.find(c):
            return      # no digit, no month, no service, no total: a greeting or a sign-off
        sep = SEPARATOR.search(c)
        label = c[:sep.start()] if sep else c
        value = c[sep.end():] if sep else ""
        labelled = bool(sep) and 0 < len(label.split()) <= 14 and bool(value.strip())
        spans = rmonths.find(c, self.received)
        mentions = self.finder.find(c)
        codes = []
        for m in mentions:
            if m.code not in codes:
                codes.append(m.code)
        if [x for x in codes if x != "other"]:
            codes = [x for x in codes if x != "other"] if not labelled or len(codes) > 1 and \
                not any(m.code == "other" and m.start < sep.start() for m in mentions) else codes
        if _label_re("claimed_by").match(label) and labelled and not codes:
            ex.claimed_by = ex.claimed_by or value.strip()[:80]
            return
        if _is_total(c):
            amounts = re.findall(r"£\s?([\d,]+(?:\.\d\d)?)", c)
            if amounts:
                ex.stated_total = money(amounts[-1])
            nums = rsvc.numbers(c, [(s.start, s.end) for s in spans])
            count, how, _ = rsvc.choose(nums, c)
            if count is not None and self.pending and not amounts:
                code, where, text, _ = self.pending.pop(0)
                self.line(f"{text} ({c.strip()})", code, str(count), n, None)
            return
        if _label_re("practice").match(label) and labelled:
            m2 = ODS_RE.search(value.upper())
            if m2:
                ex.practice_codes.add(m2.group(1))
            return
        if not codes:
            if labelled and _label_re("month").match(label.strip()) and len(label.split()) <= 5:
                span = rmonths.one(value, self.received)
                if span is None and parse_month(value.strip(), self.received):
                    d = parse_month(value.strip(), self.received)       # an Excel serial, "2026-09"
                    span = rmonths.MonthSpan(0, len(value), value.strip(), d, d)
                if span:
                    self.heading = (span, c)
                    self.headings.add((span.first, span.last))
                    return
            nums = rsvc.numbers(c, [(s.start, s.end) for s in spans])
            if labelled and nums and _only_units(c[nums[-1].end:]) and len(label.split()) <= 6:
                self.context_line(c, label, value, spans, nums, n)
                return
            if spans and not nums:
                distinct = {(s.first, s.last) for s in spans}
                if len(distinct) == 1 and not re.search(r"\?|\b(?:if|hope|whether)\b", c, re.I):
                    self.heading = (spans[0], c)
                    self.headings |= distinct
            return
        if len(codes) > 1:
            for code, seg, own in self.segments(c, codes, spans):
                self.one_service(seg, code, n, lines, i, own or self._clause_month(spans), labelled=False)
            return
        own = self._nearest_month(c, spans, mentions)
        self.one_service(c, codes[0], n, lines, i, own, labelled=labelled or bulleted)

    def _clause_month(self, spans):
        distinct = {(s.first, s.last) for s in spans}
        return spans[0] if len(distinct) == 1 else None

    def _nearest_month(self, c, spans, mentions):
        if not spans:
            return None
        if len({(s.first, s.last) for s in spans}) == 1:
            return spans[0]
        nums = rsvc.numbers(c, [(s.start, s.end) for s in spans])
        anchor = nums[0].start if nums else mentions[0].start
        introduced = [s for s in spans if re.search(r"\b(?:in|from|for|during|of)\s+(?:the\s+month\s+of\s+)?$",
                                                     c[max(0, s.start - 25):s.start], re.I)]
        return min(introduced or spans, key=lambda s: min(abs(s.start - anchor), abs(s.end - anchor)))

    def segments(self, c, codes, spans):
        """A sentence naming several services, cut so each part names one."""
        pieces, last = [], 0
        for m in SEGMENT_SPLIT.finditer(c):
            pieces.append((last, m.start()))
            last = m.end()
        pieces.append((last, len(c)))
        groups: list[list] = []          # [code, start, end]
        for a, b in pieces:
            found = self.finder.codes(c[a:b])
            found = [x for x in found if x != "other"] or found
            if found and (not groups or found[0] != groups[-1][0]):
                groups.append([found[0], a, b])
            elif groups:
                groups[-1][2] = b
            else:
                groups.append([None, a, b])
        if groups and groups[0][0] is None and len(groups) > 1:
            groups[1][1] = groups[0][1]
            groups.pop(0)
        if len({g[0] for g in groups}) < len(codes):
            # "Dmab 5 / MSK 2": cut half-way between the names of different services, at a space
            ms = [m for m in self.finder.find(c) if m.code != "other" or "other" in codes[:1]]
            groups, start = [], 0
            for a, b in zip(ms, ms[1:]):
                if a.code == b.code:
                    continue
                mid = (a.end + b.start) // 2
                sp = [k for k in range(a.end, b.start + 1) if k < len(c) and c[k] in " /|;,"]
                cut = min(sp, key=lambda k: abs(k - mid)) if sp else mid
                groups.append([a.code, start, cut])
                start = cut
            groups.append([ms[-1].code, start, len(c)])
        out = []
        for code, a, b in groups:
            own = [s for s in spans if a <= s.start < b]
            seg = c[a:b]
            out.append((code, seg, rmonths.one(seg, self.received) if own else None))
        return out

    def one_service(self, c, code, n, lines, i, own, labelled):
        spans = rmonths.find(c, self.received)
        svc_spans = [(m.start, m.end) for m in self.finder.find(c)]
        nums = rsvc.numbers(c, [(s.start, s.end) for s in spans], svc_spans)
        if QUESTION.match(c) and not labelled:
            nums = []          # "Can we claim 5 for ...?": a question about a number is not a claim for it
        not_now = _any_phrase("labels", "not_now")
        if nums and not_now and not_now.search(c):
            self.ex.mentions.append((code, self.where(n), c.strip()))
            return
        pairs = _month_pairs(c, spans, [x for x in nums if not x.superseded and not x.paren])
        if pairs:
            for span, num in pairs:
                self.line(f"{c.strip()} [{span.text}]", code, _fmt(num.value), n, span, prose=not labelled)
            return
        count, how, used = rsvc.choose(nums, c)
        price = total = ""
        if used:
            after = c[used[-1].end:]
            mp = re.search(r"(?:@|x|at)\s*£\s?([\d,]+(?:\.\d\d)?)", after, re.I)
            mt = re.search(r"=\s*£\s?([\d,]+(?:\.\d\d)?)", after)
            price = mp.group(1) if mp else ""
            total = mt.group(1) if mt else ""
        label = c.strip()
        if count is not None:
            notes = []
            if how == "sum":
                notes.append(" + ".join(n_.text for n_ in used) + f" added up to {count}")
            self.line(label, code, _fmt(count), n, own, prose=not labelled, price=price, total=total, notes=notes)
            return
        if how == "ambiguous":
            self.line(label, code, "", n, own, prose=not labelled,
                      problem="it holds several numbers (" + ", ".join(x.text for x in used) +
                              ") and lesbot cannot tell which is the count. Give one number per service "
                              "and month.")
            return
        # a service named with no number: a vertical table (PDF), a list or a total below, or nothing
        if labelled:
            value = SEPARATOR.split(c, maxsplit=1)[-1].strip(" .")
            if value and len(value.split()) <= 2 and not rmonths.find(value, self.received) and \
                    not re.search(r"\b(?:attached|below|above|enclosed|see)\b", value, re.I):
                self.line(label, code, value, n, own)      # "Denosumab injections: lots": not a number
                return
        vertical = self.vertical(lines, i)
        if vertical:
            cnt, pr, tot = vertical
            self.line(label, code, cnt, n, own, price=pr, total=tot)
            return
        if LIST_INTRO.search(c) or lines[i].rstrip().endswith(":"):
            self.context = (code, c)
            self.pending.append((code, self.where(n), c.strip(), n))
            if own and own.single:
                self.heading = (own, c)
                self.headings.add((own.first, own.last))
            return
        self.ex.mentions.append((code, self.where(n), c.strip()))

    def vertical(self, lines, i):
        """A PDF table comes out one cell per line: the service, then its code, number, price, total."""
        cells = []
        for j in range(i + 1, min(i + 7, len(lines))):
            t = lines[j].strip()
            if not re.fullmatch(r"£?\s?[\d,]+(?:\.\d+)?|n/?a|-", t, re.I):
                break
            cells.append(t)
        count = next((c for c in cells if re.fullmatch(r"\d{1,5}", c)), None)
        if count is None:
            return None
        self.skip_to = i + 1 + len(cells)
        money_cells = [c for c in cells if c.startswith("£") or re.fullmatch(r"\d+\.\d\d", c)]
        return count, money_cells[0] if money_cells else "", money_cells[1] if len(money_cells) > 1 else ""

    def context_line(self, c, label, value, spans, nums, n):
        """A line with a count but no service: "June - 4" under "Denosumab for the last few months:",
        "- consultation, injection given: 1" under "Joint injection clinic:", "November adjustment: -2"."""
        count, how, used = rsvc.choose(nums, c)
        label_month = rmonths.one(label, self.received)
        code, heading = self.context if self.context else (None, "")
        if code is None and len([x for x in self.codes_in_text if x != "other"]) == 1 and (
                label_month or n - self.last_service_line <= 1):
            code = next(x for x in self.codes_in_text if x != "other")
            heading = ""
        if code is None:
            if n - self.last_service_line <= 1 or _unit_in(label):
                self.line(label, None, _fmt(count) if count is not None else "", n, label_month)
                self.ex.lines[-1].service = None
            return
        full = f"{heading.rstrip(': ')}: {label.strip()}" if heading else label.strip()
        self.line(full, code, _fmt(count) if count is not None else "", n, label_month,
                  problem="" if count is not None else "it holds several numbers; give one per service and month.")

    # tables in text -----------------------------------------------------------------------------
    def table(self, lines, i, head_cells) -> int:
        """A table pasted or rendered from HTML/Word: a header row naming the service and the count
        column (or months as columns), then its rows. Returns how many lines it used (0: not a table).
        Rows of a table laid out with spaces (Outlook HTML as text) are cut at the header's column
        positions, so an empty cell stays empty; Word rows ("a | | b") are cut at the bars."""
        piped = "|" in lines[i] or "\t" in lines[i].strip()
        bar = "|" if "|" in lines[i] else "\t"
        positions = None
        if piped:
            head_cells = [c.strip() for c in lines[i].strip().strip("|").split(bar)]
        else:
            found = [(m.start(), m.group(0)) for m in re.finditer(r"\S+(?: \S+)*", lines[i])]
            positions = [p for p, _ in found]
            head_cells = [t for _, t in found]
        head = [c.lower() for c in head_cells]
        col = _columns(head)
        month_cols = _month_columns(head_cells, self.received)
        if "service" in col and "count" in col:
            kind = "rows"
        elif len(month_cols) >= 1 and (
                "service" in col or self.finder.codes(head_cells[0]) or head[0] in ("", "service")):
            kind = "months"
        else:
            return 0
        used = 1
        header_service = self.finder.codes(head_cells[0])
        for j in range(i + 1, len(lines)):
            s = lines[j].strip()
            if not s:
                used += 1
                continue
            if piped:
                cells = [c.strip() for c in s.strip("|").split(bar)]
            else:
                cells = _cut(lines[j], positions) if positions else [c.strip() for c in CELL_SPLIT.split(s)]
            if len([c for c in cells if c]) < 2:
                break
            used += 1
            n = j + 1
            first = next((c for c in cells if c), "")
            if _is_total(first) or first.lower().startswith(("total", "declaration", "signed")):
                tot = next((c for c in reversed(cells) if "£" in c), None)
                if tot:
                    self.ex.stated_total = money(tot)
                continue
            if kind == "rows":
                self.table_row(cells, col, n, head)
            else:
                self.month_row(cells, head_cells, month_cols, header_service, n)
        return used

    def table_row(self, cells, col, n, head):
        if len(cells) != len(head):
            # a rendered table may drop empty cells: align from the left only when lengths agree
            if len(cells) < max(col.values()) + 1:
                return
        get = lambda k: cells[col[k]] if k in col and col[k] < len(cells) else ""  # noqa: E731
        label = get("service")
        code = (self.finder.codes(label) or self.finder.codes(get("snomed")) or [None])[0]
        month_text = get("month")
        own = rmonths.one(month_text, self.received) if month_text else None
        count = get("count")
        if code is None and not label:
            return
        if not count.strip():
            if code and code != "other":
                self.ex.mentions.append((code, self.where(n), label + " (no number given)"))
            return
        self.line(label, code, count, n, own, price=get("price"), total=get("total"))
        if code is None:
            self.ex.lines[-1].service = None

    def month_row(self, cells, head_cells, month_cols, header_service, n):
        label = cells[0]
        codes = self.finder.codes(label) or header_service
        if not codes:
            if not label:
                return
            codes = [None]
        for idx, span in month_cols:
            if idx >= len(cells):
                continue
            v = cells[idx].strip()
            if not v:
                continue
            if not re.fullmatch(r"-?[\d,]+(?:\.0+)?|nil|none", v, re.I):
                self.ex.notes.append(f"{head_cells[idx]}: '{v}' is not a number, so nothing is claimed for it.")
                continue
            self.line(f"{label} {head_cells[idx]}".strip(), codes[0], v, n, span)
            self.ex.lines[-1].month_how = "month from the column heading"
            if codes[0] is None:
                self.ex.lines[-1].service = None


def _month_pairs(c, spans, nums):
    """"Oct 5, Nov 7": each count right after its own month. Only when every count has one."""
    if len(nums) < 2 or len({(s.first, s.last) for s in spans}) < 2:
        return None
    pairs = []
    for num in nums:
        before = [s for s in spans if s.end <= num.start and re.fullmatch(r"[\s:=\-–()]*", c[s.end:num.start])]
        if not before:
            return None
        pairs.append((before[-1], num))
    if len({(p[0].first, p[0].last) for p in pairs}) != len(pairs):
        return None
    return pairs


def _cut(line: str, positions: list[int]) -> list[str]:
    """A space-aligned row cut into the header's columns: each run of text goes to the column whose
    heading starts at or before it (a little slack for right-aligned numbers)."""
    cells = [""] * len(positions)
    for m in re.finditer(r"\S+(?: \S+)*", line):
        idx = max([k for k, p in enumerate(positions) if p <= m.start() + 2] or [0])
        cells[idx] = (cells[idx] + " " + m.group(0)).strip()
    return cells


def _only_units(tail: str) -> bool:
    """After the count, nothing but a unit word ("5 injections", "4.", "3 in total")."""
    words = re.findall(r"[A-Za-z]+", tail)
    units = {u.lower() for u in _words("numbers", "units")} | {"in", "total", "only", "altogether", "please"}
    return len(words) <= 3 and all(w.lower() in units for w in words)


def _unit_in(label: str) -> bool:
    units = _words("numbers", "units")
    return any(re.search(rsvc._phrase(u), label, re.I) for u in units if u not in ("given", "done", "seen"))


def _fmt(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _month_columns(head_cells, received) -> list[tuple[int, rmonths.MonthSpan]]:
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


def subject_month(subject: str, received: datetime) -> rmonths.MonthSpan | None:
    return rmonths.one(re.sub(r"\[LES-\d+\]", "", subject or ""), received)


def from_body(text: str, catalogue: Catalogue, received: datetime, subject: str = "",
              full_text: str = "", name: str = "body") -> Extracted:
    ex = Extracted()
    ex.patient_identifiers += nhs.count_in(text)
    sm = subject_month(subject, received)
    _read_text(ex, text, catalogue, received, name, sm, "month taken from the subject")
    counted = [l for l in ex.lines if l.count_text]
    rest = full_text[len(text):] if full_text.startswith(text[:200]) else ""
    if not counted and rest.strip() and (FORWARDED.search(subject or "") or FORWARDED.search(text)
                                         or re.search(r"\bbelow\b", text, re.I)):
        fwd = Extracted()
        fwd.patient_identifiers += nhs.count_in(rest)
        _read_text(fwd, rest, catalogue, received, "forwarded message", sm, "month taken from the subject")
        if any(l.count_text for l in fwd.lines):
            ex.mentions = [m for m in ex.mentions if m[0] not in {l.service.code for l in fwd.lines if l.service}]
            fwd.practice_codes = set()      # the forwarded mail's signature is not this claim's practice
            merge(ex, fwd)
    return ex


def _read_text(ex, text, catalogue, received, name, fallback, fallback_how):
    r = _Reader(ex, catalogue, received, name, fallback, fallback_how)
    r.read(text)
    return r


def from_document(text: str, name: str, catalogue: Catalogue, received: datetime,
                  fallback: rmonths.MonthSpan | None = None, fallback_how: str = "") -> Extracted:
    """A claim form or letter as a DOCX or PDF (its text, Word tables as 'a | b' rows)."""
    ex = Extracted()
    ex.patient_identifiers += nhs.count_in(text)
    _read_text(ex, text, catalogue, received, name, fallback, fallback_how)
    return ex


def _columns(head: list[str]) -> dict[str, int]:
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


# -- tables: CSV and XLSX ------------------------------------------------------------
def _rows_to_lines(ex: Extracted, rows, catalogue: Catalogue, received: datetime, name: str, tally=None):
    """Find the header row, read the lines under it; note the form's header block.

    Rows under the header are first only tallied (identical rows counted, first
    row number kept): a claim is a handful of distinct lines, however long the file.
    A header with months as columns ("Service, Oct-26, Nov-26, Total") is read per cell; a sheet
    whose header names patients (name, NHS number, date of birth) is a patient list, not a claim:
    its rows are counted as patient details and never read as lines.
    """
    rows = iter(rows)
    head = None
    col: dict[str, int] = {}
    month_cols: list = []
    r = 0
    for row in rows:
        r += 1
        cells = list(row)
        texts = [str(c).strip().lower() if c is not None else "" for c in cells]
        c2 = _columns(texts)
        if "patient" in c2 and "service" in c2 and "count" in c2:
            ex.patient_identifiers += 1      # a claim table with a patient column: counted, never kept
        elif "patient" in c2 and ("service" in c2 or "count" in c2 or "month" in c2 or len(c2) >= 2):
            ex.patient_identifiers += 1 + sum(1 for row2 in rows if any(v not in (None, "") for v in row2))
            ex.notes.append(f"{name} lists patients; it was not read as claim lines.")
            return "patients"
        if "service" in c2 and "count" in c2:
            head, col = texts, c2
            break
        mc = _month_columns(cells, received)
        if mc and ("service" in c2 or rsvc.finder(catalogue).codes(texts[0]) or texts[0] in ("", "service")) \
                and len(mc) >= max(1, len([t for t in texts[1:] if t]) - 2):
            head, col, month_cols = texts, c2, mc
            break
        _header_block(ex, cells, received)
    if head is None:
        ex.problems.append((name, "has no header row naming the service and the number claimed "
                                  "(for example: Service, Month, Number). Use the claim form."))
        return None
    start = r
    if tally is not None:
        items = tally(start)       # [(cells, first row number, times)]
        r = start + sum(t for _, _, t in items)
    else:
        first_row: dict[tuple, int] = {}
        repeats: dict[tuple, int] = {}
        for r, row in enumerate(rows, start=start + 1):
            key = tuple(row)
            if key in repeats:
                repeats[key] += 1
            else:
                repeats[key] = 1
                first_row[key] = r
        items = [(k, first_row[k], repeats[k]) for k in first_row]
    if r - start > MAX_ROWS:
        ex.problems.append((name, f"has more than {MAX_ROWS:,} rows; a claim needs one row per service "
                                  "and month. Send a summary, not a list of appointments."))
        return None
    for cells, r, times in items:
        if month_cols:
            _month_cells(ex, catalogue, received, name, head, month_cols, cells, r)
        else:
            _table_line(ex, catalogue, received, name, col, cells, r, times)
    return "claim"


def _month_cells(ex, catalogue, received, name, head, month_cols, cells, r):
    label = str(cells[0] if cells else "" or "").strip() if cells and cells[0] is not None else ""
    if not any(c not in (None, "") for c in cells) or not label:
        return
    if _is_total(label) or label.lower().startswith("total"):
        return
    codes = rsvc.finder(catalogue).codes(label) or rsvc.finder(catalogue).codes(head[0])
    code = codes[0] if codes else None
    for idx, span in month_cols:
        v = cells[idx] if idx < len(cells) else None
        if v in (None, ""):
            continue
        text = _num_text(v)
        if isinstance(v, str) and not re.fullmatch(r"\s*-?[\d,]+(?:\.0+)?\s*|nil|none", v, re.I):
            ex.notes.append(f"{name} row {r}, {span.text}: '{v}' is not a number, so nothing is claimed for it.")
            continue
        svc = catalogue.get(code) if code and code != "other" else None
        ex.lines.append(RawLine(label, svc, span.text, span.first, text.replace(".0", "") if
                                re.fullmatch(r"-?\d+\.0+", text) else text, f"{name} row {r}",
                                month_how="month from the column heading", other=code == "other"))


def _table_line(ex, catalogue, received, name, col, cells, r, times):
    if not any(c not in (None, "") for c in cells):
        return
    get = lambda k: cells[col[k]] if k in col and col[k] < len(cells) else None  # noqa: E731
    label = str(get("service") or "").strip()
    if not label:
        if any(str(c).strip().lower().startswith("total") for c in cells if c is not None):
            ex.stated_total = money(get("total")) or ex.stated_total
        return
    low = label.lower()
    if _is_total(label) or low.startswith(("total", "declaration")) or _label_re("claimed_by").match(label):
        if _is_total(label) or low.startswith("total"):
            ex.stated_total = money(get("total")) or ex.stated_total
        else:
            _header_block(ex, cells, received)
        return
    ex.patient_identifiers += nhs.count_in(" ".join(str(c) for c in cells if isinstance(c, str))) * times
    ods = get("ods")
    if ods:
        m = ODS_RE.search(str(ods).upper())
        if m:
            ex.practice_codes.add(m.group(1))
    finder = rsvc.finder(catalogue)
    codes = finder.codes(label)
    snomed = get("snomed")
    if not codes and snomed not in (None, ""):
        codes = finder.codes(str(snomed).split(".")[0])
    code = codes[0] if codes else None
    service = catalogue.get(code) if code and code != "other" else None
    month_val = get("month")
    count_val = get("count")
    if count_val in (None, "") and code and code != "other":
        ex.mentions.append((code, f"{name} row {r}", label + " (no number given)"))
    ex.lines.append(RawLine(
        label, service, "" if month_val is None else str(month_val),
        parse_month(month_val, received) if month_val not in (None, "") else None,
        "" if count_val is None else _num_text(count_val), f"{name} row {r}",
        "" if get("price") is None else _num_text(get("price")),
        "" if get("total") is None else _num_text(get("total")), times,
        month_how="month given on the row" if month_val not in (None, "") else "", other=code == "other"))


def _num_text(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _header_block(ex: Extracted, cells, received):
    texts = [c for c in cells if c not in (None, "")]
    if not texts:
        return
    first = str(texts[0]).strip()
    if len(texts) < 2:
        m = re.match(r"(.{2,40}?)\s*[:\-–]\s+(.+)$", first)      # "Claimed by: Claire, 05/01/2027"
        if not m:
            return
        label, value = m.group(1).lower(), m.group(2)
    else:
        label, value = first.lower(), texts[1]
    label = label.rstrip(": ")
    if _label_re("practice").search(label):
        m = ODS_RE.search(str(value).upper())
        if m:
            ex.practice_codes.add(m.group(1))
    elif _label_re("month").match(label) and len(label.split()) <= 5:
        d = parse_month(value, received)
        if d and not ex.default_month:
            ex.default_month = d
            ex.default_month_how = f"month taken from '{first.rstrip(':')}: " + \
                (f"{value:%B %Y}" if isinstance(value, (date, datetime)) else str(value)) + "'"
    elif _label_re("claimed_by").match(label):
        ex.claimed_by = ex.claimed_by or str(value).strip()[:80]


def _delimiter(text: str) -> str:
    """The delimiter of the first few lines: whichever of , ; tab | is most common.
    (csv.Sniffer does the same at ~1 ms a file, and guesses wrong on one-column files.)"""
    head = "\n".join(l for l in text[:4096].splitlines()[:5] if l.strip())
    counts = {d: head.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def from_csv(data: bytes, name: str, catalogue: Catalogue, received: datetime) -> Extracted:
    ex = Extracted()
    text = decode_bytes(data.removeprefix(b"\xef\xbb\xbf"), "utf-8").lstrip("\ufeff")
    delimiter = _delimiter(text)
    lines = text.splitlines()
    if '"' in text and any(line.count('"') % 2 for line in lines):
        # A quoted field runs over several lines: read it row by row.
        _rows_to_lines(ex, csv.reader(io.StringIO(text), delimiter=delimiter), catalogue, received, name)
        return ex

    def tally(consumed: int):
        """Identical lines counted as text (in C); only distinct ones are split into cells."""
        body = lines[consumed:]
        counts = Counter(body)
        first, need = {}, set(counts)
        for i, line in enumerate(body, start=consumed + 1):
            if line in need:
                first[line] = i
                need.discard(line)
                if not need:
                    break
        return [(tuple(next(csv.reader([line], delimiter=delimiter), [])), first[line], n)
                for line, n in counts.items()]
    _rows_to_lines(ex, csv.reader(lines, delimiter=delimiter), catalogue, received, name, tally=tally)
    return ex


MAX_COLUMNS = 60       # a claim sheet: a service column, months or counts; never thousands


def from_xlsx(data: bytes, name: str, catalogue: Catalogue, received: datetime) -> Extracted:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException
    ex = Extracted()
    try:
        # read_only + data_only: cached values of formulas, never evaluated; streamed rows.
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (InvalidFileException, KeyError, ValueError, OSError) as e:
        ex.problems.append((name, f"could not be read as a workbook ({type(e).__name__})."))
        return ex
    try:
        found = False
        for ws in wb.worksheets:
            sub = Extracted()
            # Bounded before reading: a sheet may declare itself A1:XFD1048576, and read-only
            # mode pads every row to the declared width.
            rows = ws.iter_rows(values_only=True, max_col=MAX_COLUMNS, max_row=MAX_ROWS + 2)
            kind = _rows_to_lines(sub, rows, catalogue, received, f"{name} sheet '{ws.title}'")
            if kind == "claim":
                found = True
                merge(ex, sub)
            elif kind == "patients":
                merge(ex, sub)
            else:
                # A sheet of guidance or notes: header-block facts only.
                sub.problems = [p for p in sub.problems if "no header row" not in p[1]]
                merge(ex, sub)
        if not found:
            ex.problems.append((name, "has no sheet with a header row naming the service and the number "
                                      "claimed. Use the claim form."))
    finally:
        wb.close()
    return ex


def merge(into: Extracted, other: Extracted):
    into.lines += other.lines
    into.practice_codes |= other.practice_codes
    into.default_month = into.default_month or other.default_month
    into.claimed_by = into.claimed_by or other.claimed_by
    into.stated_total = into.stated_total if into.stated_total is not None else other.stated_total
    into.default_month_how = into.default_month_how or other.default_month_how
    into.patient_identifiers += other.patient_identifiers
    into.problems += other.problems
    into.mentions += other.mentions
    into.notes += other.notes
