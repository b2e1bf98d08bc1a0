"""The `lesbot` command."""
from __future__ import annotations

import json
import os
import sqlite3
import sys
from datetime import datetime, timezone
from pathlib import Path

import click

from bot.cli import care as cli_care
from bot.cli import schedule as cli_schedule
from bot.settings import config as config_mod
from bot.cli.common import ID, json_lines, month_option, not_email, one_of, practice_option, run_option, table
from bot.cli.common import db as _db, settings as _settings
from handlers.contract.references import reference_or_none


class _Lesbot(click.Group):
    """Whatever goes wrong ends in one line and a non-zero exit, never a traceback: expected
    problems (settings, files, the database) say what is wrong; anything else is an internal
    error whose traceback goes to the error log."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort,
                BrokenPipeError, KeyboardInterrupt):
            raise                       # click reports these itself (a closed pipe quietly)
        except config_mod.ConfigError as e:
            raise click.ClickException(str(e)) from None
        except sqlite3.DatabaseError as e:
            if type(e) not in (sqlite3.OperationalError, sqlite3.DatabaseError):
                return self._internal(ctx, e)        # an IntegrityError, a bad query: a bug
            if "locked" in str(e) or "busy" in str(e):
                raise click.ClickException("the database is busy (another lesbot is writing to it): "
                                           "try again in a moment") from None
            raise click.ClickException(f"database problem: {e}") from None
        except OSError as e:
            where = f"{e.filename}: " if e.filename else ""
            raise click.ClickException(f"{where}{e.strerror or e}") from None
        except Exception as e:
            self._internal(ctx, e)

    @staticmethod
    def _internal(ctx, e: Exception):
        import logging
        from bot.settings.logs import record_internal_error, scrub
        logging.getLogger("lesbot.cli").debug("internal error", exc_info=e)      # shown with -v
        s = ctx.meta.get("lesbot.settings")
        home = s.home if s else os.environ.get("LESBOT_HOME", "./var")
        where = record_internal_error(home, e, sys.argv[1:])
        detail = scrub(" ".join(str(e).split()))[:160]
        raise click.ClickException(f"internal error ({type(e).__name__}{': ' + detail if detail else ''}); "
                                   f"the details are in {where}") from None


def _version(ctx, param, value):
    if value and not ctx.resilient_parsing:
        click.echo(f"lesbot {config_mod.version()}")
        ctx.exit()


@click.group(cls=_Lesbot, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log more (to stderr).")
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_version,
              help="Print lesbot's version and exit.")
@click.pass_context
def main(ctx, verbose):
    """lesbot runs the shared inbox of an NHS Local Enhanced Service contract team.

    Mail comes in over SMTP (`serve`), IMAP (set imap.enabled) or from files
    (`ingest`); every message is stored, classified, answered through the
    outbox and recorded. Data lives under LESBOT_HOME (default ./var); settings
    come from ./lesbot.toml (or LESBOT_CONFIG) and LESBOT_* variables.
    """
    from bot.settings.logs import setup
    setup(verbose)


@main.command()
@click.option("--smtp-host", default=None, help="Address to listen on [settings: smtp_host, 127.0.0.1].")
@click.option("--smtp-port", type=click.IntRange(1, 65535), default=None,
              help="Port to listen on [settings: smtp_port, 2525].")
@click.pass_context
def serve(ctx, smtp_host, smtp_port):
    """Run lesbot: the SMTP listener, IMAP reader (if enabled), processor and mailer.

    Stops cleanly on SIGTERM or Ctrl-C; anything accepted but not yet handled is
    handled at the next start.
    """
    s = _settings(ctx)
    from bot.processes.server import ServeError, run
    try:
        run(s, smtp_host or s.smtp_host, smtp_port or s.smtp_port)
    except ServeError as e:
        raise click.ClickException(str(e)) from None


@main.command()
@click.option("--wake-fd", type=click.IntRange(0), default=None, hidden=True)
@click.option("--nice", type=click.IntRange(0, 19), default=0, help="Lower this process's CPU priority by N (0-19).")
@click.pass_context
def worker(ctx, wake_fd, nice):
    """Process stored messages and deliver the outbox, without listening.

    `serve` starts one itself; run this alone to work through a backlog (for
    example after `ingest --no-send`, or on a second machine sharing the files).
    """
    from bot.processes.worker import run as run_worker
    ctx.meta["lesbot.quiet"] = wake_fd is not None     # serve's own worker: serve has warned already
    _db(ctx).close()              # a database that cannot be opened is named now, in one line
    ctx.meta.pop("lesbot.db", None)
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
    from bot.doors.files import SourceError, expand
    from bot.mail.intake import store
    from bot.processes.mailer import Mailer
    from bot.mail.parse import received_time
    from bot.pipeline.pipeline import Pipeline
    s = _settings(ctx)
    conn = _db(ctx)
    try:
        sources = expand(list(paths))
    except SourceError as e:
        raise click.ClickException(str(e))
    except OSError as e:
        raise click.ClickException(f"{e.filename or ''}: cannot read it: {e.strerror or e}")
    if received_at is not None and received_at.tzinfo is None:
        received_at = received_at.replace(tzinfo=timezone.utc)
    pipeline = Pipeline(s, conn)
    counts: dict[str, int] = {}
    skipped = capped = 0
    show_bar = sys.stderr.isatty()
    with click.progressbar(sources, label="ingesting", file=sys.stderr, show_pos=True) if show_bar \
            else _nullbar(sources) as bar:
        for label, loader in bar:
            try:
                raw = loader()
            except OSError as e:
                click.echo(f"{label}: cannot read it: {e.strerror or e}; skipped", err=True)
                skipped += 1
                continue
            why = not_email(raw)
            if why:
                # An XLSX or a PNG given by mistake is not mail from an unknown sender: store nothing.
                click.echo(f"{label}: not an email message ({why}); skipped, nothing stored", err=True)
                skipped += 1
                continue
            when = received_at or received_time(raw) or datetime.now(timezone.utc)
            new_id = store(conn, raw, "file", when, None, None, str(label))
            result = pipeline.process(new_id)
            if result is None:
                continue
            counts[result["outcome"]] = counts.get(result["outcome"], 0) + 1
            if _held_by_cap(conn, new_id):
                capped += 1
            if as_json:
                result.pop("id", None)
                click.echo(json.dumps(result))
    pipeline.close()
    if not no_send:
        mailer = Mailer(s, conn)
        while sum(mailer.deliver_due().values()):     # every due reply, not just the first batch
            pass
    notes = []
    if capped:
        cap = s.limits.replies_per_sender_per_day
        notes.append(f"{capped} {'reply' if capped == 1 else 'replies'} held back: an address reached the "
                     f"daily cap of {cap} (limits.replies_per_sender_per_day)")
    if skipped:
        notes.append(f"{skipped} file{'' if skipped == 1 else 's'} skipped (see above)")
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "nothing ingested"
    if not as_json:
        click.echo("; ".join([summary, *notes]))
    elif notes:
        click.echo("; ".join(notes), err=True)
    if skipped:
        ctx.exit(1)       # something given was not taken in: a script should notice


def _held_by_cap(conn, msg_id: int) -> bool:
    """The pipeline records why a message got no reply; the outbox's daily cap is one reason."""
    row = conn.execute("SELECT no_reply_reason FROM messages WHERE id=?", (msg_id,)).fetchone()
    return bool(row and row[0] and row[0].startswith("daily reply cap"))


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
@click.argument("file", type=click.Path())
@click.pass_context
def directory_import(ctx, file):
    """Load FILE, a CSV or XLSX (first sheet) with the columns ods_code, name, kind, emails,
    services (and postcodes); re-importing updates.

    A CSV may be UTF-8 (with or without a BOM) or Windows-1252, as Excel saves it. A bad file
    stops with one line naming it and what is wrong, and nothing is imported.
    """
    from store.directory import DirectoryError, read_table, import_rows
    try:
        rows, where = read_table(file)
        r = import_rows(_db(ctx), rows, where, actor=_actor())
    except DirectoryError as e:
        raise click.ClickException(f"{file}: {' '.join(str(e).split())}")
    click.echo(f"{r['added']} added, {r['updated']} updated")


