"""Deliver the outbox: to the SMTP relay when one is set, else to the Maildir outbox.

A reply is marked sent only after delivery. Maildir names are fixed by the
outbox row, so a crash between writing the file and marking the row cannot
produce a second copy: the file is found and the row is simply marked.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import os
import smtplib
import ssl
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bot.oauth import token_from_command, xoauth2_string
from store.db import audit, utcnow

log = logging.getLogger("lesbot.mailer")


class Maildir:
    def __init__(self, root: Path):
        self.root = Path(root)
        for sub in ("tmp", "new", "cur"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def name_for(self, outbox_id: int, msgid: str) -> str:
        return f"lesbot-{outbox_id:010d}.{hashlib.sha1(msgid.encode()).hexdigest()[:12]}"

    def exists(self, name: str) -> bool:
        if (self.root / "new" / name).exists():
            return True
        return any(p.name.split(":")[0] == name for p in (self.root / "cur").glob(name + "*"))

    def deliver(self, name: str, data: bytes) -> None:
        if self.exists(name):
            return
        tmp = self.root / "tmp" / name
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, self.root / "new" / name)
        fd = os.open(self.root / "new", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class Relay:
    def __init__(self, cfg):
        self.cfg = cfg

    def deliver(self, envelope_from: str, to: str, data: bytes) -> None:
        c = self.cfg
        ctx = ssl.create_default_context()
        cls = smtplib.SMTP_SSL if c.security == "ssl" else smtplib.SMTP
        kw = {"context": ctx} if c.security == "ssl" else {}
        with cls(c.host, c.port, timeout=c.timeout_seconds, **kw) as s:
            s.ehlo()
            if c.security == "starttls":
                s.starttls(context=ctx)
                s.ehlo()
            if c.oauth2_token_command:
                token = token_from_command(c.oauth2_token_command)
                blob = base64.b64encode(xoauth2_string(c.user, token).encode()).decode()
                code, resp = s.docmd("AUTH", "XOAUTH2 " + blob)
                if code == 334:      # the server's error details; answer empty to get the verdict
                    code, resp = s.docmd("")
                if code != 235:
                    raise smtplib.SMTPAuthenticationError(code, resp)
            elif c.user:
                s.login(c.user, c.password)
            s.sendmail(envelope_from, [to], data)


class Mailer:
    def __init__(self, settings, conn):
        self.settings = settings
        self.conn = conn
        self.maildir = Maildir(settings.outbox_dir)
        self.relay = Relay(settings.relay) if settings.relay.host else None

    def deliver_due(self, now: datetime | None = None, limit: int = 200) -> dict:
        now_s = (now or datetime.now(timezone.utc)).isoformat()
        rows = self.conn.execute(
            "SELECT id, to_addr, envelope_from, msgid, raw, attempts FROM outbox "
            "WHERE state='queued' AND next_attempt_at<=? ORDER BY id LIMIT ?", (now_s, limit)).fetchall()
        if not rows:
            return {"sent": 0, "failed": 0}
        # Claim the rows. This commit (synchronous=FULL) also makes durable every
        # earlier commit in the WAL, so no reply goes out whose record could vanish.
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            rows = [r for r in rows if self.conn.execute(
                "UPDATE outbox SET state='sending' WHERE id=? AND state='queued'", (r["id"],)).rowcount]
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        sent, failed = [], []
        for r in rows:
            try:
                if self.relay:
                    self.relay.deliver(r["envelope_from"], r["to_addr"], r["raw"])
                else:
                    self.maildir.deliver(self.maildir.name_for(r["id"], r["msgid"]), r["raw"])
                sent.append(r["id"])
            except Exception as e:
                log.warning("delivery of outbox %s failed: %s", r["id"], e)
                failed.append((r, f"{type(e).__name__}: {e}"))
        if not rows:
            return {"sent": 0, "failed": 0}
        lim = self.settings.limits
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            stamp = utcnow()
            for oid in sent:
                self.conn.execute("UPDATE outbox SET state='sent', sent_at=?, attempts=attempts+1 WHERE id=?",
                                  (stamp, oid))
                audit(self.conn, "outbox", oid, "sent", "mailer", "relay" if self.relay else "maildir")
            for r, err in failed:
                attempts = r["attempts"] + 1
                if attempts >= lim.retry_max_attempts:
                    self.conn.execute("UPDATE outbox SET state='failed', attempts=?, last_error=? WHERE id=?",
                                      (attempts, err, r["id"]))
                    audit(self.conn, "outbox", r["id"], "failed", "mailer", err)
                else:
                    delay = min(lim.retry_base_seconds * 2 ** (attempts - 1), 6 * 3600)
                    nxt = datetime.now(timezone.utc) + timedelta(seconds=delay)
                    self.conn.execute("UPDATE outbox SET state='queued', attempts=?, last_error=?, next_attempt_at=? "
                                      "WHERE id=?",
                                      (attempts, err, nxt.isoformat(), r["id"]))
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return {"sent": len(sent), "failed": len(failed)}

    def recover(self):
        """Rows left 'sending' by a crash go back to the queue (Maildir names make that safe)."""
        self.conn.execute("UPDATE outbox SET state='queued' WHERE state='sending'")

    def run(self, stop: threading.Event, wake: threading.Event, idle_seconds: float = 5.0):
        self.recover()
        while not stop.is_set():
            try:
                result = self.deliver_due()
            except Exception:
                log.exception("mailer pass failed")
                result = {"sent": 0}
            if result["sent"] == 0:
                wake.wait(idle_seconds)
                wake.clear()
