"""`lesbot remind` and `lesbot digest`: the scheduler's jobs, by hand or from cron."""
from __future__ import annotations

from datetime import datetime, timezone

import click

from bot.cli.common import db as _db, json_lines, one_of, settings as _settings, table
from handlers.contract.periods import LONDON
from handlers.contract.references import reference_or_none
from store import operator

REMINDER_KINDS = ("claims_due", "money_at_risk", "outcome_chase", "recall", "imsk_triage_due", "imsk_triage_overdue")


def _now_option(ctx, param, value):
    """--now: a London wall-clock time (an offset may be given); None: now."""
    if value is None:
        return None
    try:
        d = datetime.fromisoformat(value.strip())
        if not 2000 <= d.year <= 2100:
            raise ValueError
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a time: write it as 2026-12-03T09:00 "
                                 f"(London time unless an offset is given)", param=param) from None
    return (d if d.tzinfo else d.replace(tzinfo=LONDON)).astimezone(timezone.utc)


def _now(value):
    return value or datetime.now(timezone.utc)


def _deliver(ctx, conn):
    from bot.processes.mailer import Mailer
    Mailer(_settings(ctx), conn).deliver_due()


@click.command("remind")
@click.option("--now", "now_s", callback=_now_option,
              help="Act as if it were this time (e.g. 2026-12-03T09:00, London).")
@click.option("--dry-run", is_flag=True, help="Show what would be sent; send and record nothing.")
@click.option("--no-send", is_flag=True, help="Queue in the outbox but do not deliver now.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per reminder email.")
@click.pass_context
def remind(ctx, now_s, dry_run, no_send, as_json):
    """Send the reminders that are due (claims, money about to be lost, outcomes, recalls)."""
    from handlers.clock import reminders
    conn = _db(ctx)
    out = reminders.run(_settings(ctx), conn, _now(now_s), dry_run=dry_run)
    if as_json:
        json_lines(out)
    elif out:
        table(["ACTION", "KIND", "PRACTICE", "TO", "ITEMS", "WHY NOT SENT"],
              [["would send" if dry_run else ("NOT SENT" if r.get("refused") else "queued"), r["kind"], r["org"],
                r["to"], r["items"], r.get("refused")] for r in out], right=("ITEMS",))
    else:
        click.echo("no reminders are due")
    if out and not dry_run and not no_send:
        _deliver(ctx, conn)


@click.command("digest")
@click.option("--period", type=click.Choice(["day", "month"]), default="day", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["text", "html"]), default="text", show_default=True)
@click.option("--now", "now_s", callback=_now_option, help="Act as if it were this time (London).")
@click.option("--dry-run", is_flag=True, help="Print it; send and record nothing.")
@click.option("--no-send", is_flag=True, help="Queue it in the outbox but do not deliver now.")
@click.option("--chart/--no-chart", default=None, help="Include the 12-month chart (default: monthly only).")
@click.pass_context
def digest_cmd(ctx, period, fmt, now_s, dry_run, no_send, chart):
    """Print the contract team's digest and send it to contract_team (once per day or month)."""
    from handlers.clock import digest
    conn = _db(ctx)
    r = digest.run(_settings(ctx), conn, _now(now_s), period, dry_run=dry_run, with_chart=chart)
    click.echo(r["text"] if fmt == "text" else r["html"])
    if r["why"]:
        click.echo(f"not sent: {r['why']}", err=True)
    elif r["sent"] and not no_send:
        _deliver(ctx, conn)


@click.command("reminders")
@click.option("--kind", callback=one_of(REMINDER_KINDS, "reminders", "kind", "a kind of reminder"),
              help="claims_due, money_at_risk, outcome_chase, recall, imsk_triage_due or imsk_triage_overdue.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per reminder (the job runs are left out).")
@click.pass_context
def reminders_log(ctx, kind, limit, as_json):
    """The log of reminders sent (or refused, and why), newest first; and the scheduler's job runs."""
    conn = _db(ctx)
    rows = operator.reminder_log(conn, kind, limit)
    found = [dict(r) | {"reference": reference_or_none(r["case_id"])} for r in rows]
    if as_json:
        json_lines(found)
        return
    table(["SENT (UTC)", "KIND", "PRACTICE", "REFERENCE", "STATE", "KEY", "WHY"],
          [[(d["sent_at"] or "")[:16].replace("T", " "), d["kind"], d["org_code"], d["reference"], d["state"],
            d["key"], d["why"]] for d in found],
          empty=f"no {kind} reminders yet" if kind else "no reminders yet")
    jobs = operator.recent_job_runs(conn, 10)
    if jobs:
        click.echo("")
        table(["SCHEDULER", "STARTED (UTC)", "RESULT"],
              [[f"job {j['job']}", (j["started_at"] or "")[:19].replace("T", " "),
                "FAILED: " + j["error"] if j["error"] else ("done" if j["finished_at"] else "running")] for j in jobs])


def add_to(main):
    main.add_command(remind)
    main.add_command(digest_cmd)
    main.add_command(reminders_log)