@directory.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per organisation.")
@click.pass_context
def directory_list(ctx, as_json):
    """Show the organisations, their addresses and services."""
    from store.directory import list_orgs
    orgs = list_orgs(_db(ctx))
    if as_json:
        json_lines(orgs)
        return
    table(["ODS", "KIND", "NAME", "SERVICES", "EMAILS"],
          [[o["ods_code"], o["kind"], o["name"], ", ".join(o["services"]), ", ".join(o["emails"])] for o in orgs],
          empty="the directory is empty: load it with `lesbot directory import FILE.csv`")


# -- messages ----------------------------------------------------------------
MESSAGE_STATES = ("received", "accepted", "partially_accepted", "rejected", "quarantined", "ignored", "duplicate",
                  "failed", "dropped")


def _message_rows(conn, where: str = "", args=(), limit: int = 50):
    return conn.execute(
        "SELECT id, received_at, source, state, kind, from_addr, org_code, case_id, duplicate_of, "
        f"no_reply_reason, errors, error, size FROM messages {where} ORDER BY id DESC LIMIT ?",
        (*args, limit)).fetchall()


def _when(iso: str | None) -> str:
    return (iso or "")[:16].replace("T", " ")


def _print_rows(rows, as_json, empty="no messages"):
    from handlers.contract.references import reference
    out = []
    for r in rows:
        d = dict(r)
        d["reference"] = reference(d["case_id"]) if d["case_id"] else None
        d["errors"] = json.loads(d["errors"] or "[]")
        out.append(d)
    if as_json:
        json_lines(out)
        return
    rows = []
    for d in out:
        note = f"duplicate of {d['duplicate_of']}" if d["duplicate_of"] else ""
        if d["error"]:
            note += ("; " if note else "") + "error: " + d["error"].splitlines()[0]
        elif d["errors"]:
            note += ("; " if note else "") + "; ".join(f"{e.get('field')}: {e.get('problem')}" for e in d["errors"])
        rows.append([d["id"], _when(d["received_at"]), d["state"], d["kind"], d["from_addr"], d["reference"], note])
    table(["ID", "RECEIVED (UTC)", "STATE", "KIND", "FROM", "REFERENCE", "NOTE"], rows, empty=empty,
          right=("ID",), widest={"FROM": 40, "NOTE": 90})


