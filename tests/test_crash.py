"""kill -9 while 500 messages arrive: nothing accepted is lost, nothing is doubled."""
from __future__ import annotations

import collections
import email
import random
import smtplib
import threading
import time

from conftest import ServeProcess, free_port, make_msg, outbox_files, run_cli, wait_for
from store.db import connect

N = 500
PRACTICES = 60


def test_kill_9_mid_load(home, tmp_path):
    rows = ["ods_code,name,kind,emails,services"] + [
        f"Y{90000 + i:05d},Test Practice {i},practice,practice{i}@nhs.net,denosumab;msk-injection"
        for i in range(PRACTICES)]
    (tmp_path / "dir.csv").write_text("\n".join(rows) + "\n")
    run_cli(home, "directory", "import", str(tmp_path / "dir.csv"))
    seed = random.randrange(1 << 30)
    rnd = random.Random(seed)
    port = free_port()
    srv = ServeProcess(home, port).start()
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
    for threshold in sorted(rnd.sample(range(N // 10, N * 8 // 10), 3)):
        while len(accepted) < threshold and any(t.is_alive() for t in threads):
            time.sleep(0.002)
        if all(not t.is_alive() for t in threads):
            break
        srv.kill9()
        kills += 1
        srv = ServeProcess(home, port).start()
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
        replies = collections.Counter(
            email.message_from_bytes(p.read_bytes())["In-Reply-To"] for p in outbox_files(home))
        missing = [m for m in accepted if replies[m] == 0]
        doubled = [m for m, n in replies.items() if n > 1]
        assert not missing, f"{len(missing)} accepted messages have no reply (seed {seed})"
        assert not doubled, f"{len(doubled)} messages answered twice (seed {seed})"
        assert sum(replies.values()) == N
        print(f"kill -9 x{kills}: {N} accepted, "
              f"{sum(len(v) for v in by_mid.values()) - N} redelivered copies recorded as duplicates")
    finally:
        db.close()
        srv.stop()
