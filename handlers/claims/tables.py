"""Claim lines in a CSV or an XLSX (lesbot's own claim form included)."""
from __future__ import annotations

import csv
import io
import re
from collections import Counter
from datetime import date, datetime

from bot.mail.parse import decode_bytes
from handlers.claims.extracted import Extracted, RawLine, merge
from handlers.claims.wording import ODS_RE, columns, is_total, label_re, money, month_columns, num_text
from handlers.contract import nhs
from handlers.contract.catalogue import Catalogue
from handlers.contract.periods import parse_month
from handlers.contract.reading import services as rsvc

MAX_ROWS = 100_000
MAX_COLUMNS = 60       # a claim sheet: a service column, months or counts; never thousands


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
        c2 = columns(texts)
        if "patient" in c2 and "service" in c2 and "count" in c2:
            ex.patient_identifiers += 1      # a claim table with a patient column: counted, never kept
        elif "patient" in c2 and ("service" in c2 or "count" in c2 or "month" in c2 or len(c2) >= 2):
            ex.patient_identifiers += 1 + sum(1 for row2 in rows if any(v not in (None, "") for v in row2))
            ex.notes.append(f"{name} lists patients; it was not read as claim lines.")
            return "patients"
        if "service" in c2 and "count" in c2:
            head, col = texts, c2
            break
        mc = month_columns(cells, received)
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
    if is_total(label) or label.lower().startswith("total"):
        return
    codes = rsvc.finder(catalogue).codes(label) or rsvc.finder(catalogue).codes(head[0])
    code = codes[0] if codes else None
    for idx, span in month_cols:
        v = cells[idx] if idx < len(cells) else None
        if v in (None, ""):
            continue
        text = num_text(v)
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
    if is_total(label) or low.startswith(("total", "declaration")) or label_re("claimed_by").match(label):
        if is_total(label) or low.startswith("total"):
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
        "" if count_val is None else num_text(count_val), f"{name} row {r}",
        "" if get("price") is None else num_text(get("price")),
        "" if get("total") is None else num_text(get("total")), times,
        month_how="month given on the row" if month_val not in (None, "") else "", other=code == "other"))


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
    if label_re("practice").search(label):
        m = ODS_RE.search(str(value).upper())
        if m:
            ex.practice_codes.add(m.group(1))
    elif label_re("month").match(label) and len(label.split()) <= 5:
        d = parse_month(value, received)
        if d and not ex.default_month:
            ex.default_month = d
            ex.default_month_how = f"month taken from '{first.rstrip(':')}: " + \
                (f"{value:%B %Y}" if isinstance(value, (date, datetime)) else str(value)) + "'"
    elif label_re("claimed_by").match(label):
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
