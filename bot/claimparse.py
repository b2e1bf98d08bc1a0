"""Read claim lines out of a body, a CSV or an XLSX, as practices write them.

Produces raw lines (what was written, where) for handlers/claims.py to check.
Only counts are kept: patient details found on the way are counted, not copied.
"""
from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from bot import nhs
from bot.catalogue import Catalogue, Service
from bot.mailparse import decode_bytes
from bot.periods import parse_month

ODS_RE = re.compile(r"\b([A-Z]\d{5})\b")
PATIENT_HEADERS = ("patient", "nhs number", "nhs no", "forename", "surname", "date of birth", "dob", "name")
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


@dataclass
class Extracted:
    lines: list[RawLine] = field(default_factory=list)
    practice_codes: set[str] = field(default_factory=set)    # stated ODS codes
    default_month: date | None = None
    claimed_by: str = ""
    stated_total: Decimal | None = None
    patient_identifiers: int = 0       # how many NHS numbers / patient columns were seen
    problems: list[tuple[str, str]] = field(default_factory=list)


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


# -- body -------------------------------------------------------------------------
LABEL_VALUE = re.compile(r"^\s*(?:[•\-*·●▪–]\s*)?(?P<label>[^:=]{2,120}?)\s*(?:[:=]|\s[-–]\s)\s*(?P<value>.+?)\s*$")
PRACTICE_LABEL = re.compile(r"\b(practice code|ods code|ods|practice ods|org(?:anisation)? code)\b", re.I)
MONTH_LABEL = re.compile(r"\b(month|period|activity month|month of activity|claim month)\b", re.I)
TOTAL_LABEL = re.compile(r"\b(total|amount claimed|total claimed)\b", re.I)
COUNT_VALUE = re.compile(r"^(?P<count>-?[\d,]+(?:\.\d+)?)\b(?!\s*(?:mg|ml|%))")
CLAIM_FOR = re.compile(r"\bclaim\b[^.\n]{0,60}?\bfor\s+([A-Za-z]{3,9}\.?\s+\d{4})", re.I)
TABLE_HEAD = re.compile(r"\bservice\b", re.I)
SIGNAL = re.compile(r"[:=–]|\s-\s|\b[A-Z]\d{5}\b")
CELL_SPLIT = re.compile(r"\s{2,}|\t|\s\|\s")


def from_body(text: str, catalogue: Catalogue, received: datetime) -> Extracted:
    ex = Extracted()
    ex.patient_identifiers += nhs.count_in(text)
    m = CLAIM_FOR.search(text)
    if m:
        ex.default_month = parse_month(m.group(1), received)
    lines = text.splitlines()
    table: list[str] | None = None
    table_cols: dict[str, int] = {}
    for n, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped:
            continue
        tabular = "  " in stripped or "\t" in stripped or " | " in stripped
        if table is None and not tabular and not SIGNAL.search(stripped):
            continue      # no separator, no ODS code: prose or a signature
        cells = [c.strip() for c in CELL_SPLIT.split(stripped) if c.strip()] if tabular else [stripped]
        if table is not None:
            if len(cells) >= 3 and not cells[0].lower().startswith("total"):
                _table_row(ex, catalogue, received, table, table_cols, cells, f"body line {n}")
                continue
            if cells and cells[0].lower().startswith("total"):
                ex.stated_total = money(next((c for c in reversed(cells) if "£" in c), None)) or ex.stated_total
            table = None
            continue
        if len(cells) >= 3 and TABLE_HEAD.search(cells[0]) and any(
                re.search(r"\b(no\.?|number|qty|quantity|count)\b", c, re.I) for c in cells):
            table = [c.lower() for c in cells]
            table_cols = _columns(table)
            continue
        for code in ODS_RE.findall(stripped):
            if PRACTICE_LABEL.search(stripped) or re.search(r"\(" + code + r"\)", stripped):
                ex.practice_codes.add(code)
        lv = LABEL_VALUE.match(stripped)
        if not lv:
            continue
        label, value = lv.group("label").strip(), lv.group("value").strip()
        if len(label.split()) > 14:
            continue   # a sentence that happens to hold a colon
        if PRACTICE_LABEL.search(label):
            m2 = ODS_RE.search(value.upper())
            if m2:
                ex.practice_codes.add(m2.group(1))
            continue
        service = catalogue.identify(label)
        if MONTH_LABEL.search(label) and not service:
            ex.default_month = parse_month(value, received) or ex.default_month
            continue
        cm = COUNT_VALUE.match(value)
        if TOTAL_LABEL.search(label) and "£" in value and not service:
            ex.stated_total = money(value)
            continue
        if service is None:
            if "£" not in value and cm and _mentions_unit(label, catalogue):
                ex.lines.append(RawLine(label, None, "", None, cm.group("count"), f"body line {n}"))
            continue
        if "£" in value and not cm:
            continue      # "Rate: £43.47 per consultation"
        month_in_label = _month_in(label, received)     # "Denosumab injections for October 2026: 2"
        if not cm:
            if re.fullmatch(r"[A-Za-z]+", value):     # "Denosumab injections: twelve"
                ex.lines.append(RawLine(label, service, "", month_in_label, value, f"body line {n}"))
            continue
        ex.lines.append(RawLine(label, service, "", month_in_label, cm.group("count"), f"body line {n}"))
    _context_lines(ex, lines, catalogue, received)
    return ex


