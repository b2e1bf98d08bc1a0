"""`lesbot serve`: the listeners, the processor and the mailer in one process."""
from __future__ import annotations

import asyncio
import logging
import signal
import threading

from bot import smtp_listener
from bot.intake import IntakeWriter
from bot.mailer import Mailer
from bot.pipeline import Pipeline
from store.db import connect, open_db

log = logging.getLogger("lesbot.serve")


class Processor:
    """Works through stored messages in arrival order, one at a time."""

    def __init__(self, settings, on_reply):
        self.settings = settings
        self.wake = threading.Event()
        self.stop = threading.Event()
        self.on_reply = on_reply

    def run(self):
        pipeline = Pipeline(self.settings, connect(self.settings.db_path), on_reply=self.on_reply)
        while not self.stop.is_set():
            self.wake.clear()
            try:
                done = pipeline.process_pending()
            except Exception:
                log.exception("processing pass failed")
                done = []
            if not done:
                self.wake.wait(5.0)
        pipeline.close()


class Server:
    def __init__(self, settings):
        self.settings = settings
        open_db(settings.db_path).close()
        self.stop = threading.Event()
        self.mail_wake = threading.Event()
        self.processor = Processor(settings, on_reply=self.mail_wake.set)
        self.intake = IntakeWriter(settings.db_path, on_stored=self.processor.wake.set)
        self.threads: list[threading.Thread] = []
        self.imap = None

    def start_threads(self):
        self.intake.start()
        mailer = Mailer(self.settings, connect(self.settings.db_path))
        self.threads = [
            threading.Thread(target=self.processor.run, name="lesbot-processor", daemon=True),
            threading.Thread(target=mailer.run, args=(self.stop, self.mail_wake), name="lesbot-mailer",
                             daemon=True),
        ]
        if self.settings.imap.enabled:
            from bot.imap_listener import ImapListener
            self.imap = ImapListener(self.settings, self.intake)
            self.threads.append(threading.Thread(target=self.imap.run, name="lesbot-imap", daemon=True))
        for t in self.threads:
            t.start()

    async def serve(self, host: str, port: int):
        self.start_threads()
        loop = asyncio.get_running_loop()
        srv = await loop.create_server(smtp_listener.factory(self.settings, self.intake), host=host, port=port)
        log.info("listening for SMTP on %s:%s for %s", host, port, ", ".join(self.settings.inboxes))
        done = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, done.set)
        await done.wait()
        log.info("stopping")
        srv.close()
        await srv.wait_closed()
        self.shutdown()

    def shutdown(self):
        self.intake.stop()
        self.stop.set()
        self.processor.stop.set()
        self.processor.wake.set()
        self.mail_wake.set()
        if self.imap:
            self.imap.stop()
        for t in self.threads:
            t.join(timeout=10)


def run(settings, host: str, port: int):
    asyncio.run(Server(settings).serve(host, port))
