"""What every `lesbot` command shares: tables with a header row, readers for option values
that refuse what they cannot read (one line, non-zero exit), and the test for "is this an
email at all" used by `ingest`."""
from __future__ import annotations

import json
import re
from datetime import date, datetime, timezone

import click

from bot.settings import config
from store.directory import org_by_code
from store.operator import distinct_values


# -- settings and database, loaded once per command -------------------------
def settings(ctx: click.Context):
    """The settings, validated; a misspelt LESBOT_* variable is named on stderr once."""
    s = ctx.meta.get("lesbot.settings")
    if s is None:
        try:
            s = config.load()
        except config.ConfigError as e:
            raise click.ClickException(str(e))
        if not ctx.meta.get("lesbot.quiet"):
            for line in config.env_warnings():
                click.echo(line, err=True)
        ctx.meta["lesbot.settings"] = s
    ctx.obj = s
    return s


def db(ctx):
    """One connection per command (option checks and the command share it)."""
    conn = ctx.meta.get("lesbot.db")
    if conn is not None:
        return conn
    from store.db import open_db
    s = settings(ctx)
    try:
        conn = open_db(s.db_path)
    except (FileExistsError, NotADirectoryError):
        raise click.ClickException(f"cannot open the database: lesbot's home {s.home} is not a folder "
                                   f"(LESBOT_HOME or home in lesbot.toml)") from None
    except Exception as e:
        raise click.ClickException(f"cannot open the database {s.db_path}: {e}") from None
    ctx.meta["lesbot.db"] = conn

    def close():
        if ctx.meta.pop("lesbot.db", None) is not None:
            conn.close()
    ctx.call_on_close(close)
    return conn


def actor() -> str:
    """Who did it, for the audit trail: the login name."""
    import getpass
    try:
        return getpass.getuser()
    except Exception:
        return "operator"


# -- output ------------------------------------------------------------------
def when(iso: str | None) -> str:
    """A stored UTC time to the minute, as the lists show it."""
    return (iso or "")[:16].replace("T", " ")


