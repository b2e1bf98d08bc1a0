"""Each named end state, from real .eml files through the real pipeline and SQLite file."""
from __future__ import annotations

import json
import time
import types

import pytest

from conftest import DATA, Lesbot, bounce_for, make_msg
from handlers.base import Decision
from handlers.contract.references import reference
from handlers.enquiry import handler as enquiry


def case_ref(bot, result):
    """The reference of the case the SQLite file records for this message."""
    return reference(bot.row(result["id"])["case_id"])


def test_known_sender_gets_help_reply_and_record(bot):
    r = bot.ingest("17-nhsmail-exchange-full-headers.eml")
    assert r["outcome"] == "rejected" and r["kind"] == "enquiry"
    assert r["reference"] == case_ref(bot, r)
    assert r["reply"]["to"] == "lorraine.bishop@nhs.net"
    out = bot.outbox()
    assert len(out) == 1 and out[0]["state"] == "queued"
    raw = out[0]["raw"].decode()
    assert "Auto-Submitted: auto-replied" in raw
    assert "X-Lesbot-Loop: lesbot" in raw
    assert "In-Reply-To: <LO2P123MB552090988138CAE69F9A640B99B6B674249688@" in raw
    assert f"[{r['reference']}]" in out[0]["subject"]
    # the original subject never travels back (it may name a patient)
    assert "temporary resident" not in out[0]["subject"]
    assert out[0]["envelope_from"] == "lesbot-bounces@nhs.net"
    audit = bot.conn.execute("SELECT action FROM audit WHERE entity='message'").fetchall()
    assert [a[0] for a in audit] == ["rejected"]


def test_html_alternative_is_escaped(bot, tmp_path):
    bot.conn.execute("UPDATE orgs SET name='<script>x</script> Surgery' WHERE ods_code='Z98101'")
    bot.ingest(make_msg())
    raw = bot.outbox()[0]["raw"].decode()
    assert "&lt;script&gt;" in raw and "<script>" not in raw.split("text/html", 1)[1]


def test_duplicate_same_bytes_points_to_first(bot):
    first = bot.ingest("01-claim-plain-text.eml")
    again = bot.ingest("01-claim-plain-text.eml")
    assert again["outcome"] == "duplicate" and again["reply"] is None
    assert again["reference"] == first["reference"]
    row = bot.row(again["id"])
    assert row["duplicate_of"] == first["id"] and row["state"] == "duplicate"
    assert len(bot.outbox()) == 1


def test_duplicate_with_different_trace_headers(bot):
    raw = (DATA / "01-claim-plain-text.eml").read_bytes()
    bot.ingest(raw)
    relayed = b"Received: from relay.example by lesbot; Mon, 5 Oct 2026 09:00:00 +0000\r\n" + raw
    assert bot.ingest(relayed)["outcome"] == "duplicate"


def test_reused_message_id_with_other_content_is_not_a_duplicate(bot):
    a = make_msg(mid="<same@nhs.net>", body="first question")
    b = make_msg(mid="<same@nhs.net>", body="a different question")
    assert bot.ingest(a)["outcome"] == "rejected"
    assert bot.ingest(b)["outcome"] == "rejected"
    assert len(bot.outbox()) == 2


@pytest.mark.parametrize("name,kind", [
    ("13-auto-reply-out-of-office.eml", "auto_reply"),
    ("14-bounce-delivery-status.eml", "bounce"),
    ("15-read-receipt-disposition-notification.eml", "read_receipt"),
])
def test_machine_mail_from_samples_is_ignored(bot, name, kind):
    r = bot.ingest(name)
    assert (r["outcome"], r["kind"], r["reply"]) == ("ignored", kind, None)
    assert bot.outbox() == []


@pytest.mark.parametrize("extra", [
    {"X-Autoreply": "yes"},
    {"Auto-Submitted": "auto-replied (vacation)"},
])
def test_auto_replies_are_ignored(bot, extra):
    r = bot.ingest(make_msg(extra=extra))
    assert r["outcome"] == "ignored" and r["reply"] is None


