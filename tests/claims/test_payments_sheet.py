"""The payment schedule as a finance officer gets it: an XLSX with a Summary sheet and a sheet per
run, £ formats, totals as formulas that also carry their values, and a CSV that never runs a formula.
The LibreOffice test renders the workbook to PDF and PNG, as a person would see it printed."""
from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
from datetime import datetime
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from handlers.contract.catalogue import load
from conftest import DATA, at, make_msg, run_cli

LONDON = ZoneInfo("Europe/London")
HEADER = ["Practice", "ODS code", "Service", "Activity months", "Claims", "Tariff", "Amount", "References"]


@pytest.fixture
def runs(bot, home):
    """Runs 2026-10 and 2026-11 from the six sample claims, and one more claim for November."""
    for path in sorted(DATA.glob("0[1-6]-*.eml")):
        assert bot.ingest(path)["kind"] == "claim"
    r = bot.ingest(make_msg(subject="LES claim", body="Month: October 2026\nDenosumab injections: 10\n"
                                                      "MSK no injection consultations: 2\n"),
                   received_at=at(2026, 11, 3, 9))
    assert r["outcome"] == "accepted", r
    return bot


def db_totals(bot, run):
    """What the run pays, straight from the claims table: per practice, per service, in pence."""
    q = "SELECT {k}, sum(count), sum(amount_pence) FROM claims WHERE run=? AND state='accepted' GROUP BY {k}"
    practices = {r[0]: (r[1], r[2]) for r in bot.conn.execute(q.format(k="org_code"), (run,))}
    services = {r[0]: (r[1], r[2]) for r in bot.conn.execute(q.format(k="service"), (run,))}
    return practices, services


def export(home, tmp_path, *runs, name="run.xlsx"):
    out = tmp_path / name
    args = [a for r in runs for a in ("--run", r)]
    run_cli(home, "payments", "export", *args, "--format", "xlsx", "--out", str(out))
    return out


def table(ws, title):
    """{first cell: row values} of the Summary block under `title`, up to its Total row (included)."""
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    start = next(i for i, r in enumerate(rows) if r[0] == title) + 2
    end = next(i for i in range(start, len(rows)) if rows[i][0] == "Total")
    return {r[0]: r for r in rows[start:end + 1]}


def pence(pounds) -> int:
    return round(pounds * 100)


# -- the workbook --------------------------------------------------------------------------------
def test_run_sheet_is_laid_out_for_a_finance_officer(runs, home, tmp_path):
    path = export(home, tmp_path, "2026-10")
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["Summary", "Run 2026-10"]
    ws = wb["Run 2026-10"]
    assert [c.value for c in ws[1]] == HEADER
    assert all(c.font.b for c in ws[1])
    assert ws.freeze_panes == "A2"
    last = ws.max_row - 1                                  # the Total row is below the filter
    assert ws.auto_filter.ref == f"A1:H{last}"
    for r in range(2, last + 1):
        assert ws.cell(r, 6).number_format == ws.cell(r, 7).number_format == '"£"#,##0.00'
    assert ws.column_dimensions["C"].width >= 30 and ws.column_dimensions["A"].width >= 20
    # service names from the catalogue, never codes
    cat = load()
    codes = {r[0] for r in runs.conn.execute("SELECT DISTINCT service FROM claims WHERE run='2026-10'")}
    assert {ws.cell(r, 3).value for r in range(2, last + 1)} == {cat.get(c).name for c in codes}
    # totals: formulas over exactly the data rows, and readable without calculating
    assert ws.cell(ws.max_row, 1).value == "Total" and ws.cell(ws.max_row, 1).font.b
    assert ws.cell(ws.max_row, 5).value == f"=SUM(E2:E{last})"
    assert ws.cell(ws.max_row, 7).value == f"=SUM(G2:G{last})"
    values = openpyxl.load_workbook(path, data_only=True)["Run 2026-10"]
    practices, _ = db_totals(runs, "2026-10")
    assert pence(values.cell(ws.max_row, 7).value) == sum(p for _, p in practices.values())
    assert values.cell(ws.max_row, 5).value == sum(n for n, _ in practices.values())


