"""Shared fixtures: a lesbot home with a real SQLite file, a real `lesbot serve`,
a real Dovecot. Every server listens on 127.0.0.1 on a port picked at run time
and is stopped by the fixture that started it."""
from __future__ import annotations

import email
import email.utils
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.settings import config
from bot.mail.intake import store
from bot.mail.parse import received_time
from bot.pipeline.pipeline import Pipeline
from store.db import open_db

DATA = Path(__file__).parent / "data"
INBOX = "ashmeres.les@nhs.net"
LESBOT = [sys.executable, "-m", "bot.cli"]
LONDON = ZoneInfo("Europe/London")


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def make_msg(sender="priya.raghunathan3@nhs.net", subject="A question", body="Hello, how do I claim?",
             to=INBOX, mid=None, extra=None) -> EmailMessage:
    m = EmailMessage()
    m["From"] = sender
    m["To"] = to
    m["Subject"] = subject
    m["Date"] = email.utils.formatdate()
    m["Message-ID"] = mid or email.utils.make_msgid(domain="nhs.net")
    for k, v in (extra or {}).items():
        m[k] = v
    m.set_content(body)
    return m


def at(*args) -> datetime:
    """A London wall-clock time, as the UTC instant the inbox received it."""
    return datetime(*args, tzinfo=LONDON).astimezone(timezone.utc)


def text_of(raw: bytes) -> str:
    """The text/plain part of a message lesbot wrote."""
    m = email.message_from_bytes(raw)
    for part in m.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode().replace("\r\n", "\n")
    raise AssertionError("no text part")


def sample_07_seen_without_injection(bot):
    """Sample 07's referral, and Meresfield's reply: seen 29/09/2026, no injection (payable)."""
    bot.ingest("07-msk-referral-plain.eml")
    fwd = next(o for o in bot.outbox() if o["to_addr"] == "ashmeres.meresfieldmc@nhs.net")
    reply = make_msg(sender="ashmeres.meresfieldmc@nhs.net", subject="RE: " + fwd["subject"],
                     body="Seen 29/09/2026: consultation only, no injection given.")
    reply["In-Reply-To"] = fwd["msgid"]
    bot.ingest(reply, received_at=at(2026, 9, 30, 9))


class Lesbot:
    """An in-process lesbot on a temp home: store + process like `lesbot ingest`."""

    def __init__(self, home: Path, **overrides):
        self.home = home
        self.settings = config.load(**{"home": home, "inbox": INBOX, **overrides})
        self.conn = open_db(self.settings.db_path)
        from store.directory import import_csv
        import_csv(self.conn, (DATA / "directory.csv").read_text())
        self.pipeline = Pipeline(self.settings, self.conn)

    def ingest(self, raw, envelope_from=None, received_at=None, source="file"):
        if isinstance(raw, EmailMessage):
            raw = raw.as_bytes()
        if isinstance(raw, (str, Path)) and Path(raw).suffix == ".eml":
            raw = Path(raw if Path(raw).exists() else DATA / raw).read_bytes()
        when = received_at or received_time(raw)
        new_id = store(self.conn, raw, source, when, envelope_from, None, None)
        return self.pipeline.process(new_id)

    def row(self, msg_id):
        return self.conn.execute("SELECT * FROM messages WHERE id=?", (msg_id,)).fetchone()

    def outbox(self, state=None):
        q = "SELECT * FROM outbox" + (" WHERE state=?" if state else "") + " ORDER BY id"
        return self.conn.execute(q, (state,) if state else ()).fetchall()

    def close(self):
        self.pipeline.close()
        self.conn.close()


@pytest.fixture
def home(tmp_path):
    return tmp_path / "var"


@pytest.fixture
def bot(home):
    b = Lesbot(home)
    yield b
    b.close()


