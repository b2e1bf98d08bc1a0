"""The directory of organisations allowed to write, and their addresses."""
from __future__ import annotations

import csv
import io
import re
import sqlite3
from dataclasses import dataclass

from store.db import audit, transaction, utcnow

KINDS = {"practice", "hospital", "commissioner", "provider"}
ODS_RE = re.compile(r"^[A-Z0-9]{3,6}$")


@dataclass
class Org:
    ods_code: str
    name: str
    kind: str
    services: list[str]


class DirectoryError(ValueError):
    pass


def _split(value: str) -> list[str]:
    return [x.strip() for x in (value or "").split(";") if x.strip()]


NEEDED = ("ods_code", "name", "kind", "emails", "services")
# how people head these columns in a spreadsheet, after lower-casing and turning spaces into _
ALIASES = {"ods": "ods_code", "email": "emails", "service": "services", "postcode": "postcodes"}
MAX_ROWS = 20_000          # a directory is a few hundred organisations; more is the wrong file
MAX_COLS = 60
HEADER_SEARCH = 5          # rows looked at for the header
MAX_PROBLEMS = 10          # named in the one-line error; the rest are counted


def _column(name) -> str:
    key = re.sub(r"[\s\-]+", "_", str(name or "").strip().lower())
    return ALIASES.get(key, key)


def import_csv(conn, text: str, actor: str = "cli") -> dict:
    """Insert or update every row of a CSV text; an address moves to the org that now lists it."""
    return import_rows(conn, *_csv_rows(text.lstrip("\ufeff")), actor=actor)


def read_table(path) -> tuple[list[tuple[int, dict]], str]:
    """([(row number, {column: text})], 'line' or 'row') from a CSV or XLSX file."""
    from pathlib import Path
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DirectoryError("no such file") from None
    except IsADirectoryError:
        raise DirectoryError("is a folder, not a file") from None
    except OSError as e:
        raise DirectoryError(f"cannot read it: {e.strerror or e}") from None
    if not data.strip():
        raise DirectoryError("the file is empty")
    if data.startswith(b"PK\x03\x04"):
        return _xlsx_rows(data), "row"
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise DirectoryError("is an old Excel .xls workbook or a password-protected file: "
                             "save it as .xlsx or CSV without a password")
    if data.startswith(b"%PDF"):
        raise DirectoryError("is a PDF, not a CSV or XLSX file")
    return _csv_rows(_decode(data))


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):        # Excel's "Unicode Text"
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise DirectoryError("starts like UTF-16 text but is not") from None
    if b"\x00" in data:
        raise DirectoryError("is not a text file (it holds binary data): save it as CSV or XLSX")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")          # "CSV (Comma delimited)" from Excel on Windows
    except UnicodeDecodeError as e:
        raise DirectoryError(f"is neither UTF-8 nor Windows-1252 text (byte 0x{data[e.start]:02x} "
                             f"at offset {e.start})") from None


def _csv_rows(text: str) -> tuple[list[tuple[int, dict]], str]:
    first = text.lstrip("\ufeff").split("\n", 1)[0]
    delimiter = "\t" if "\t" in first and "," not in first else ","
    try:
        table = list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=delimiter))
    except csv.Error as e:
        raise DirectoryError(f"cannot read it as CSV: {e}") from None
    return _rows(table), "line"


def _xlsx_rows(data: bytes) -> list[tuple[int, dict]]:
    import warnings
    import zipfile
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except zipfile.BadZipFile:
        raise DirectoryError("is a damaged zip or XLSX file") from None
    if "xl/workbook.xml" not in names:
        what = "a Word document" if "word/document.xml" in names else "a zip archive"
        raise DirectoryError(f"is {what}, not a CSV or XLSX file")
    from openpyxl import load_workbook
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")        # openpyxl's notes on styles and extensions
            wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
            try:
                if not wb.worksheets:
                    raise DirectoryError("the workbook has no worksheet")
                table, seen = [], 0
                for values in wb.worksheets[0].iter_rows(max_col=MAX_COLS, values_only=True):
                    table.append([_text(v) for v in values])
                    seen += any(table[-1])
                    if seen > MAX_ROWS + 1:
                        break
            finally:
                wb.close()
    except DirectoryError:
        raise
    except Exception as e:      # a damaged workbook fails in many ways inside openpyxl: name it, briefly
        detail = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
        raise DirectoryError(f"cannot read it as an XLSX workbook ({detail})") from None
    return _rows(table)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value).strip()


def _rows(table: list[list[str]]) -> list[tuple[int, dict]]:
    """The first non-empty row is the header; later empty rows (Excel leaves them) are skipped."""
    numbered = [(n, row) for n, row in enumerate(table, start=1) if any((c or "").strip() for c in row)]
    if not numbered:
        raise DirectoryError("the file is empty")
    if len(numbered) > MAX_ROWS + 1:
        raise DirectoryError(f"has more than {MAX_ROWS} rows: is this the directory?")
    # The header is the first row naming every needed column; a title row or two above it is allowed.
    found = [sum(c in {_column(h) for h in row} for c in NEEDED) for _, row in numbered[:HEADER_SEARCH]]
    at = next((i for i, k in enumerate(found) if k == len(NEEDED)), None)
    if at is None:
        best = max(range(len(found)), key=lambda i: (found[i], -i))
        columns = {_column(h) for h in numbered[best][1]}
        shown = ", ".join(str(h).strip() for h in numbered[best][1] if str(h).strip())
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        if found[best] == 0:
            raise DirectoryError(f"has no header row naming the columns {', '.join(NEEDED)} "
                                 f"(the first row reads: {shown})")
        raise DirectoryError(f"the header row has no column {', '.join(c for c in NEEDED if c not in columns)} "
                             f"(it reads: {shown})")
    (_, head), body = numbered[at], numbered[at + 1:]
    columns = [_column(h) for h in head]
    if not body:
        raise DirectoryError("no organisations below the header row")
    out = []
    for n, row in body:
        values: dict[str, str] = {}
        for col, v in zip(columns, row):
            if col and col not in values:
                values[col] = (v or "").strip()
        out.append((n, {c: values.get(c, "") for c in {*NEEDED, *values}}))
    return out