def test_summary_totals_per_practice_and_service_match_the_claims(runs, home, tmp_path):
    run_cli(home, "payments", "close", "2026-10")
    path = export(home, tmp_path, "2026-10", "2026-11")
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["Summary", "Run 2026-10", "Run 2026-11"]
    assert wb.active.title == "Summary"
    formulas, values = wb["Summary"], openpyxl.load_workbook(path, data_only=True)["Summary"]
    cells = [[c for c in row if c is not None] for row in values.iter_rows(values_only=True)]
    assert ["Payment run", "October 2026"] == cells[1][:2] and cells[1][2].startswith("closed ")
    assert ["Payment run", "November 2026"] == cells[2][:2] and cells[2][2].startswith("open")
    generated = next(r[1] for r in cells if r and r[0] == "Generated (UK time)")
    assert abs((datetime.now(LONDON).replace(tzinfo=None) - generated).total_seconds()) < 300
    cat = load()
    oct_p, oct_s = db_totals(runs, "2026-10")
    nov_p, nov_s = db_totals(runs, "2026-11")
    by_practice = {row[1]: row for row in table(values, "By practice").values() if row[0] != "Total"}
    assert set(by_practice) == set(oct_p) | set(nov_p)
    for code, row in by_practice.items():
        _, _, claims, oct_amount, nov_amount, total = row[:6]
        assert pence(oct_amount) == oct_p.get(code, (0, 0))[1] and pence(nov_amount) == nov_p.get(code, (0, 0))[1]
        assert claims == oct_p.get(code, (0, 0))[0] + nov_p.get(code, (0, 0))[0]
        assert pence(total) == pence(oct_amount) + pence(nov_amount)
    by_service = table(values, "By service")
    for code in set(oct_s) | set(nov_s):
        row = by_service[cat.get(code).name]
        assert pence(row[5]) == oct_s.get(code, (0, 0))[1] + nov_s.get(code, (0, 0))[1]
    grand = sum(p for _, p in [*oct_p.values(), *nov_p.values()])
    assert pence(next(r[1] for r in cells if r and r[0] == "Grand total")) == grand
    assert pence(table(values, "By practice")["Total"][5]) == pence(by_service["Total"][5]) == grand
    # each of those is a formula over the run sheets, not a number typed in
    row = next(r for r in formulas.iter_rows() if r[1].value == "Z98101")
    assert row[3].value.startswith("=SUMIFS('Run 2026-10'!$G$2:") and row[5].value.startswith("=SUM(")
    assert next(r for r in formulas.iter_rows() if r[0].value == "Grand total")[1].value == \
        f"=SUM('Run 2026-10'!$G${wb['Run 2026-10'].max_row},'Run 2026-11'!$G${wb['Run 2026-11'].max_row})"


def test_an_empty_run_still_exports(runs, home, tmp_path):
    values = openpyxl.load_workbook(export(home, tmp_path, "2027-01"), data_only=True)
    ws = values["Run 2027-01"]
    assert ws["A2"].value == "No accepted claims in this run."
    assert (ws["A3"].value, ws["E3"].value, ws["G3"].value) == ("Total", 0, 0)
    out = run_cli(home, "payments", "export", "--run", "2027-01").stdout.lstrip("\ufeff").splitlines()
    assert out[1:] == ["Total,,,,,,0,,0.00,"]


def test_names_that_look_like_formulas_stay_text(runs, home, tmp_path):
    names = {"Z98101": "=1+2", "Z98102": "+44 1632 960", "Z98104": "-2", "Z98105": "@SUM(A1)", "Z98106": "\tTab"}
    for code, name in names.items():
        runs.conn.execute("UPDATE orgs SET name=? WHERE ods_code=?", (name, code))
    out = run_cli(home, "payments", "export", "--run", "2026-10", "--run", "2026-11").stdout
    rows = list(csv.reader(io.StringIO(out.lstrip("\ufeff"))))
    assert rows[0][:3] == ["Payment run", "Practice", "ODS code"]
    assert {r[2]: r[1] for r in rows[1:-1]} == {code: "'" + name for code, name in names.items()}
    wb = openpyxl.load_workbook(export(home, tmp_path, "2026-10", "2026-11"))
    for ws in wb:
        for row in ws.iter_rows():
            for c in row:
                if c.data_type == "f":      # the only formulas are lesbot's own sums
                    assert re.fullmatch(r"=(SUMIFS?\(.*\)\+?)+|=SUM\(.*\)", c.value), c.value
    shown = {r[1].value: r[0] for r in wb["Run 2026-10"].iter_rows(min_row=2) if r[1].value in names}
    assert {code: (c.value, c.data_type) for code, c in shown.items()} == \
        {code: (names[code], "s") for code in shown}


