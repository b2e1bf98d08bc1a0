"""The `lesbot` command."""
from __future__ import annotations

import json
import os
import sqlite3
import sys

import click

from bot.cli import care as cli_care
from bot.cli import directory as cli_directory
from bot.cli import messages as cli_messages
from bot.cli import outbox as cli_outbox
from bot.cli import payments as cli_payments
from bot.cli import schedule as cli_schedule
from bot.cli import serve as cli_serve
from bot.settings import config as config_mod
from bot.cli.common import settings as _settings


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


@main.command("check-config")
@click.pass_context
def check_config(ctx):
    """Validate settings and print them (passwords, tokens and secrets hidden)."""
    click.echo(json.dumps(config_mod.masked(_settings(ctx)), indent=2))


for part in (cli_serve, cli_directory, cli_messages, cli_outbox, cli_payments, cli_care, cli_schedule):
    part.add_to(main)

if __name__ == "__main__":
    main()
