"""The digest's "Needs a human": every message a person should answer or act on, said by
reference, practice, time and lesbot's own words (never the subject or the text); the help
reply's example claim and its promise; replies held back by the daily cap; the dry-run footer.
Real SQLite files, the real pipeline and the real CLI."""
from __future__ import annotations

import re
import types
from datetime import datetime, timedelta, timezone

from handlers.clock import digest
from handlers.clock import held
from conftest import Lesbot, at, bounce_for, make_msg, run_cli, text_of
from handlers.enquiry import handler as enquiry

TEAM = "contract.team@nhs.net"
PRIYA = "priya.raghunathan3@nhs.net"          # Meresfield Medical Centre, Z98101: denosumab, MSK
FALLOW = "d.mcallister@nhs.net"                # Fallowcombe Surgery, Z98105: MSK only
KETTLE = "kettlebrook.hc@nhs.net"              # Kettlebrook Health Centre, Z98103
HOSPITAL = "agh.metabolicbone@nhs.net"         # a hospital: it does not claim
# fictional patient details that must never reach the digest
SECRET_NAME, SECRET_NHS = "Ottoline Wrexfield", "999 035 6793"


def _soon():
    return datetime.now(timezone.utc) + timedelta(minutes=1)


def _day(bot):
    return digest.run(bot.settings, bot.conn, _soon(), "day", dry_run=True)


def _section(text: str) -> str:
    return text[text.index("NEEDS A HUMAN"):]


def _example(reply_text: str) -> list[str]:
    block = reply_text.split("one line per service):", 1)[1].split("\n\n")[1]
    return [ln.strip() for ln in block.splitlines() if ln.strip()]


# -- the help reply ------------------------------------------------------------------------------
def test_the_help_reply_carries_an_example_claim_that_reads_as_a_claim(home):
    b = Lesbot(home, contract_team=TEAM)
    try:
        r = b.ingest(make_msg(sender=PRIYA, body="How do I claim?"), received_at=at(2026, 11, 4, 10))
        assert (r["kind"], r["outcome"]) == ("enquiry", "rejected")
        reply = text_of(b.outbox()[-1]["raw"])
        lines = _example(reply)
        assert lines[:2] == ["Practice code: Z98101", "Month: October 2026"]     # last month, its own code
        assert any(ln.startswith("Complex injections") for ln in lines)
        assert any(ln.startswith("MSK steroid injection consultation") for ln in lines)
        assert all(re.search(r": \d+$", ln) for ln in lines[2:])
        html = b.outbox()[-1]["raw"].decode()
        assert "<pre" in html
        # the example, sent back as written, is a claim for exactly those services
        r = b.ingest(make_msg(sender=PRIYA, subject="LES claim", body="\n".join(lines)),
                     received_at=at(2026, 11, 5, 10))
        assert (r["kind"], r["outcome"]) == ("claim", "accepted"), r["errors"]
        got = {(c["service"], c["month"]) for c in b.conn.execute(
            "SELECT service, month FROM claims WHERE message=? AND state='accepted'", (r["id"],))}
        assert got == {("denosumab", "2026-10"), ("msk-injection", "2026-10")}
        # a practice signed up for MSK only is shown only MSK
        b.ingest(make_msg(sender=FALLOW, body="Can you tell me how to send our figures?"),
                 received_at=at(2026, 11, 4, 11))
        lines = _example(text_of(b.outbox()[-1]["raw"]))
        assert lines[0] == "Practice code: Z98105" and len(lines) == 3 and lines[2].startswith("MSK")
        # a hospital does not claim: no example
        b.ingest(make_msg(sender=HOSPITAL, body="Who should we send letters to?"), received_at=at(2026, 11, 4, 12))
        assert "Practice code:" not in text_of(b.outbox()[-1]["raw"])
    finally:
        b.close()


def test_the_promise_is_made_only_when_a_daily_digest_goes_to_the_contract_team(home, tmp_path):
    b = Lesbot(home, contract_team=TEAM)
    try:
        b.ingest(make_msg(body="Who do I ask about the LES?"))
        reply = text_of(b.outbox()[-1]["raw"])
        assert "Needs a human" in reply and "next daily summary" in reply
    finally:
        b.close()
    b = Lesbot(tmp_path / "other")          # no contract_team: no digest is sent
    try:
        b.ingest(make_msg(body="Who do I ask about the LES?"))
        reply = text_of(b.outbox()[-1]["raw"])
        assert "daily summary" not in reply and "please also write to" in reply
    finally:
        b.close()


