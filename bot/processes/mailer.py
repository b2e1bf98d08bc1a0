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
import re
import smtplib
import ssl
import threading
from contextlib import nullcontext
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bot.mail.oauth import token_from_command, xoauth2_string
from store import outbox as outbox_table
from store.db import audit, boot_id, transaction, unsynced, utcnow

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

    def deliver_many(self, items: list[tuple[str, bytes, bool]]) -> list[Exception | None]:
        """Write (name, data, maybe_there_already) files; each is durable when this returns
        without an error for it. One fsync per file and one for the directory, for the batch:
        syncing `new/` once makes every rename in it durable."""
        errors: list[Exception | None] = []
        moved = False
        for name, data, check in items:
            try:
                if check and self.exists(name):     # written before a crash; a reader may have moved it
                    errors.append(None)
                    continue
                tmp = self.root / "tmp" / name
                with open(tmp, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.rename(tmp, self.root / "new" / name)
                moved = True
                errors.append(None)
            except Exception as e:
                errors.append(e)
        if moved:
            try:
                fd = os.open(self.root / "new", os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except Exception as e:       # the renames may not be durable: none counts as delivered
                return [err or e for err in errors]
        return errors


class _Stale(Exception):
    """The relay is gone before MAIL FROM was accepted: nothing of the reply was handed over."""


class DeliveryUnknown(Exception):
    """The relay had the whole message but its answer was lost: it may have been delivered.
    Sending it again could give the practice a second copy, so a person decides."""


class Relay:
    """One connection to the relay, kept open while there is mail to hand over (a connection
    and its TLS and AUTH per reply would cost more than the reply)."""
    # RFC 5321 4.5.3.2.6: a client should wait 10 minutes for the reply to the end of data.
    DATA_REPLY_SECONDS = 600

    def __init__(self, cfg):
        self.cfg = cfg
        self._context: ssl.SSLContext | None = None
        self._smtp: smtplib.SMTP | None = None

    def context(self) -> ssl.SSLContext:
        if self._context is None:          # loading the CA store costs tens of ms: once
            self._context = ssl.create_default_context()
        return self._context

    def _connect(self) -> smtplib.SMTP:
        c = self.cfg
        if c.security == "ssl":
            s = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout_seconds, context=self.context())
        else:
            s = smtplib.SMTP(c.host, c.port, timeout=c.timeout_seconds)
        try:
            s.ehlo()
            if c.security == "starttls":
                s.starttls(context=self.context())
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
        except BaseException:
            s.close()
            raise
        return s

    def deliver(self, envelope_from: str, to: str, data: bytes) -> None:
        reused = self._smtp is not None
        if not reused:
            self._smtp = self._connect()
        try:
            self._transaction(self._smtp, envelope_from, to, data)
        except _Stale:
            # The relay closed a connection we kept: nothing was handed over, so try once afresh.
            self.close()
            if not reused:
                raise smtplib.SMTPServerDisconnected("the relay closed the connection") from None
            self._smtp = self._connect()
            try:
                self._transaction(self._smtp, envelope_from, to, data)
            except _Stale:
                self.close()
                raise smtplib.SMTPServerDisconnected("the relay closed the connection") from None
            except BaseException:
                self.close()
                raise
        except BaseException:
            self.close()          # after any failure, start the next reply on a clean connection
            raise

    def close(self) -> None:
        s, self._smtp = self._smtp, None
        if s is not None:
            try:
                s.quit()
            except Exception:
                s.close()

    def _transaction(self, s: smtplib.SMTP, envelope_from: str, to: str, data: bytes) -> None:
        try:
            code, resp = s.mail(envelope_from)
        except (smtplib.SMTPServerDisconnected, ConnectionError) as e:
            raise _Stale() from e
        if code == 421:
            raise _Stale()
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, resp, envelope_from)
        code, resp = s.rcpt(to)
        if code not in (250, 251):
            raise smtplib.SMTPRecipientsRefused({to: (code, resp)})
        code, resp = s.docmd("DATA")
        if code != 354:
            raise smtplib.SMTPDataError(code, resp)
        body = re.sub(rb"(?m)^\.", b"..", re.sub(rb"\r?\n", b"\r\n", data))
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        s.send(body + b".\r\n")
        # From here the relay holds the whole message: a lost answer is not a refusal.
        try:
            if s.sock is not None:
                s.sock.settimeout(max(self.DATA_REPLY_SECONDS, self.cfg.timeout_seconds))
            code, resp = s.getreply()
        except (OSError, smtplib.SMTPServerDisconnected) as e:
            raise DeliveryUnknown(f"no answer after the data was sent: {type(e).__name__}: {e}") from e
        if s.sock is not None:
            s.sock.settimeout(self.cfg.timeout_seconds)
        if code != 250:
            raise smtplib.SMTPDataError(code, resp)


