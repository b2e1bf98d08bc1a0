"""`lesbot remind` and `lesbot digest`: the scheduler's jobs, by hand or from cron."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import click

from bot.periods import LONDON


def _now(value):
    if not value:
        return datetime.now(timezone.utc)
    try:
        d = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: write it as 2026-12-03T09:00 (London time unless an offset is given)")
    return (d if d.tzinfo else d.replace(tzinfo=LONDON)).astimezone(timezone.utc)


def _deliver(ctx, conn):
    from bot.cli import _settings
    from bot.mailer import Mailer
    Mailer(_settings(ctx), conn).deliver_due()


@click.command("remind")
@click.option("--now", "now_s", help="Act as if it were this time (e.g. 2026-12-03T09:00, London).")
@click.option("--dry-run", is_flag=True, help="Show what would be sent; send and record nothing.")
@click.option("--no-send", is_flag=True, help="Queue in the outbox but do not deliver now.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def remind(ctx, now_s, dry_run, no_send, as_json):
    """Send the reminders that are due (claims, money about to be lost, outcomes, recalls)."""
    from bot import reminders
    from bot.cli import _db, _settings
    conn = _db(ctx)
    out = reminders.run(_settings(ctx), conn, _now(now_s), dry_run=dry_run)
    for r in out:
        click.echo(json.dumps(r) if as_json else
                   f"{'would send' if dry_run else ('NOT SENT' if r.get('refused') else 'queued')}  "
                   f"{r['kind']:<14} {r['org']:<7} {r['to']:<36} {r['items']} item(s)"
                   f"{'  ' + r['refused'] if r.get('refused') else ''}")
    if not out and not as_json:
        click.echo("no reminders are due")
    if out and not dry_run and not no_send:
        _deliver(ctx, conn)


@click.command("digest")
@click.option("--period", type=click.Choice(["day", "month"]), default="day", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["text", "html"]), default="text", show_default=True)
@click.option("--now", "now_s", help="Act as if it were this time (London).")
@click.option("--dry-run", is_flag=True, help="Print it; send and record nothing.")
@click.option("--no-send", is_flag=True, help="Queue it in the outbox but do not deliver now.")
@click.option("--chart/--no-chart", default=None, help="Include the 12-month chart (default: monthly only).")
@click.pass_context
def digest_cmd(ctx, period, fmt, now_s, dry_run, no_send, chart):
    """Print the contract team's digest and send it to contract_team (once per day or month)."""
    from bot import digest
    from bot.cli import _db, _settings
    conn = _db(ctx)
    r = digest.run(_settings(ctx), conn, _now(now_s), period, dry_run=dry_run, with_chart=chart)
    click.echo(r["text"] if fmt == "text" else r["html"])
    if r["why"]:
        click.echo(f"not sent: {r['why']}", err=True)
    elif r["sent"] and not no_send:
        _deliver(ctx, conn)


@click.command("reminders")
@click.option("--kind", help="claims_due, money_at_risk, outcome_chase or recall.")
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def reminders_log(ctx, kind, limit, as_json):
    """The log of reminders sent (or refused, and why), newest first; and the scheduler's job runs."""
    from bot.cli import _db
    conn = _db(ctx)
    rows = conn.execute("SELECT kind, key, org_code, case_id, state, why, sent_at FROM reminders" +
                        (" WHERE kind=?" if kind else "") + " ORDER BY id DESC LIMIT ?",
                        ((kind, limit) if kind else (limit,))).fetchall()
    for r in rows:
        d = dict(r) | {"reference": f"LES-{r['case_id']:06d}"}
        click.echo(json.dumps(d) if as_json else
                   f"{d['sent_at'][:16]}  {d['kind']:<14} {d['org_code']:<7} {d['reference']}  {d['state']:<7} "
                   f"{d['key']}{'  ' + d['why'] if d['why'] else ''}")
    if not as_json:
        for j in conn.execute("SELECT job, due_at, started_at, finished_at, error FROM job_runs ORDER BY id DESC "
                              "LIMIT 10"):
            click.echo(f"job {j['job']:<13} started {j['started_at'][:19]}  "
                       f"{'FAILED: ' + j['error'] if j['error'] else ('done' if j['finished_at'] else 'running')}")


def add_to(main):
    main.add_command(remind)
    main.add_command(digest_cmd)
    main.add_command(reminders_log)
