"""The outbox: Maildir delivery that cannot double, and a real SMTP relay with retries."""
from __future__ import annotations

import email
from datetime import datetime, timedelta, timezone

import pytest
from aiosmtpd.controller import Controller

from bot.processes.mailer import Mailer
from conftest import Lesbot, free_port, make_msg, outbox_files


class Collector:
    def __init__(self):
        self.got = []

    async def handle_DATA(self, server, session, envelope):
        self.got.append((envelope.mail_from, envelope.rcpt_tos, envelope.original_content))
        return "250 OK"


def test_maildir_delivery_survives_a_crash_between_write_and_mark(bot, home):
    bot.ingest(make_msg())
    m = Mailer(bot.settings, bot.conn)
    assert m.deliver_due()["sent"] == 1
    # as if we died after writing the file but before marking the row sent
    bot.conn.execute("UPDATE outbox SET state='queued'")
    assert m.deliver_due()["sent"] == 1
    files = outbox_files(home)
    assert len(files) == 1
    # a mail reader moved it to cur/ with flags: still recognised
    files[0].rename(home / "outbox" / "cur" / (files[0].name + ":2,S"))
    bot.conn.execute("UPDATE outbox SET state='queued'")
    m.deliver_due()
    assert len(outbox_files(home)) == 1


def test_relay_delivery_with_envelope_and_retries(home):
    port = free_port()
    b = Lesbot(home, relay={"host": "127.0.0.1", "port": port, "security": "none"},
               limits={"retry_base_seconds": 60, "retry_max_attempts": 3})
    try:
        b.ingest(make_msg())
        m = Mailer(b.settings, b.conn)
        # relay down: the reply stays queued with a back-off
        assert m.deliver_due() == {"sent": 0, "failed": 1}
        row = b.outbox()[0]
        assert row["state"] == "queued" and row["attempts"] == 1 and "Connection" in row["last_error"]
        assert datetime.fromisoformat(row["next_attempt_at"]) > datetime.now(timezone.utc) + timedelta(seconds=50)
        assert m.deliver_due() == {"sent": 0, "failed": 0}     # not due yet
        collector = Collector()
        ctl = Controller(collector, hostname="127.0.0.1", port=port)
        ctl.start()
        try:
            later = datetime.now(timezone.utc) + timedelta(minutes=2)
            assert m.deliver_due(now=later) == {"sent": 1, "failed": 0}
        finally:
            ctl.stop()
        mail_from, rcpts, data = collector.got[0]
        assert mail_from == "lesbot-bounces@nhs.net" and rcpts == ["priya.raghunathan3@nhs.net"]
        assert email.message_from_bytes(data)["Auto-Submitted"] == "auto-replied"
        assert b.outbox()[0]["state"] == "sent"
        actions = [r[0] for r in b.conn.execute("SELECT action FROM audit WHERE entity='outbox' ORDER BY id")]
        assert actions == ["queued", "sent"]
    finally:
        b.close()


def test_relay_gives_up_after_max_attempts(home):
    b = Lesbot(home, relay={"host": "127.0.0.1", "port": free_port(), "security": "none"},
               limits={"retry_base_seconds": 1, "retry_max_attempts": 2})
    try:
        b.ingest(make_msg())
        m = Mailer(b.settings, b.conn)
        far = datetime.now(timezone.utc) + timedelta(days=1)
        m.deliver_due(now=far)
        m.deliver_due(now=far)
        row = b.outbox()[0]
        assert row["state"] == "failed" and row["attempts"] == 2
        assert b.conn.execute("SELECT action FROM audit WHERE entity='outbox' ORDER BY id DESC").fetchone()[0] == "failed"
    finally:
        b.close()


