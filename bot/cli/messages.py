"""`lesbot messages|quarantine`: stored messages, and those kept for a human to decide."""
from __future__ import annotations

import json
import sys

import click

from bot.cli.common import (ID, actor, db as _db, json_lines, one_of, practice_option, settings as _settings, table,
                            when)
from store import operator
from store.db import audit, transaction

MESSAGE_STATES = ("received", "accepted", "partially_accepted", "rejected", "quarantined", "ignored", "duplicate",
                  "failed", "dropped")


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
        rows.append([d["id"], when(d["received_at"]), d["state"], d["kind"], d["from_addr"], d["reference"], note])
    table(["ID", "RECEIVED (UTC)", "STATE", "KIND", "FROM", "REFERENCE", "NOTE"], rows, empty=empty,
          right=("ID",), widest={"FROM": 40, "NOTE": 90})


@click.group()
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
    rows = operator.latest_messages(_db(ctx), state, limit)
    _print_rows(rows, as_json, empty=f"no {state} messages" if state else "no messages")


@messages.command("show")
@click.argument("msg_id", type=ID)
@click.option("--raw", is_flag=True, help="Print the raw message as received.")
@click.pass_context
def messages_show(ctx, msg_id, raw):
    """One message: its state, errors, history and replies."""
    conn = _db(ctx)
    row = operator.message(conn, msg_id)
    if not row:
        raise click.ClickException(f"no message {msg_id}")
    if raw:
        sys.stdout.buffer.write(row["raw"])
        return
    d = {k: row[k] for k in row.keys() if k != "raw"}
    d["errors"] = json.loads(d["errors"] or "[]")
    d["history"] = [dict(a) for a in operator.message_history(conn, msg_id)]
    d["replies"] = [dict(o) for o in operator.replies_to(conn, msg_id)]
    click.echo(json.dumps(d, indent=2, default=str))


def _requeue(conn, msg_id: int, from_states: tuple, action: str, who: str, released: bool = False,
             hints: dict | None = None):
    with transaction(conn):
        row = operator.state_and_hints(conn, msg_id)
        if not row:
            raise click.ClickException(f"no message {msg_id}")
        if row["state"] not in from_states:
            raise click.ClickException(f"message {msg_id} is {row['state']}, not {' or '.join(from_states)}")
        merged = {**json.loads(row["hints"] or "{}"), **(hints or {})}
        operator.requeue_message(conn, msg_id, released, json.dumps(merged) if merged else None)
        audit(conn, "message", msg_id, action, who, hints or None)


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


@messages.command("retry")
@click.argument("msg_id", type=ID)
@click.pass_context
def messages_retry(ctx, msg_id):
    """Process a failed message again, now."""
    conn = _db(ctx)
    _requeue(conn, msg_id, ("failed",), "retried", actor())
    _process_now(ctx, conn, msg_id)


# -- quarantine --------------------------------------------------------------
@click.group()
def quarantine():
    """Messages kept for a human: unknown senders, spoofing, suspicious attachments."""


@quarantine.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per message.")
@click.pass_context
def quarantine_list(ctx, as_json):
    """What is waiting for a decision."""
    _print_rows(operator.latest_messages(_db(ctx), "quarantined", 1000), as_json,
                empty="nothing is quarantined")


@quarantine.command("show")
@click.argument("msg_id", type=ID)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def quarantine_show(ctx, msg_id, as_json):
    """Why a message is held: what lesbot read, the competing candidates, what it needs."""
    from bot.mail.parse import parse
    from handlers.contract.references import reference
    row = operator.message(_db(ctx), msg_id)
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
    from store.directory import DirectoryError, add_email, org_by_code
    conn = _db(ctx)
    if org:
        sender = operator.quarantined_sender(conn, msg_id)
        if not sender:
            raise click.ClickException(f"message {msg_id} is not quarantined or has no sender")
        try:
            with transaction(conn):
                add_email(conn, org, sender, actor())
        except DirectoryError as e:
            raise click.ClickException(str(e))
    if hints.get("practice") and org_by_code(conn, hints["practice"]) is None:
        raise click.ClickException(f"--set practice={hints['practice']}: {hints['practice']} is not in the directory")
    _requeue(conn, msg_id, ("quarantined",), "released", actor(), released=True, hints=hints)
    _process_now(ctx, conn, msg_id)


@quarantine.command("drop")
@click.argument("msg_id", type=ID)
@click.pass_context
def quarantine_drop(ctx, msg_id):
    """Give up on a quarantined message (kept, marked dropped, never answered)."""
    conn = _db(ctx)
    with transaction(conn):
        n = operator.drop_quarantined(conn, msg_id)
        if n:
            audit(conn, "message", msg_id, "dropped", actor())
    if not n:
        raise click.ClickException(f"message {msg_id} is not quarantined")
    click.echo(f"dropped {msg_id}")


def add_to(main):
    main.add_command(messages)
    main.add_command(quarantine)
