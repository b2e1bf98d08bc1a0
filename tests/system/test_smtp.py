"""The SMTP door, against a real `lesbot serve` process on 127.0.0.1."""
from __future__ import annotations

import email
import smtplib
from email.policy import SMTP

import pytest

from conftest import make_msg, outbox_files, wait_for
from store.db import connect


def send(port, m, from_addr=None, to=None):
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        return s.send_message(m, from_addr=from_addr, to_addrs=to)


def test_accepts_stores_replies_once(serve, home):
    srv = serve()
    m = make_msg()
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.ehlo()
        assert "size" in s.esmtp_features and int(s.esmtp_features["size"]) == 35 * 1024 * 1024
        s.mail("priya.raghunathan3@nhs.net")
        s.rcpt("ashmeres.les@nhs.net")
        code, resp = s.data(m.as_bytes(policy=SMTP))
    assert code == 250 and b"stored as" in resp
    # stored durably before the 250: the row is already in the spool file (or moved on)
    db = connect(home / "lesbot.db")
    spooled = connect(home / "spool.db").execute("SELECT count(*) FROM spool").fetchone()[0]
    assert spooled + db.execute("SELECT count(*) FROM messages").fetchone()[0] >= 1
    replies = wait_for(lambda: outbox_files(home), timeout=10)
    assert len(replies) == 1
    reply = email.message_from_bytes(replies[0].read_bytes())
    assert reply["To"] == "priya.raghunathan3@nhs.net"
    assert reply["In-Reply-To"] == m["Message-ID"]
    assert reply["Auto-Submitted"] == "auto-replied"
    # the same message again: recorded as a duplicate, no second reply
    send(srv.port, m)
    wait_for(lambda: db.execute("SELECT count(*) FROM messages WHERE state='duplicate'").fetchone()[0] == 1)
    first, again = db.execute("SELECT id, state, duplicate_of FROM messages ORDER BY id").fetchall()
    assert (again["state"], again["duplicate_of"]) == ("duplicate", first["id"])
    assert len(outbox_files(home)) == 1


def test_other_recipients_get_550(serve):
    srv = serve()
    with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
        send(srv.port, make_msg(to="someone.else@nhs.net"))
    assert e.value.recipients["someone.else@nhs.net"][0] == 550


def test_bounce_address_is_accepted(serve):
    srv = serve()
    assert send(srv.port, make_msg(), from_addr="", to=["lesbot-bounces@nhs.net"]) == {}


def test_over_size_gets_552(serve):
    srv = serve(env_extra={"LESBOT_LIMITS__MAX_MESSAGE_BYTES": "20000"})
    big = make_msg(body=("x" * 70 + "\n") * 500)
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.ehlo()
        s.mail("priya.raghunathan3@nhs.net")   # no SIZE given: the check happens on DATA
        s.rcpt("ashmeres.les@nhs.net")
        code, _ = s.data(big.as_bytes(policy=SMTP))
    assert code == 552
    with pytest.raises(smtplib.SMTPSenderRefused) as e:   # SIZE declared up front
        send(srv.port, big)
    assert e.value.smtp_code == 552


def test_machine_mail_and_strangers_get_no_reply(serve, home):
    srv = serve()
    send(srv.port, make_msg(sender="kwame.osei4@nhs.net", subject="Automatic reply: x",
                            extra={"Auto-Submitted": "auto-replied"}))
    send(srv.port, make_msg(sender="someone@example.org"))
    send(srv.port, make_msg(sender="MAILER-DAEMON@nhs.net", subject="Undeliverable"), from_addr="")
    send(srv.port, make_msg(sender="priya.raghunathan3@nhs.net", subject="last"))
    db = connect(home / "lesbot.db")
    wait_for(lambda: db.execute("SELECT count(*) FROM messages WHERE state!='received'").fetchone()[0] == 4)
    states = [tuple(r) for r in db.execute("SELECT state, kind FROM messages ORDER BY id")]
    assert states == [("ignored", "auto_reply"), ("quarantined", "unknown_sender"), ("ignored", "bounce"),
                      ("rejected", "enquiry")]
    assert len(wait_for(lambda: outbox_files(home))) == 1


def test_restart_processes_what_was_stored(serve, home):
    srv = serve()
    srv.kill9()
    # write straight into the store as if the 250 had been given just before a crash
    from bot.mail.intake import store
    db = connect(home / "lesbot.db")
    store(db, make_msg().as_bytes(), "smtp")
    serve()
    assert len(wait_for(lambda: outbox_files(home), timeout=15)) == 1


def _children(pid: int) -> dict[str, int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        kids = [int(k) for k in f.read().split()]
    roles = {}
    for k in kids:
        with open(f"/proc/{k}/cmdline", "rb") as f:
            args = f.read().split(b"\0")
        if b"--role" in args:          # not some other child (a zombie has no command line)
            roles[args[args.index(b"--role") + 1].decode()] = k
    return roles


def test_deciding_and_delivering_run_in_two_processes_and_a_lost_mailer_comes_back(serve, home):
    import os
    import signal
    srv = serve()
    roles = wait_for(lambda: (r := _children(srv.proc.pid)) and len(r) == 2 and r)
    assert set(roles) == {"process", "deliver"}
    os.kill(roles["deliver"], signal.SIGKILL)
    wait_for(lambda: (r := _children(srv.proc.pid)).get("deliver") not in (None, roles["deliver"])
             and "process" in r, timeout=30)
    with smtplib.SMTP("127.0.0.1", srv.port) as s:
        s.send_message(make_msg(mid="<after-the-mailer-died@nhs.net>"))
    wait_for(lambda: len(outbox_files(home)) == 1, timeout=30)
    db = connect(home / "lesbot.db")
    try:
        # the file is made durable first and the row marked after it: wait for the mark
        assert wait_for(lambda: [r[0] for r in db.execute("SELECT state FROM outbox")] == ["sent"], timeout=15)
    finally:
        db.close()
