"""The jobs `lesbot serve` runs on a clock (APScheduler, Europe/London): reminders and
the contract team's digest. Each is also a command (`lesbot remind`, `lesbot digest`).

Jobs run in one worker thread, so two never overlap; whatever they send is keyed in
the database, so a rerun, a catch-up or a second process sends nothing twice. A job
that raises is logged and recorded; the scheduler and the listeners go on.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from handlers.clock import digest
from handlers.clock import reminders
from handlers.contract import workdays
from handlers.contract.periods import LONDON
from store import schedule as job_runs
from store.db import open_db, utcnow

log = logging.getLogger("lesbot.scheduler")
_STATE: dict = {}        # settings and the mailer's wake-up, for the module-level job functions


def _hms(clock: str) -> dict:
    h, m, *s = clock.split(":")
    return {"hour": int(h), "minute": int(m), "second": int(s[0]) if s else 0}


def triggers(settings) -> dict[str, CronTrigger]:
    tz = LONDON
    out = {}
    if any((settings.reminders.claims_due, settings.reminders.money_at_risk, settings.reminders.outcome_chase,
            settings.reminders.recall)):
        out["remind"] = CronTrigger(timezone=tz, **_hms(settings.reminders.time))
    if settings.digest.enabled:
        out["digest-day"] = CronTrigger(day_of_week="mon-fri", timezone=tz, **_hms(settings.digest.time))
        out["digest-month"] = CronTrigger(day=settings.digest.monthly_day, timezone=tz, **_hms(settings.digest.time))
    return out


def run_job(name: str, due_at: datetime | None = None, now: datetime | None = None) -> dict | None:
    """One run of a job, recorded in job_runs. Never raises: a failing job must not stop the others."""
    settings = _STATE["settings"]
    now = now or datetime.now(timezone.utc)
    due_at = due_at or now
    conn = job_runs.open_for_jobs(settings.db_path)
    run_id = job_runs.start_run(conn, name, due_at.astimezone(timezone.utc).isoformat(), utcnow())
    result, error = None, None
    try:
        if name == "remind":
            result = {"sent": reminders.run(settings, conn, now)}
        elif name == "digest-day":
            local = now.astimezone(LONDON).date()
            if workdays.is_working_day(local, tuple(settings.calendar.closures)):
                result = digest.run(settings, conn, now, "day")
        elif name == "digest-month":
            result = digest.run(settings, conn, now, "month")
        if result and _STATE.get("wake"):
            _STATE["wake"]()
    except Exception as e:        # logged and recorded; the scheduler goes on
        log.exception("job %s failed", name)
        error = f"{type(e).__name__}: {e}"
    finally:
        job_runs.finish_run(conn, run_id, utcnow(), error)
        conn.close()
    return result


def missed(settings, conn, now: datetime) -> list[tuple[str, datetime]]:
    """Jobs whose time came while lesbot was down, within the grace period, not yet run:
    each once, at its latest missed time."""
    grace = timedelta(hours=settings.scheduler.grace_hours)
    out = []
    for name, trigger in triggers(settings).items():
        t, latest = trigger.get_next_fire_time(None, now - grace), None
        while t is not None and t <= now:
            latest = t
            t = trigger.get_next_fire_time(t, t + timedelta(seconds=1))
        if latest is None:
            continue
        if not job_runs.ran_since(conn, name, latest.astimezone(timezone.utc).isoformat()):
            out.append((name, latest))
    return out


class Schedule:
    def __init__(self, settings, wake=None):
        self.settings = settings
        _STATE.update(settings=settings, wake=wake)
        grace = int(settings.scheduler.grace_hours * 3600)
        self.scheduler = AsyncIOScheduler(
            timezone=LONDON, executors={"default": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": grace})
        self._caught_up = False

    def catch_up(self) -> None:
        """Run now, one after another, the jobs missed while lesbot was down. `serve` calls this
        before it listens, so the catch-up does not compete with the first mail."""
        for name, when in self._missed():
            log.info("job %s was due at %s while lesbot was down: running it now", name, when)
            run_job(name, when)
        self._caught_up = True

    def _missed(self) -> list[tuple[str, datetime]]:
        conn = open_db(self.settings.db_path)
        try:
            return missed(self.settings, conn, datetime.now(timezone.utc))
        finally:
            conn.close()

    def start(self):
        """Call inside the running event loop. Missed jobs not yet caught up run as soon as it starts."""
        for name, trigger in triggers(self.settings).items():
            self.scheduler.add_job(run_job, trigger, args=[name], id=name, name=name, replace_existing=True)
        if not self._caught_up:
            for name, when in self._missed():
                log.info("job %s was due at %s while lesbot was down: running it now", name, when)
                self.scheduler.add_job(run_job, "date", args=[name, when], id=f"{name}-catch-up",
                                       replace_existing=True, misfire_grace_time=None)
        self.scheduler.start()

    def shutdown(self):
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
