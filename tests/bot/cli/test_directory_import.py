"""`lesbot directory import` takes the directory as people keep it: an XLSX, a CSV saved by Excel on
Windows (Windows-1252, or UTF-8 with a BOM), Excel's "Unicode Text". A bad file ends in one line naming
the file and the problem, exit 1, no traceback, and nothing imported."""
from __future__ import annotations

import io
import json
import zipfile

import openpyxl
import pytest
from click.testing import CliRunner

from bot.cli.main import main
from conftest import DATA, INBOX

HEAD = ["ods_code", "name", "kind", "emails", "services"]
ROWS = [
    ["Z98101", "Meresfield Medical Centre", "practice", "priya.raghunathan3@nhs.net", "denosumab;msk-injection"],
    ["Z98107", "Ashdown Vale Surgery – Sainte-Hélène branch", "practice", "helene.branch@nhs.net", "denosumab"],
    ["Z98108", "St Bride’s Practice", "practice", "st.brides@nhs.net;manager.stbrides@nhs.net", "msk-injection"],
]


def lesbot(home, *args):
    r = CliRunner().invoke(main, list(args), env={"LESBOT_HOME": str(home), "LESBOT_INBOX": INBOX,
                                                  "LESBOT_CONFIG": None})
    if r.exception and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r


def orgs(home) -> dict:
    r = lesbot(home, "directory", "list", "--json")
    return {o["ods_code"]: o for o in map(json.loads, r.stdout.splitlines())}


def csv_text(rows, head=HEAD, newline="\r\n") -> str:
    return newline.join(",".join(f'"{c}"' if "," in c else c for c in row) for row in [head, *rows]) + newline


def xlsx(rows, head=HEAD, above=(), sheet_first=None) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    if sheet_first is not None:
        ws.title = "Notes"
        ws.append([sheet_first])
        ws = wb.create_sheet("Directory")
        wb.move_sheet(ws, -1)           # the directory is now the first sheet
    for line in above:
        ws.append(line)
    ws.append(head)
    for row in rows:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def assert_imported(home, r):
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip() == "3 added, 0 updated"
    got = orgs(home)
    assert got["Z98107"]["name"] == "Ashdown Vale Surgery – Sainte-Hélène branch"
    assert got["Z98108"]["name"] == "St Bride’s Practice"
    assert got["Z98108"]["emails"] == ["manager.stbrides@nhs.net", "st.brides@nhs.net"]
    assert got["Z98101"]["services"] == ["denosumab", "msk-injection"]


# -- files that are good --------------------------------------------------------------------------
def test_csv_saved_by_excel_on_windows(home, tmp_path):
    rows = [[c.replace("–", "-") for c in r] for r in ROWS]       # an en dash is in cp1252 too, but keep it plain
    path = tmp_path / "directory.csv"
    path.write_bytes(csv_text(rows).encode("cp1252"))
    assert b"\x92" in path.read_bytes() and b"\xe9" in path.read_bytes()   # ’ and é as Windows writes them
    r = lesbot(home, "directory", "import", str(path))
    assert r.exit_code == 0, r.stderr
    got = orgs(home)
    assert got["Z98108"]["name"] == "St Bride’s Practice"
    assert got["Z98107"]["name"] == "Ashdown Vale Surgery - Sainte-Hélène branch"


def test_csv_utf8_with_bom_is_not_read_as_windows_1252(home, tmp_path):
    path = tmp_path / "directory.csv"
    path.write_bytes(csv_text(ROWS).encode("utf-8-sig"))
    assert_imported(home, lesbot(home, "directory", "import", str(path)))


def test_excel_unicode_text_is_read(home, tmp_path):
    path = tmp_path / "directory.txt"
    path.write_bytes("\r\n".join("\t".join(r) for r in [HEAD, *ROWS]).encode("utf-16"))
    assert_imported(home, lesbot(home, "directory", "import", str(path)))


def test_xlsx_first_sheet_with_a_title_row_and_human_headers(home, tmp_path):
    path = tmp_path / "Directory 2026.xlsx"
    head = ["ODS code", "Name", "Kind", "Emails", "Services", "Postcodes"]
    rows = [[*r, "am3 8pa"] for r in ROWS[:2]] + [[None] * 6] + [[*ROWS[2], None]]
    path.write_bytes(xlsx(rows, head=head, above=[["LES directory, October 2026"], []]))
    assert_imported(home, lesbot(home, "directory", "import", str(path)))