def table(columns: list[str], rows: list[list], empty: str = "nothing to show", right: tuple = (),
          widest: dict | None = None) -> None:
    """Rows under a header row, in aligned columns (the last one unpadded); with no rows, EMPTY
    on stderr and nothing on stdout. `right`: columns to right-align (numbers); `widest`:
    {column: max characters}, longer values cut with '…'."""
    if not rows:
        click.echo(empty, err=True)      # to stderr: stdout stays empty for a script
        return
    widest = widest or {}
    caps = [widest.get(c) for c in columns]

    def cell(v, cap):
        text = "-" if v is None or v == "" else str(v).replace("\n", " ")
        return text if not cap or len(text) <= cap else text[:cap - 1] + "…"
    cells = [[cell(v, cap) for v, cap in zip(r, caps)] for r in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    last = len(columns) - 1
    align = [(lambda v, w=w: v.rjust(w)) if c in right else (str if i == last else (lambda v, w=w: v.ljust(w)))
             for i, (c, w) in enumerate(zip(columns, widths))]

    def line(values):
        return "  ".join(f(v) for f, v in zip(align, values)).rstrip()
    # one write for the lot: a register of 100,000 patients prints in well under a second
    click.echo("\n".join([line(columns), *map(line, cells)]))


def json_lines(rows) -> None:
    """--json: one object per line (JSON Lines), for jq, grep or a spreadsheet's import."""
    if rows:
        click.echo("\n".join(json.dumps(r, default=str) for r in rows))


# -- option values -----------------------------------------------------------
ID = click.IntRange(1, 2 ** 63 - 1)       # SQLite's largest row id: a bigger number is no id


def _bad(param, value, why):
    raise click.BadParameter(f"{value!r} {why}", param=param)


def month_option(ctx, param, value):
    """A month as claims name it (2026-10, Oct-26, October 2026, 10/2026, "last month"); a month
    without a year is the latest such month not after this one, as the claims reader has it.
    Returns 'YYYY-MM'."""
    if value is None:
        return None
    from handlers.contract.periods import key, parse_month
    m = parse_month(value, datetime.now(timezone.utc))
    if m is None:
        _bad(param, value, "is not a month: write it as 2026-10, Oct 2026 or 10/2026")
    if value.strip() != key(m):
        click.echo(f"reading {param.opts[0] if param.opts else param.name} {value!r} as {key(m)}", err=True)
    return key(m)


def run_option(ctx, param, value):
    """A payment run is a month, read as --month is."""
    return month_option(ctx, param, value)


def quarter_option(ctx, param, value):
    """'2026Q3', 'Q3 2026', '2026-Q3' -> '2026Q3' (calendar quarters, as stored)."""
    if value is None:
        return None
    from handlers.contract.dates import parse_quarter
    span = parse_quarter(value)
    if span is None:
        _bad(param, value, "is not a quarter: write it as 2026Q3 (calendar quarters, Q3 is July to September)")
    return f"{span[0].year}Q{(span[0].month - 1) // 3 + 1}"


def date_option(ctx, param, value) -> date | None:
    """One real date, day first: 03/10/2026, 3 Oct 2026 or 2026-10-03 — nothing else around it."""
    if value is None:
        return None
    from handlers.contract.dates import find
    found = find(value)
    if len(found) != 1 or found[0][1] is None or found[0][2].strip() != value.strip():
        _bad(param, value, "is not a date: write it as 31/10/2026 or 2026-10-31")
    return found[0][1]


YEAR = click.IntRange(2000, 2100)


def practice_option(ctx, param, value):
    """An ODS code that is in the directory (upper-cased)."""
    if value is None:
        return None
    code = value.strip().upper()
    if org_by_code(db(ctx), code) is None:
        _bad(param, value, "is not an organisation in the directory (see `lesbot directory list`)")
    return code


def one_of(known: tuple[str, ...], table_name: str, column: str, what: str):
    """A callback accepting the known values, and any the database already holds (so a value
    added later is never refused); anything else is refused with the list."""
    def check(ctx, param, value):
        if value is None:
            return None
        v = value.strip().lower()
        if v in known:
            return v
        held = distinct_values(db(ctx), table_name, column)
        if v in held:
            return v
        _bad(param, value, f"is not {what}: one of {', '.join(sorted(set(known) | held))}")
    return check


# -- ingest: is it an email at all -------------------------------------------
MAGIC = ((b"PK\x03\x04", "an XLSX, DOCX or zip file"), (b"%PDF", "a PDF"), (b"\x89PNG", "a PNG image"),
         (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
         (b"\xd0\xcf\x11\xe0", "an Outlook .msg or old Office file: save the message as .eml"),
         (b"\x1f\x8b", "a gzip file"), (b"\x7fELF", "a program"))
HEADER = re.compile(rb"^([!-9;-~]+)[ \t]*:")
STANDARD = {b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"received", b"return-path",
            b"mime-version", b"content-type", b"reply-to", b"sender", b"delivered-to", b"in-reply-to",
            b"references", b"content-transfer-encoding", b"x-mailer", b"user-agent", b"thread-topic",
            b"authentication-results", b"dkim-signature", b"x-original-to", b"envelope-to"}


def not_email(raw: bytes) -> str | None:
    """Why RAW is not an email message (None when it is one): it must be text that starts with
    RFC 5322 header fields, with a From or at least two standard ones before the first blank line."""
    if not raw.strip():
        return "the file is empty"
    for magic, what in MAGIC:
        if raw.startswith(magic):
            return f"it is {what}"
    head = raw[:65536]
    if head.startswith(b"From "):                       # an mbox separator line
        head = head.split(b"\n", 1)[1] if b"\n" in head else b""
    head = re.split(rb"\r?\n\r?\n", head, maxsplit=1)[0]
    if b"\x00" in head or sum(b < 9 or 13 < b < 32 for b in head) > len(head) // 100:
        return "it is binary data"
    names = []
    for line in head.splitlines():
        if line[:1] in (b" ", b"\t") and names:          # a folded header continues
            continue
        m = HEADER.match(line)
        if not m:
            break
        names.append(m.group(1).lower())
    if not names:
        return "it does not start with mail headers such as From:, To: and Subject:"
    if b"from" not in names and len(set(names) & STANDARD) < 2:
        return "it has no From: and too few mail headers"
    return None
