"""The worker: processes stored messages in arrival order and delivers the outbox.

`lesbot serve` runs it as a child process at a lower CPU priority, so that
accepting mail (the 250) always comes first and processing uses what is left,
including the second core. It dies with its parent (PR_SET_PDEATHSIG), and
anything it had not committed is simply done again at the next start.
"""
from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading

from bot.mail.intake import move_spooled, spool_path
from bot.processes.mailer import Mailer
from bot.pipeline.pipeline import Pipeline
from store.db import connect
from store.messages import connect_for_processing
from store.spool import checkpoint, open_spool

log = logging.getLogger("lesbot.worker")
OVERRAN = 75          # exit status: ended on purpose after an overrun; start a fresh worker


class Processor:
    def __init__(self, settings, on_reply=None):
        self.settings = settings
        self.wake = threading.Event()
        self.stop = threading.Event()
        self.on_reply = on_reply
        self.ready = threading.Event()

    def run(self):
        # synchronous=NORMAL: the message itself was stored with FULL; a lost result after a
        # power cut means it is processed again, and the mailer syncs before sending.
        try:
            conn = connect_for_processing(self.settings.db_path)
            pipeline = Pipeline(self.settings, conn, on_reply=self.on_reply)
            spool = open_spool(spool_path(self.settings))
        finally:
            self.ready.set()        # ready, or failed: either way `serve` need not wait
        while not self.stop.is_set():
            self.wake.clear()
            try:
                moved = move_spooled(spool, conn)
                if not moved:
                    # Quiet moment: fold the spool's WAL back (the intake never does).
                    checkpoint(spool)
                results = pipeline.process_pending()
                for r in results:
                    log_result(r)
                done = results or moved
            except Exception:
                log.exception("processing pass failed")
                done = []
            if pipeline.overran:
                # A decision overran and its thread is still burning a CPU. It is recorded as
                # failed; end this process so the work stops for real (`serve` starts a new one).
                log.warning("a decision overran its time limit: restarting the worker")
                os._exit(OVERRAN)
            if not done:
                self.wake.wait(5.0)
        pipeline.close()


def log_result(r: dict) -> None:
    """One line per processed message: id, kind, outcome, reference, and where a reply went by
    domain only. Never a subject or an address's local part: either can name a patient."""
    reply = r.get("reply") or {}
    to = (reply.get("to") or "").rpartition("@")[2]
    log.info("message %s: kind=%s outcome=%s reference=%s reply=%s problems=%d", r.get("id"), r.get("kind") or "-",
             r.get("outcome"), r.get("reference") or "-", f"@{to}" if to else "none",
             len(r.get("errors") or ()))


def die_with_parent():
    """Ask Linux to SIGKILL us when the parent dies (kill -9 included)."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except Exception:
        pass


def say_ready(processor: Processor, ready_fd: int | None) -> None:
    """Tell `serve` that start-up is over (or could not finish), so it may start listening."""
    processor.ready.wait(60)
    gc.freeze()        # start-up's objects live for the whole run: keep them out of collections
    if ready_fd is not None:
        try:
            os.write(ready_fd, b"r")
            os.close(ready_fd)
        except OSError:
            pass


def pipe_waker(fd: int):
    """Wake another process: a byte on its pipe (a full pipe means it is awake anyway)."""
    def wake():
        try:
            os.write(fd, b"!")
        except OSError:
            pass
    return wake


def run(settings, wake_fd: int | None = None, nice: int = 0, ready_fd: int | None = None,
        role: str = "all", mail_wake_fd: int | None = None):
    """Run until SIGTERM, or until the wake pipe closes (the parent has gone).

    role: "all" processes and delivers; `serve` runs "process" and "deliver" in two processes,
    so that deciding and handing replies over use both cores instead of sharing one interpreter
    lock. "process" wakes the deliverer through mail_wake_fd."""
    if nice:
        os.nice(nice)
    # The mailer thread mostly waits on sockets and fsyncs; when one returns it should get the
    # interpreter back soon, not after the processor's full 5 ms turn.
    sys.setswitchinterval(0.001)
    stop = threading.Event()
    mail_wake = threading.Event()
    threads = []
    processor = None
    if role in ("all", "process"):
        if mail_wake_fd is not None:
            os.set_blocking(mail_wake_fd, False)
        processor = Processor(settings, on_reply=pipe_waker(mail_wake_fd) if role == "process" and
                              mail_wake_fd is not None else mail_wake.set)
        threads.append(threading.Thread(target=processor.run, name="lesbot-processor", daemon=True))
    if role in ("all", "deliver"):
        mailer = Mailer(settings, connect(settings.db_path))
        threads.append(threading.Thread(target=mailer.run, args=(stop, mail_wake), name="lesbot-mailer",
                                        daemon=True))
    for t in threads:
        t.start()
    if processor:
        say_ready(processor, ready_fd)

    def finish(*_):
        stop.set()
        mail_wake.set()
        if processor:
            processor.stop.set()
            processor.wake.set()
    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    if wake_fd is not None:
        def listen():
            while True:
                try:
                    data = os.read(wake_fd, 4096)
                except OSError:
                    data = b""
                if not data:
                    finish()
                    return
                if processor:
                    processor.wake.set()
                else:
                    mail_wake.set()
        threading.Thread(target=listen, name="lesbot-wake", daemon=True).start()
    while not stop.is_set():
        stop.wait(1.0)
    for t in threads:
        t.join(timeout=15)
    sys.exit(0)