def cli_env(home, **extra):
    env = dict(os.environ, LESBOT_HOME=str(home), LESBOT_INBOX=INBOX)
    env.pop("LESBOT_CONFIG", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_cli(home, *args, check=True, env_extra=None, **kw):
    r = subprocess.run([*LESBOT, *args], env=cli_env(home, **(env_extra or {})), capture_output=True,
                       text=True, cwd=Path(__file__).parent.parent, timeout=120, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"lesbot {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


class ServeProcess:
    def __init__(self, home: Path, port: int, env_extra=None):
        self.home, self.port, self.env_extra = home, port, env_extra or {}
        self.proc = None

    def start(self):
        Path(self.home).mkdir(parents=True, exist_ok=True)
        log = open(Path(self.home) / "serve.log", "ab")
        self.proc = subprocess.Popen([*LESBOT, "serve", "--smtp-host", "127.0.0.1", "--smtp-port", str(self.port)],
                                     env=cli_env(self.home, **self.env_extra), stdout=log, stderr=log,
                                     cwd=Path(__file__).parent.parent)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("lesbot serve exited: " + (Path(self.home) / "serve.log").read_text()[-2000:])
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("lesbot serve did not listen")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def serve(home):
    """Start `lesbot serve` (a real process) with the sample directory loaded."""
    run_cli(home, "directory", "import", str(DATA / "directory.csv"))
    servers = []

    def _start(env_extra=None, port=None, scheduler=False):
        # The live scheduler opens cases of its own (reminders) at times a test cannot
        # predict: it runs only in a test that asks for it.
        env = {"LESBOT_SCHEDULER__ENABLED": "true" if scheduler else "false", **(env_extra or {})}
        s = ServeProcess(home, port or free_port(), env).start()
        servers.append(s)
        return s
    yield _start
    for s in servers:
        s.stop()


def outbox_files(home) -> list[Path]:
    out = []
    for sub in ("new", "cur"):
        d = Path(home) / "outbox" / sub
        if d.is_dir():
            out += sorted(d.iterdir())
    return out


def wait_for(pred, timeout=20.0, interval=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    return pred()


# -- Dovecot --------------------------------------------------------------------
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


class Dovecot:
    """A throwaway Dovecot IMAP server on 127.0.0.1 (Debian's dovecot-imapd)."""

    def __init__(self, port: int | None = None, introspection_url: str | None = None):
        self.port = port or free_port()
        # XOAUTH2: Dovecot asks this URL whether a bearer token is valid (RFC 7662).
        self.introspection_url = introspection_url
        self.dir = Path(tempfile.mkdtemp(prefix="lesbot-dovecot-"))
        self.proc = None

    def write_config(self):
        d = self.dir
        for sub in ("run", "state", "mail"):
            (d / sub).mkdir(exist_ok=True)
        os.chmod(d, 0o755)
        if os.geteuid() == 0:
            user = group = "dovecot"
            login_user = "dovenull"
            shutil.chown(d / "mail", user, group)
        else:
            import grp
            import pwd
            user = pwd.getpwuid(os.getuid()).pw_name
            group = grp.getgrgid(os.getgid()).gr_name
            login_user = user
        (d / "users").write_text("lesbot:{PLAIN}lesbot-pw::::::\nother:{PLAIN}other-pw::::::\n")
        os.chmod(d / "users", 0o644)
        (d / "dovecot.conf").write_text(f"""
instance_name = lesbot-test-{self.port}
base_dir = {d}/run
state_dir = {d}/state
listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = {d}/dovecot.log
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {login_user}
first_valid_uid = 1
mail_location = maildir:{d}/mail/%u
mail_max_userip_connections = 50
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = static
  args = uid={user} gid={group} home={d}/mail/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service auth {{
  unix_listener auth-userdb {{
    mode = 0666
  }}
}}
""")
        if self.introspection_url:
            (d / "oauth2.conf.ext").write_text(
                f"introspection_mode = post\nintrospection_url = {self.introspection_url}\n"
                "username_attribute = username\nactive_attribute = active\nactive_value = true\n")
            conf = (d / "dovecot.conf").read_text()
            conf = conf.replace("auth_mechanisms = plain login", "auth_mechanisms = plain login xoauth2")
            conf = conf.replace("passdb {", f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2\n"
                                f"  args = {d}/oauth2.conf.ext\n}}\npassdb {{\n  mechanisms = plain login", 1)
            (d / "dovecot.conf").write_text(conf)

    def start(self):
        self.write_config()
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(self.dir / "dovecot.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("dovecot exited: " + self.log())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(100).startswith(b"* OK"):
                        return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("dovecot not ready: " + self.log())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self):
        p = self.dir / "dovecot.log"
        return p.read_text()[-2000:] if p.exists() else ""

    def client(self, user="lesbot", password="lesbot-pw"):
        from imapclient import IMAPClient
        c = IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=10)
        c.login(user, password)
        return c

    def append(self, raw: bytes, folder="INBOX"):
        c = self.client()
        try:
            c.append(folder, raw)
        finally:
            c.logout()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def dovecot():
    if not Path(DOVECOT).exists():
        pytest.fail("Dovecot is not installed: apt-get install dovecot-imapd (.ci/run does this)")
    d = Dovecot().start()
    yield d
    d.cleanup()


def bounce_for(outbox_row, recipient, status):
    """A delivery-status report bouncing one of lesbot's own mails back."""
    return (
        "From: Mail Delivery System <MAILER-DAEMON@relay.nhs.net>\r\n"
        "To: lesbot-bounces@nhs.net\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <bounce-{status}@relay.nhs.net>\r\nDate: Mon, 5 Oct 2026 09:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; relay.nhs.net\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: {status}\r\n\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: <{outbox_row['msgid']}>\r\nSubject: {outbox_row['subject']}\r\n\r\n--b--\r\n").encode()
