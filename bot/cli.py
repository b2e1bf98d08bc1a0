"""The `lesbot` command."""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import click

from bot import cli_care, cli_schedule
from bot import config as config_mod


def _settings(ctx: click.Context):
    if ctx.obj is None:
        try:
            ctx.obj = config_mod.load()
        except config_mod.ConfigError as e:
            raise click.ClickException(str(e))
    return ctx.obj


def _db(ctx):
    from store.db import open_db
    s = _settings(ctx)
    try:
        return open_db(s.db_path)
    except Exception as e:
        raise click.ClickException(f"cannot open the database {s.db_path}: {e}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log more (to stderr).")
@click.pass_context
def main(ctx, verbose):
    """lesbot runs the shared inbox of an NHS Local Enhanced Service contract team.

    Mail comes in over SMTP (`serve`), IMAP (set imap.enabled) or from files
    (`ingest`); every message is stored, classified, answered through the
    outbox and recorded. Data lives under LESBOT_HOME (default ./var); settings
    come from ./lesbot.toml (or LESBOT_CONFIG) and LESBOT_* variables.
    """
    from bot.logs import setup
    setup(verbose)


@main.command()
@click.option("--smtp-host", default=None, help="Address to listen on [settings: smtp_host, 127.0.0.1].")
@click.option("--smtp-port", type=int, default=None, help="Port to listen on [settings: smtp_port, 2525].")
@click.pass_context
def serve(ctx, smtp_host, smtp_port):
    """Run lesbot: the SMTP listener, IMAP reader (if enabled), processor and mailer.

    Stops cleanly on SIGTERM or Ctrl-C; anything accepted but not yet handled is
    handled at the next start.
    """
    s = _settings(ctx)
    from bot.server import run
    run(s, smtp_host or s.smtp_host, smtp_port or s.smtp_port)


@main.command()
@click.option("--wake-fd", type=int, default=None, hidden=True)
@click.option("--nice", type=int, default=0, help="Lower this process's CPU priority by N.")
@click.pass_context
def worker(ctx, wake_fd, nice):
    """Process stored messages and deliver the outbox, without listening.

    `serve` starts one itself; run this alone to work through a backlog (for
    example after `ingest --no-send`, or on a second machine sharing the files).
    """
    from bot.worker import run as run_worker
    run_worker(_settings(ctx), wake_fd=wake_fd, nice=nice)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per message.")
@click.option("--no-send", is_flag=True, help="Queue replies but do not deliver them now.")
@click.option("--received-at", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"]),
              help="Treat every message as received at this time (UTC unless an offset is given).")
@click.pass_context
def ingest(ctx, paths, as_json, no_send, received_at):
    """Feed .eml files, Maildir folders or mbox files through the pipeline.

    The time received is the topmost Received: header, else Date:, unless
    --received-at is given.
    """
    from bot.files import SourceError, expand
    from bot.intake import store
    from bot.mailer import Mailer
    from bot.mailparse import received_time
    from bot.pipeline import Pipeline
    s = _settings(ctx)
    conn = _db(ctx)
    try:
        sources = expand(list(paths))
    except SourceError as e:
        raise click.ClickException(str(e))
    if received_at is not None and received_at.tzinfo is None:
        received_at = received_at.replace(tzinfo=timezone.utc)
    pipeline = Pipeline(s, conn)
    counts: dict[str, int] = {}
    show_bar = sys.stderr.isatty()
    with click.progressbar(sources, label="ingesting", file=sys.stderr, show_pos=True) if show_bar \
            else _nullbar(sources) as bar:
        for label, loader in bar:
            try:
                raw = loader()
            except OSError as e:
                click.echo(f"{label}: cannot read: {e}", err=True)
                continue
            when = received_at or received_time(raw) or datetime.now(timezone.utc)
            new_id = store(conn, raw, "file", when, None, None, str(label))
            result = pipeline.process(new_id)
            if result is None:
                continue
            counts[result["outcome"]] = counts.get(result["outcome"], 0) + 1
            if as_json:
                result.pop("id", None)
                click.echo(json.dumps(result))
    pipeline.close()
    if not no_send:
        mailer = Mailer(s, conn)
        while sum(mailer.deliver_due().values()):     # every due reply, not just the first batch
            pass
    if not as_json:
        click.echo(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "nothing ingested")


class _nullbar:
    def __init__(self, items):
        self.items = items

    def __enter__(self):
        return self.items

    def __exit__(self, *a):
        return False


# -- directory ---------------------------------------------------------------
@main.group()
def directory():
    """The organisations allowed to write to the inbox."""


