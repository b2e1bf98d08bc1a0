"""`lesbot referrals|activity|audit|register|events|reconcile`: the clinical side's records."""
from __future__ import annotations

import json
import re
from datetime import datetime

import click

from handlers.returns import activity
from handlers import casework
from handlers.contract import dates
from handlers.contract import nhs
from bot.cli.common import (YEAR, date_option, db as _db, json_lines, one_of, practice_option, quarter_option,
                            settings, table)
from handlers.contract.references import reference, reference_or_none
from store import operator

REFERRAL_STATES = ("incomplete", "forwarded", "not_eligible", "seen")


def _today():
    from handlers.contract.periods import london
    return london(datetime.now().astimezone()).date()


@click.group()
def referrals():
    """Inter-practice MSK joint-injection referrals."""


@referrals.command("list")
@click.option("--practice", callback=practice_option, help="Only referrals to or from this ODS code.")
@click.option("--state", callback=one_of(REFERRAL_STATES, "referrals", "state", "a referral state"),
              help="incomplete, forwarded, not_eligible or seen.")
@click.option("--quarter", callback=quarter_option, help="Only those seen in this quarter, e.g. 2026Q3.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per referral.")
@click.pass_context
def referrals_list(ctx, practice, state, quarter, as_json):
    """One line per referral, newest first (no patient names: the NHS number's last digits)."""
    found = []
    for r in operator.referral_rows(_db(ctx), practice, state, quarter):
        found.append({"reference": reference(r["id"]), "state": r["state"], "referred_on": r["referred_on"],
                      "referrer": r["referrer_code"], "receiving": r["receiving_code"],
                      "patient": f"…{r['nhs_number'][-4:]}" if r["nhs_number"] else "", "joint": r["joint"] or "",
                      "outcome": r["outcome"] or "", "seen_on": r["seen_on"] or "", "payable": bool(r["payable"]),
                      "outcome_due": r["outcome_due"] or ""})
    if as_json:
        json_lines(found)
        return
    table(["REFERENCE", "REFERRED", "STATE", "FROM", "TO", "PATIENT", "JOINT", "OUTCOME", "SEEN", "PAYABLE"],
          [[d["reference"], d["referred_on"], d["state"], d["referrer"], d["receiving"], d["patient"], d["joint"],
            d["outcome"] or (f"due by {d['outcome_due']}" if d["outcome_due"] else ""), d["seen_on"],
            "yes" if d["payable"] else "no"] for d in found],
          empty="no referrals match" if practice or state or quarter else "no referrals", widest={"JOINT": 24})


@referrals.command("show")
@click.argument("reference")
@click.pass_context
def referrals_show(ctx, reference):
    """Everything recorded for one referral (patient details included: for the contract team only)."""
    m = re.fullmatch(r"\s*\[?(?:LES-?)?0*(\d{1,12})\]?\s*", reference, re.I)
    if not m:
        raise click.BadParameter(f"{reference!r} is not a reference: write it as LES-000123", param_hint="REFERENCE")
    num = int(m.group(1))
    conn = _db(ctx)
    r = operator.referral(conn, num)
    if r is None:
        raise click.ClickException(f"no referral {reference}")
    d = dict(r)
    d["patient"], d["clinical"] = casework.loads(r["patient"]), casework.loads(r["clinical"])
    d["problems"] = json.loads(r["problems"] or "[]")
    d["nhs_number"] = nhs.display(r["nhs_number"]) if r["nhs_number"] else None
    d["messages"] = [dict(m) for m in operator.case_messages(conn, num, r["message"], r["outcome_message"] or 0)]
    d["sent"] = [dict(o) for o in operator.case_mail(conn, num)]
    click.echo(json.dumps(d, indent=2, default=str))


@click.command("activity")
@click.option("--service", type=click.Choice(["msk-injection", "denosumab"]), default="msk-injection",
              show_default=True)
@click.option("--quarter", required=True, callback=quarter_option,
              help="Calendar quarter, e.g. 2026Q3 (July to September 2026).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per practice instead of CSV.")
@click.pass_context
def activity_cmd(ctx, service, quarter, as_json):
    """The quarterly monitoring return, per practice, as CSV."""
    span = dates.parse_quarter(quarter)
    svc = settings(ctx).catalogue.get(service)
    try:
        rows = activity.monitoring(_db(ctx), service, quarter, svc.rate_on(span[1]) if svc and span else None)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--quarter")
    if as_json:
        json_lines(rows)
    else:
        click.echo(activity.to_csv(rows), nl=False)


@click.command("audit")
@click.option("--year", type=YEAR, required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per practice instead of CSV.")
@click.pass_context
def audit_cmd(ctx, year, as_json):
    """The yearly MSK audit: patients attending and outcomes, per practice, as CSV."""
    rows = activity.yearly_audit(_db(ctx), year)
    if as_json:
        json_lines(rows)
    else:
        click.echo(activity.to_csv(rows), nl=False)


@click.group()
def register():
    """The denosumab register kept from hospital letters and practices' reports."""


@register.command("list")
@click.option("--practice", callback=practice_option, help="ODS code of the registered practice.")
@click.option("--due-before", callback=date_option,
              help="Only active patients whose next dose is due before this date (31/12/2026 or 2026-12-31).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per patient.")
@click.pass_context
def register_list(ctx, practice, due_before, as_json):
    """Each patient: first dose, later doses, next due, overdue."""
    rows = activity.register_rows(_db(ctx), practice, due_before, _today())
    if as_json:
        json_lines(rows)
        return
    table(["REFERENCE", "PRACTICE", "NHS NUMBER", "FIRST DOSE", "LATER DOSES", "NEXT DUE", "STATUS", "OVERDUE"],
          [[r["reference"], r["practice"], nhs.display(r["nhs_number"]), r["first_dose"], len(r["later_doses"]),
            r["next_due"], r["status"], "OVERDUE" if r["overdue"] else ""] for r in rows],
          empty="no patients match" if practice or due_before else "the register is empty",
          right=("LATER DOSES",))


@click.command("events")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event.")
@click.pass_context
def events_cmd(ctx, as_json):
    """Untoward events reported under the denosumab LES (late ones flagged)."""
    found = [dict(e) for e in operator.untoward_events(_db(ctx))]
    if as_json:
        json_lines(found)
        return
    table(["REFERENCE", "PRACTICE", "EVENT", "EVENT ON", "REPORTED (UTC)", "FLAG"],
          [[reference_or_none(d["case_id"]), d["org_code"], d["kind"], d["event_on"] or "?",
            (d["reported_at"] or "")[:16].replace("T", " "),
            f"LATE ({d['hours']:.0f} h)" if d["late"] and d["hours"] is not None else ("LATE" if d["late"] else "")]
           for d in found],
          empty="no untoward events recorded")


@click.command("reconcile")
@click.option("--as-of", callback=date_option, help="Judge claim deadlines on this date (default today).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per flag.")
@click.pass_context
def reconcile_cmd(ctx, as_of, as_json):
    """Claims set against recorded activity: flags for the contract team, never refusals."""
    flags = activity.reconcile(_db(ctx), as_of or _today())
    if as_json:
        json_lines(flags)
        return
    table(["FLAG", "PRACTICE", "SERVICE", "PERIOD", "DETAIL"],
          [[f["kind"], f["ods_code"], f["service"], f["period"], f["detail"]] for f in flags],
          empty="nothing to flag: claims and recorded activity agree")


def add_to(main):
    for cmd in (referrals, activity_cmd, audit_cmd, register, events_cmd, reconcile_cmd):
        main.add_command(cmd)

