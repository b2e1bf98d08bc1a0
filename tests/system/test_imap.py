"""The IMAP door against a real Dovecot started on 127.0.0.1 by the test."""
from __future__ import annotations

import threading
import time

import pytest

from bot.settings import config
from bot.doors.imap import ImapListener
from bot.mail.intake import IntakeWriter, move_spooled, open_spool, spool_path
from conftest import Dovecot, make_msg, outbox_files, run_cli, wait_for, DATA, ServeProcess, free_port
from store.db import connect, open_db


class Running:
    """An ImapListener in a thread, with a real intake writer and SQLite file."""

    def __init__(self, home, dovecot, **imap):
        cfg = {"enabled": True, "host": "127.0.0.1", "port": dovecot.port, "security": "none",
               "user": "lesbot", "password": "lesbot-pw", "poll_seconds": 30, "max_backoff_seconds": 1}
        cfg.update(imap)
        limits = cfg.pop("limits", {})
        self.settings = config.load(home=home, inbox="ashmeres.les@nhs.net", imap=cfg, limits=limits)
        open_db(self.settings.db_path).close()
        self.intake = IntakeWriter(spool_path(self.settings)).start()
        self.listener = ImapListener(self.settings, self.intake)
        self.thread = threading.Thread(target=self.listener.run, daemon=True)
        self.thread.start()
        assert self.listener.connected.wait(10), dovecot.log()

    def stop(self):
        self.listener.stop()
        self.thread.join(15)
        self.intake.stop()
        assert not self.thread.is_alive()


def stored(home):
    """Messages in lesbot.db, after moving what is spooled (as the worker does)."""
    db = connect(home / "lesbot.db")
    spool = open_spool(home / "spool.db")
    try:
        move_spooled(spool, db)
        return [dict(r) for r in db.execute("SELECT id, source, source_key, received_at, size, raw FROM messages "
                                            "ORDER BY id")]
    finally:
        spool.close()
        db.close()


def folder_state(dovecot, folder):
    c = dovecot.client()
    try:
        c.select_folder(folder)
        uids = c.search()
        return {u: f for u, f in c.get_flags(uids).items()} if uids else {}
    finally:
        c.logout()


def test_fetch_store_flag_move(home, dovecot):
    for i in range(3):
        dovecot.append(make_msg(subject=f"before start {i}").as_bytes())
    r = Running(home, dovecot)
    try:
        wait_for(lambda: len(stored(home)) == 3, timeout=10)
        rows = stored(home)
        assert [x["source"] for x in rows] == ["imap"] * 3
        assert rows[0]["source_key"].endswith("/1")
        assert folder_state(dovecot, "INBOX") == {}
        moved = folder_state(dovecot, "lesbot/processed")
        assert len(moved) == 3 and all(b"\\Seen" in f for f in moved.values())
    finally:
        r.stop()


def test_idle_push(home, dovecot):
    r = Running(home, dovecot, poll_seconds=120)
    try:
        assert r.listener.client.has_capability("IDLE")
        time.sleep(0.5)
        t0 = time.time()
        dovecot.append(make_msg(subject="pushed").as_bytes())
        assert wait_for(lambda: len(stored(home)) == 1, timeout=10)
        assert time.time() - t0 < 10     # well before the 120 s poll
    finally:
        r.stop()


def test_polls_when_idle_is_off(home, dovecot):
    r = Running(home, dovecot, idle=False, poll_seconds=0.3)
    try:
        dovecot.append(make_msg(subject="polled").as_bytes())
        assert wait_for(lambda: len(stored(home)) == 1, timeout=10)
    finally:
        r.stop()


def test_reconnects_after_server_restart(home, dovecot):
    r = Running(home, dovecot, poll_seconds=1)
    try:
        dovecot.append(make_msg(subject="one").as_bytes())
        wait_for(lambda: len(stored(home)) == 1, timeout=10)
        dovecot.stop()
        time.sleep(1.5)
        dovecot.start()
        dovecot.append(make_msg(subject="two").as_bytes())
        assert wait_for(lambda: len(stored(home)) == 2, timeout=20), dovecot.log()
    finally:
        r.stop()


def test_uid_tracking_across_restart_without_moving(home, dovecot):
    for i in range(2):
        dovecot.append(make_msg(subject=f"stay {i}").as_bytes())
    r = Running(home, dovecot, processed_folder="", poll_seconds=0.5, idle=False)
    wait_for(lambda: len(stored(home)) == 2, timeout=10)
    r.stop()
    assert len(folder_state(dovecot, "INBOX")) == 2     # left in place, flagged Seen
    dovecot.append(make_msg(subject="while lesbot was down").as_bytes())
    r = Running(home, dovecot, processed_folder="", poll_seconds=0.5, idle=False)
    try:
        wait_for(lambda: len(stored(home)) == 3, timeout=10)
        time.sleep(1.5)     # several polls: nothing is fetched twice
        rows = stored(home)
        assert len(rows) == 3
        assert [x["source_key"].rsplit("/", 1)[1] for x in rows] == ["1", "2", "3"]
    finally:
        r.stop()


