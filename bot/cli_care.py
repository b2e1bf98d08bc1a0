"""`lesbot referrals|activity|audit|register|events|reconcile`: the clinical side's records."""
from __future__ import annotations

import json
from datetime import datetime

import click

from bot import activity, casework, dates, nhs


def _db(ctx):
    from bot.cli import _db as open_
    return open_(ctx)


def _today():
    from bot.periods import london
    return london(datetime.now().astimezone()).date()


def _date(value):
    if value is None:
        return None
    d = dates.parse(value)
    if d is None:
        raise click.BadParameter(f"{value!r} is not a date (DD/MM/YYYY or YYYY-MM-DD)")
    return d


@click.group()
def referrals():
    """Inter-practice MSK joint-injection referrals."""


@referrals.command("list")
@click.option("--practice", help="Only referrals to or from this ODS code.")
@click.option("--state", help="incomplete, forwarded, not_eligible or seen.")
@click.option("--quarter", help="Only those seen in this quarter, e.g. 2026Q3.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def referrals_list(ctx, practice, state, quarter, as_json):
    """One line per referral, newest first (no patient names: the NHS number's last digits)."""
    where, args = [], []
    if practice:
        where.append("(referrer_code=? OR receiving_code=?)")
        args += [practice.upper()] * 2
    if state:
        where.append("state=?")
        args.append(state)
    if quarter:
        where.append("quarter=?")
        args.append(quarter.upper())
    conn = _db(ctx)
    for r in conn.execute("SELECT * FROM referrals" + (" WHERE " + " AND ".join(where) if where else "") +
                          " ORDER BY id DESC", args):
        d = {"reference": f"LES-{r['id']:06d}", "state": r["state"], "referred_on": r["referred_on"],
             "referrer": r["referrer_code"], "receiving": r["receiving_code"],
             "patient": f"…{r['nhs_number'][-4:]}" if r["nhs_number"] else "", "joint": r["joint"] or "",
             "outcome": r["outcome"] or "", "seen_on": r["seen_on"] or "", "payable": bool(r["payable"]),
             "outcome_due": r["outcome_due"] or ""}
        if as_json:
            click.echo(json.dumps(d))
        else:
            click.echo(f"{d['reference']}  {d['referred_on']}  {d['state']:<12} {d['referrer'] or '-':<7}→ "
                       f"{d['receiving'] or '-':<7} {d['patient']:<6} {d['joint'][:24]:<24} "
                       f"{d['outcome'] or ('due by ' + d['outcome_due'] if d['outcome_due'] else '')}"
                       f"{' ' + d['seen_on'] if d['seen_on'] else ''}{'  payable' if d['payable'] else ''}")


@referrals.command("show")
@click.argument("reference")
@click.pass_context
def referrals_show(ctx, reference):
    """Everything recorded for one referral (patient details included: for the contract team only)."""
    num = int("".join(ch for ch in reference if ch.isdigit()) or 0)
    conn = _db(ctx)
    r = conn.execute("SELECT * FROM referrals WHERE id=?", (num,)).fetchone()
    if r is None:
        raise click.ClickException(f"no referral {reference}")
    d = dict(r)
    d["patient"], d["clinical"] = casework.loads(r["patient"]), casework.loads(r["clinical"])
    d["problems"] = json.loads(r["problems"] or "[]")
    d["nhs_number"] = nhs.display(r["nhs_number"]) if r["nhs_number"] else None
    d["messages"] = [dict(m) for m in conn.execute(
        "SELECT id, received_at, from_addr, kind, state FROM messages WHERE case_id=? OR id IN (?, ?) ORDER BY id",
        (num, r["message"], r["outcome_message"] or 0))]
    d["sent"] = [dict(o) for o in conn.execute(
        "SELECT id, created_at, to_addr, subject, state FROM outbox WHERE case_id=? ORDER BY id", (num,))]
    click.echo(json.dumps(d, indent=2, default=str))


@click.command("activity")
@click.option("--service", type=click.Choice(["msk-injection", "denosumab"]), default="msk-injection",
              show_default=True)
@click.option("--quarter", required=True, help="Calendar quarter, e.g. 2026Q3 (July to September 2026).")
@click.pass_context
def activity_cmd(ctx, service, quarter):
    """The quarterly monitoring return, per practice, as CSV."""
    from bot.cli import _settings
    span = dates.parse_quarter(quarter)
    svc = _settings(ctx).catalogue.get(service)
    try:
        rows = activity.monitoring(_db(ctx), service, quarter, svc.rate_on(span[1]) if svc and span else None)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--quarter")
    click.echo(activity.to_csv(rows), nl=False)


@click.command("audit")
@click.option("--year", type=int, required=True)
@click.pass_context
def audit_cmd(ctx, year):
    """The yearly MSK audit: patients attending and outcomes, per practice, as CSV."""
    click.echo(activity.to_csv(activity.yearly_audit(_db(ctx), year)), nl=False)


@click.group()
def register():
    """The denosumab register kept from hospital letters and practices' reports."""


@register.command("list")
@click.option("--practice", help="ODS code of the registered practice.")
@click.option("--due-before", help="Only active patients whose next dose is due before this date.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def register_list(ctx, practice, due_before, as_json):
    """Each patient: first dose, later doses, next due, overdue."""
    today = _today()
    for r in activity.register_rows(_db(ctx), practice, _date(due_before), today):
        if as_json:
            click.echo(json.dumps(r))
        else:
            click.echo(f"{r['reference']}  {r['practice']}  {nhs.display(r['nhs_number'])}  first {r['first_dose']}  "
                       f"doses {len(r['later_doses'])}  next {r['next_due'] or '-':<10}  {r['status']}"
                       f"{'  OVERDUE' if r['overdue'] else ''}")


@click.command("events")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def events_cmd(ctx, as_json):
    """Untoward events reported under the denosumab LES (late ones flagged)."""
    for e in _db(ctx).execute("SELECT * FROM events ORDER BY id DESC"):
        d = dict(e)
        if as_json:
            click.echo(json.dumps(d))
        else:
            click.echo(f"LES-{d['case_id']:06d}  {d['org_code']}  {d['kind']:<20} event {d['event_on'] or '?'}  "
                       f"reported {d['reported_at'][:16]}{'  LATE (' + format(d['hours'], '.0f') + ' h)' if d['late'] else ''}")


@click.command("reconcile")
@click.option("--as-of", help="Judge claim deadlines on this date (default today).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def reconcile_cmd(ctx, as_of, as_json):
    """Claims set against recorded activity: flags for the contract team, never refusals."""
    for f in activity.reconcile(_db(ctx), _date(as_of) or _today()):
        click.echo(json.dumps(f) if as_json else f"{f['kind']:<24} {f['ods_code']}  {f['service']:<14} "
                                                 f"{f['period']}  {f['detail']}")


def add_to(main):
    for cmd in (referrals, activity_cmd, audit_cmd, register, events_cmd, reconcile_cmd):
        main.add_command(cmd)