class AuthCollector(Collector):
    """A relay that wants XOAUTH2, as Exchange Online does, or a password."""

    def __init__(self):
        super().__init__()
        self.logins = []

    async def auth_XOAUTH2(self, server, args):
        import base64
        from aiosmtpd.smtp import AuthResult
        blob = base64.b64decode(args[1]).decode()
        self.logins.append(blob)
        if blob == "user=les.inbox@nhs.net\x01auth=Bearer tok-123\x01\x01":
            return AuthResult(success=True)
        # Like Exchange: a 334 with the error, the client answers empty, then 535.
        await server.challenge_auth('{"status":"401"}', encode_to_b64=True)
        return AuthResult(success=False, handled=False)


@pytest.fixture
def auth_relay():
    """A relay that requires AUTH: XOAUTH2 as Exchange Online does, or a password."""
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def password_check(server, session, envelope, mechanism, data):
        ok = isinstance(data, LoginPassword) and data.login == b"relay-user" and data.password == b"relay-pw"
        return AuthResult(success=ok)
    port, collector = free_port(), AuthCollector()
    ctl = Controller(collector, hostname="127.0.0.1", port=port, auth_require_tls=False,
                     authenticator=password_check, auth_required=True)
    ctl.start()
    yield port, collector
    ctl.stop()


def test_relay_xoauth2_with_token_command(home, tmp_path, auth_relay):
    import sys
    port, collector = auth_relay
    cmd = tmp_path / "token.py"
    cmd.write_text("print('tok-123')\n")
    b = Lesbot(home, relay={"host": "127.0.0.1", "port": port, "security": "none", "user": "les.inbox@nhs.net",
                            "oauth2_token_command": f"{sys.executable} {cmd}"})
    try:
        b.ingest(make_msg())
        assert Mailer(b.settings, b.conn).deliver_due() == {"sent": 1, "failed": 0}
        assert collector.logins and len(collector.got) == 1
        cmd.write_text("print('wrong')\n")
        b.ingest(make_msg(body="second"))
        assert Mailer(b.settings, b.conn).deliver_due() == {"sent": 0, "failed": 1}
        assert "Authentication" in b.outbox()[-1]["last_error"]
    finally:
        b.close()


def test_relay_password_login(home, auth_relay):
    port, collector = auth_relay
    b = Lesbot(home, relay={"host": "127.0.0.1", "port": port, "security": "none", "user": "relay-user",
                            "password": "relay-pw"})
    try:
        b.ingest(make_msg())
        assert Mailer(b.settings, b.conn).deliver_due() == {"sent": 1, "failed": 0}
        assert len(collector.got) == 1
    finally:
        b.close()


class Slow(Collector):
    """Answers the end of data only after `delay` seconds, as a busy relay may (RFC 5321 allows 10 min)."""

    def __init__(self, delay):
        super().__init__()
        self.delay = delay

    async def handle_DATA(self, server, session, envelope):
        import asyncio
        self.got.append((envelope.mail_from, envelope.rcpt_tos, envelope.original_content))
        await asyncio.sleep(self.delay)
        return "250 OK"


class Refuses(Collector):
    async def handle_DATA(self, server, session, envelope):
        return "550 5.7.1 relaying denied"


class HangsUp(Collector):
    """Takes the whole message, then drops the connection without answering."""

    async def handle_DATA(self, server, session, envelope):
        self.got.append(envelope.original_content)
        server.transport.close()
        return None


def _relay_bot(home, handler, **relay):
    ctl = Controller(handler, hostname="127.0.0.1", port=free_port())
    ctl.start()
    b = Lesbot(home, relay={"host": "127.0.0.1", "port": ctl.port, "security": "none", **relay},
               limits={"retry_base_seconds": 1, "retry_max_attempts": 5})
    return b, ctl


def test_a_relay_slower_than_the_timeout_gets_one_copy(home):
    b, ctl = _relay_bot(home, Slow(1.5), timeout_seconds=0.5)
    try:
        b.ingest(make_msg())
        assert Mailer(b.settings, b.conn).deliver_due() == {"sent": 1, "failed": 0}
        assert len(ctl.handler.got) == 1 and b.outbox()[0]["state"] == "sent"
    finally:
        ctl.stop()
        b.close()