@directory.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False))
@click.pass_context
def directory_import(ctx, csv_file):
    """Load CSV_FILE (ods_code,name,kind,emails,services); re-importing updates."""
    from bot.directory import DirectoryError, import_csv
    conn = _db(ctx)
    try:
        r = import_csv(conn, Path(csv_file).read_text(encoding="utf-8-sig"))
    except DirectoryError as e:
        raise click.ClickException(f"{csv_file}:\n{e}")
    click.echo(f"{r['added']} added, {r['updated']} updated")


@directory.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def directory_list(ctx, as_json):
    """Show the organisations, their addresses and services."""
    from bot.directory import list_orgs
    orgs = list_orgs(_db(ctx))
    for o in orgs:
        if as_json:
            click.echo(json.dumps(o))
        else:
            click.echo(f"{o['ods_code']}  {o['kind']:<12} {o['name']}\n"
                       f"        {', '.join(o['emails'])}\n        services: {', '.join(o['services']) or '-'}")


# -- messages ----------------------------------------------------------------
def _message_rows(conn, where: str = "", args=(), limit: int = 50):
    return conn.execute(
        "SELECT id, received_at, source, state, kind, from_addr, org_code, case_id, duplicate_of, "
        f"no_reply_reason, errors, error, size FROM messages {where} ORDER BY id DESC LIMIT ?",
        (*args, limit)).fetchall()


def _print_rows(rows, as_json):
    from bot.replies import reference
    for r in rows:
        d = dict(r)
        d["reference"] = reference(d["case_id"]) if d["case_id"] else None
        if as_json:
            click.echo(json.dumps(d))
        else:
            extra = f" dup of {d['duplicate_of']}" if d["duplicate_of"] else ""
            if d["error"]:
                extra += " error: " + d["error"].splitlines()[0][:80]
            click.echo(f"{d['id']:>6}  {d['received_at'][:19]}  {d['state']:<18} {d['kind'] or '-':<22}"
                       f" {d['from_addr'] or '-':<34} {d['reference'] or '':<10}{extra}")


@main.group()
def messages():
    """Stored messages and their states."""


@messages.command("list")
@click.option("--state", help="Only this state (received, accepted, rejected, failed, ...).")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def messages_list(ctx, state, limit, as_json):
    """Newest first."""
    conn = _db(ctx)
    rows = _message_rows(conn, "WHERE state=?", (state,), limit) if state else _message_rows(conn, limit=limit)
    _print_rows(rows, as_json)


@messages.command("show")
@click.argument("msg_id", type=int)
@click.option("--raw", is_flag=True, help="Print the raw message as received.")
@click.pass_context
def messages_show(ctx, msg_id, raw):
    """One message: its state, errors, history and replies."""
    conn = _db(ctx)
    row = conn.execute("SELECT * FROM messages WHERE id=?", (msg_id,)).fetchone()
    if not row:
        raise click.ClickException(f"no message {msg_id}")
    if raw:
        sys.stdout.buffer.write(row["raw"])
        return
    d = {k: row[k] for k in row.keys() if k != "raw"}
    d["errors"] = json.loads(d["errors"] or "[]")
    d["history"] = [dict(a) for a in conn.execute(
        "SELECT at, action, actor, detail FROM audit WHERE entity='message' AND entity_id=? ORDER BY id",
        (str(msg_id),))]
    d["replies"] = [dict(o) for o in conn.execute(
        "SELECT id, to_addr, subject, state, attempts, last_error FROM outbox WHERE message=?", (msg_id,))]
    click.echo(json.dumps(d, indent=2, default=str))


def _requeue(conn, msg_id: int, from_states: tuple, action: str, actor: str, released: bool = False,
             hints: dict | None = None):
    from store.db import audit
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute("SELECT state, hints FROM messages WHERE id=?", (msg_id,)).fetchone()
        if not row:
            raise click.ClickException(f"no message {msg_id}")
        if row["state"] not in from_states:
            raise click.ClickException(f"message {msg_id} is {row['state']}, not {' or '.join(from_states)}")
        merged = {**json.loads(row["hints"] or "{}"), **(hints or {})}
        conn.execute("UPDATE messages SET state='received', error=NULL, released=?, hints=? WHERE id=?",
                     (1 if released else 0, json.dumps(merged) if merged else None, msg_id))
        audit(conn, "message", msg_id, action, actor, hints or None)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _process_now(ctx, conn, msg_id):
    from bot.mailer import Mailer
    from bot.pipeline import Pipeline
    s = _settings(ctx)
    p = Pipeline(s, conn)
    r = p.process(msg_id)
    p.close()
    Mailer(s, conn).deliver_due()
    if r:
        r.pop("id", None)
        click.echo(json.dumps(r))


