"""lesbot's own claim form (XLSX), pre-filled for one practice."""
from __future__ import annotations

import io
from datetime import date
from functools import lru_cache
from types import SimpleNamespace

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.worksheet.datavalidation import DataValidation

from handlers.claims.payments import nth, submission_day

HEADERS = ["Service", "SNOMED code", "Activity month", "Number", "Unit price (£)", "Total (£)"]


def build_form(org, catalogue, inbox: str, today: date, month: date | None = None) -> bytes:
    # Building a workbook costs ~20 ms; the form only changes with the practice,
    # its services, the catalogue and the month, so one per practice per month.
    return _build(org.ods_code, org.name, tuple(org.services), catalogue, inbox, today.replace(day=1), month)


@lru_cache(maxsize=512)
def _build(ods_code, org_name, services, catalogue, inbox, today, month) -> bytes:
    org = SimpleNamespace(ods_code=ods_code, name=org_name, services=services)
    wb = Workbook()
    ws = wb.active
    ws.title = "Claim"
    bold = Font(bold=True)
    ws.append(["Local Enhanced Services monthly claim form"])
    ws["A1"].font = Font(bold=True, size=14)
    # one form for all the practice's services: it gives the catalogue's default day
    ws.append([f"Email to {inbox} by the {nth(submission_day(catalogue))} of the month. Activity more than 3 "
               "months old is not paid. Counts only: no patient names or NHS numbers."])
    ws.append([])
    ws.append(["Practice name:", org.name])
    ws.append(["ODS code:", org.ods_code])
    ws.append(["Claim month:", month])
    ws.append(["Completed by:", None])
    ws.append(["Date completed:", None])
    ws.append([])
    ws.append(HEADERS)
    header_row = ws.max_row
    for cell in ws[header_row]:
        cell.font = bold
        cell.fill = PatternFill("solid", fgColor="DDE7F0")
    services = [catalogue.get(code) for code in org.services]
    first = header_row + 1
    for svc in [s for s in services if s is not None]:
        rate = svc.rate_on(month or today)
        r = ws.max_row + 1
        ws.append([svc.name, ", ".join(svc.snomed) or None, month, None, float(rate) if rate is not None else None,
                   f"=IF(D{r}=\"\",\"\",D{r}*E{r})"])
    last = ws.max_row
    ws.append(["Total", None, None, f"=SUM(D{first}:D{last})", None, f"=SUM(F{first}:F{last})"])
    ws.cell(ws.max_row, 1).font = bold
    ws.append([])
    ws.append(["Declaration: I confirm that the activity claimed above was provided in line with the service "
               "specification and that supporting records are available to the ICB on request."])
    ws.append(["Name of person claiming:", None])
    for row in ws.iter_rows(min_row=first, max_row=last, min_col=3, max_col=3):
        for c in row:
            c.number_format = "mmm yyyy"
    ws["B6"].number_format = "mmm yyyy"
    counts = DataValidation(type="whole", operator="between", formula1="0", formula2="100000",
                            showErrorMessage=True, error="A whole number of 0 or more")
    ws.add_data_validation(counts)
    if last >= first:      # a practice signed up for nothing gets the form with no service rows
        counts.add(f"D{first}:D{last}")
    for col, width in zip("ABCDEF", (60, 14, 16, 10, 15, 12)):
        ws.column_dimensions[col].width = width
    ws["A2"].alignment = Alignment(wrap_text=False)
    g = wb.create_sheet("Guidance")
    for line in ("How to complete this form",
                 "1. One row per service per month of activity. Copy a row for each earlier month you claim.",
                 "2. Activity month: the month the activity happened (e.g. Sep 2026).",
                 "3. Number: how many were provided that month. Leave blank what you are not claiming.",
                 "4. Do not include patient identifiable information on this form.",
                 *(f"- {s.name}: £{s.rate_on(today)} per {s.unit}" for s in services if s)):
        g.append([line])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