@pytest.mark.parametrize("extra,reason", [
    ({"Auto-Submitted": "auto-generated", "X-MS-Exchange-Generated-Message-Source": "Mailbox Rules Agent"},
     "Auto-Submitted: auto-generated"),
    ({"Precedence": "bulk"}, "Precedence: bulk"),
    ({"List-Id": "<practices.lists.nhs.net>"}, "List-Id (mailing list)"),
    ({"X-Auto-Response-Suppress": "All"}, "X-Auto-Response-Suppress"),
])
def test_machine_mail_is_handled_but_never_answered(bot, extra, reason):
    claim = "Practice code: Z98101\nMonth: last month\nDenosumab injections: 4\n"
    r = bot.ingest(make_msg(subject="FW: claim", body=claim, extra=extra))
    assert (r["outcome"], r["kind"]) == ("accepted", "claim")     # handled and recorded
    assert bot.conn.execute("SELECT count FROM claims WHERE state='accepted'").fetchone()[0] == 4
    assert r["reply"] is None and bot.outbox() == []
    assert bot.row(r["id"])["no_reply_reason"] == reason


def test_empty_return_path_is_not_answered(bot):
    raw = b"Return-Path: <>\r\n" + make_msg().as_bytes()
    r = bot.ingest(raw)
    assert r["reply"] is None


@pytest.mark.parametrize("how", ["loop-header", "own-message-id", "own-address"])
def test_our_own_mail_coming_back_is_ignored(bot, how):
    if how == "loop-header":
        m = make_msg(extra={"X-Lesbot-Loop": "lesbot"})
    elif how == "own-message-id":
        m = make_msg(mid="<abc.LES-000001@lesbot.nhs.net>")
    else:
        m = make_msg(sender="ashmeres.les@nhs.net")
    r = bot.ingest(m)
    assert (r["outcome"], r["kind"]) == ("ignored", "loop")
    assert bot.outbox() == []


def test_a_reply_to_our_reply_is_ignored_not_answered(bot):
    bot.ingest(make_msg())
    ours = bot.outbox()[0]["raw"]
    assert bot.ingest(ours)["outcome"] == "ignored"


@pytest.mark.parametrize("name", ["16-unknown-sender-non-nhs.eml", "18-patient-enquiry-non-nhs.eml"])
def test_unknown_sender_quarantined_no_reply(bot, name):
    r = bot.ingest(name)
    assert (r["outcome"], r["kind"], r["reply"]) == ("quarantined", "unknown_sender", None)
    assert bot.outbox() == []


def test_spoofed_from_is_quarantined(bot):
    r = bot.ingest(make_msg(), envelope_from="attacker@example.com")
    assert (r["outcome"], r["kind"]) == ("quarantined", "spoofed")
    assert "differs" in r["errors"][0]["problem"]


def test_failing_authentication_results_quarantined(home):
    b = Lesbot(home, trusted_authserv_id="mx.ashmeres.nhs.net")
    try:
        m = make_msg(extra={"Authentication-Results":
                            "mx.ashmeres.nhs.net; spf=pass smtp.mailfrom=nhs.net; dkim=fail; dmarc=fail"})
        r = b.ingest(m)
        assert (r["outcome"], r["kind"]) == ("quarantined", "spoofed")
        # a pass from the trusted relay goes through
        ok = make_msg(extra={"Authentication-Results": "mx.ashmeres.nhs.net; spf=pass; dkim=pass; dmarc=pass"})
        assert b.ingest(ok)["outcome"] == "rejected"
        # a failure claimed by some other server is not trusted either way
        other = make_msg(extra={"Authentication-Results": "evil.example; dkim=fail"})
        assert b.ingest(other)["outcome"] == "rejected"
    finally:
        b.close()


def test_release_with_trust_sender_processes_and_trusts(bot, home):
    from conftest import run_cli
    held = bot.ingest("18-patient-enquiry-non-nhs.eml")
    bot.close()
    r = run_cli(home, "quarantine", "release", str(held["id"]), "--trust-sender", "Z98104")
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["outcome"] == "rejected" and result["reply"]["to"] == "pauline.drury58@example.org"
    b2 = Lesbot(home)
    try:
        assert b2.row(held["id"])["state"] == "rejected" and b2.row(held["id"])["released"] == 1
        actions = [a[0] for a in b2.conn.execute(
            "SELECT action FROM audit WHERE entity IN ('message','org') AND action NOT IN ('added','updated') ORDER BY id")]
        assert actions == ["quarantined", "address trusted", "released", "rejected"]
    finally:
        b2.close()


def test_release_without_trust_never_replies_to_unknown(bot, home):
    from conftest import run_cli
    held = bot.ingest("16-unknown-sender-non-nhs.eml")
    r = run_cli(home, "quarantine", "release", str(held["id"]))
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["outcome"] == "rejected" and result["reply"] is None
    assert bot.outbox() == []


def test_drop(bot, home):
    from conftest import run_cli
    held = str(bot.ingest("16-unknown-sender-non-nhs.eml")["id"])
    run_cli(home, "quarantine", "drop", held)
    assert bot.row(int(held))["state"] == "dropped"
    assert run_cli(home, "quarantine", "drop", held, check=False).returncode != 0


