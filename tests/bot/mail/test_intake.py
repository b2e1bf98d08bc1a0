"""The intake writer: a commit's waiters, on the event loop or on threads, each get their own id."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading

from bot.mail.intake import IntakeWriter
from conftest import DATA, cli_env
from store.spool import open_spool


async def test_one_commit_answers_every_waiter_with_its_own_id(tmp_path):
    stored = threading.Event()
    w = IntakeWriter(tmp_path / "spool.db", on_stored=stored.set).start()
    try:
        thread_fut = w.submit(b"Subject: from a thread\r\n\r\nx\r\n", "imap", envelope_to=["a@nhs.net"])
        ids = await asyncio.gather(*[w.store_async(f"Subject: {i}\r\n\r\nbody {i}\r\n".encode(), "smtp")
                                     for i in range(40)])
        ids.append(thread_fut.result(5))
        # the waiters are answered first and the worker woken after, so wait for the wake-up
        assert len(set(ids)) == 41 and stored.wait(5)
        rows = open_spool(tmp_path / "spool.db").execute("SELECT id, raw FROM spool").fetchall()
        by_id = {r["id"]: bytes(r["raw"]) for r in rows}
        assert [by_id[i] for i in ids[:40]] == [f"Subject: {i}\r\n\r\nbody {i}\r\n".encode() for i in range(40)]
    finally:
        w.stop()


async def test_a_waiter_that_gave_up_does_not_stop_the_others(tmp_path):
    w = IntakeWriter(tmp_path / "spool.db").start()
    try:
        gone = asyncio.ensure_future(w.store_async(b"Subject: a\r\n\r\n", "smtp"))
        gone.cancel()
        assert await w.store_async(b"Subject: b\r\n\r\n", "smtp") > 0
    finally:
        w.stop()


def test_the_worker_says_when_it_is_ready(home):
    r, wfd = os.pipe()
    p = subprocess.Popen([sys.executable, "-m", "bot.cli", "worker", "--ready-fd", str(wfd)], pass_fds=(wfd,),
                         cwd=DATA.parent.parent, env=cli_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(wfd)
    try:
        import select
        assert select.select([r], [], [], 60)[0] and os.read(r, 1) == b"r"
        assert p.poll() is None
    finally:
        p.terminate()
        p.wait(20)
        os.close(r)