def test_xlsx_reimport_updates(home, tmp_path):
    path = tmp_path / "d.xlsx"
    path.write_bytes(xlsx(ROWS))
    assert lesbot(home, "directory", "import", str(path)).stdout.strip() == "3 added, 0 updated"
    path.write_bytes(xlsx([[*ROWS[0][:1], "Meresfield MC", *ROWS[0][2:]]]))
    assert lesbot(home, "directory", "import", str(path)).stdout.strip() == "0 added, 1 updated"
    assert orgs(home)["Z98101"]["name"] == "Meresfield MC"


# -- files that are not ------------------------------------------------------------------------------
def _docx_like() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("word/document.xml", "<w:document/>")
    return buf.getvalue()


def _damaged_xlsx() -> bytes:
    good = xlsx(ROWS)
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as src, zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, data[: len(data) // 2] if info.filename.startswith("xl/worksheets/") else data)
    return buf.getvalue()


BAD = {
    "empty.csv": (b"", "the file is empty"),
    "blank.csv": (b"\r\n , ,\r\n", "the file is empty"),
    "header-only.csv": (csv_text([]).encode(), "no organisations below the header row"),
    "missing.csv": (b"ods_code,name,kind\r\nZ98101,X,practice\r\n", "no column emails, services"),
    "claim.csv": (b"Activity,Month,Number\r\nDenosumab,Oct-26,1\r\n", "no header row naming the columns"),
    "undecodable.csv": (csv_text([["Z98101", "Caf\x81", "practice", "a@nhs.net", "x"]]).encode("latin-1"),
                        "neither UTF-8 nor Windows-1252"),
    "binary.csv": (b"\x00\x01\x02\x03 not text", "not a text file"),
    "report.pdf": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "is a PDF"),
    "old.xls": (bytes.fromhex("d0cf11e0a1b11ae1") + b"\x00" * 64, "old Excel .xls workbook or a password"),
    "letter.docx": (_docx_like(), "is a Word document"),
    "truncated.xlsx": (xlsx(ROWS)[:300], "damaged zip or XLSX"),
    "damaged.xlsx": (_damaged_xlsx(), "cannot read it as an XLSX workbook"),
    "missing.xlsx": (xlsx([r[:3] for r in ROWS], head=HEAD[:3]), "no column emails, services"),
    "bad-rows.xlsx": (xlsx([ROWS[0], ["Z9", "X", "surgery", "nope", ""], ROWS[0]], above=[["Title"]]),
                      "row 4: 'Z9' is not an ODS code; row 4: kind must be one of"),
    "two-rows-one-code.csv": (csv_text([ROWS[0], ROWS[1], ROWS[0]]).encode(), "line 4: Z98101 is already on line 2"),
}


@pytest.mark.parametrize("name", BAD)
def test_a_bad_file_is_one_line_naming_it(home, tmp_path, name):
    data, problem = BAD[name]
    path = tmp_path / name
    path.write_bytes(data)
    r = lesbot(home, "directory", "import", str(path))
    assert r.exit_code == 1, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {path}: "), r.stderr
    assert problem in lines[0]
    assert "Traceback" not in r.stderr + r.stdout
    assert orgs(home) == {}                 # nothing imported, not even the good rows


def test_many_bad_rows_stay_one_line(home, tmp_path):
    path = tmp_path / "d.csv"
    path.write_text(csv_text([[f"Z-{n}", "X", "surgery", "nope", ""] for n in range(40)]))
    r = lesbot(home, "directory", "import", str(path))
    assert r.exit_code == 1 and len(r.stderr.strip().splitlines()) == 1
    assert "line 2:" in r.stderr and "and 110 more; nothing was imported" in r.stderr


def test_a_missing_file_or_a_folder(home, tmp_path):
    for path, problem in ((tmp_path / "nowhere.csv", "no such file"), (tmp_path, "is a folder")):
        r = lesbot(home, "directory", "import", str(path))
        assert r.exit_code == 1 and r.stderr.strip() == f"Error: {path}: {problem}" + (
            ", not a file" if path == tmp_path else "")


def test_the_shipped_test_directory_still_imports(home):
    r = lesbot(home, "directory", "import", str(DATA / "directory.csv"))
    assert r.stdout.strip() == "9 added, 0 updated"
