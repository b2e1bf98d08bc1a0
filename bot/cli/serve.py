"""`lesbot serve|worker|ingest`: mail in, processed, replies out."""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

import click

from bot.cli.common import db as _db, not_email, settings as _settings
from store.operator import no_reply_reason


@click.command()
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


@click.command()
@click.option("--wake-fd", type=click.IntRange(0), default=None, hidden=True)
@click.option("--ready-fd", type=click.IntRange(0), default=None, hidden=True)
@click.option("--mail-wake-fd", type=click.IntRange(0), default=None, hidden=True)
@click.option("--role", type=click.Choice(["all", "process", "deliver"]), default="all", hidden=True)
@click.option("--nice", type=click.IntRange(0, 19), default=0, help="Lower this process's CPU priority by N (0-19).")
@click.pass_context
def worker(ctx, wake_fd, ready_fd, mail_wake_fd, role, nice):
    """Process stored messages and deliver the outbox, without listening.

    `serve` starts one itself; run this alone to work through a backlog (for
    example after `ingest --no-send`, or on a second machine sharing the files).
    """
    from bot.processes.worker import run as run_worker
    ctx.meta["lesbot.quiet"] = wake_fd is not None     # serve's own worker: serve has warned already
    _db(ctx).close()              # a database that cannot be opened is named now, in one line
    ctx.meta.pop("lesbot.db", None)
    run_worker(_settings(ctx), wake_fd=wake_fd, nice=nice, ready_fd=ready_fd, role=role, mail_wake_fd=mail_wake_fd)


@click.command()
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
    from bot.processes.mailer import Mailer
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
    counts, skipped, capped = _take_in(s, conn, sources, received_at, as_json)
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


def _take_in(s, conn, sources, received_at, as_json) -> tuple[dict[str, int], int, int]:
    """Store and process each source: (outcomes counted, files skipped, replies held by the cap)."""
    from bot.mail.intake import store
    from bot.mail.parse import received_time
    from bot.pipeline.pipeline import Pipeline
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
    return counts, skipped, capped


def _held_by_cap(conn, msg_id: int) -> bool:
    """The pipeline records why a message got no reply; the outbox's daily cap is one reason."""
    reason = no_reply_reason(conn, msg_id)
    return bool(reason and reason.startswith("daily reply cap"))


class _nullbar:
    def __init__(self, items):
        self.items = items

    def __enter__(self):
        return self.items

    def __exit__(self, *a):
        return False


def add_to(main):
    for cmd in (serve, worker, ingest):
        main.add_command(cmd)
