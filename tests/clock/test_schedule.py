"""Reminders and the digest, driven with a controllable clock (`now`) across month ends,
the 10th, a clock change, Christmas and Easter; restarts mid-run; the live scheduler."""
from __future__ import annotations

import asyncio
import email
import json
from datetime import date, datetime, timedelta, timezone

import pytest

from handlers.clock import digest
from bot.mail import outbox
from handlers.clock import reminders
from bot.processes import scheduler
from handlers.contract import workdays
from handlers.contract.periods import LONDON
from handlers.contract.references import reference
from conftest import Lesbot, at, bounce_for, make_msg, run_cli, sample_07_seen_without_injection, text_of

TEAM = "contract.team@nhs.net"
MERESFIELD = "ashmeres.meresfieldmc@nhs.net"
HIGHMERE = "highmere.practice@nhs.net"


@pytest.fixture
def sbot(home):
    b = Lesbot(home, contract_team=TEAM)
    yield b
    b.close()


def sent(bot, kind=None):
    return bot.conn.execute("SELECT * FROM reminders" + (" WHERE kind=?" if kind else "") + " ORDER BY id",
                            (kind,) if kind else ()).fetchall()


def claim(bot, sender, practice, month, when, line="Denosumab injections: 2"):
    return bot.ingest(make_msg(sender=sender, subject="LES claim",
                               body=f"Practice: {practice}\nMonth: {month}\n{line}\n"), received_at=when)


# -- the calendar --------------------------------------------------------------------------------
def test_working_days_skip_weekends_and_englands_bank_holidays():
    assert not workdays.is_working_day(date(2027, 3, 26))          # Good Friday
    assert not workdays.is_working_day(date(2027, 3, 29))          # Easter Monday (England only)
    assert not workdays.is_working_day(date(2026, 8, 31))          # August bank holiday (England only)
    assert not workdays.is_working_day(date(2026, 12, 28))         # Boxing Day, observed
    assert workdays.is_working_day(date(2026, 12, 29))
    assert workdays.add_working_days(date(2026, 12, 24), 2) == date(2026, 12, 30)
    assert workdays.add_working_days(date(2027, 3, 25), 1) == date(2027, 3, 30)
    # a datetime is read in London time: 23:30 UTC on 1 Nov is already... still 1 Nov in GMT
    assert workdays.add_working_days(datetime(2026, 10, 30, 23, 30, tzinfo=timezone.utc), 2) == date(2026, 11, 3)
    assert workdays.add_working_days(date(2026, 12, 29), 1, closures=(date(2026, 12, 30),)) == date(2026, 12, 31)
    assert workdays.next_working_day(date(2027, 3, 26)) == date(2027, 3, 30)


# -- claims due ----------------------------------------------------------------------------------
def test_claims_due_reminders_go_to_practices_that_have_not_claimed_and_never_twice(sbot, home):
    claim(sbot, "priya.raghunathan3@nhs.net", "Z98101", "October 2026", at(2026, 11, 2, 10),
          "Denosumab injections: 2\nMSK consultations, no injection given: 1")
    out = reminders.run(sbot.settings, sbot.conn, at(2026, 11, 3, 9, 0), dry_run=True)
    assert {r["org"] for r in out} == {"Z98102", "Z98103", "Z98104", "Z98105", "Z98106"}
    assert sent(sbot) == []                                        # a dry run records nothing
    assert reminders.run(sbot.settings, sbot.conn, at(2026, 11, 3, 8, 59)) == []   # not yet 09:00
    first = reminders.run(sbot.settings, sbot.conn, at(2026, 11, 3, 9, 0))
    assert len(first) == 5
    assert reminders.run(sbot.settings, sbot.conn, at(2026, 11, 3, 9, 5)) == []    # a rerun sends nothing
    mail = next(o for o in sbot.outbox() if o["to_addr"] == "kettlebrook.hc@nhs.net")
    assert mail["subject"].endswith("Reminder: LES claims for October 2026 are due by 10/11/2026")
    body = text_of(mail["raw"])
    assert "Complex injections" in body and "MSK steroid injection" in body
    assert email.message_from_bytes(mail["raw"])["Auto-Submitted"] == "auto-generated"
    # 8 November 2026 is a Sunday: the second reminder moves to Monday the 9th
    assert reminders.run(sbot.settings, sbot.conn, at(2026, 11, 8, 9, 0)) == []
    second = reminders.run(sbot.settings, sbot.conn, at(2026, 11, 9, 9, 0))
    assert len(second) == 5
    # after the 10th: nothing until next month
    assert reminders.run(sbot.settings, sbot.conn, at(2026, 11, 10, 9, 0)) == []
    assert reminders.run(sbot.settings, sbot.conn, at(2026, 11, 11, 9, 0)) == []
    # a practice that claims stops being reminded
    claim(sbot, "kettlebrook.hc@nhs.net", "Z98103", "November 2026", at(2026, 12, 1, 10),
          "Denosumab injections: 1\nMSK consultations, no injection given: 1")
    december = reminders.run(sbot.settings, sbot.conn, at(2026, 12, 3, 9, 0))
    assert "Z98103" not in {r["org"] for r in december}


