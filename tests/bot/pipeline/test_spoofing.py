"""Issue 11, item 4: spoofing inside nhs.net, where every NHS user shares the domain."""
from __future__ import annotations

import smtplib

from conftest import DATA, make_msg, wait_for
from store.db import connect

PRIYA = "priya.raghunathan3@nhs.net"             # Meresfield MC (Z98101)
MERESFIELD = "ashmeres.meresfieldmc@nhs.net"     # Meresfield's shared mailbox
KWAME = "kwame.osei4@nhs.net"                    # Stonebridge Lane (Z98106)


def test_an_outsider_on_nhs_net_sending_as_a_practice_is_held(bot):
    r = bot.ingest(make_msg(sender=MERESFIELD, subject="Question", body="How do I claim?"),
                   envelope_from="attacker.someone@nhs.net")
    assert (r["outcome"], r["kind"]) == ("quarantined", "spoofed")
    assert "not in the directory" in r["errors"][0]["problem"]
    assert bot.outbox() == []


def test_another_practices_staff_sending_as_a_practice_is_held(bot):
    r = bot.ingest(make_msg(sender=MERESFIELD, subject="Question", body="How do I claim?"), envelope_from=KWAME)
    assert (r["outcome"], r["kind"]) == ("quarantined", "spoofed")
    assert "same organisation" in r["errors"][0]["problem"]


def test_staff_sending_as_their_own_practices_shared_mailbox_is_fine(bot):
    r = bot.ingest(make_msg(sender=MERESFIELD, subject="Question", body="How do I claim?"), envelope_from=PRIYA)
    assert r["kind"] != "spoofed" and r["outcome"] != "quarantined"


def test_a_trusted_forwarder_may_send_for_others(home):
    from conftest import Lesbot
    b = Lesbot(home, trusted_envelope_senders=["forwarder@nhs.net"])
    try:
        r = b.ingest(make_msg(sender=MERESFIELD, subject="Question", body="How do I claim?"),
                     envelope_from="forwarder@nhs.net")
        assert r["kind"] != "spoofed"
    finally:
        b.close()


def test_an_encoded_display_name_is_never_read_as_the_address(bot):
    raw = (b"From: =?utf-8?q?=22Dr_K_Osei=22_=3Ckwame=2Eosei4=40nhs=2Enet=3E=2C?= <mallory@example.org>\r\n"
           b"To: ashmeres.les@nhs.net\r\nSubject: Question\r\nMessage-ID: <enc-1@example.org>\r\n"
           b"Date: Mon, 5 Oct 2026 09:00:00 +0000\r\n\r\nPlease send the register.\r\n")
    r = bot.ingest(raw)
    row = bot.row(r["id"])
    assert row["from_addr"] == "mallory@example.org"
    assert (r["outcome"], r["kind"]) == ("quarantined", "unknown_sender")


def test_a_bounce_over_smtp_with_the_null_sender_is_a_bounce_not_a_spoof(serve, home):
    srv = serve()
    raw = (DATA / "14-bounce-delivery-status.eml").read_bytes()
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.sendmail("<>", ["ashmeres.les@nhs.net"], raw)
    db = connect(home / "lesbot.db")
    row = wait_for(lambda: db.execute("SELECT state, kind, envelope_from FROM messages "
                                      "WHERE state!='received'").fetchone(), timeout=20)
    assert (row["state"], row["kind"], row["envelope_from"]) == ("ignored", "bounce", "")


def test_a_folded_quoted_display_name_keeps_its_address(bot):
    raw = (b'From: "METABOLIC BONE SERVICE (ASHDOWN GENERAL HOSPITAL NHS FOUNDATION\r\n'
           b' TRUST)" <agh.metabolicbone@nhs.net>\r\nTo: ashmeres.les@nhs.net\r\nCc: "HIGHMERE\r\n PRACTICE"'
           b' <highmere.practice@nhs.net>\r\nSubject: Question\r\nMessage-ID: <fold-1@nhs.net>\r\n'
           b'Date: Mon, 5 Oct 2026 09:00:00 +0000\r\n\r\nWhen is the next payment run?\r\n')
    r = bot.ingest(raw)
    assert bot.row(r["id"])["from_addr"] == "agh.metabolicbone@nhs.net" and r["kind"] != "unknown_sender"
    from bot.mail.parse import parse
    assert parse(raw).addresses("cc") == ["highmere.practice@nhs.net"]
