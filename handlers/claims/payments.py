"""Payment runs: which month's run a claim joins, closing a run, exporting it."""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone

from handlers.contract.catalogue import Service
from handlers.contract.periods import add_months, london, month_start
from handlers.contract.references import reference
from store import payments as runs_store
from store.payments import is_closed
from store.db import audit, transaction, utcnow

RUN_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
# The catalogue's submission day for a service that does not set its own
DEFAULT_SUBMISSION_DAY = Service.model_fields["submission_day"].default


def submission_day(catalogue, codes=()) -> int:
    """The day of the month by which claims for these services must arrive to join that month's run:
    the earliest of theirs, or the catalogue's default when there are none."""
    return min((catalogue.get(code).submission_day for code in codes), default=DEFAULT_SUBMISSION_DAY)


def run_for(conn, received: datetime, submission_day: int) -> tuple[str, str]:
    """(run YYYY-MM, why) for a claim received at `received`."""
    local = london(received)
    this = month_start(local.date())
    if local.day <= submission_day:
        run, why = this, f"it was received by the {nth(submission_day)} of {this:%B %Y}"
    else:
        run = add_months(this, 1)
        why = (f"it was received after the {nth(submission_day)} of {this:%B %Y} "
               f"({local:%-d %B, %H:%M}), so it joins the next run")
    key = f"{run:%Y-%m}"
    while is_closed(conn, key):
        run = add_months(run, 1)
        key = f"{run:%Y-%m}"
        why += "; the earlier run is already closed"
    return key, why


def nth(n: int) -> str:
    """A day of the month as a reply names it: 1st, 2nd, 22nd, 11th."""
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def close(conn, run: str, actor: str) -> None:
    with transaction(conn):
        if is_closed(conn, run):
            raise ValueError(f"payment run {run} is already closed")
        runs_store.mark_closed(conn, run, utcnow(), actor)
        audit(conn, "payment_run", run, "closed", actor)


# -- the schedule: what a run pays, per practice and service --------------------------------
# Characters that make Excel, LibreOffice or Sheets read a CSV cell as a formula (OWASP's
# list, plus the full-width forms some locales also accept).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def safe_cell(value):
    """Spreadsheet-safe: a text cell never starts a formula (CSV injection)."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


@dataclass
class Line:
    """One row of a run's schedule: a practice's accepted claims for one service at one tariff."""
    run: str
    ods_code: str
    practice: str
    service_code: str
    service: str            # the catalogue's name for it
    months: list[str]       # activity months, YYYY-MM
    claims: int
    tariff_pence: int
    amount_pence: int
    refs: list[str]         # LES-nnnnnn


def lines(conn, run: str, catalogue=None) -> list[Line]:
    """The run's accepted claims, per practice, service and tariff; by practice name, then service."""
    if catalogue is None:
        from handlers.contract.catalogue import load
        catalogue = load()
    rows = runs_store.schedule_rows(conn, run)
    out = []
    for r in rows:
        svc = catalogue.get(r["service"])       # a service since dropped from the catalogue keeps its code
        cases = sorted({int(x) for x in (r["cases"] or "").split(",") if x})
        out.append(Line(run, r["org_code"], r["name"] or "", r["service"], svc.name if svc else r["service"],
                        sorted(m for m in (r["months"] or "").split(",") if m), r["n"], r["tariff_pence"],
                        r["pence"], [reference(x) for x in cases]))
    return sorted(out, key=lambda x: (x.practice.casefold(), x.ods_code, x.service.casefold(), x.tariff_pence))


def _runs(runs) -> list[str]:
    return [runs] if isinstance(runs, str) else list(dict.fromkeys(runs))


def _pounds(pence: int) -> str:
    return f"{pence / 100:.2f}"


CSV_HEADER = ["Payment run", "Practice", "ODS code", "Service", "Service code", "Activity months", "Claims",
              "Tariff (£)", "Amount (£)", "References"]


def export_csv(conn, runs, catalogue=None) -> bytes:
    """The schedule as CSV (UTF-8 with a BOM, so Excel shows £ right), a Total row last."""
    all_lines = [x for run in _runs(runs) for x in lines(conn, run, catalogue)]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_HEADER)
    for x in all_lines:
        w.writerow([safe_cell(v) for v in (
            x.run, x.practice, x.ods_code, x.service, x.service_code, ";".join(x.months), x.claims,
            _pounds(x.tariff_pence), _pounds(x.amount_pence), ";".join(x.refs))])
    w.writerow(["Total", "", "", "", "", "", sum(x.claims for x in all_lines), "",
                _pounds(sum(x.amount_pence for x in all_lines)), ""])
    return buf.getvalue().encode("utf-8-sig")