def test_claims_day_on_a_weekend_moves_and_the_clock_change_keeps_0900_london(sbot):
    # 3 October 2026 is a Saturday (BST): Monday 5th at 09:00 BST = 08:00 UTC
    assert reminders.claims_occasion(sbot.settings, datetime(2026, 10, 3, 8, 0, tzinfo=timezone.utc)) is None
    assert reminders.claims_occasion(sbot.settings, datetime(2026, 10, 5, 7, 59, tzinfo=timezone.utc)) is None
    assert reminders.claims_occasion(sbot.settings, datetime(2026, 10, 5, 8, 0, tzinfo=timezone.utc)) == \
        date(2026, 10, 5)
    # 3 November 2026 (GMT since 25 October): 09:00 London = 09:00 UTC
    assert reminders.claims_occasion(sbot.settings, datetime(2026, 11, 3, 8, 30, tzinfo=timezone.utc)) is None
    assert reminders.claims_occasion(sbot.settings, datetime(2026, 11, 3, 9, 0, tzinfo=timezone.utc)) == \
        date(2026, 11, 3)
    # and the scheduler's trigger fires at 09:00 London on both sides of the change
    trig = scheduler.triggers(sbot.settings)["remind"]
    t = trig.get_next_fire_time(None, datetime(2026, 10, 23, 12, tzinfo=timezone.utc))
    fires = []
    for _ in range(3):
        fires.append(t.astimezone(timezone.utc).strftime("%d %H:%M"))
        t = trig.get_next_fire_time(t, t + timedelta(seconds=1))
    assert fires == ["24 08:00", "25 09:00", "26 09:00"]       # BST, then GMT from 25 October
    # 3 January 2027 is a Sunday after Christmas: Monday the 4th
    assert reminders.claims_occasion(sbot.settings, at(2027, 1, 4, 9, 0)) == date(2027, 1, 4)


