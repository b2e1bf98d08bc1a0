"""`lesbot serve`: the listeners in this process; in two child processes, the worker that decides
and the mailer that delivers."""
from __future__ import annotations

import asyncio
import errno
import gc
import logging
import os
import socket
import signal
import subprocess
import sys
import threading

from bot.doors import smtp as smtp_listener
from bot.mail.intake import IntakeWriter, spool_path
from store.db import open_db

log = logging.getLogger("lesbot.serve")


class ServeError(Exception):
    """Why lesbot cannot start, in one line for the operator."""


def listen_problem(e: OSError, host: str, port: int) -> str:
    if isinstance(e, socket.gaierror):
        return f"cannot listen on {host}: no such host or address"
    if e.errno == errno.EADDRINUSE:
        return (f"port {port} on {host} is in use (is lesbot already running?): "
                f"stop it or choose another port with --smtp-port or smtp_port")
    if e.errno == errno.EACCES:
        return f"not allowed to listen on port {port} on {host} (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
    if e.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {host}: it is not an address of this machine"
    return f"cannot listen on {host} port {port}: {e.strerror or e}"


class Server:
    def __init__(self, settings):
        self.settings = settings
        try:
            open_db(settings.db_path).close()
        except Exception as e:       # an unwritable home, a file that is not a database, a newer schema
            raise ServeError(f"cannot open the database {settings.db_path}: {e}") from None
        self.worker: subprocess.Popen | None = None
        self.mailer: subprocess.Popen | None = None
        self._wake_w: int | None = None
        self._mail_w: int | None = None       # kept here too: the mailer outlives a worker restart
        self.intake = IntakeWriter(spool_path(settings), on_stored=self.wake_worker)
        self.imap = None
        self.schedule = None
        self.threads: list[threading.Thread] = []

    def wake_worker(self):
        for fd in (self._wake_w, self._mail_w):
            if fd is not None:
                try:
                    os.write(fd, b"!")
                except (BlockingIOError, BrokenPipeError, OSError):
                    pass    # pipe full: it is awake anyway

    def _child(self, *args: str, fds: tuple) -> subprocess.Popen:
        from bot.processes.worker import die_with_parent
        return subprocess.Popen([sys.executable, "-m", "bot.cli", "worker", *args, "--nice", "10"],
                                pass_fds=fds, preexec_fn=die_with_parent,
                                env=dict(os.environ, LESBOT_HOME=str(self.settings.home)))

    def start_mailer(self) -> None:
        """The outbox's deliverer, a process of its own: handing replies over (sockets, fsyncs)
        then runs beside deciding on the other core instead of waiting for the same interpreter."""
        r, w = os.pipe()
        os.set_blocking(w, False)
        self.mailer = self._child("--role", "deliver", "--wake-fd", str(r), fds=(r,))
        os.close(r)
        self._mail_w = w

    def start_worker(self) -> int:
        """Start the worker; returns a descriptor that becomes readable once it is ready."""
        r, w = os.pipe()
        ready_r, ready_w = os.pipe()
        os.set_blocking(w, False)
        self.worker = self._child("--role", "process", "--wake-fd", str(r), "--ready-fd", str(ready_w),
                                  "--mail-wake-fd", str(self._mail_w), fds=(r, ready_w, self._mail_w))
        os.close(r)
        os.close(ready_w)
        self._wake_w = w
        return ready_r

    def wait_ready(self, ready_fd: int, timeout: float = 60.0) -> None:
        """Until the worker has loaded everything (or gave up, or took too long: then listen anyway,
        it catches up with what was stored)."""
        import select
        try:
            select.select([ready_fd], [], [], timeout)
        finally:
            os.close(ready_fd)

    def start(self) -> int:
        self.intake.start()
        self.start_mailer()
        ready = self.start_worker()
        if self.settings.imap.enabled:
            from bot.doors.imap import ImapListener
            self.imap = ImapListener(self.settings, self.intake)
            t = threading.Thread(target=self.imap.run, name="lesbot-imap", daemon=True)
            t.start()
            self.threads.append(t)
        return ready

    async def serve(self, host: str, port: int):
        loop = asyncio.get_running_loop()
        try:
            # Bound now (a port in use is reported before anything starts), served once ready.
            srv = await loop.create_server(smtp_listener.factory(self.settings, self.intake), host=host, port=port,
                                           start_serving=False)
        except OSError as e:         # nothing is started yet: just say why
            raise ServeError(listen_problem(e, host, port)) from None
        from bot.settings.config import summary, version
        log.info("lesbot %s starting: %s", version(), summary(self.settings, smtp_host=host, smtp_port=port))
        ready = self.start()
        # The worker's start-up and the scheduler's catch-up are done before the first mail
        # arrives, not while it does.
        await asyncio.to_thread(self.wait_ready, ready)
        if self.settings.scheduler.enabled:
            from bot.processes.scheduler import Schedule
            self.schedule = Schedule(self.settings, wake=self.wake_worker)
            await asyncio.to_thread(self.schedule.catch_up)
            self.schedule.start()
        gc.freeze()        # what start-up made lives for the whole run: keep it out of collections
        await srv.start_serving()
        log.info("listening for SMTP on %s:%s for %s", host, port, ", ".join(self.settings.inboxes))
        done = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, done.set)
        watch = asyncio.create_task(self._watch_worker(done))
        await done.wait()
        watch.cancel()
        log.info("stopping")
        srv.close()
        await srv.wait_closed()
        self.shutdown()

    async def _watch_worker(self, done: asyncio.Event):
        """A worker that ended (after an overrun, or any crash) is started again; what it had
        not committed is simply done again."""
        while not done.is_set():
            await asyncio.sleep(0.5)
            if self.worker and self.worker.poll() is not None and not done.is_set():
                log.warning("worker ended (status %s): starting a new one", self.worker.returncode)
                if self._wake_w is not None:
                    os.close(self._wake_w)
                    self._wake_w = None
                os.close(self.start_worker())
                self.wake_worker()
            if self.mailer and self.mailer.poll() is not None and not done.is_set():
                log.warning("mailer ended (status %s): starting a new one", self.mailer.returncode)
                os.close(self._mail_w)
                self.start_mailer()
                if self.worker and self.worker.poll() is None:
                    self.worker.terminate()      # it holds the old wake-up pipe: this loop starts a new one

    def shutdown(self):
        if self.schedule:
            self.schedule.shutdown()
        self.intake.stop()
        if self.imap:
            self.imap.stop()
        for t in self.threads:
            t.join(timeout=15)
        for child in (self.worker, self.mailer):
            if child and child.poll() is None:
                child.terminate()
        for child in (self.worker, self.mailer):
            if child:
                try:
                    child.wait(20)
                except subprocess.TimeoutExpired:
                    child.kill()
        for fd in (self._wake_w, self._mail_w):
            if fd is not None:
                os.close(fd)


def run(settings, host: str, port: int):
    try:
        # uvloop (libuv): the same asyncio API, with sockets read and written in C; taking mail
        # is mostly that. Plain asyncio where it is not installed.
        import uvloop
        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    runner(Server(settings).serve(host, port))
