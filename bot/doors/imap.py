"""The IMAP door (imapclient): for mailboxes lesbot reads rather than receives.

Order per message: check its size, fetch it, store it (committed), then flag
it \\Seen and move it to the processed folder, then remember its UID. A crash
anywhere in between is safe: a message already stored is recognised by its
mailbox/UIDVALIDITY/UID and only moved, never stored or answered again.
"""
from __future__ import annotations

import logging
import ssl
import threading
import time
from datetime import timezone

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from bot.mail.oauth import token_from_command
from bot.mail.intake import is_spooled_or_stored, spool_path
from store import messages
from store.db import connect, utcnow
from store.spool import open_spool

log = logging.getLogger("lesbot.imap")
REIDLE_SECONDS = 600   # servers drop IDLE after ~30 minutes; renew well before


class ImapListener:
    def __init__(self, settings, intake, db_path=None):
        self.settings = settings
        self.cfg = settings.imap
        self.intake = intake
        self.db = connect(db_path or settings.db_path)
        self.spool = open_spool(spool_path(settings))
        self._stop = threading.Event()
        self.client: IMAPClient | None = None
        self.connected = threading.Event()   # for tests and status
        self.stored = 0

    def stop(self):
        self._stop.set()

    # -- connection ----------------------------------------------------------
    def connect(self) -> IMAPClient:
        c = self.cfg
        ctx = ssl.create_default_context()
        client = IMAPClient(c.host, port=c.port, ssl=(c.security == "ssl"),
                            ssl_context=ctx if c.security == "ssl" else None, timeout=30)
        client.normalise_times = False
        if c.security == "starttls":
            client.starttls(ctx)
        if c.oauth2_token_command:
            client.oauth2_login(c.user, token_from_command(c.oauth2_token_command))
        else:
            client.login(c.user, c.password)
        if c.processed_folder and not client.folder_exists(c.processed_folder):
            client.create_folder(c.processed_folder)
        return client

    def run(self):
        backoff = 1.0
        while not self._stop.is_set():
            try:
                self.client = self.connect()
                backoff = 1.0
                self.session(self.client)
            except (IMAPClientError, OSError, EOFError, ssl.SSLError) as e:
                log.warning("IMAP connection lost (%s); retrying in %.0f s", e, backoff)
            except Exception:
                log.exception("IMAP listener error; retrying in %.0f s", backoff)
            finally:
                self.connected.clear()
                self._logout()
            self._stop.wait(backoff)
            backoff = min(backoff * 2, self.cfg.max_backoff_seconds)

    def _logout(self):
        if self.client is not None:
            try:
                self.client.logout()
            except Exception:
                pass
            self.client = None

    def session(self, client: IMAPClient):
        info = client.select_folder(self.cfg.folder)
        uidvalidity = int(info[b"UIDVALIDITY"])
        idle = self.cfg.idle and client.has_capability("IDLE")
        self.connected.set()
        while not self._stop.is_set():
            self.fetch_new(client, uidvalidity)
            if idle:
                self._idle(client)
            else:
                self._stop.wait(self.cfg.poll_seconds)
                client.noop()

    def _idle(self, client: IMAPClient):
        client.idle()
        started = time.monotonic()
        try:
            while not self._stop.is_set():
                responses = client.idle_check(timeout=1)
                if responses or time.monotonic() - started > min(self.cfg.poll_seconds, REIDLE_SECONDS):
                    break
        finally:
            client.idle_done()

    # -- messages ------------------------------------------------------------
    def _state(self, uidvalidity: int) -> int:
        row = messages.imap_position(self.db, self._mailbox())
        if row is None or row["uidvalidity"] != uidvalidity:
            if row is not None:
                log.warning("UIDVALIDITY of %s changed: reading the folder afresh", self.cfg.folder)
            return 0
        return row["last_uid"]

    def _mailbox(self) -> str:
        return f"{self.cfg.user}@{self.cfg.host}:{self.cfg.port}/{self.cfg.folder}"

    def _remember(self, uidvalidity: int, uid: int):
        messages.remember_imap_position(self.db, self._mailbox(), uidvalidity, uid, utcnow())

    def fetch_new(self, client: IMAPClient, uidvalidity: int) -> int:
        last = self._state(uidvalidity)
        uids = sorted(u for u in client.search(["UID", f"{last + 1}:*"]) if u > last)
        count = 0
        for uid in uids:
            if self._stop.is_set():
                break
            key = f"{self._mailbox()}/{uidvalidity}/{uid}"
            already = is_spooled_or_stored(self.spool, self.db, key)
            if not already:
                meta = client.fetch([uid], ["RFC822.SIZE", "INTERNALDATE"]).get(uid)
                if meta is None:      # expunged meanwhile
                    continue
                size = meta[b"RFC822.SIZE"]
                when = meta[b"INTERNALDATE"]
                if when.tzinfo is None:
                    when = when.replace(tzinfo=timezone.utc)
                if size > self.settings.limits.max_message_bytes:
                    # Too big to fetch: keep its headers so a human can see who sent what.
                    head = client.fetch([uid], ["BODY.PEEK[HEADER]"])[uid][b"BODY[HEADER]"]
                    raw = f"X-Lesbot-Truncated: {size}\r\n".encode() + head
                else:
                    raw = client.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"]
                self.intake.submit(raw, "imap", when.astimezone(timezone.utc), None, None, key).result()
                self.stored += 1
            self._file_away(client, uid)
            self._remember(uidvalidity, uid)
            count += 1
        return count

    def _file_away(self, client: IMAPClient, uid: int):
        client.add_flags([uid], [b"\\Seen"])
        target = self.cfg.processed_folder
        if not target:
            return
        if client.has_capability("MOVE"):
            client.move([uid], target)
        else:
            client.copy([uid], target)
            client.add_flags([uid], [b"\\Deleted"])
            client.uid_expunge([uid]) if client.has_capability("UIDPLUS") else client.expunge()
