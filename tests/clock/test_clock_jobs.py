"""The clock's jobs as a list of handlers (handlers/clock JOBS, reminders.KINDS): the names the
scheduler and `lesbot reminders --kind` use, and each job doing its work once, through the list."""
from __future__ import annotations

import pytest

from handlers.clock import JOBS, reminders
from bot.cli.schedule import REMINDER_KINDS
from bot.processes import scheduler
from conftest import Lesbot, at

TEAM = "contract.team@nhs.net"


@pytest.fixture
def cbot(home):
    b = Lesbot(home, contract_team=TEAM)
    yield b
    b.close()


def test_the_jobs_are_the_schedulers_and_the_kinds_are_the_commands(cbot):
    assert [j.name for j in JOBS] == list(scheduler.triggers(cbot.settings))
    assert all(j.about and callable(j.run) for j in JOBS)
    assert tuple(k.kind for k in reminders.KINDS) == REMINDER_KINDS


def test_each_job_through_the_list_sends_once(cbot):
    job = {j.name: j for j in JOBS}
    first = job["remind"].run(cbot.settings, cbot.conn, at(2026, 11, 3, 9, 0))
    assert {r["kind"] for r in first["sent"]} == {"claims_due"}
    assert job["remind"].run(cbot.settings, cbot.conn, at(2026, 11, 3, 9, 5)) == {"sent": []}
    # Christmas Day is not a working day: no daily digest, nothing recorded
    assert job["digest-day"].run(cbot.settings, cbot.conn, at(2026, 12, 25, 8, 0)) is None
    assert cbot.conn.execute("SELECT count(*) FROM digests").fetchone()[0] == 0
    day = job["digest-day"].run(cbot.settings, cbot.conn, at(2026, 12, 29, 8, 0))
    assert day["sent"] and day["key"] == "2026-12-29"
    month = job["digest-month"].run(cbot.settings, cbot.conn, at(2026, 12, 11, 8, 0))
    assert month["sent"] and month["key"] == "2026-12"
    again = job["digest-month"].run(cbot.settings, cbot.conn, at(2026, 12, 11, 9, 0))
    assert not again["sent"] and "already sent" in again["why"]
    assert [tuple(r) for r in cbot.conn.execute("SELECT period, key FROM digests ORDER BY id")] == [
        ("day", "2026-12-29"), ("month", "2026-12")]