# -- the finance officer's workbook ----------------------------------------------------------
SHEET_HEADER = ["Practice", "ODS code", "Service", "Activity months", "Claims", "Tariff", "Amount", "References"]
# columns of a run sheet, as letters, for the Summary's formulas
_ODS, _SVC, _CLAIMS, _AMOUNT = "B", "C", "E", "G"


def run_label(run: str) -> str:
    return f"{date(int(run[:4]), int(run[5:]), 1):%B %Y}"


def run_status(conn, run: str) -> str:
    r = runs_store.run_closed(conn, run)
    if r is None:
        return "open: claims may still join this run"
    when = london(datetime.fromisoformat(r["closed_at"]))
    return f"closed {when:%-d %b %Y %H:%M}" + (f" by {r['closed_by']}" if r["closed_by"] else "")


def export_xlsx(conn, runs, catalogue=None, now: datetime | None = None) -> bytes:
    """A Summary sheet, then one sheet per run; totals are formulas that also carry their values."""
    from openpyxl import Workbook
    from handlers.claims import sheets
    runs = _runs(runs)
    now = now or datetime.now(timezone.utc)
    wb = Workbook()
    summary = wb.active
    summary.title = "Summary"
    per_run = {run: lines(conn, run, catalogue) for run in runs}
    totals = {run: _run_sheet(wb.create_sheet(f"Run {run}"), per_run[run]) for run in runs}
    _summary_sheet(conn, summary, per_run, totals, london(now).replace(tzinfo=None))
    wb.properties.title = f"LES payment schedule {', '.join(runs)}"
    wb.properties.creator = "lesbot"
    wb.active = 0
    return sheets.save_with_values(wb)


def _run_sheet(ws, rows: list[Line]) -> dict:
    """Header, one row per line, a Total row of formulas. Returns where the data and totals are."""
    from handlers.claims import sheets
    sheets.header(ws, 1, SHEET_HEADER, right=(5, 6, 7))
    ws["H1"].alignment = sheets.WRAP_TOP_INDENT
    r = 1
    for r, x in enumerate(rows, start=2):
        sheets.put_text(ws, r, 1, x.practice or "(not in the directory)")
        sheets.put_text(ws, r, 2, x.ods_code)
        sheets.put_text(ws, r, 3, x.service)
        sheets.put_text(ws, r, 4, ", ".join(f"{date(int(m[:4]), int(m[5:]), 1):%b %Y}" for m in x.months))
        ws.cell(r, 5, x.claims).number_format = sheets.COUNT
        ws.cell(r, 6, x.tariff_pence / 100).number_format = sheets.MONEY
        ws.cell(r, 7, x.amount_pence / 100).number_format = sheets.MONEY
        sheets.put_text(ws, r, 8, ", ".join(x.refs))
        for col in range(1, 9):
            ws.cell(r, col).alignment = sheets.WRAP_TOP if col in (1, 3, 4) else sheets.TOP
        ws.cell(r, 8).alignment = sheets.WRAP_TOP_INDENT
    last = r
    if not rows:
        ws.cell(2, 1, "No accepted claims in this run.").font = sheets.ITALIC
        last = 2
    total = last + 1
    ws.cell(total, 1, "Total")
    for col in (_CLAIMS, _AMOUNT):
        ws[f"{col}{total}"] = f"=SUM({col}2:{col}{last})" if rows else 0
    ws[f"{_CLAIMS}{total}"].number_format = sheets.COUNT
    ws[f"{_AMOUNT}{total}"].number_format = sheets.MONEY
    for col in range(1, 9):
        ws.cell(total, col).font, ws.cell(total, col).border = sheets.BOLD, sheets.TOP_LINE
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:H{last if rows else 1}"     # the Total row stays out of sorting and filters
    sheets.fit_columns(ws, maximum=45)
    sheets.fit_rows(ws)
    sheets.print_wide(ws, "1:1")
    return {"first": 2, "last": last if rows else None, "total": total}