def test_a_permanent_refusal_is_not_retried(home):
    b, ctl = _relay_bot(home, Refuses())
    try:
        b.ingest(make_msg())
        Mailer(b.settings, b.conn).deliver_due()
        row = b.outbox()[0]
        assert (row["state"], row["attempts"]) == ("failed", 1) and "550" in row["last_error"]
    finally:
        ctl.stop()
        b.close()


def test_an_answer_lost_after_the_data_is_in_doubt_and_never_resent_blindly(home):
    from conftest import run_cli
    b, ctl = _relay_bot(home, HangsUp())
    try:
        b.ingest(make_msg())
        m = Mailer(b.settings, b.conn)
        m.deliver_due()
        row = b.outbox()[0]
        assert row["state"] == "unknown" and "no answer after the data was sent" in row["last_error"]
        far = datetime.now(timezone.utc) + timedelta(days=1)
        assert m.deliver_due(now=far) == {"sent": 0, "failed": 0}
        m.recover()
        assert b.outbox()[0]["state"] == "unknown" and len(ctl.handler.got) == 1
        # a person who knows it never arrived sends it again
        listed = run_cli(home, "outbox", "list", "--state", "unknown", env_extra={"LESBOT_RELAY__HOST": ""}).stdout
        assert "priya.raghunathan3@nhs.net" in listed
        run_cli(home, "outbox", "resend", str(row["id"]))
        assert b.outbox()[0]["state"] == "queued"
    finally:
        ctl.stop()
        b.close()


def test_a_crash_while_handing_over_leaves_the_reply_in_doubt(home):
    b, ctl = _relay_bot(home, Collector())
    try:
        b.ingest(make_msg())
        b.conn.execute("UPDATE outbox SET state='sending'")      # as a kill -9 mid-delivery leaves it
        m = Mailer(b.settings, b.conn)
        m.recover()
        assert b.outbox()[0]["state"] == "unknown"
        assert m.deliver_due() == {"sent": 0, "failed": 0} and ctl.handler.got == []
    finally:
        ctl.stop()
        b.close()


class Peers(Collector):
    """Records which client connection each message came over."""

    def __init__(self, hang_up_after=False):
        super().__init__()
        self.peers = []
        self.hang_up_after = hang_up_after

    async def handle_DATA(self, server, session, envelope):
        import asyncio
        self.peers.append(session.peer)
        self.got.append(envelope.original_content)
        if self.hang_up_after:       # as a relay closes a connection left idle
            asyncio.get_running_loop().call_later(0.05, server.transport.close)
        return "250 OK"


SENDERS = ("priya.raghunathan3@nhs.net", "martin.coles12@nhs.net", "lorraine.bishop@nhs.net")


def test_one_relay_connection_carries_a_batch(home):
    b, ctl = _relay_bot(home, Peers())
    try:
        for s in SENDERS:
            b.ingest(make_msg(sender=s))
        assert Mailer(b.settings, b.conn).deliver_due() == {"sent": 3, "failed": 0}
        assert len(ctl.handler.got) == 3 and len(set(ctl.handler.peers)) == 1
        assert [r["state"] for r in b.outbox()] == ["sent"] * 3
        sent = b.conn.execute("SELECT count(*) FROM audit WHERE entity='outbox' AND action='sent'").fetchone()[0]
        assert sent == 3
    finally:
        ctl.stop()
        b.close()