def _actor():
    import getpass
    try:
        return getpass.getuser()
    except Exception:
        return "operator"


@messages.command("retry")
@click.argument("msg_id", type=int)
@click.pass_context
def messages_retry(ctx, msg_id):
    """Process a failed message again, now."""
    conn = _db(ctx)
    _requeue(conn, msg_id, ("failed",), "retried", _actor())
    _process_now(ctx, conn, msg_id)


# -- quarantine --------------------------------------------------------------
@main.group()
def quarantine():
    """Messages kept for a human: unknown senders, spoofing, suspicious attachments."""


@quarantine.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def quarantine_list(ctx, as_json):
    """What is waiting for a decision."""
    _print_rows(_message_rows(_db(ctx), "WHERE state='quarantined'", (), 1000), as_json)


@quarantine.command("show")
@click.argument("msg_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def quarantine_show(ctx, msg_id, as_json):
    """Why a message is held: what lesbot read, the competing candidates, what it needs."""
    from bot.mailparse import parse
    from bot.replies import reference
    row = _db(ctx).execute("SELECT * FROM messages WHERE id=?", (msg_id,)).fetchone()
    if not row:
        raise click.ClickException(f"no message {msg_id}")
    p = parse(row["raw"])
    d = {"id": row["id"], "state": row["state"], "kind": row["kind"], "received_at": row["received_at"],
         "from": row["from_addr"], "organisation": row["org_code"], "subject": p.subject,
         "attachments": [a.filename for a in p.attachments if a.filename],
         "reference": reference(row["case_id"]) if row["case_id"] else None,
         "why": json.loads(row["errors"] or "[]"), "reading": json.loads(row["reading"] or "{}"),
         "hints": json.loads(row["hints"] or "{}")}
    if as_json:
        click.echo(json.dumps(d, indent=1))
        return
    for k in ("id", "state", "kind", "received_at", "from", "organisation", "reference", "subject"):
        click.echo(f"{k:<13} {d[k] if d[k] is not None else '-'}")
    if d["attachments"]:
        click.echo(f"{'attachments':<13} {', '.join(d['attachments'])}")
    click.echo("why held:")
    for e in d["why"]:
        click.echo(f"  - {e.get('field')}: {e.get('problem')}")
    if d["reading"]:
        click.echo("what lesbot read:")
        for k, v in d["reading"].items():
            shown = "; ".join(map(str, v)) if isinstance(v, list) else v
            click.echo(f"  {k}: {shown}")
    if d["hints"]:
        click.echo(f"confirmed by a person: {json.dumps(d['hints'])}")
    if d["state"] == "quarantined":
        click.echo(f"\nTo go on: lesbot quarantine release {msg_id} [--set practice=ODS] [--trust-sender ODS]"
                   f"  |  lesbot quarantine drop {msg_id}")


def _hints(values) -> dict:
    out = {}
    for v in values:
        key, sep, val = v.partition("=")
        if not sep or not key.strip() or not val.strip():
            raise click.BadParameter(f"{v!r}: write KEY=VALUE, e.g. practice=K96101", param_hint="--set")
        out[key.strip().lower()] = val.strip().upper() if key.strip().lower() == "practice" else val.strip()
    return out


@quarantine.command("release")
@click.argument("msg_id", type=int)
@click.option("--trust-sender", "org", metavar="ORG",
              help="Add the sender's address to organisation ORG (ODS code) in the directory.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Confirm or correct what lesbot read, e.g. --set practice=K96101 (the patient's practice).")
@click.pass_context
def quarantine_release(ctx, msg_id, org, sets):
    """Process a quarantined message as if it had just arrived.

    Without --trust-sender the message is handled, but an address outside the
    directory still gets no reply. --set settles what lesbot could not (see
    `lesbot quarantine show`): the handler takes it over its own reading.
    """
    hints = _hints(sets)
    from bot.directory import DirectoryError, add_email
    conn = _db(ctx)
    if org:
        row = conn.execute("SELECT from_addr FROM messages WHERE id=? AND state='quarantined'",
                           (msg_id,)).fetchone()
        if not row or not row["from_addr"]:
            raise click.ClickException(f"message {msg_id} is not quarantined or has no sender")
        conn.execute("BEGIN IMMEDIATE")
        try:
            add_email(conn, org, row["from_addr"], _actor())
            conn.execute("COMMIT")
        except DirectoryError as e:
            conn.execute("ROLLBACK")
            raise click.ClickException(str(e))
    if hints.get("practice") and not conn.execute("SELECT 1 FROM orgs WHERE ods_code=?",
                                                  (hints["practice"],)).fetchone():
        raise click.ClickException(f"{hints['practice']} is not in the directory")
    _requeue(conn, msg_id, ("quarantined",), "released", _actor(), released=True, hints=hints)
    _process_now(ctx, conn, msg_id)


@quarantine.command("drop")
@click.argument("msg_id", type=int)
@click.pass_context
def quarantine_drop(ctx, msg_id):
    """Give up on a quarantined message (kept, marked dropped, never answered)."""
    from store.db import audit
    conn = _db(ctx)
    conn.execute("BEGIN IMMEDIATE")
    n = conn.execute("UPDATE messages SET state='dropped' WHERE id=? AND state='quarantined'", (msg_id,)).rowcount
    if n:
        audit(conn, "message", msg_id, "dropped", _actor())
    conn.execute("COMMIT")
    if not n:
        raise click.ClickException(f"message {msg_id} is not quarantined")
    click.echo(f"dropped {msg_id}")


# -- outbox ------------------------------------------------------------------
@main.group()
def outbox():
    """Replies waiting to go, sent, failed or held."""


@outbox.command("list")
@click.option("--state", help="queued, sent, failed or held")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def outbox_list(ctx, state, limit, as_json):
    """Newest first."""
    conn = _db(ctx)
    where, args = ("WHERE state=?", (state,)) if state else ("", ())
    for r in conn.execute("SELECT id, created_at, message, to_addr, subject, state, attempts, next_attempt_at, "
                          f"last_error FROM outbox {where} ORDER BY id DESC LIMIT ?", (*args, limit)):
        d = dict(r)
        if as_json:
            click.echo(json.dumps(d))
        else:
            click.echo(f"{d['id']:>6}  {d['created_at'][:19]}  {d['state']:<7} {d['to_addr']:<34} "
                       f"{d['subject'][:50]}" + (f"  [{d['last_error']}]" if d["last_error"] else ""))


@outbox.command("flush")
@click.pass_context
def outbox_flush(ctx):
    """Deliver everything queued now, including replies waiting for a retry."""
    from bot.mailer import Mailer
    conn = _db(ctx)
    far = datetime(9999, 1, 1, tzinfo=timezone.utc)
    total = {"sent": 0, "failed": 0}
    while True:
        r = Mailer(_settings(ctx), conn).deliver_due(now=far)
        total["sent"] += r["sent"]
        total["failed"] += r["failed"]
        if r["sent"] + r["failed"] == 0 or r["sent"] == 0:
            break
    click.echo(f"{total['sent']} sent, {total['failed']} failed")


@outbox.command("resend")
@click.argument("outbox_id", type=int)
@click.pass_context
def outbox_resend(ctx, outbox_id):
    """Queue again a mail whose delivery is unknown (the relay took it, then its answer was
    lost) or failed — once you know the recipient did not get it."""
    from store.db import audit
    conn = _db(ctx)
    conn.execute("BEGIN IMMEDIATE")
    n = conn.execute("UPDATE outbox SET state='queued', next_attempt_at=? WHERE id=? AND state IN "
                     "('unknown','failed')", (datetime.now(timezone.utc).isoformat(), outbox_id)).rowcount
    if n:
        audit(conn, "outbox", outbox_id, "resend", _actor())
    conn.execute("COMMIT")
    if not n:
        raise click.ClickException(f"outbox {outbox_id} is not unknown or failed")
    click.echo(f"queued {outbox_id} again")


# -- bounces -----------------------------------------------------------------
@main.group()
def bounces():
    """Addresses that bounced hard and get no more mail until cleared."""


@bounces.command("list")
@click.pass_context
def bounces_list(ctx):
    """Suppressed addresses."""
    for r in _db(ctx).execute("SELECT * FROM suppressed ORDER BY since"):
        click.echo(f"{r['email']:<40} since {r['since'][:19]}  {r['reason']}")


@bounces.command("clear")
@click.argument("address")
@click.pass_context
def bounces_clear(ctx, address):
    """Let ADDRESS receive mail again."""
    from store.db import audit
    conn = _db(ctx)
    conn.execute("BEGIN IMMEDIATE")
    n = conn.execute("DELETE FROM suppressed WHERE email=?", (address.lower(),)).rowcount
    if n:
        audit(conn, "address", address.lower(), "cleared", _actor())
    conn.execute("COMMIT")
    if not n:
        raise click.ClickException(f"{address} is not suppressed")
    click.echo(f"cleared {address}")


# -- claims and payments ------------------------------------------------------------
@main.command()
@click.option("--practice", required=True, help="The practice's ODS code.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="Where to write the .xlsx.")
@click.option("--month", help="Pre-fill the claim month (e.g. 2026-10).")
@click.pass_context
def template(ctx, practice, out, month):
    """Write a practice's claim form (XLSX), pre-filled with its code, name and services.

    Practices get the same form by emailing the subject TEMPLATE.
    """
    from bot.claimform import build_form
    from bot.directory import list_orgs, Org
    from bot.periods import parse_month
    s = _settings(ctx)
    org = next((o for o in list_orgs(_db(ctx)) if o["ods_code"] == practice.upper()), None)
    if org is None:
        raise click.ClickException(f"no organisation {practice} in the directory")
    now = datetime.now(timezone.utc)
    m = parse_month(month, now) if month else None
    if month and m is None:
        raise click.ClickException(f"--month {month!r} is not a month (try 2026-10)")
    data = build_form(Org(org["ods_code"], org["name"], org["kind"], org["services"]), s.catalogue,
                      s.inboxes[0], now.date(), m)
    Path(out).write_bytes(data)
    click.echo(f"wrote {out}")


def _run_arg(run: str) -> str:
    from bot.payments import RUN_RE
    if not RUN_RE.match(run):
        raise click.BadParameter(f"{run!r} is not a month like 2026-10")
    return run


@main.group()
def payments():
    """Payment runs: close a month's run, export its schedule."""


@payments.command("close")
@click.argument("run")
@click.pass_context
def payments_close(ctx, run):
    """Close the payment run RUN (YYYY-MM): later claims for it go to a human."""
    from bot.payments import close
    try:
        close(_db(ctx), _run_arg(run), _actor())
    except ValueError as e:
        raise click.ClickException(str(e))
    click.echo(f"payment run {run} closed")


@payments.command("export")
@click.option("--run", "run", required=True, help="The payment run, YYYY-MM.")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="csv", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), help="File to write (default: standard output for csv).")
@click.pass_context
def payments_export(ctx, run, fmt, out):
    """One row per practice and service: counts, tariff, amount, claim references; totals last."""
    from bot.payments import export_csv, export_xlsx
    conn = _db(ctx)
    data = export_csv(conn, _run_arg(run)) if fmt == "csv" else export_xlsx(conn, _run_arg(run))
    if out:
        Path(out).write_bytes(data)
        click.echo(f"wrote {out}")
    elif fmt == "xlsx":
        raise click.ClickException("give --out FILE for xlsx")
    else:
        sys.stdout.buffer.write(data)