def _summary_sheet(conn, ws, per_run: dict[str, list[Line]], totals: dict[str, dict], generated: datetime):
    from handlers.claims import sheets
    runs = list(per_run)
    ws["A1"] = "LES payment schedule"
    ws["A1"].font = sheets.TITLE
    r = 2
    for run in runs:
        ws.cell(r, 1, "Payment run").font = sheets.BOLD
        ws.cell(r, 2, run_label(run))
        ws.cell(r, 3, run_status(conn, run))
        r += 1
    ws.cell(r, 1, "Generated (UK time)").font = sheets.BOLD
    ws.cell(r, 2, generated.replace(microsecond=0)).number_format = sheets.WHEN
    ws.cell(r, 2).alignment = sheets.Alignment(horizontal="left")
    r += 1
    ws.cell(r, 1, "Grand total").font = sheets.BOLD
    grand = ws.cell(r, 2, "=SUM(" + ",".join(f"{_sheet_ref(run)}${_AMOUNT}${totals[run]['total']}"
                                             for run in runs) + ")")
    grand.number_format, grand.font = sheets.MONEY, sheets.BOLD
    grand.alignment = sheets.Alignment(horizontal="left")
    amount_heads = ["Amount"] if len(runs) == 1 else [*(f"{date(int(x[:4]), int(x[5:]), 1):%b %Y}" for x in runs),
                                                      "Total"]
    practices, services = {}, {}
    for run in runs:
        for x in per_run[run]:
            practices.setdefault(x.ods_code, x.practice or "(not in the directory)")
            services.setdefault(x.service.casefold(), x.service)   # SUMIFS ignores case: so do we
    r = _summary_table(ws, r + 2, "By practice", ["Practice", "ODS code", "Claims", *amount_heads],
                       [(name, code) for code, name in sorted(practices.items(), key=lambda p: (p[1].casefold(), p[0]))],
                       _ODS, per_run, totals)
    _summary_table(ws, r + 2, "By service", ["Service", "", "Claims", *amount_heads],
                   [(name, None) for name in sorted(services.values(), key=str.casefold)], _SVC, per_run, totals)
    sheets.fit_columns(ws, maximum=50, fixed={"A": 50, "B": 18, "C": 12})
    sheets.fit_rows(ws)
    sheets.print_wide(ws)


def _sheet_ref(run: str) -> str:
    return f"'Run {run}'!"


def _summary_table(ws, top: int, title: str, head: list[str], keys: list[tuple], key_col: str,
                   per_run: dict[str, list[Line]], totals: dict[str, dict]) -> int:
    """Rows of (name, ODS code or None): claims and amount per run (+ a total), each a SUMIFS over the
    run sheets matching the ODS code (key_col B) or the service name (key_col C); then a Total row."""
    from handlers.claims import sheets
    runs = list(per_run)
    ws.cell(top, 1, title).font = sheets.SUBTITLE
    sheets.header(ws, top + 1, head, right=tuple(range(3, len(head) + 1)))
    r = top + 1
    for r, (name, code) in enumerate(keys, start=top + 2):
        sheets.put_text(ws, r, 1, name).alignment = sheets.WRAP_TOP
        if code is not None:
            sheets.put_text(ws, r, 2, code)
        key_cell, key = (f"B{r}", code) if key_col == _ODS else (f"A{r}", name)

        def matching(run):
            return [x for x in per_run[run] if (x.ods_code if key_col == _ODS else x.service).casefold()
                    == key.casefold()]
        claims = [_sumifs(run, _CLAIMS, key_col, key_cell, key, totals, sum(x.claims for x in matching(run)))
                  for run in runs]
        ws.cell(r, 3, _formula(claims)).number_format = sheets.COUNT
        for i, run in enumerate(runs):
            amount = _sumifs(run, _AMOUNT, key_col, key_cell, key, totals,
                             sum(x.amount_pence for x in matching(run)) / 100)
            ws.cell(r, 4 + i, _formula([amount])).number_format = sheets.MONEY
        if len(runs) > 1:
            ws.cell(r, 4 + len(runs), f"=SUM(D{r}:{_col(3 + len(runs))}{r})").number_format = sheets.MONEY
    first, last, total = top + 2, r, r + 1
    ws.cell(total, 1, "Total")
    for col in range(3, len(head) + 1):
        letter = _col(col)
        c = ws.cell(total, col, f"=SUM({letter}{first}:{letter}{last})" if keys else 0)
        c.number_format = sheets.COUNT if col == 3 else sheets.MONEY
    for col in range(1, len(head) + 1):
        ws.cell(total, col).font, ws.cell(total, col).border = sheets.BOLD, sheets.TOP_LINE
    return total


def _formula(terms: list):
    """`=a+b` of the SUMIFS terms; numbers (a run with no rows) are added here, and a cell with
    no SUMIFS at all is just the number."""
    numbers = [t for t in terms if not isinstance(t, str)]
    formulas = [t for t in terms if isinstance(t, str)]
    if not formulas:
        return sum(numbers)
    if any(numbers):
        formulas.append(repr(round(sum(numbers), 2)))
    return "=" + "+".join(formulas)


def _col(n: int) -> str:
    from openpyxl.utils import get_column_letter
    return get_column_letter(n)


def _sumifs(run: str, sum_col: str, key_col: str, key_cell: str, key, totals, literal):
    """A SUMIFS over one run sheet; the literal (summed here from the same lines) when the run has no
    rows, or when SUMIFS would read the key as a pattern (*, ?, ~, a leading comparison)."""
    from handlers.claims import sheets
    t = totals[run]
    if t["last"] is None or not sheets.criterion_is_plain(key):
        return literal
    ref = _sheet_ref(run)
    return (f"SUMIFS({ref}${sum_col}${t['first']}:${sum_col}${t['last']},"
            f"{ref}${key_col}${t['first']}:${key_col}${t['last']},{key_cell})")