def test_a_kept_connection_the_relay_closed_is_opened_again(home):
    import time
    b, ctl = _relay_bot(home, Peers(hang_up_after=True))
    try:
        m = Mailer(b.settings, b.conn)
        b.ingest(make_msg(sender=SENDERS[0]))
        assert m.deliver_due() == {"sent": 1, "failed": 0}
        time.sleep(0.3)                               # the relay has closed it by now
        b.ingest(make_msg(sender=SENDERS[1]))
        assert m.deliver_due() == {"sent": 1, "failed": 0}
        assert len(ctl.handler.got) == 2 and len(set(ctl.handler.peers)) == 2
        assert [(r["state"], r["attempts"]) for r in b.outbox()] == [("sent", 1), ("sent", 1)]
    finally:
        ctl.stop()
        b.close()


def test_maildir_batch_and_a_crash_after_writing_never_doubles(bot, home):
    for s in SENDERS:
        bot.ingest(make_msg(sender=s))
    assert Mailer(bot.settings, bot.conn).deliver_due() == {"sent": 3, "failed": 0}
    files = outbox_files(home)
    assert len(files) == 3 and not list((home / "outbox" / "tmp").iterdir())
    # As a kill -9 after the files were written but before the rows were marked: 'sending',
    # never tried before; a reader has already moved one file to cur/.
    files[0].rename(home / "outbox" / "cur" / (files[0].name + ":2,S"))
    bot.conn.execute("UPDATE outbox SET state='sending', attempts=0, sent_at=NULL")
    m = Mailer(bot.settings, bot.conn)
    m.recover()
    assert m.deliver_due() == {"sent": 3, "failed": 0}
    assert len(outbox_files(home)) == 3
    assert [r["state"] for r in bot.outbox()] == ["sent"] * 3


def test_after_a_crash_only_the_reply_being_handed_over_is_in_doubt(home):
    """A killed lesbot leaves its batch 'sending': the reply it was handing over is `unknown`,
    the ones it had not reached go out once, and a batch claimed before the machine restarted
    (unsynced marks may be gone with the power) is all in doubt."""
    from store.db import boot_id
    b, ctl = _relay_bot(home, Peers())
    try:
        for s in SENDERS:
            b.ingest(make_msg(sender=s))
        ids = [r["id"] for r in b.outbox()]
        boot = boot_id()
        assert boot, "Linux gives every boot an id"
        b.conn.execute("UPDATE outbox SET state='sending', claimed_boot=?", (boot,))
        b.conn.execute("UPDATE outbox SET handing=1 WHERE id=?", (ids[0],))
        m = Mailer(b.settings, b.conn)
        m.recover()
        assert [r["state"] for r in b.outbox()] == ["unknown", "queued", "queued"]
        assert m.deliver_due() == {"sent": 2, "failed": 0} and len(ctl.handler.got) == 2
        assert [r["state"] for r in b.outbox()] == ["unknown", "sent", "sent"]
        assert [r["handing"] for r in b.outbox()] == [1, 1, 1]

        b.ingest(make_msg(sender="kwame.osei4@nhs.net"))
        b.conn.execute("UPDATE outbox SET state='sending', handing=0, claimed_boot='an earlier boot' "
                       "WHERE state='queued'")
        m.recover()
        last = b.outbox()[-1]
        assert last["state"] == "unknown" and "restarted" in last["last_error"]
    finally:
        ctl.stop()
        b.close()


def test_a_relay_batch_that_fails_midway_puts_back_what_it_never_handed_over(home, monkeypatch):
    b, ctl = _relay_bot(home, Peers())
    try:
        for s in SENDERS:
            b.ingest(make_msg(sender=s))
        m = Mailer(b.settings, b.conn)
        calls = []
        real = m.relay.deliver

        def deliver_then_lose_the_database(*a):
            calls.append(1)
            if len(calls) == 2:
                raise KeyboardInterrupt       # anything that ends the batch, not a delivery failure
            return real(*a)
        monkeypatch.setattr(m.relay, "deliver", deliver_then_lose_the_database)
        with pytest.raises(KeyboardInterrupt):
            m.deliver_due()
        assert [r["state"] for r in b.outbox()] == ["sent", "sending", "queued"]
    finally:
        ctl.stop()
        b.close()