@main.group()
def claims():
    """Claim lines as recorded (counts only)."""


@claims.command("list")
@click.option("--practice", help="ODS code.")
@click.option("--month", help="Activity month, YYYY-MM.")
@click.option("--run", "run", help="Payment run, YYYY-MM.")
@click.option("--all", "show_all", is_flag=True, help="Include replaced and rejected lines.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def claims_list(ctx, practice, month, run, show_all, as_json):
    """Accepted claim lines, newest first."""
    where, args = [], []
    for col, val in (("org_code", practice and practice.upper()), ("month", month), ("run", run)):
        if val:
            where.append(f"{col}=?")
            args.append(val)
    if not show_all:
        where.append("state='accepted'")
    sql = ("SELECT id, created_at, case_id, org_code, service, month, count, tariff_pence, amount_pence, run, state, "
           "reason, source FROM claims" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC")
    for r in _db(ctx).execute(sql, args):
        d = dict(r)
        d["reference"] = f"LES-{d['case_id']:06d}" if d["case_id"] else None
        if as_json:
            click.echo(json.dumps(d))
        elif d["state"] == "rejected":
            click.echo(f"{d['id']:>6}  {d['org_code']}  rejected  {d['reference']}  {d['reason'][:90]}")
        else:
            click.echo(f"{d['id']:>6}  {d['org_code']}  {d['service']:<14} {d['month']}  {d['count']:>5}  "
                       f"£{d['amount_pence'] / 100:>9.2f}  run {d['run']}  {d['state']:<8} {d['reference']}")


@main.command("check-config")
@click.pass_context
def check_config(ctx):
    """Validate settings and print them (passwords hidden)."""
    s = _settings(ctx)
    d = s.model_dump(mode="json")
    for section in ("imap", "relay"):
        if d[section].get("password"):
            d[section]["password"] = "***"
    click.echo(json.dumps(d, indent=2))


cli_care.add_to(main)
cli_schedule.add_to(main)

if __name__ == "__main__":
    main()
