"""The directory of organisations allowed to write, and their addresses."""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from store.db import audit, utcnow

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


def import_csv(conn, text: str, actor: str = "cli") -> dict:
    """Insert or update every row; an address moves to the org that now lists it."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    need = {"ods_code", "name", "kind", "emails", "services"}
    if not reader.fieldnames or need - {f.strip() for f in reader.fieldnames}:
        raise DirectoryError(f"the CSV needs the columns {','.join(sorted(need))}")
    rows, problems = [], []
    for n, row in enumerate(reader, start=2):
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        code = row["ods_code"].upper()
        if not ODS_RE.match(code):
            problems.append(f"line {n}: {row['ods_code']!r} is not an ODS code")
        if row["kind"] not in KINDS:
            problems.append(f"line {n}: kind must be one of {', '.join(sorted(KINDS))}")
        emails = [e.lower() for e in _split(row["emails"])]
        bad = [e for e in emails if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", e)]
        if bad:
            problems.append(f"line {n}: not an email address: {', '.join(bad)}")
        postcodes = [" ".join(pc.upper().split()) for pc in _split(row.get("postcodes") or row.get("postcode") or "")]
        rows.append((code, row["name"], row["kind"], emails, _split(row["services"]), postcodes))
    if problems:
        raise DirectoryError("\n".join(problems))
    added = updated = 0
    conn.execute("BEGIN IMMEDIATE")
    try:
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
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
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
