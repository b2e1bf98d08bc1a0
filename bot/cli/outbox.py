"""`lesbot outbox|bounces`: replies waiting, sent, failed or held, and addresses that bounced."""
from __future__ import annotations

from datetime import datetime, timezone

import click

from bot.cli.common import ID, actor, db as _db, json_lines, one_of, settings as _settings, table, when
from store import operator
from store.db import audit, transaction

OUTBOX_STATES = ("queued", "sending", "sent", "failed", "held", "unknown")


@click.group()
def outbox():
    """Replies waiting to go, sent, failed or held."""


@outbox.command("list")
@click.option("--state", callback=one_of(OUTBOX_STATES, "outbox", "state", "an outbox state"),
              help="queued, sent, failed, held or unknown.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per mail.")
@click.pass_context
def outbox_list(ctx, state, limit, as_json):
    """Newest first."""
    found = operator.latest_mail(_db(ctx), state, limit)
    if as_json:
        json_lines(found)
        return
    table(["ID", "CREATED (UTC)", "STATE", "TO", "SUBJECT", "NOTE"],
          [[d["id"], when(d["created_at"]), d["state"], d["to_addr"], d["subject"], d["last_error"]] for d in found],
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
    conn = _db(ctx)
    with transaction(conn):
        n = operator.queue_again(conn, outbox_id, datetime.now(timezone.utc).isoformat())
        if n:
            audit(conn, "outbox", outbox_id, "resend", actor())
    if not n:
        row = operator.mail_state(conn, outbox_id)
        raise click.ClickException(f"outbox {outbox_id} is {row['state']}, not unknown or failed" if row
                                   else f"no mail {outbox_id} in the outbox (see `lesbot outbox list`)")
    click.echo(f"queued {outbox_id} again")


# -- bounces -----------------------------------------------------------------
@click.group()
def bounces():
    """Addresses that bounced hard and get no more mail until cleared."""


@bounces.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per address.")
@click.pass_context
def bounces_list(ctx, as_json):
    """Suppressed addresses, oldest first."""
    found = [{"email": r["email"], "since": r["since"], "reason": r["reason"], "bounce_message": r["bounce_message"]}
             for r in operator.suppressed(_db(ctx))]
    if as_json:
        json_lines(found)
        return
    table(["ADDRESS", "SINCE (UTC)", "REASON", "BOUNCE MESSAGE"],
          [[d["email"], when(d["since"]), d["reason"], d["bounce_message"]] for d in found],
          empty="no address is suppressed")


@bounces.command("clear")
@click.argument("address")
@click.pass_context
def bounces_clear(ctx, address):
    """Let ADDRESS receive mail again."""
    conn = _db(ctx)
    with transaction(conn):
        n = operator.unsuppress(conn, address.lower())
        if n:
            audit(conn, "address", address.lower(), "cleared", actor())
    if not n:
        raise click.ClickException(f"{address} is not suppressed")
    click.echo(f"cleared {address}")


def add_to(main):
    main.add_command(outbox)
    main.add_command(bounces)