def import_rows(conn, rows: list[tuple[int, dict]], where: str = "line", actor: str = "cli") -> dict:
    """Check every row, then insert or update them all in one transaction (or none)."""
    parsed, problems, first_seen = [], [], {}
    for n, row in rows:
        code, kind = row["ods_code"].upper(), row["kind"].lower()
        if not ODS_RE.match(code):
            problems.append(f"{where} {n}: {row['ods_code']!r} is not an ODS code")
        elif code in first_seen:     # two rows for one code: which is right is for a person to say
            problems.append(f"{where} {n}: {code} is already on {where} {first_seen[code]}")
        first_seen.setdefault(code, n)
        if not row["name"]:
            problems.append(f"{where} {n}: no name")
        if kind not in KINDS:
            problems.append(f"{where} {n}: kind must be one of {', '.join(sorted(KINDS))}, not {row['kind']!r}")
        emails = [e.lower() for e in _split(row["emails"])]
        bad = [e for e in emails if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", e)]
        if bad:
            problems.append(f"{where} {n}: not an email address: {', '.join(bad)}")
        postcodes = [" ".join(pc.upper().split()) for pc in _split(row.get("postcodes") or "")]
        parsed.append((code, row["name"], kind, emails, _split(row["services"]), postcodes))
    if problems:
        more = len(problems) - MAX_PROBLEMS
        raise DirectoryError("; ".join(problems[:MAX_PROBLEMS]) + (f"; and {more} more" if more > 0 else "")
                             + "; nothing was imported")
    rows = parsed
    added = updated = 0
    with transaction(conn):
        for code, name, kind, emails, services, postcodes in rows:
            exists = conn.execute("SELECT 1 FROM orgs WHERE ods_code=?", (code,)).fetchone()
            conn.execute(
                "INSERT INTO orgs (ods_code, name, kind, services, postcodes, updated_at) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT(ods_code) DO UPDATE SET name=excluded.name, kind=excluded.kind, "
                "services=excluded.services, postcodes=excluded.postcodes, updated_at=excluded.updated_at",
                (code, name, kind, ";".join(services), ";".join(postcodes), utcnow()))
            for e in emails:
                conn.execute("INSERT INTO org_emails (email, ods_code) VALUES (?,?) "
                             "ON CONFLICT(email) DO UPDATE SET ods_code=excluded.ods_code", (e, code))
            if exists:
                updated += 1
            else:
                added += 1
            audit(conn, "org", code, "updated" if exists else "added", actor,
                  {"emails": len(emails), "services": services})
    return {"added": added, "updated": updated}


def add_email(conn, code: str, email: str, actor: str) -> None:
    """Trust one more address for an org. Call inside a transaction."""
    code = code.upper()
    if not conn.execute("SELECT 1 FROM orgs WHERE ods_code=?", (code,)).fetchone():
        raise DirectoryError(f"no organisation {code} in the directory")
    conn.execute("INSERT INTO org_emails (email, ods_code) VALUES (?,?) "
                 "ON CONFLICT(email) DO UPDATE SET ods_code=excluded.ods_code", (email.lower(), code))
    audit(conn, "org", code, "address trusted", actor, {"email": email.lower()})


def org_for(conn, email: str) -> Org | None:
    row = conn.execute(
        "SELECT o.* FROM org_emails e JOIN orgs o ON o.ods_code=e.ods_code WHERE e.email=?",
        (email.lower(),)).fetchone()
    if not row:
        return None
    return Org(row["ods_code"], row["name"], row["kind"], _split(row["services"]))


def list_orgs(conn) -> list[dict]:
    out = []
    for row in conn.execute("SELECT * FROM orgs ORDER BY ods_code"):
        emails = [r[0] for r in conn.execute(
            "SELECT email FROM org_emails WHERE ods_code=? ORDER BY email", (row["ods_code"],))]
        out.append({"ods_code": row["ods_code"], "name": row["name"], "kind": row["kind"],
                    "emails": emails, "services": _split(row["services"])})
    return out


def org_by_code(conn, code: str) -> Org | None:
    row = conn.execute("SELECT * FROM orgs WHERE ods_code=?", (code,)).fetchone()
    return Org(row["ods_code"], row["name"], row["kind"], _split(row["services"])) if row else None


def first_address(conn, code: str | None) -> str | None:
    """An organisation's first listed (shared) address."""
    row = conn.execute("SELECT email FROM org_emails WHERE ods_code=? ORDER BY rowid LIMIT 1",
                       (code,)).fetchone()
    return row[0] if row else None


def orgs_of_kinds(conn, kinds: tuple[str, ...]) -> list[sqlite3.Row]:
    """(ods_code, name, postcodes) of every organisation of these kinds, for matching names in text."""
    return conn.execute(f"SELECT ods_code, name, postcodes FROM orgs WHERE kind IN "
                        f"({','.join('?' * len(kinds))})", tuple(kinds)).fetchall()