def handler_for(word, behaviour):
    """A test handler taking messages whose subject holds `word`."""
    return types.SimpleNamespace(name=word, match=lambda ctx: word in ctx.parsed.subject,
                                 handle=lambda ctx, found: behaviour(ctx))


def _explode(ctx):
    raise ValueError("handler exploded")


def _dawdle(ctx):
    time.sleep(3)
    return Decision("accepted", "slow")


Boom = handler_for("boom", _explode)
Slow = handler_for("slow", _dawdle)


def test_failed_handler_is_recorded_and_next_message_goes_on(home):
    b = Lesbot(home, limits={"handler_timeout_seconds": 0.5})
    b.pipeline.handlers = [Boom, Slow, enquiry]
    try:
        r1 = b.ingest(make_msg(subject="boom"))
        r2 = b.ingest(make_msg(subject="slow"))
        r3 = b.ingest(make_msg(subject="normal"))
        assert r1["outcome"] == "failed" and "handler exploded" in b.row(r1["id"])["error"]
        assert r2["outcome"] == "failed" and "longer than 0.5 s" in b.row(r2["id"])["error"]
        assert r3["outcome"] == "rejected"
        assert len(b.outbox()) == 1
        assert b.row(r1["id"])["raw"]   # raw kept for the retry
    finally:
        b.close()


def test_retry_a_failed_message(home):
    from conftest import run_cli
    b = Lesbot(home)
    b.pipeline.handlers = [Boom, enquiry]
    failed = str(b.ingest(make_msg(subject="boom"))["id"])
    b.close()
    listing = run_cli(home, "messages", "list", "--state", "failed").stdout
    assert "failed" in listing and "handler exploded" in listing
    # the CLI runs the shipped handlers, so the retry now succeeds
    r = json.loads(run_cli(home, "messages", "retry", failed).stdout.strip().splitlines()[-1])
    assert r["outcome"] == "rejected" and r["reply"]
    assert run_cli(home, "messages", "retry", failed, check=False).returncode != 0


def test_template_error_leaves_message_failed_not_crashed(bot):
    bot.pipeline.handlers = [type("T", (), {"match": staticmethod(lambda c: True), "handle": staticmethod(
        lambda c, found: Decision("rejected", "x", case_kind="x", reply=__import__("handlers.base").base.Reply("nope")))})]
    r = bot.ingest(make_msg())
    assert r["outcome"] == "failed" and "nope" in bot.row(r["id"])["error"]
    assert bot.outbox() == [] and bot.conn.execute("SELECT count(*) FROM cases").fetchone()[0] == 0


def test_reply_cap_per_sender_per_day(home):
    b = Lesbot(home, limits={"replies_per_sender_per_day": 2})
    try:
        results = [b.ingest(make_msg(body=f"question {i}")) for i in range(3)]
        assert [bool(r["reply"]) for r in results] == [True, True, False]
        assert "daily reply cap" in b.row(results[2]["id"])["no_reply_reason"]
        assert b.ingest(make_msg(sender="kwame.osei4@nhs.net"))["reply"]
    finally:
        b.close()


def test_hard_bounce_recorded_on_case_and_address_suppressed(bot, home):
    from conftest import run_cli
    first = bot.ingest(make_msg())
    out = bot.outbox()[0]
    r = bot.ingest(bounce_for(out, "priya.raghunathan3@nhs.net", "5.1.1"), envelope_from="")
    assert (r["outcome"], r["kind"]) == ("ignored", "bounce")
    assert r["reference"] == first["reference"]
    b = bot.conn.execute("SELECT * FROM bounces").fetchone()
    assert b["hard"] == 1 and b["case_id"] == bot.row(first["id"])["case_id"] and b["outbox"] == out["id"]
    # no more mail to that address until a human clears it
    held = bot.ingest(make_msg(body="another"))
    assert bot.outbox()[-1]["state"] == "held" and held["reply"]
    assert "priya.raghunathan3@nhs.net" in run_cli(home, "bounces", "list").stdout
    run_cli(home, "bounces", "clear", "priya.raghunathan3@nhs.net")
    bot.ingest(make_msg(body="a third"))
    assert bot.outbox()[-1]["state"] == "queued"


def test_mailbox_full_bounce_is_soft(bot):
    bot.ingest(make_msg())
    bot.ingest(bounce_for(bot.outbox()[0], "priya.raghunathan3@nhs.net", "5.2.2"), envelope_from="")
    assert bot.conn.execute("SELECT hard FROM bounces").fetchone()[0] == 0
    assert bot.conn.execute("SELECT count(*) FROM suppressed").fetchone()[0] == 0


