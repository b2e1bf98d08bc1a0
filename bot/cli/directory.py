"""`lesbot directory`: the organisations allowed to write to the inbox."""
from __future__ import annotations

import click

from bot.cli.common import actor, db as _db, json_lines, table


@click.group()
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
        r = import_rows(_db(ctx), rows, where, actor=actor())
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


def add_to(main):
    main.add_command(directory)