# -- the digest's list ---------------------------------------------------------------------------
def test_a_question_is_listed_by_reference_practice_time_and_topic_never_its_words(home):
    b = Lesbot(home, contract_team=TEAM)
    try:
        r = b.ingest(make_msg(sender=PRIYA, subject=f"{SECRET_NAME} {SECRET_NHS}",
                              body=f"Hello, how do I claim for {SECRET_NAME} (NHS {SECRET_NHS})?"))
        b.ingest(make_msg(sender=KETTLE, subject="money", body="We have not been paid for September. Thanks"))
        b.ingest(make_msg(sender=FALLOW, subject="hello", body="Good morning, hope you are well."))
        d = _day(b)
        text, html = _section(d["text"]), d["html"]
        row = next(ln for ln in text.splitlines() if r["reference"] in ln)
        assert "Meresfield Medical Centre (Z98101)" in row and "question about claiming" in row
        received = b.row(r["id"])["received_at"]
        shown = datetime.fromisoformat(received).astimezone(timezone.utc)
        from handlers.contract.periods import LONDON
        assert shown.astimezone(LONDON).strftime("%d/%m/%Y %H:%M") in row
        assert "Kettlebrook Health Centre (Z98103)" in text and "email about payment" in text
        assert "Fallowcombe Surgery (Z98105)" in text and "email lesbot could not place" in text
        assert "Questions and mail lesbot could not place: 3" in text
        for secret in (SECRET_NAME, "Wrexfield", SECRET_NHS, SECRET_NHS.replace(" ", ""), "not been paid"):
            assert secret not in d["text"] and secret not in html, secret
        assert "question about claiming" in html and "Needs a human" in html
    finally:
        b.close()


def Boom(message):
    def handle(ctx, found):
        raise RuntimeError(message)
    return types.SimpleNamespace(name="boom", match=lambda ctx: True, handle=handle)


def test_quarantined_failed_and_undelivered_mail_are_listed(home):
    b = Lesbot(home, contract_team=TEAM)
    try:
        q = b.ingest("16-unknown-sender-non-nhs.eml")
        assert q["outcome"] == "quarantined"
        b.pipeline.handlers = [Boom(f"could not read {SECRET_NAME} {SECRET_NHS}")]
        f = b.ingest(make_msg(sender=KETTLE, subject="figures", body="see attached"))
        assert f["outcome"] == "failed"
        b.pipeline.handlers = None
        # a hard bounce suppresses the address; the next reply to it is held
        b.ingest(make_msg(sender=KETTLE, body="Is this the right address?"))
        out = b.outbox()[-1]
        b.ingest(bounce_for(out, KETTLE, "5.1.1"), envelope_from="")
        h = b.ingest(make_msg(sender=KETTLE, body="Is this the right address, again?"))
        assert b.outbox()[-1]["state"] == "held"
        text = _section(_day(b)["text"])
        assert "Quarantined messages: 1" in text
        assert re.search(rf"message #{q['id']}\s.*harbourside-msk\.example\.com \(not in the directory\): "
                         r"quarantined: sender not in the directory", text)
        assert "Failed messages: 1" in text
        assert re.search(r"Kettlebrook Health Centre \(Z98103\): failed: RuntimeError while handling", text)
        assert SECRET_NAME not in text and "could not read" not in text
        assert "Outgoing mail failed, held or unknown: 1" in text
        row = next(ln for ln in text.splitlines() if h["reference"] in ln and "outbox #" in ln)
        assert "Kettlebrook Health Centre (Z98103)" in row and "suppressed after a hard bounce" in row
        # released or retried, it leaves the list
        run_cli(home, "messages", "retry", str(f["id"]))
        b.conn.execute("UPDATE outbox SET state='sent' WHERE state='held'")   # as `outbox resend` would, once sent
        text = _section(_day(b)["text"])
        assert "Failed messages: 0" in text and "Outgoing mail failed, held or unknown: 0" in text
    finally:
        b.close()


# -- the daily cap -------------------------------------------------------------------------------
def test_replies_held_back_by_the_daily_cap_are_counted(home):
    b = Lesbot(home, contract_team=TEAM, limits={"replies_per_sender_per_day": 1})
    try:
        got = [b.ingest(make_msg(sender=PRIYA, body=f"question {i}?")) for i in range(3)]
        got += [b.ingest(make_msg(sender=KETTLE, body=f"question {i}?")) for i in range(2)]
        b.ingest(make_msg(sender=FALLOW, body="one question?"))
        assert [bool(r["reply"]) for r in got] == [True, False, False, True, False]
        counted = held.held_replies(b.conn)
        assert (counted["replies"], counted["senders"]) == (3, 2)
        assert counted["by_sender"][0] == {"who": "Meresfield Medical Centre (Z98101)", "n": 2}
        only = held.held_replies(b.conn, message_ids=[got[1]["id"], got[3]["id"]])
        assert (only["replies"], only["senders"]) == (1, 1)
        assert held.held_replies(b.conn, message_ids=[])["replies"] == 0
        d = _day(b)
        assert "Replies held back by the daily cap (1 per address): 3 replies to 2 senders" in d["text"]
        assert "Meresfield Medical Centre (Z98101) 2" in d["text"]
        assert "no reply sent (daily reply cap)" in d["text"]
        assert "Replies held back by the daily cap" in d["html"]
    finally:
        b.close()