def permanent(e: Exception) -> bool:
    """A 5xx answer will not change on a retry (RFC 5321 4.2.1)."""
    code = getattr(e, "smtp_code", None)
    if isinstance(e, smtplib.SMTPRecipientsRefused):
        code = next(iter(e.recipients.values()))[0]
    return isinstance(code, int) and 500 <= code < 600


class Mailer:
    def __init__(self, settings, conn):
        self.settings = settings
        self.conn = conn
        self.maildir = Maildir(settings.outbox_dir)
        self.relay = Relay(settings.relay) if settings.relay.host else None
        self.recovered: set[int] = set()      # rows a crash left 'sending': their file may exist

    def _write(self, fn):
        with transaction(self.conn):
            return fn()

    def deliver_due(self, now: datetime | None = None, limit: int = 200) -> dict:
        """Deliver what is due, up to `limit` rows, oldest first.

        Maildir: a batch is claimed and marked together (a file's name is fixed by its row, so
        a crash in between can only find the file already there). Relay: one row at a time is
        claimed and handed over, so after a crash at most one row is in doubt, and that one is
        never resent blindly (state 'unknown')."""
        now_s = (now or datetime.now(timezone.utc)).isoformat()
        rows = outbox_table.due(self.conn, now_s, limit)
        if not rows:
            return {"sent": 0, "failed": 0}
        if self.relay:
            return self._deliver_relay(rows)
        # Claiming commits (synchronous=FULL), which also makes durable every earlier commit
        # in the WAL, so no reply goes out whose record could vanish.
        rows = self._write(lambda: [r for r in rows if outbox_table.claim(self.conn, r["id"])])
        # Only a row tried before, or left 'sending' by a crash, can already have its file
        # (perhaps moved to cur/ by a reader): look for those alone.
        errors = self.maildir.deliver_many(
            [(self.maildir.name_for(r["id"], r["msgid"]), r["raw"], r["attempts"] > 0 or r["id"] in self.recovered)
             for r in rows])
        sent, failed = [], []
        for r, e in zip(rows, errors):
            if e is None:
                sent.append(r["id"])
                self.recovered.discard(r["id"])
            else:
                log.warning("delivery of outbox %s failed: %s", r["id"], type(e).__name__)
                failed.append((r, e))

        def mark():
            for oid in sent:
                self._mark_sent(oid)
            for r, e in failed:
                self._mark_failed(r, e)
        self._write(mark)
        return {"sent": len(sent), "failed": len(failed)}

    def _deliver_relay(self, rows) -> dict:
        """The batch is claimed in one synced commit, which also makes every reply in it durable.
        Then, one at a time, a reply is marked as being handed over, handed over, and what
        happened is recorded with the next one's mark. Those small commits are not fsynced: they
        survive a killed lesbot, and after a power cut (a new boot) the whole batch counts as in
        doubt. So after a crash at most one reply is in doubt, and none is ever resent blindly."""
        boot = boot_id()
        claimed = self._write(lambda: [r for r in rows if outbox_table.claim(self.conn, r["id"], boot)])
        sent = failed = 0
        outcome = None          # how to record the row just handed over
        handed: list[int] = []
        try:
            with unsynced(self.conn) if boot else nullcontext():
                for r in claimed:
                    def hand(done=outcome, oid=r["id"]):
                        if done:
                            done()
                        outbox_table.mark_handing(self.conn, oid)
                    self._write(hand)
                    outcome = None
                    handed.append(r["id"])
                    try:
                        self.relay.deliver(r["envelope_from"], r["to_addr"], r["raw"])
                    except DeliveryUnknown as e:
                        log.warning("outbox %s: %s", r["id"], e)
                        outcome = lambda oid=r["id"], why=str(e): self._mark_unknown(oid, why)
                        failed += 1
                        continue
                    except Exception as e:
                        log.warning("delivery of outbox %s failed: %s", r["id"], type(e).__name__)
                        outcome = lambda r=r, e=e: self._mark_failed(r, e)
                        failed += 1
                        continue
                    outcome = lambda oid=r["id"]: self._mark_sent(oid)
                    sent += 1
        finally:
            was_handed = set(handed)
            left = [r["id"] for r in claimed if r["id"] not in was_handed]

            def finish():
                if outcome:
                    outcome()
                outbox_table.unhand(self.conn, left)
            self._write(finish)        # synced: the batch's outcomes are durable from here
        return {"sent": sent, "failed": failed}

    def _mark_sent(self, oid: int) -> None:
        outbox_table.mark_sent(self.conn, oid, utcnow())
        audit(self.conn, "outbox", oid, "sent", "mailer", "relay" if self.relay else "maildir")

    def _mark_unknown(self, oid: int, why: str) -> None:
        outbox_table.mark_unknown(self.conn, oid, why)
        audit(self.conn, "outbox", oid, "unknown", "mailer", why)

    def _mark_failed(self, r, e: Exception) -> None:
        lim = self.settings.limits
        err = f"{type(e).__name__}: {e}"
        attempts = r["attempts"] + 1
        if attempts >= lim.retry_max_attempts or permanent(e):
            outbox_table.mark_failed(self.conn, r["id"], attempts, err)
            audit(self.conn, "outbox", r["id"], "failed", "mailer", err)
        else:
            delay = min(lim.retry_base_seconds * 2 ** (attempts - 1), 6 * 3600)
            nxt = datetime.now(timezone.utc) + timedelta(seconds=delay)
            outbox_table.retry_later(self.conn, r["id"], attempts, err, nxt.isoformat())

    def recover(self):
        """Rows left 'sending' by a crash. Maildir: back to the queue (the file's name makes that
        safe). Relay: the one row being handed over may have been delivered: 'unknown', for a
        person (`lesbot outbox list --state unknown`, then `outbox resend ID` if it never came)."""
        if self.relay is None:
            self.recovered |= set(outbox_table.sending(self.conn))
            outbox_table.requeue_sending(self.conn)
            return
        boot = boot_id()

        def settle():
            for r in outbox_table.sending_rows(self.conn):
                if r["handing"] or not boot:
                    self._mark_unknown(r["id"], "lesbot stopped while handing it to the relay")
                elif r["claimed_boot"] != boot:
                    # claimed before the machine restarted: unsynced marks may be lost with the power
                    self._mark_unknown(r["id"], "the machine restarted while replies were being handed to the relay")
                else:
                    outbox_table.unhand(self.conn, [r["id"]])     # claimed, never handed over
        self._write(settle)

    def run(self, stop: threading.Event, wake: threading.Event, idle_seconds: float = 5.0):
        self.recover()
        while not stop.is_set():
            try:
                result = self.deliver_due()
            except Exception:
                log.exception("mailer pass failed")
                result = {"sent": 0}
            if result["sent"] == 0:
                if not wake.wait(idle_seconds) and self.relay:
                    self.relay.close()        # quiet for a while: let the relay's connection go
                wake.clear()
        if self.relay:
            self.relay.close()
