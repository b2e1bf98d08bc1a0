"""Claim lines in a text (a body, a forwarded part, a DOCX or PDF's text), as practices write them:
labelled lines, sentences, lists under a heading, and tables (text_tables.py)."""
from __future__ import annotations

import re
import threading
import weakref
from datetime import datetime

from handlers.claims.extracted import Extracted, RawLine
from handlers.claims.text_tables import TextTables
from handlers.claims.wording import (CELL_SPLIT, ODS_RE, SEPARATOR, any_phrase, is_total, label_re, money,
                                     num_text, only_units, unit_in)
from handlers.contract.catalogue import Catalogue
from handlers.contract.periods import parse_month
from handlers.contract.reading import months as rmonths
from handlers.contract.reading import services as rsvc

SENTENCE_END = re.compile(r"(?<=[a-z0-9)\]'’])[.!?](?=\s+(?:[A-Z0-9(]|$))|(?<=[a-z])[.!?]$")
SEGMENT_SPLIT = re.compile(r"\s*(?:[;,]\s*(?:and\s+|plus\s+|also\s+)?|\s+(?:and|plus)\s+(?:also\s+)?|"
                           r"\s+also\s+)\s*", re.I)
BULLET = re.compile(r"^\s*(?:[•\-*·●▪–◦>]+|\(?\d{1,2}[.)]|\(?[a-z][.)])\s+")
LIST_INTRO = re.compile(r"(?::\s*$|\b(?:below|as follows|following|these are|are:)\b)", re.I)
QUESTION = re.compile(r"^\W*(?:can|could|may|might|should|shall|would|will|is|are|do|does|did|what|how|"
                      r"why|when|which|if|whether)\b[^?]*\?\s*$", re.I)
QUICK = re.compile(r"\d|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|month|quarter|total|claimed|"
                   r"nil|none|zero|one|two|three|four|five|six|seven|eight|nine|ten|twelve|twenty|thirty",
                   re.I)


def _clauses(line: str) -> list[str]:
    """A line split into sentences."""
    parts, last = [], 0
    for m in SENTENCE_END.finditer(line):
        parts.append(line[last:m.end()])
        last = m.end()
    parts.append(line[last:])
    return [p.strip() for p in parts if p.strip()]


class InertLines:
    """Lines seen to hold nothing a claim is made of (no ODS code, digit, month, service or
    total): a signature, a disclaimer, a greeting. Such a line changes nothing however often it
    comes, so it is read once; practices send the same footer with every email."""

    LIMIT = 5000

    def __init__(self):
        self._lines: set[str] = set()

    def __contains__(self, line: str) -> bool:
        return line in self._lines

    def remember(self, line: str) -> None:
        if len(self._lines) >= self.LIMIT:
            self._lines.clear()
        self._lines.add(line)


_INERT: "weakref.WeakKeyDictionary[rsvc.ServiceFinder, InertLines]" = weakref.WeakKeyDictionary()
_INERT_LOCK = threading.Lock()


def inert_lines(finder) -> InertLines:
    """One set per service finder: what counts as inert depends on the catalogue's words."""
    with _INERT_LOCK:
        found = _INERT.get(finder)
        if found is None:
            found = _INERT[finder] = InertLines()
        return found


class TextReader(TextTables):
    """Reads one text (a body, a forwarded part, a DOCX or PDF's text) line by line."""

    def __init__(self, ex: Extracted, catalogue: Catalogue, received: datetime, name: str,
                 fallback: rmonths.MonthSpan | None, fallback_how: str):
        self.ex, self.cat, self.received, self.name = ex, catalogue, received, name
        self.finder = rsvc.finder(catalogue)
        self.inert = inert_lines(self.finder)
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
            if not s or i < self.skip_to or s in self.inert:
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
        codes = ODS_RE.findall(s)
        for code in codes:
            if label_re("practice").search(s) or re.search(r"\(" + code + r"\)", s):
                ex.practice_codes.add(code)
        body = BULLET.sub("", s, count=1)
        read = False
        for clause in _clauses(body):
            if not QUICK.search(clause) and not self.finder.find(clause):
                continue    # no digit, no month, no service, no total: a greeting or a sign-off
            read = True
            self.clause(clause, n, lines, i, bulleted=body != s)
        if not read and not codes and not CELL_SPLIT.search(s):
            self.inert.remember(s)      # one cell: read straight as a line wherever it comes

    def clause(self, c: str, n: int, lines, i, bulleted=False):
        ex = self.ex
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
        if label_re("claimed_by").match(label) and labelled and not codes:
            ex.claimed_by = ex.claimed_by or value.strip()[:80]
            return
        if is_total(c):
            amounts = re.findall(r"£\s?([\d,]+(?:\.\d\d)?)", c)
            if amounts:
                ex.stated_total = money(amounts[-1])
            nums = rsvc.numbers(c, [(s.start, s.end) for s in spans])
            count, how, _ = rsvc.choose(nums, c)
            if count is not None and self.pending and not amounts:
                code, where, text, _ = self.pending.pop(0)
                self.line(f"{text} ({c.strip()})", code, str(count), n, None)
            return
        if label_re("practice").match(label) and labelled:
            m2 = ODS_RE.search(value.upper())
            if m2:
                ex.practice_codes.add(m2.group(1))
            return
        if not codes:
            if labelled and label_re("month").match(label.strip()) and len(label.split()) <= 5:
                span = rmonths.one(value, self.received)
                if span is None and parse_month(value.strip(), self.received):
                    d = parse_month(value.strip(), self.received)       # an Excel serial, "2026-09"
                    span = rmonths.MonthSpan(0, len(value), value.strip(), d, d)
                if span:
                    self.heading = (span, c)
                    self.headings.add((span.first, span.last))
                    return
            nums = rsvc.numbers(c, [(s.start, s.end) for s in spans])
            if labelled and nums and only_units(c[nums[-1].end:]) and len(label.split()) <= 6:
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
        not_now = any_phrase("labels", "not_now")
        if nums and not_now and not_now.search(c):
            self.ex.mentions.append((code, self.where(n), c.strip()))
            return
        pairs = _month_pairs(c, spans, [x for x in nums if not x.superseded and not x.paren])
        if pairs:
            for span, num in pairs:
                self.line(f"{c.strip()} [{span.text}]", code, num_text(num.value), n, span, prose=not labelled)
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
            self.line(label, code, num_text(count), n, own, prose=not labelled, price=price, total=total, notes=notes)
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
            if n - self.last_service_line <= 1 or unit_in(label):
                self.line(label, None, num_text(count) if count is not None else "", n, label_month)
                self.ex.lines[-1].service = None
            return
        full = f"{heading.rstrip(': ')}: {label.strip()}" if heading else label.strip()
        self.line(full, code, num_text(count) if count is not None else "", n, label_month,
                  problem="" if count is not None else "it holds several numbers; give one per service and month.")


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