def test_no_cap_line_when_nothing_was_held(home):
    b = Lesbot(home, contract_team=TEAM)
    try:
        b.ingest(make_msg(sender=PRIYA, body="question?"))
        assert "daily cap" not in _day(b)["text"]
    finally:
        b.close()


# -- footers and the chart in a preview ----------------------------------------------------------
def test_a_dry_run_has_no_reference_and_a_copy_names_the_one_sent(home):
    b = Lesbot(home, contract_team=TEAM)
    try:
        now = _soon()
        dry = digest.run(b.settings, b.conn, now, "day", dry_run=True)
        for part in (dry["text"], dry["html"]):
            assert "LES-DRYRUN" not in part and "keep the reference" not in part and "not sent" in part
        sent = digest.run(b.settings, b.conn, now, "day")
        assert sent["sent"] and f"keep the reference {sent['reference']}" in sent["text"]
        assert f"Reference {sent['reference']}" in sent["html"]
        copy = digest.run(b.settings, b.conn, now + timedelta(minutes=5), "day")
        assert not copy["sent"] and f"went to the contract team as {sent['reference']}" in copy["text"]
        assert "LES-DIGEST" not in copy["text"] + copy["html"] and "keep the reference" not in copy["text"]
    finally:
        b.close()


def test_a_copy_of_a_digest_that_could_not_be_sent_says_so(tmp_path):
    b = Lesbot(tmp_path / "var")             # no contract_team address
    try:
        now = _soon()
        assert not digest.run(b.settings, b.conn, now, "day")["sent"]
        copy = digest.run(b.settings, b.conn, now + timedelta(minutes=5), "day")
        assert "this digest was not sent (no contract_team address is set)" in copy["text"]
        assert "went to the contract team" not in copy["text"] + copy["html"]
    finally:
        b.close()


def test_the_monthly_preview_inlines_the_chart_and_the_email_attaches_it(home):
    b = Lesbot(home, contract_team=TEAM)
    try:
        b.ingest(make_msg(sender=PRIYA, subject="LES claim",
                          body="Practice: Z98101\nMonth: October 2026\nDenosumab injections: 2\n"),
                 received_at=at(2026, 11, 2, 10))
    finally:
        b.close()
    env = {"LESBOT_CONTRACT_TEAM": TEAM}
    html = run_cli(home, "digest", "--period", "month", "--dry-run", "--format", "html", "--now", "2026-11-11T08:00",
                   env_extra=env).stdout
    assert '<img src="data:image/png;base64,iVBORw0KGgo' in html and "cid:" not in html
    html = run_cli(home, "digest", "--period", "month", "--format", "html", "--no-send", "--now", "2026-11-11T08:00",
                   env_extra=env).stdout
    assert "cid:" not in html          # what is printed is read on screen: inline there too
    b = Lesbot(home, contract_team=TEAM)
    try:
        raw = b.outbox()[-1]["raw"].decode()
        assert 'src=3D"cid:chart"' in raw and "Content-ID: <chart>" in raw and "data:image/png" not in raw
    finally:
        b.close()


def test_enquiry_topics_come_from_the_lexicon():
    assert enquiry.topic("When will we be paid for the October claim?") == "payment"
    assert enquiry.topic("How do I claim for last month?") == "claiming"
    assert enquiry.topic("Could you refer this to the MSK hub") == "MSK injection referrals"
    assert enquiry.topic("Good morning, hope you are well") == ""
    assert enquiry.is_question("Could you let us know the deadline")
    assert enquiry.is_question("Thanks. What is the deadline")
    assert not enquiry.is_question("Please find our figures below. Thanks")


def test_a_long_list_shows_the_first_entries_and_counts_the_rest(home, monkeypatch):
    monkeypatch.setattr(held, "SHOWN", 2)
    b = Lesbot(home, contract_team=TEAM)
    try:
        for i in range(5):
            b.ingest(make_msg(sender=f"stranger{i}@example.org", body="hello"))
        text = _section(_day(b)["text"])
        assert "Quarantined messages: 5" in text and "... and 3 more" in text
        assert text.count("example.org (not in the directory): quarantined: sender not in the directory") == 2
    finally:
        b.close()