@main.group()
def messages():
    """Stored messages and their states."""


@messages.command("list")
@click.option("--state", callback=one_of(MESSAGE_STATES, "messages", "state", "a message state"),
              help="Only this state (received, accepted, rejected, quarantined, failed, ...).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per message.")
@click.pass_context
def messages_list(ctx, state, limit, as_json):
    """Newest first."""
    conn = _db(ctx)
    rows = _message_rows(conn, "WHERE state=?", (state,), limit) if state else _message_rows(conn, limit=limit)
    _print_rows(rows, as_json, empty=f"no {state} messages" if state else "no messages")


@messages.command("show")
@click.argument("msg_id", type=ID)
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
    from bot.processes.mailer import Mailer
    from bot.pipeline.pipeline import Pipeline
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
@click.argument("msg_id", type=ID)
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
@click.option("--json", "as_json", is_flag=True, help="One JSON object per message.")
@click.pass_context
def quarantine_list(ctx, as_json):
    """What is waiting for a decision."""
    _print_rows(_message_rows(_db(ctx), "WHERE state='quarantined'", (), 1000), as_json,
                empty="nothing is quarantined")


@quarantine.command("show")
@click.argument("msg_id", type=ID)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def quarantine_show(ctx, msg_id, as_json):
    """Why a message is held: what lesbot read, the competing candidates, what it needs."""
    from bot.mail.parse import parse
    from handlers.contract.references import reference
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
@click.argument("msg_id", type=ID)
@click.option("--trust-sender", "org", metavar="ORG", callback=practice_option,
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
    from store.directory import DirectoryError, add_email
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
        raise click.ClickException(f"--set practice={hints['practice']}: {hints['practice']} is not in the directory")
    _requeue(conn, msg_id, ("quarantined",), "released", _actor(), released=True, hints=hints)
    _process_now(ctx, conn, msg_id)


@quarantine.command("drop")
@click.argument("msg_id", type=ID)
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


OUTBOX_STATES = ("queued", "sending", "sent", "failed", "held", "unknown")


@outbox.command("list")
@click.option("--state", callback=one_of(OUTBOX_STATES, "outbox", "state", "an outbox state"),
              help="queued, sent, failed, held or unknown.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per mail.")
@click.pass_context
def outbox_list(ctx, state, limit, as_json):
    """Newest first."""
    conn = _db(ctx)
    where, args = ("WHERE state=?", (state,)) if state else ("", ())
    found = [dict(r) for r in conn.execute(
        "SELECT id, created_at, message, to_addr, subject, state, attempts, next_attempt_at, "
        f"last_error FROM outbox {where} ORDER BY id DESC LIMIT ?", (*args, limit))]
    if as_json:
        json_lines(found)
        return
    table(["ID", "CREATED (UTC)", "STATE", "TO", "SUBJECT", "NOTE"],
          [[d["id"], _when(d["created_at"]), d["state"], d["to_addr"], d["subject"], d["last_error"]] for d in found],
          empty=f"no {state} mail in the outbox" if state else "the outbox is empty", right=("ID",),
          widest={"SUBJECT": 60, "NOTE": 60})


@outbox.command("flush")
@click.pass_context
def outbox_flush(ctx):
    """Deliver everything queued now, including replies waiting for a retry."""
    from bot.processes.mailer import Mailer
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
@click.argument("outbox_id", type=ID)
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
        row = conn.execute("SELECT state FROM outbox WHERE id=?", (outbox_id,)).fetchone()
        raise click.ClickException(f"outbox {outbox_id} is {row['state']}, not unknown or failed" if row
                                   else f"no mail {outbox_id} in the outbox (see `lesbot outbox list`)")
    click.echo(f"queued {outbox_id} again")


# -- bounces -----------------------------------------------------------------
@main.group()
def bounces():
    """Addresses that bounced hard and get no more mail until cleared."""


@bounces.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per address.")
@click.pass_context
def bounces_list(ctx, as_json):
    """Suppressed addresses, oldest first."""
    found = [{"email": r["email"], "since": r["since"], "reason": r["reason"], "bounce_message": r["bounce_message"]}
             for r in _db(ctx).execute("SELECT * FROM suppressed ORDER BY since")]
    if as_json:
        json_lines(found)
        return
    table(["ADDRESS", "SINCE (UTC)", "REASON", "BOUNCE MESSAGE"],
          [[d["email"], _when(d["since"]), d["reason"], d["bounce_message"]] for d in found],
          empty="no address is suppressed")


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
@click.option("--practice", required=True, callback=practice_option, help="The practice's ODS code.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="Where to write the .xlsx.")
@click.option("--month", callback=month_option, help="Pre-fill the claim month (e.g. 2026-10).")
@click.pass_context
def template(ctx, practice, out, month):
    """Write a practice's claim form (XLSX), pre-filled with its code, name and services.

    Practices get the same form by emailing the subject TEMPLATE.
    """
    from handlers.claims.form import build_form
    from store.directory import list_orgs, Org
    s = _settings(ctx)
    org = next((o for o in list_orgs(_db(ctx)) if o["ods_code"] == practice), None)
    if org is None:
        raise click.ClickException(f"no organisation {practice} in the directory")
    now = datetime.now(timezone.utc)
    m = datetime.strptime(month, "%Y-%m").date() if month else None
    data = build_form(Org(org["ods_code"], org["name"], org["kind"], org["services"]), s.catalogue,
                      s.inboxes[0], now.date(), m)
    try:
        Path(out).write_bytes(data)
    except OSError as e:
        raise click.ClickException(f"cannot write {out}: {e.strerror or e}")
    click.echo(f"wrote {out}")


def _run_arg(run: str) -> str:
    from handlers.claims.payments import RUN_RE
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
    from handlers.claims.payments import close
    try:
        close(_db(ctx), _run_arg(run), _actor())
    except ValueError as e:
        raise click.ClickException(str(e))
    click.echo(f"payment run {run} closed")


@payments.command("export")
@click.option("--run", "runs", required=True, multiple=True,
              help="The payment run, YYYY-MM. Repeat for several runs (one sheet each in xlsx).")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="csv", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), help="File to write (default: standard output for csv).")