def test_a_service_name_sumifs_would_misread_is_summed_here(runs, tmp_path):
    """SUMIFS reads * and ? in its criterion as wildcards: such a name gets its figure, not a formula."""
    from handlers.claims.payments import export_xlsx
    mine = tmp_path / "les.toml"
    mine.write_text('[[service]]\ncode = "denosumab"\nname = "Denosumab* injections?"\nunit = "injection"\n'
                    'words = ["denosumab"]\n[[service.tariff]]\nfrom = 2020-04-01\npounds = "20.00"\n')
    data = export_xlsx(runs.conn, "2026-10", load(str(mine)))
    formulas = openpyxl.load_workbook(io.BytesIO(data))["Summary"]
    values = openpyxl.load_workbook(io.BytesIO(data), data_only=True)["Summary"]
    row = next(r for r in formulas.iter_rows() if r[0].value == "Denosumab* injections?")
    assert not any(isinstance(c.value, str) and "SUMIFS" in c.value for c in row[1:])
    _, services = db_totals(runs, "2026-10")
    assert pence(table(values, "By service")["Denosumab* injections?"][3]) == services["denosumab"][1]
    assert pence(table(values, "By service")["Total"][3]) == sum(p for _, p in services.values())


def test_safe_cell_neutralises_every_formula_start():
    from handlers.claims.payments import safe_cell
    for lead in ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20"):
        assert safe_cell(lead + "cmd|' /C calc'!A0") == "'" + lead + "cmd|' /C calc'!A0"
    assert safe_cell("Meresfield Medical Centre") == "Meresfield Medical Centre"
    assert safe_cell(12) == 12


def test_cached_values_are_what_the_formulas_compute():
    """A formula the evaluator cannot read is refused, never given a made-up value."""
    from openpyxl import Workbook
    from handlers.claims import sheets
    wb = Workbook()
    a = wb.active
    a.title = "Run A"
    for row in (["k", 1.1], ["j", 2.2], ["K", 3.3]):
        a.append(row)
    s = wb.create_sheet("S")
    s["A1"] = "k"
    s["B1"] = "=SUMIFS('Run A'!$B$1:$B$3,'Run A'!$A$1:$A$3,A1)+1"
    s["B2"] = "=SUM('Run A'!B1:B3,B1)"
    loaded = openpyxl.load_workbook(io.BytesIO(sheets.save_with_values(wb)), data_only=True)
    assert loaded["S"]["B1"].value == 5.4 and loaded["S"]["B2"].value == 12.0
    s["B3"] = "=AVERAGE(B1:B2)"
    with pytest.raises(sheets.FormulaError):
        sheets.save_with_values(wb)
    assert not sheets.criterion_is_plain("Spirometry*") and not sheets.criterion_is_plain(">5")
    assert sheets.criterion_is_plain("Complex injections (denosumab 60 mg)")


# -- rendered by LibreOffice ------------------------------------------------------------------------
def _tools():
    missing = [t for t in ("soffice", "pdftoppm", "pdftotext") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (apt: libreoffice-calc, poppler-utils)")


def _pdf_text(pdf) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True, timeout=60).stdout


def test_libreoffice_renders_the_sheet(runs, home, tmp_path):
    _tools()
    from PIL import Image
    path = export(home, tmp_path, "2026-10", name="schedule.xlsx")
    # The same workbook without cached values (openpyxl drops them on save): LibreOffice must
    # calculate every formula itself, so its figures check the cached ones.
    openpyxl.load_workbook(path).save(tmp_path / "recalculated.xlsx")
    outdir, profile = tmp_path / "pdf", tmp_path / "lo-profile"
    subprocess.run(["soffice", f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to", "pdf",
                    "--outdir", str(outdir), str(path), str(tmp_path / "recalculated.xlsx")],
                   capture_output=True, timeout=180, check=True)
    text, recalculated = _pdf_text(outdir / "schedule.pdf"), _pdf_text(outdir / "recalculated.pdf")
    practices, _ = db_totals(runs, "2026-10")
    names = [r[0] for r in runs.conn.execute(
        f"SELECT name FROM orgs WHERE ods_code IN ({','.join('?' * len(practices))})", list(practices))]
    for name in names:
        assert name in text
    total = sum(p for _, p in practices.values())
    assert f"£{total / 100:,.2f}" in text and "Grand total" in text and "October 2026" in text
    assert "£43.47" in text and "£20.00" in text           # the tariffs, in £
    money = re.compile(r"£[\d,]+\.\d\d")
    assert money.findall(text) == money.findall(recalculated)
    assert len(money.findall(text)) > 10
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", str(outdir / "schedule.pdf"),
                    str(outdir / "page")], check=True, timeout=60)
    png = next(outdir.glob("page*.png"))
    assert png.stat().st_size > 5_000
    with Image.open(png) as im:
        grey = im.convert("L")
        width, height = grey.size
        ink = sum(grey.histogram()[:128]) / (width * height)
    assert width > height                                   # landscape, as set for printing
    assert 0.002 < ink < 0.3, ink                           # text on the page, not blank, not black
