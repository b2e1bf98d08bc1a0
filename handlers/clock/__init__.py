"""The clock's work, as handlers the scheduler drives (bot/processes/scheduler.py): each job has a
name (the scheduler's job name, kept in job_runs), what it does, and its function
run(settings, conn, now) -> the result recorded for the run (None: nothing to do today).

The kinds of reminder the remind job sends are listed in reminders.KINDS."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from handlers.clock import digest
from handlers.clock import reminders


@dataclass(frozen=True)
class Job:
    name: str
    about: str
    run: Callable[..., dict | None]


def remind(settings, conn, now: datetime) -> dict:
    return {"sent": reminders.run(settings, conn, now)}


JOBS = [
    Job("remind", "every kind of reminder in reminders.KINDS that is due, each sent once (daily at "
                  "reminders.time)", remind),
    Job("digest-day", "the contract team's daily digest, on working days (Mon-Fri at digest.time)",
        digest.daily),
    Job("digest-month", "the monthly digest, with the 12-month chart (digest.monthly_day at digest.time)",
        digest.monthly),
]