def test_reply_to_our_message_joins_its_case(bot):
    first = bot.ingest(make_msg())
    ref = first["reference"]
    assert ref == case_ref(bot, first)
    ours = bot.outbox()[0]
    answer = make_msg(subject="RE: your message", extra={"In-Reply-To": f"<{ours['msgid']}>"})
    r = bot.ingest(answer)
    assert r["reference"] == ref
    by_subject = make_msg(subject=f"About [{ref}] again")
    assert bot.ingest(by_subject)["reference"] == ref
    # another practice quoting our reference does not get attached to it
    other = make_msg(sender="kwame.osei4@nhs.net", subject=f"Re: [{ref}]")
    assert bot.ingest(other)["reference"] != ref


def test_oversize_imap_stub_is_quarantined(bot):
    raw = b"X-Lesbot-Truncated: 99999999\r\n" + make_msg().as_bytes().split(b"\n\n")[0] + b"\r\n\r\n"
    r = bot.ingest(raw, source="imap")
    assert (r["outcome"], r["kind"]) == ("quarantined", "oversize")


def test_garbage_bytes_end_in_a_named_state(bot):
    for raw in (b"", b"\x00\xff\xfe garbage", b"From: \r\n\r\n", b"Subject: =?utf-8?b?!!!?=\r\n\r\nhi"):
        r = bot.ingest(raw)
        assert r["outcome"] in ("quarantined", "ignored", "rejected")


def test_notices_go_only_to_directory_addresses(bot):
    from handlers.base import Notice, Reply
    passing_on = handler_for("refer", lambda ctx: Decision(
        "accepted", "test", case_kind="test", reply=Reply("help"),
        notices=[Notice("Kettlebrook.HC@nhs.net", "help"), Notice("stranger@example.org", "help")]))
    bot.pipeline.handlers = [passing_on, enquiry]
    r = bot.ingest(make_msg(subject="refer this"))
    assert r["outcome"] == "accepted" and r["reply"]["to"] == "priya.raghunathan3@nhs.net"
    out = bot.outbox()
    assert [o["to_addr"] for o in out] == ["priya.raghunathan3@nhs.net", "kettlebrook.hc@nhs.net"]
    notice = out[1]["raw"].decode()
    assert "Auto-Submitted: auto-generated" in notice and "In-Reply-To" not in notice
    assert f"[{r['reference']}]" in out[1]["subject"] and r["reference"] == case_ref(bot, r)
    refused = bot.conn.execute("SELECT detail FROM audit WHERE action='notice not sent'").fetchone()[0]
    assert "not a directory address" in refused and "stranger" not in refused


def test_a_group_decided_in_one_hand_off_stops_at_an_overrun(home):
    """The worker hands a whole group to the decide thread. A message that overruns is failed,
    the ones decided before it are committed, and the ones after it wait for the next worker."""
    from bot.mail.intake import store
    b = Lesbot(home, limits={"handler_timeout_seconds": 0.5})
    b.pipeline.handlers = [Slow, enquiry]
    try:
        senders = ["priya.raghunathan3@nhs.net", "martin.coles12@nhs.net", "lorraine.bishop@nhs.net"]
        ids = [store(b.conn, make_msg(sender=s, subject=subj).as_bytes(), "file", None, None, None, None)
               for s, subj in zip(senders, ["quick", "slow", "quick too"])]
        results = b.pipeline.process_pending()
        assert [r["id"] for r in results] == ids[:2]
        assert b.row(ids[0])["state"] == "rejected"
        assert b.row(ids[1])["state"] == "failed" and "longer than 0.5 s" in b.row(ids[1])["error"]
        assert b.row(ids[2])["state"] == "received" and b.pipeline.overran
    finally:
        b.close()


def test_a_group_keeps_one_senders_messages_apart(home):
    """Two messages from one sender are never decided into one group: the second is decided
    after the first is committed, so it sees it (here: as the same message sent twice)."""
    from bot.mail.intake import store
    b = Lesbot(home)
    try:
        raw = make_msg(body="When is the next payment run?").as_bytes()
        other = make_msg(sender="lorraine.bishop@nhs.net").as_bytes()
        for r in (raw, other, raw):
            store(b.conn, r, "file", None, None, None, None)
        results = b.pipeline.process_pending()
        assert [r["outcome"] for r in results] == ["rejected", "rejected", "duplicate"]
        assert len(b.outbox()) == 2
    finally:
        b.close()