@click.pass_context
def payments_export(ctx, runs, fmt, out):
    """One row per practice and service: counts, tariff, amount, claim references; totals last.

    xlsx: a Summary sheet (per practice, per service, grand total) and a sheet per run, with
    totals as formulas that also carry their values. csv: one table, a Total row last.
    """
    from handlers.claims.payments import export_csv, export_xlsx
    runs = [_run_arg(r) for r in runs]
    if fmt == "xlsx" and not out:
        raise click.ClickException("give --out FILE for xlsx")
    conn = _db(ctx)
    catalogue = _settings(ctx).catalogue
    data = export_csv(conn, runs, catalogue) if fmt == "csv" else export_xlsx(conn, runs, catalogue)
    if out:
        tmp = Path(f"{out}.part")
        try:
            tmp.write_bytes(data)
            tmp.replace(out)        # a reader never sees half a file
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise click.ClickException(f"cannot write {out}: {e.strerror or e}")
        click.echo(f"wrote {out}")
    else:
        sys.stdout.buffer.write(data)


@main.group()
def claims():
    """Claim lines as recorded (counts only)."""


@claims.command("list")
@click.option("--practice", callback=practice_option, help="ODS code.")
@click.option("--month", callback=month_option, help="Activity month: 2026-10, Oct 2026, October (the latest one).")
@click.option("--run", "run", callback=run_option, help="Payment run, a month: 2026-11.")
@click.option("--all", "show_all", is_flag=True, help="Include replaced and rejected lines.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per claim line.")
@click.pass_context
def claims_list(ctx, practice, month, run, show_all, as_json):
    """Accepted claim lines, newest first."""
    where, args = [], []
    for col, val in (("org_code", practice), ("month", month), ("run", run)):
        if val:
            where.append(f"{col}=?")
            args.append(val)
    if not show_all:
        where.append("state='accepted'")
    sql = ("SELECT id, created_at, case_id, org_code, service, month, count, tariff_pence, amount_pence, run, state, "
           "reason, source FROM claims" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC")
    found = []
    for r in _db(ctx).execute(sql, args):
        d = dict(r)
        d["reference"] = reference_or_none(d["case_id"])
        found.append(d)
    if as_json:
        json_lines(found)
        return
    money = lambda p: f"£{p / 100:,.2f}" if p is not None else None     # noqa: E731
    table(["ID", "PRACTICE", "SERVICE", "MONTH", "COUNT", "AMOUNT", "RUN", "STATE", "REFERENCE", "REASON"],
          [[d["id"], d["org_code"], d["service"], d["month"], d["count"], money(d["amount_pence"]), d["run"],
            d["state"], d["reference"], d["reason"]] for d in found],
          empty="no claim lines match" if practice or month or run else "no claim lines",
          right=("ID", "COUNT", "AMOUNT"), widest={"REASON": 90})


@main.command("check-config")
@click.pass_context
def check_config(ctx):
    """Validate settings and print them (passwords, tokens and secrets hidden)."""
    click.echo(json.dumps(config_mod.masked(_settings(ctx)), indent=2))


cli_care.add_to(main)
cli_schedule.add_to(main)

if __name__ == "__main__":
    main()
