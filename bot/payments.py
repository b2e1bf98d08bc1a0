"""Payment runs: which month's run a claim joins, closing a run, exporting it."""
from __future__ import annotations

import csv
import io
import re
from datetime import datetime

from bot.periods import add_months, london, month_start
from store.db import audit, utcnow

RUN_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def is_closed(conn, run: str) -> bool:
    return conn.execute("SELECT 1 FROM payment_runs WHERE run=? AND closed_at IS NOT NULL", (run,)).fetchone() \
        is not None


def run_for(conn, received: datetime, submission_day: int) -> tuple[str, str]:
    """(run YYYY-MM, why) for a claim received at `received`."""
    local = london(received)
    this = month_start(local.date())
    if local.day <= submission_day:
        run, why = this, f"it was received by the {_nth(submission_day)} of {this:%B %Y}"
    else:
        run = add_months(this, 1)
        why = (f"it was received after the {_nth(submission_day)} of {this:%B %Y} "
               f"({local:%-d %B, %H:%M}), so it joins the next run")
    key = f"{run:%Y-%m}"
    while is_closed(conn, key):
        run = add_months(run, 1)
        key = f"{run:%Y-%m}"
        why += "; the earlier run is already closed"
    return key, why


def _nth(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def close(conn, run: str, actor: str) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        if is_closed(conn, run):
            raise ValueError(f"payment run {run} is already closed")
        conn.execute("INSERT INTO payment_runs (run, closed_at, closed_by) VALUES (?,?,?) "
                     "ON CONFLICT(run) DO UPDATE SET closed_at=excluded.closed_at, closed_by=excluded.closed_by",
                     (run, utcnow(), actor))
        audit(conn, "payment_run", run, "closed", actor)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def safe_cell(value):
    """Spreadsheet-safe: a text cell never starts a formula (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def schedule(conn, run: str) -> tuple[list[list], list]:
    """Rows per practice and service: counts, tariff, amount, claim references; and a totals row."""
    rows = conn.execute(
        "SELECT c.org_code, o.name, c.service, c.tariff_pence, sum(c.count) AS n, sum(c.amount_pence) AS pence, "
        "group_concat(DISTINCT c.month) AS months, group_concat(DISTINCT c.case_id) AS cases "
        "FROM claims c LEFT JOIN orgs o ON o.ods_code=c.org_code WHERE c.run=? AND c.state='accepted' "
        "GROUP BY c.org_code, c.service, c.tariff_pence ORDER BY c.org_code, c.service, c.tariff_pence",
        (run,)).fetchall()
    out = []
    for r in rows:
        refs = ";".join(f"LES-{int(x):06d}" for x in sorted(set((r["cases"] or "").split(","))) if x)
        out.append([r["org_code"], r["name"] or "", r["service"], ";".join(sorted((r["months"] or "").split(","))),
                    r["n"], f"{r['tariff_pence'] / 100:.2f}", f"{r['pence'] / 100:.2f}", refs])
    total = ["TOTAL", "", "", "", sum(r["n"] for r in rows), "",
             f"{sum(r['pence'] for r in rows) / 100:.2f}", ""]
    return out, total


HEADER = ["ods_code", "practice", "service", "activity_months", "count", "tariff_gbp", "amount_gbp", "references"]


def export_csv(conn, run: str) -> bytes:
    rows, total = schedule(conn, run)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(HEADER)
    for r in rows + [total]:
        w.writerow([safe_cell(v) for v in r])
    return buf.getvalue().encode("utf-8-sig")


def export_xlsx(conn, run: str) -> bytes:
    from openpyxl import Workbook
    rows, total = schedule(conn, run)
    wb = Workbook()
    ws = wb.active
    ws.title = f"Payment run {run}"
    ws.append(HEADER)
    for r in rows + [total]:
        cells = list(r)
        cells[4] = int(cells[4])
        cells[5] = float(cells[5]) if cells[5] else None
        cells[6] = float(cells[6])
        ws.append(cells)
    for row in ws.iter_rows(min_row=2):
        for c in row:
            if c.data_type == "f":
                c.data_type = "s"   # text that looks like a formula stays text
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
