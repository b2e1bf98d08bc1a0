"""`lesbot template|payments|claims`: claim forms, payment runs and the claim lines recorded."""
from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import click

from bot.cli.common import actor, db as _db, json_lines, month_option, practice_option, run_option, table
from bot.cli.common import settings as _settings
from handlers.contract.references import reference_or_none
from store.operator import claim_lines


@click.command()
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


@click.group()
def payments():
    """Payment runs: close a month's run, export its schedule."""


@payments.command("close")
@click.argument("run")
@click.pass_context
def payments_close(ctx, run):
    """Close the payment run RUN (YYYY-MM): later claims for it go to a human."""
    from handlers.claims.payments import close
    try:
        close(_db(ctx), _run_arg(run), actor())
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


@click.group()
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
    found = []
    for r in claim_lines(_db(ctx), practice, month, run, show_all):
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


def add_to(main):
    for cmd in (template, payments, claims):
        main.add_command(cmd)