def _context_lines(ex: Extracted, lines, catalogue, received):
    """Month-only lines ("June - 4") take the service named in the line before the list."""
    if ex.lines:
        return      # labelled lines already: no bare "June - 4" list to read
    context = None
    for n, line in enumerate(lines, start=1):
        s = line.strip()
        service = catalogue.identify(s) if s else None
        if not s or (context is None and service is None):
            continue
        lv = LABEL_VALUE.match(s)
        if service and not (lv and COUNT_VALUE.match(lv.group("value").strip())):
            context = service
            continue
        if lv and context and not service:
            month = parse_month(lv.group("label"), received)
            cm = COUNT_VALUE.match(lv.group("value").strip())
            if month and cm and len(lv.group("label").split()) <= 2:
                ex.lines.append(RawLine(context.name, context, lv.group("label"), month, cm.group("count"),
                                        f"body line {n}"))


def _month_in(label: str, received: datetime) -> date | None:
    m = re.search(r"\(([^)]*\d{2,4}[^)]*)\)|\b(?:for|in)\s+([A-Za-z]{3,9}\.?\s*-?\s*\d{2,4})", label)
    if m:
        return parse_month(m.group(1) or m.group(2), received)
    return None


COUNT_NOUNS = re.compile(r"\b(tests?|injections?|consultations?|appointments?|procedures?|sessions?|reviews?|"
                         r"checks?|visits?|assessments?|fittings?|insertions?|removals?|units?)\b", re.I)


def _mentions_unit(label: str, catalogue: Catalogue) -> bool:
    """A line that counts something, though not a service we know: report it, don't drop it."""
    t = label.lower()
    if "rate" in t or "price" in t or "total" in t:
        return False
    return any(s.unit in t for s in catalogue.service) or bool(COUNT_NOUNS.search(t))


def _table_row(ex, catalogue, received, head, col, cells, where):
    if len(cells) != len(head) or col.get("service") is None:
        return
    label = cells[col["service"]]
    service = catalogue.identify(label) or (catalogue.identify(cells[col["snomed"]]) if "snomed" in col else None)
    month_text = cells[col["month"]] if "month" in col else ""
    ex.lines.append(RawLine(label, service, month_text, parse_month(month_text, received) if month_text else None,
                            cells[col["count"]] if "count" in col else "", where,
                            cells[col["price"]] if "price" in col else "",
                            cells[col["total"]] if "total" in col else ""))


def _columns(head: list[str]) -> dict[str, int]:
    col: dict[str, int] = {}
    for i, h in enumerate(head):
        h = str(h or "").strip().lower()
        if not h:
            continue
        if "snomed" in h or h in ("code", "read code"):
            col.setdefault("snomed", i)
        elif "service" in h or h in ("item", "activity", "description", "les"):
            col.setdefault("service", i)
        elif "month" in h or h in ("period", "date", "activity date"):
            col.setdefault("month", i)
        elif re.search(r"\b(unit price|price|rate|tariff)\b", h):
            col.setdefault("price", i)
        elif re.search(r"\b(no\.?|number|qty|quantity|count|activity count|units?)\b", h):
            col.setdefault("count", i)
        elif re.search(r"\b(total|amount|value)\b", h):
            col.setdefault("total", i)
        elif re.search(r"\b(ods|practice code|org code)\b", h):
            col.setdefault("ods", i)
        if any(p == h or h.startswith(p) for p in PATIENT_HEADERS) and "practice" not in h:
            col.setdefault("patient", i)
    return col


