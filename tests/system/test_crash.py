"""kill -9 while messages arrive: nothing accepted is lost, nothing is doubled.

Twice: replies to the Maildir outbox (500 messages, 3 kills) and through a real aiosmtpd relay
(400 messages, 6 kills), where a reply handed over just before a kill must never be sent again.
"""
from __future__ import annotations

import asyncio
import collections
import email
import random

import pytest
from aiosmtpd.controller import Controller
import smtplib
import threading
import time

from conftest import ServeProcess, free_port, make_msg, outbox_files, run_cli, wait_for
from store.db import connect

PRACTICES = 60


class Relay:
    """The relay (NHSmail's role): records every message it was handed."""

    def __init__(self):
        self.got = []

    async def handle_DATA(self, server, session, envelope):
        self.got.append(envelope.original_content)
        await asyncio.sleep(0.02)      # as slow as a real relay: kills land mid-delivery
        return "250 2.0.0 queued"


@pytest.mark.parametrize("mode,N,KILLS", [("maildir", 500, 3), ("relay", 400, 6)])
def test_kill_9_mid_load(home, tmp_path, mode, N, KILLS):
    rows = ["ods_code,name,kind,emails,services"] + [
        f"Y{90000 + i:05d},Test Practice {i},practice,practice{i}@nhs.net,denosumab;msk-injection"
        for i in range(PRACTICES)]
    (tmp_path / "dir.csv").write_text("\n".join(rows) + "\n")
    run_cli(home, "directory", "import", str(tmp_path / "dir.csv"))
    seed = random.randrange(1 << 30)
    rnd = random.Random(seed)
    port = free_port()
    env, relay, ctl = {}, None, None
    if mode == "relay":
        relay = Relay()
        ctl = Controller(relay, hostname="127.0.0.1", port=free_port())
        ctl.start()
        env = {"LESBOT_RELAY__HOST": "127.0.0.1", "LESBOT_RELAY__PORT": str(ctl.port),
               "LESBOT_RELAY__SECURITY": "none"}
    srv = ServeProcess(home, port, env).start()
    msgs = [make_msg(sender=f"practice{i % PRACTICES}@nhs.net", subject=f"Question {i}", body=f"Message {i}")
            for i in range(N)]
    todo = collections.deque(msgs)
    accepted: set[str] = set()
    lock = threading.Lock()
    done = threading.Event()

    def client():
        while True:
            with lock:
                if not todo:
                    return
                m = todo.popleft()
            while True:   # like a real MTA: retry until we get a 250
                try:
                    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
                        s.send_message(m)
                    with lock:
                        accepted.add(m["Message-ID"])
                    break
                except (OSError, smtplib.SMTPException):
                    time.sleep(0.05)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    kills = 0
    # Kill at random points of the load itself (not after random times: a fast run could
    # finish before the first kill and prove nothing).
    # With a relay, half the kills land while replies are being handed over (counted by the relay).
    points = [(t, lambda: len(accepted), False) for t in sorted(rnd.sample(range(N // 10, N * 8 // 10), KILLS))]
    if relay:
        half = KILLS // 2
        points = points[:KILLS - half] + [(t, lambda: len(relay.got), True)
                                          for t in sorted(rnd.sample(range(N // 10, N * 8 // 10), half))]
    for threshold, progress, by_relay in points:
        deadline = time.time() + 120
        while progress() < threshold and time.time() < deadline:
            if not by_relay and not any(t.is_alive() for t in threads):
                break
            time.sleep(0.002)
        if progress() < threshold:
            break
        srv.kill9()
        kills += 1
        srv = ServeProcess(home, port, env).start()
    for t in threads:
        t.join(120)
    done.set()
    assert len(accepted) == N, f"seed {seed}"
    assert kills >= 1, "the load finished before any kill; the test proved nothing"

    db = connect(home / "lesbot.db")
    try:
        spool = connect(home / "spool.db")
        wait_for(lambda: spool.execute("SELECT count(*) FROM spool").fetchone()[0] == 0 and
                 db.execute("SELECT count(*) FROM messages WHERE state='received'").fetchone()[0] == 0, timeout=90)
        spool.close()
        wait_for(lambda: db.execute("SELECT count(*) FROM outbox WHERE state IN ('queued','sending')").fetchone()[0] == 0,
                 timeout=60)
        odd = [dict(r) for r in db.execute("SELECT id, state, kind, error FROM messages WHERE message_id IS NULL")]
        assert not odd, f"messages processed without reading them: {odd} (seed {seed})"
        by_mid = collections.defaultdict(list)
        for r in db.execute("SELECT message_id, state FROM messages"):
            by_mid["<" + r["message_id"] + ">"].append(r["state"])
        for mid in accepted:
            states = by_mid.get(mid)
            assert states, f"{mid} got a 250 but was not stored (seed {seed})"
            real = [s for s in states if s != "duplicate"]
            assert real == ["rejected"], f"{mid}: {states} (seed {seed})"
        delivered = [email.message_from_bytes(p.read_bytes()) for p in outbox_files(home)] if relay is None \
            else [email.message_from_bytes(raw) for raw in relay.got]
        replies = collections.Counter(m["In-Reply-To"] for m in delivered)
        # relay only: a reply handed over as lesbot was killed is 'unknown', for a person, never resent
        unknown = {"<" + r[0] + ">" for r in db.execute(
            "SELECT m.message_id FROM outbox o JOIN messages m ON m.id=o.message WHERE o.state='unknown'")}
        missing = [m for m in accepted if replies[m] == 0 and m not in unknown]
        doubled = [m for m, n in replies.items() if n > 1]
        assert not missing, f"{len(missing)} accepted messages have no reply (seed {seed})"
        assert not doubled, f"{len(doubled)} messages answered twice (seed {seed})"
        assert len(unknown) <= kills and sum(replies.values()) + len(unknown - set(replies)) == N
        print(f"{mode}: kill -9 x{kills}: {N} accepted, {len(unknown)} in doubt, "
              f"{sum(len(v) for v in by_mid.values()) - N} redelivered copies recorded as duplicates")
    finally:
        db.close()
        srv.stop()
        if ctl:
            ctl.stop()