def test_a_restart_in_the_middle_of_a_reminder_run_sends_the_rest_once(sbot, monkeypatch):
    real = outbox.queue
    calls = {"n": 0}

    def dies_on_third(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("power cut")
        return real(*a, **kw)

    monkeypatch.setattr(outbox, "queue", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        reminders.run(sbot.settings, sbot.conn, at(2026, 11, 3, 9, 0))
    assert len(sent(sbot)) == 2 and len(sbot.outbox()) == 2
    monkeypatch.setattr(outbox, "queue", real)
    rest = reminders.run(sbot.settings, sbot.conn, at(2026, 11, 3, 9, 30))
    assert len(rest) == 4
    rows = sent(sbot)
    assert len(rows) == 6 and len({r["org_code"] for r in rows}) == 6
    assert len(sbot.outbox()) == 6


# -- money about to be lost, outcome chase, recall ------------------------------------------------
def test_money_about_to_be_lost(sbot):
    sample_07_seen_without_injection(sbot)                        # September activity: claim by 31 December 2026
    sbot.settings.reminders.claims_due = False
    assert reminders.run(sbot.settings, sbot.conn, at(2026, 12, 16, 9, 0)) == []   # 15 days left
    out = reminders.run(sbot.settings, sbot.conn, at(2026, 12, 17, 9, 0))
    assert [(r["kind"], r["org"]) for r in out] == [("money_at_risk", "Z98101")]
    body = text_of(sbot.outbox()[-1]["raw"])
    assert "September 2026: 1 not claimed - claim by 31/12/2026" in body
    assert reminders.run(sbot.settings, sbot.conn, at(2026, 12, 18, 9, 0)) == []
    assert reminders.run(sbot.settings, sbot.conn, at(2027, 1, 1, 9, 0)) == []     # too late now


def test_outcome_chase_at_28_and_42_days_then_the_contract_team(sbot):
    referred = sbot.ingest("07-msk-referral-plain.eml")          # passed on 14 September 2026
    ref = referred["reference"]
    assert ref == reference(sbot.row(referred["id"])["case_id"])
    sbot.settings.reminders.claims_due = False
    sbot.settings.reminders.money_at_risk = False
    assert reminders.run(sbot.settings, sbot.conn, at(2026, 10, 11, 9, 0)) == []
    first = reminders.run(sbot.settings, sbot.conn, at(2026, 10, 12, 9, 0))
    assert [(r["kind"], r["reference"]) for r in first] == [("outcome_chase", ref)]
    chase = sbot.outbox()[-1]
    assert chase["to_addr"] == MERESFIELD and "6793" in text_of(chase["raw"]) and "6793" not in chase["subject"]
    assert reminders.run(sbot.settings, sbot.conn, at(2026, 10, 20, 9, 0)) == []
    second = reminders.run(sbot.settings, sbot.conn, at(2026, 10, 26, 9, 0))
    assert len(second) == 1 and "Second reminder" in second[0]["subject"]
    assert reminders.run(sbot.settings, sbot.conn, at(2026, 11, 30, 9, 0)) == []
    d = digest.run(sbot.settings, sbot.conn, at(2026, 10, 27, 8, 0), "day", dry_run=True)
    assert f"chased twice, now for you: {ref}" in d["text"]
    # the practice answers the chase: the outcome is recorded against the referral
    reply = make_msg(sender=MERESFIELD, subject="RE: " + sbot.outbox()[-1]["subject"],
                     body="Seen 20/10/2026, did not attend.")
    reply["In-Reply-To"] = sbot.outbox()[-1]["msgid"]
    r = sbot.ingest(reply, received_at=at(2026, 10, 27, 10))
    assert r["reference"] == ref
    assert sbot.conn.execute("SELECT outcome FROM referrals").fetchone()[0] == "did_not_attend"


def test_recall_before_the_dose_and_when_overdue(sbot):
    sbot.ingest("11-denosumab-letter-in-body.eml")     # Highmere; next due 18 February 2027
    s = sbot.settings.reminders
    s.claims_due = s.money_at_risk = False
    assert reminders.run(sbot.settings, sbot.conn, at(2027, 2, 3, 9, 0)) == []
    due = reminders.run(sbot.settings, sbot.conn, at(2027, 2, 4, 9, 0))
    assert [(r["kind"], r["org"], r["to"]) for r in due] == [("recall", "Z98104", HIGHMERE)]
    body = text_of(sbot.outbox()[-1]["raw"])
    assert "999 960 9058" in body and "due 18/02/2027" in body
    assert "9058" not in sbot.outbox()[-1]["subject"]
    assert reminders.run(sbot.settings, sbot.conn, at(2027, 2, 17, 9, 0)) == []
    assert reminders.run(sbot.settings, sbot.conn, at(2027, 3, 17, 9, 0)) == []     # 27 days overdue
    late = reminders.run(sbot.settings, sbot.conn, at(2027, 3, 18, 9, 0))
    assert len(late) == 1 and "overdue" in text_of(sbot.outbox()[-1]["raw"])
    assert reminders.run(sbot.settings, sbot.conn, at(2027, 4, 18, 9, 0)) == []
    # a dose given moves the next one on: a new due date, a new reminder in August
    m = make_msg(sender=HIGHMERE, subject="Denosumab given", body="Denosumab given 999 960 9058 on 19/03/2027")
    sbot.ingest(m, received_at=at(2027, 3, 19, 12))
    assert len(reminders.run(sbot.settings, sbot.conn, at(2027, 9, 5, 9, 0))) == 1


# -- the digest ----------------------------------------------------------------------------------
def test_the_digest_is_aggregate_and_sent_once(sbot, home):
    for f in ("01-claim-plain-text.eml", "07-msk-referral-plain.eml", "08-msk-referral-forwarded.eml",
              "11-denosumab-letter-in-body.eml", "16-unknown-sender-non-nhs.eml"):
        sbot.ingest(f)
    now = datetime.now(timezone.utc) + timedelta(minutes=1)
    r = digest.run(sbot.settings, sbot.conn, now, "day")
    assert r["sent"] and r["key"] == now.astimezone(LONDON).date().isoformat()
    text = r["text"]
    for need in ("WHAT CAME IN", "Claims", "Referrals", "Denosumab transfers", "PAYMENT RUN", "NOT CLAIMED YET",
                 "RECONCILIATION", "OVERDUE", "NEEDS A HUMAN", "Quarantined messages: 1"):
        assert need in text, need
    # no patient identifiers: names, NHS numbers, dates of birth from the samples
    for secret in ("PRYCE", "Pryce", "KEANE", "HARTWELL", "9990356793", "999 035 6793", "999 832 3638",
                   "999 960 9058", "03/06/1958", "22/04/1952"):
        assert secret not in text and secret not in r["html"], secret
    mail = sbot.outbox()[-1]
    assert mail["to_addr"] == TEAM and "daily digest" in mail["subject"]
    assert "<table" in r["html"] and "<script" not in r["html"]
    again = digest.run(sbot.settings, sbot.conn, now + timedelta(minutes=5), "day")
    assert not again["sent"] and "already sent" in again["why"]
    assert sum(1 for o in sbot.outbox() if o["to_addr"] == TEAM) == 1


def test_the_monthly_digest_has_the_chart_inline(sbot):
    claim(sbot, "priya.raghunathan3@nhs.net", "Z98101", "October 2026", at(2026, 11, 2, 10))
    r = digest.run(sbot.settings, sbot.conn, at(2026, 11, 11, 8, 0), "month")
    assert r["sent"] and r["key"] == "2026-11"
    m = email.message_from_bytes(sbot.outbox()[-1]["raw"])
    assert m.get_content_type() == "multipart/alternative"
    related = next(p for p in m.walk() if p.get_content_type() == "multipart/related")
    png = next(p for p in related.walk() if p.get_content_type() == "image/png")
    assert png["Content-ID"] == "<chart>" and png.get_payload(decode=True)[:8] == b"\x89PNG\r\n\x1a\n"
    html = next(p for p in related.walk() if p.get_content_type() == "text/html").get_payload(decode=True)
    assert b'src="cid:chart"' in html
    assert "PAYMENT RUN November 2026: £40.00" in r["text"]


def test_a_bounced_reminder_shows_in_the_digest(sbot):
    reminders.run(sbot.settings, sbot.conn, at(2026, 11, 3, 9, 0))
    out = next(o for o in sbot.outbox() if o["to_addr"] == "kettlebrook.hc@nhs.net")
    sbot.ingest(bounce_for(out, "kettlebrook.hc@nhs.net", "5.1.1"), envelope_from="")
    d = digest.run(sbot.settings, sbot.conn, datetime.now(timezone.utc) + timedelta(minutes=1), "day")
    assert "Bounced: reminder_claims_due to kettlebrook.hc@nhs.net (5.1.1, permanent)" in d["text"]


def test_digest_without_a_contract_team_address_is_recorded_not_lost(home):
    b = Lesbot(home)
    try:
        r = digest.run(b.settings, b.conn, at(2026, 11, 24, 8), "day")
        assert not r["sent"] and "no contract_team" in r["why"]
        assert b.conn.execute("SELECT state FROM digests").fetchone()[0] == "refused"
    finally:
        b.close()


# -- jobs, catch-up, the live scheduler -----------------------------------------------------------
def test_jobs_missed_while_down_run_once_within_the_grace_period(sbot):
    scheduler._STATE.update(settings=sbot.settings, wake=None)
    now = at(2026, 11, 3, 11, 0)               # lesbot was down at 08:00 and 09:00
    names = {n for n, _ in scheduler.missed(sbot.settings, sbot.conn, now)}
    assert names == {"remind", "digest-day"}
    for name, when in scheduler.missed(sbot.settings, sbot.conn, now):
        scheduler.run_job(name, when, now=now)
    assert scheduler.missed(sbot.settings, sbot.conn, now + timedelta(minutes=1)) == []
    assert len(sent(sbot, "claims_due")) == 6
    assert sbot.conn.execute("SELECT count(*) FROM digests").fetchone()[0] == 1
    # down for longer than the grace period: not caught up
    assert scheduler.missed(sbot.settings, sbot.conn, at(2026, 11, 4, 22, 0)) == []


def test_the_daily_digest_job_skips_christmas_and_a_failing_job_is_recorded(sbot, monkeypatch):
    scheduler._STATE.update(settings=sbot.settings, wake=None)
    scheduler.run_job("digest-day", now=at(2026, 12, 25, 8, 0))
    scheduler.run_job("digest-day", now=at(2026, 12, 28, 8, 0))
    assert sbot.conn.execute("SELECT count(*) FROM digests").fetchone()[0] == 0
    scheduler.run_job("digest-day", now=at(2026, 12, 29, 8, 0))
    assert sbot.conn.execute("SELECT key FROM digests").fetchone()[0] == "2026-12-29"

    def boom(*a, **kw):
        raise RuntimeError("database on fire")
    monkeypatch.setattr(reminders, "run", boom)
    assert scheduler.run_job("remind", now=at(2026, 12, 29, 9, 0)) is None
    err = sbot.conn.execute("SELECT error FROM job_runs WHERE job='remind'").fetchone()[0]
    assert "database on fire" in err


async def test_the_live_scheduler_runs_the_reminder_job_at_its_time(home):
    soon = (datetime.now(LONDON) + timedelta(seconds=2)).strftime("%H:%M:%S")
    b = Lesbot(home, contract_team=TEAM)
    b.settings.reminders.time = soon
    b.settings.digest.enabled = False
    b.conn.execute("INSERT INTO job_runs (job, due_at, started_at) VALUES ('remind', '', ?)",
                   (datetime.now(timezone.utc).isoformat(),))      # nothing to catch up
    woken = []
    s = scheduler.Schedule(b.settings, wake=lambda: woken.append(1))
    s.start()
    try:
        for _ in range(100):
            await asyncio.sleep(0.1)
            if b.conn.execute("SELECT count(*) FROM job_runs WHERE finished_at IS NOT NULL").fetchone()[0]:
                break
        runs = b.conn.execute("SELECT job, error FROM job_runs WHERE finished_at IS NOT NULL").fetchall()
        assert [tuple(r) for r in runs] == [("remind", None)]
    finally:
        s.shutdown()
        b.close()


def test_remind_and_digest_commands(home):
    b = Lesbot(home, contract_team=TEAM)
    b.close()
    env = {"LESBOT_CONTRACT_TEAM": TEAM}
    out = run_cli(home, "remind", "--dry-run", "--now", "2026-11-03T09:00", "--json", env_extra=env).stdout
    assert len([json.loads(x) for x in out.splitlines()]) == 6
    out = run_cli(home, "remind", "--now", "2026-11-03T09:00", env_extra=env).stdout
    assert out.count("queued") == 6
    assert "no reminders are due" in run_cli(home, "remind", "--now", "2026-11-03T09:10", env_extra=env).stdout
    html = run_cli(home, "digest", "--dry-run", "--format", "html", "--now", "2026-11-24T08:00", env_extra=env).stdout
    assert html.startswith("<!DOCTYPE html>") and "Needs a human" in html
    r = run_cli(home, "digest", "--period", "month", "--now", "2026-11-11T08:00", env_extra=env)
    assert "PAYMENT RUN" in r.stdout and "not sent" not in r.stderr
    r = run_cli(home, "digest", "--period", "month", "--now", "2026-11-11T09:00", env_extra=env)
    assert "already sent" in r.stderr


def test_serve_runs_the_scheduler_and_the_worker_delivers_what_it_queued(serve, home):
    from conftest import outbox_files, wait_for
    # something due, in the database before serve starts: a referral passed on 30 days ago with no
    # outcome. (Inserted after, it lost the race when a loaded machine took over 3 s to start serve,
    # whose start-up runs a job already due: the job ran before the referral existed.)
    from store.db import connect
    db = connect(home / "lesbot.db")             # made by the fixture's directory import
    passed = (datetime.now(timezone.utc) - timedelta(days=30)).isoformat()
    db.execute("INSERT INTO referrals (id, message, created_at, referred_on, state, referrer_code, receiving_code, "
               "nhs_number, forwarded_at) VALUES (900, 1, ?, ?, 'forwarded', 'Z98106', 'Z98101', '9990356793', ?)",
               (passed, passed[:10], passed))
    soon = (datetime.now(LONDON) + timedelta(seconds=3)).strftime("%H:%M:%S")
    srv = serve({"LESBOT_REMINDERS__TIME": soon, "LESBOT_DIGEST__ENABLED": "false",
                 "LESBOT_REMINDERS__CLAIMS_DUE": "false", "LESBOT_CONTRACT_TEAM": TEAM}, scheduler=True)
    assert wait_for(lambda: db.execute("SELECT count(*) FROM reminders").fetchone()[0] == 1, timeout=20)
    assert wait_for(lambda: any(b"[LES-000900]" in p.read_bytes() for p in outbox_files(home)), timeout=20)
    log = run_cli(home, "reminders").stdout
    assert "outcome_chase" in log and "LES-000900" in log and "job remind" in log
    srv.stop()


def test_a_digest_the_relay_will_not_take_stays_in_the_outbox_and_is_retried(home):
    from bot.processes.mailer import Mailer
    from conftest import free_port
    b = Lesbot(home, contract_team=TEAM, relay={"host": "127.0.0.1", "port": free_port(), "security": "none"})
    try:
        r = digest.run(b.settings, b.conn, at(2026, 11, 24, 8), "day")
        assert r["sent"]
        Mailer(b.settings, b.conn).deliver_due()
        row = b.conn.execute("SELECT state, attempts, last_error, next_attempt_at FROM outbox").fetchone()
        assert row["state"] == "queued" and row["attempts"] == 1 and row["last_error"]
        assert row["next_attempt_at"] > datetime.now(timezone.utc).isoformat()
    finally:
        b.close()


def test_quarterly_services_are_reminded_in_the_month_after_the_quarter(home, tmp_path):
    (tmp_path / "extra.toml").write_text(
        '[[service]]\ncode = "msk-injection"\nname = "MSK consultation (quarterly)"\nunit = "consultation"\n'
        'period = "quarterly"\nwords = ["msk"]\n[[service.tariff]]\nfrom = 2020-04-01\npounds = "43.47"\n')
    b = Lesbot(home, catalogue_file=str(tmp_path / "extra.toml"))
    try:
        by_org = reminders.not_claimed(b.conn, b.settings, date(2026, 9, 1))      # September ends Q3
        assert "MSK consultation (quarterly) (quarter)" in by_org["Z98105"]
        assert "Z98105" not in reminders.not_claimed(b.conn, b.settings, date(2026, 8, 1))
        b.conn.execute("INSERT INTO claims (created_at, org_code, service, month, count, state) "
                       "VALUES ('2026-10-02', 'Z98105', 'msk-injection', '2026-07', 2, 'accepted')")
        assert "Z98105" not in reminders.not_claimed(b.conn, b.settings, date(2026, 9, 1))
    finally:
        b.close()


def test_easter_moves_the_claims_reminder(sbot):
    # 3 April 2026 is Good Friday and 6 April Easter Monday: the reminder goes on Tuesday the 7th
    assert reminders.claims_occasion(sbot.settings, at(2026, 4, 3, 9, 0)) is None
    assert reminders.claims_occasion(sbot.settings, at(2026, 4, 6, 9, 0)) is None
    assert reminders.claims_occasion(sbot.settings, at(2026, 4, 7, 9, 0)) == date(2026, 4, 7)
    # and the 8th stays the 8th (a Wednesday)
    assert reminders.claims_occasion(sbot.settings, at(2026, 4, 8, 9, 0)) == date(2026, 4, 8)


def test_two_runs_at_once_send_each_reminder_once(sbot):
    import threading
    from store.db import open_db
    results, errors = [], []

    def one():
        conn = open_db(sbot.settings.db_path)
        try:
            results.append(reminders.run(sbot.settings, conn, at(2026, 11, 3, 9, 0)))
        except Exception as e:     # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            conn.close()
    threads = [threading.Thread(target=one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(len(r) for r in results) == 6
    assert len(sent(sbot)) == 6 and len(sbot.outbox()) == 6