# -- tables: CSV and XLSX ------------------------------------------------------------
def _rows_to_lines(ex: Extracted, rows, catalogue: Catalogue, received: datetime, name: str, tally=None):
    """Find the header row, read the lines under it; note the form's header block.

    Rows under the header are first only tallied (identical rows counted, first
    row number kept): a claim is a handful of distinct lines, however long the file.
    """
    rows = iter(rows)
    head = None
    col: dict[str, int] = {}
    r = 0
    for row in rows:
        r += 1
        cells = list(row)
        texts = [str(c).strip().lower() if c is not None else "" for c in cells]
        c2 = _columns(texts)
        if "service" in c2 and "count" in c2:
            head, col = texts, c2
            if "patient" in c2:
                ex.patient_identifiers += 1
            break
        _header_block(ex, cells, received)
    if head is None:
        ex.problems.append((name, "has no header row naming the service and the number claimed "
                                  "(for example: Service, Month, Number). Use the claim form."))
        return
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
        return
    for cells, r, times in items:
        _table_line(ex, catalogue, received, name, col, cells, r, times)


def _table_line(ex, catalogue, received, name, col, cells, r, times):
    if not any(c not in (None, "") for c in cells):
        return
    get = lambda k: cells[col[k]] if k in col and col[k] < len(cells) else None  # noqa: E731
    label = str(get("service") or "").strip()
    if not label:
        if any(str(c).strip().lower().startswith("total") for c in cells if c is not None):
            ex.stated_total = money(get("total")) or ex.stated_total
        return
    if label.lower().startswith(("total", "declaration", "signed", "name of person")):
        if label.lower().startswith("total"):
            ex.stated_total = money(get("total")) or ex.stated_total
        else:
            _header_block(ex, cells, received)
        return
    if "patient" in col and get("patient") not in (None, ""):
        ex.patient_identifiers += times
    ex.patient_identifiers += nhs.count_in(" ".join(str(c) for c in cells if isinstance(c, str))) * times
    ods = get("ods")
    if ods:
        m = ODS_RE.search(str(ods).upper())
        if m:
            ex.practice_codes.add(m.group(1))
    service = catalogue.identify(label)
    snomed = get("snomed")
    if service is None and snomed not in (None, ""):
        service = catalogue.identify(str(snomed).split(".")[0])
    month_val = get("month")
    count_val = get("count")
    ex.lines.append(RawLine(
        label, service, "" if month_val is None else str(month_val),
        parse_month(month_val, received) if month_val not in (None, "") else None,
        "" if count_val is None else _num_text(count_val), f"{name} row {r}",
        "" if get("price") is None else _num_text(get("price")),
        "" if get("total") is None else _num_text(get("total")), times))


def _num_text(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _header_block(ex: Extracted, cells, received):
    texts = [c for c in cells if c not in (None, "")]
    if len(texts) < 2:
        return
    label = str(texts[0]).strip().lower()
    value = texts[1]
    if PRACTICE_LABEL.search(label):
        m = ODS_RE.search(str(value).upper())
        if m:
            ex.practice_codes.add(m.group(1))
    elif MONTH_LABEL.search(label):
        ex.default_month = parse_month(value, received) or ex.default_month
    elif re.search(r"completed by|claimed by|name of person|declaration.*name|signed", label):
        ex.claimed_by = ex.claimed_by or str(value).strip()


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
            _rows_to_lines(sub, ws.iter_rows(values_only=True), catalogue, received, f"{name} sheet '{ws.title}'")
            if sub.lines or not any("no header row" in p for _, p in sub.problems):
                found = True
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
    into.patient_identifiers += other.patient_identifiers
    into.problems += other.problems