def test_crash_after_store_before_move_is_not_stored_twice(home, dovecot):
    """Stored, then the process died before the move: at restart it is only moved."""
    dovecot.append(make_msg(subject="half done").as_bytes())
    r = Running(home, dovecot, processed_folder="", idle=False, poll_seconds=0.3)
    wait_for(lambda: len(stored(home)) == 1, timeout=10)
    r.stop()
    db = connect(home / "lesbot.db")
    db.execute("DELETE FROM imap_state")     # as if the UID had not been remembered
    db.close()
    r = Running(home, dovecot, idle=False, poll_seconds=0.3)
    try:
        wait_for(lambda: folder_state(dovecot, "INBOX") == {}, timeout=10)
        assert len(stored(home)) == 1
        assert len(folder_state(dovecot, "lesbot/processed")) == 1
    finally:
        r.stop()


def test_size_checked_before_download(home, dovecot):
    big = make_msg(subject="huge", body=("y" * 70 + "\n") * 2000).as_bytes()
    dovecot.append(big)
    r = Running(home, dovecot, limits={"max_message_bytes": 50_000})
    try:
        wait_for(lambda: len(stored(home)) == 1, timeout=10)
        row = stored(home)[0]
        assert row["raw"].startswith(b"X-Lesbot-Truncated:") and row["size"] < 5_000
    finally:
        r.stop()


def test_internaldate_is_the_received_time(home, dovecot):
    from datetime import datetime, timezone
    c = dovecot.client()
    when = datetime(2026, 10, 10, 23, 30, tzinfo=timezone.utc)
    c.append("INBOX", make_msg().as_bytes(), msg_time=when)
    c.logout()
    r = Running(home, dovecot)
    try:
        wait_for(lambda: len(stored(home)) == 1, timeout=10)
        assert stored(home)[0]["received_at"].startswith("2026-10-10T23:30:00")
    finally:
        r.stop()


def test_serve_reads_imap_and_replies(home, dovecot):
    run_cli(home, "directory", "import", str(DATA / "directory.csv"))
    env = {"LESBOT_IMAP__ENABLED": "true", "LESBOT_IMAP__HOST": "127.0.0.1",
           "LESBOT_IMAP__PORT": str(dovecot.port), "LESBOT_IMAP__SECURITY": "none",
           "LESBOT_IMAP__USER": "lesbot", "LESBOT_IMAP__PASSWORD": "lesbot-pw"}
    srv = ServeProcess(home, free_port(), env).start()
    try:
        dovecot.append((DATA / "17-nhsmail-exchange-full-headers.eml").read_bytes())
        dovecot.append((DATA / "13-auto-reply-out-of-office.eml").read_bytes())
        assert wait_for(lambda: len(outbox_files(home)) == 1, timeout=20)
        time.sleep(1)
        assert len(outbox_files(home)) == 1
    finally:
        srv.stop()


@pytest.fixture
def token_server():
    """Stands in for Microsoft Entra ID's token check (the one fake here: no identity
    provider runs on this machine). Dovecot itself does the XOAUTH2 exchange."""
    import http.server
    import json
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            seen.append(body)
            ok = "token=good-token" in body
            out = json.dumps({"active": True, "username": "lesbot"} if ok else {"active": False}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/introspect", seen
    srv.shutdown()
    srv.server_close()


def test_oauth2_xoauth2_login_with_token_command(home, token_server, tmp_path):
    import sys
    url, seen = token_server
    d = Dovecot(introspection_url=url).start()
    try:
        d.append(make_msg(subject="via oauth").as_bytes())
        cmd = tmp_path / "token.py"
        cmd.write_text("print('good-token')\n")
        r = Running(home, d, password="", oauth2_token_command=f"{sys.executable} {cmd}")
        try:
            assert wait_for(lambda: len(stored(home)) == 1, timeout=10)
            assert "method=XOAUTH2" in d.log()
            assert any("token=good-token" in s for s in seen)
        finally:
            r.stop()
    finally:
        d.cleanup()


def test_oauth2_bad_token_retries_and_stores_nothing(home, token_server, tmp_path):
    import sys
    url, seen = token_server
    d = Dovecot(introspection_url=url).start()
    try:
        d.append(make_msg().as_bytes())
        cfg = {"enabled": True, "host": "127.0.0.1", "port": d.port, "security": "none", "user": "lesbot",
               "oauth2_token_command": f"{sys.executable} -c \"print('expired-token')\"", "max_backoff_seconds": 1}
        settings = config.load(home=home, inbox="ashmeres.les@nhs.net", imap=cfg)
        open_db(settings.db_path).close()
        intake = IntakeWriter(spool_path(settings)).start()
        listener = ImapListener(settings, intake)
        t = threading.Thread(target=listener.run, daemon=True)
        t.start()
        assert wait_for(lambda: len(seen) >= 2, timeout=15)     # it kept trying, with back-off
        listener.stop()
        t.join(15)
        intake.stop()
        assert stored(home) == [] and not t.is_alive()
    finally:
        d.cleanup()


def test_missing_imap_credentials_is_a_settings_error(home):
    with pytest.raises(config.ConfigError, match="imap needs password or oauth2_token_command"):
        config.load(home=home, imap={"enabled": True, "user": "x"})
