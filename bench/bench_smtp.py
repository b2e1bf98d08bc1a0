#!/usr/bin/env python3
"""Acceptance and end-to-end rates of `lesbot serve` against a bare aiosmtpd sink.

Both are fed, in the same run, by the same client: 16 parallel SMTP connections
(4 processes x 4 threads), each sending its share over one session. Per kind of
mail (enquiry: the core pipeline alone; claim: through the claims handler) and
per round, in alternating order: the sink, lesbot replying to its Maildir outbox,
lesbot handing replies to a relay (another bare aiosmtpd). Prints the sink's
rate, lesbot's rates as ratios to it, CPU ms per message of the serve process
and of its worker, and the p99 time from 250 to reply queued at a steady
50 messages/s.

    python bench/bench_smtp.py [--kinds enquiry,claim] [--messages 2000] [--rounds 3]
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import shutil
import smtplib
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INBOX = "les.inbox@nhs.net"
PRACTICES = 200
CONNECTIONS = 16
PROCS = 4


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


KIND = "claim"


def sender(i: int) -> str:
    return f"practice{i % PRACTICES}@nhs.net"


def message(i: int) -> bytes:
    """About 6 KB, multipart with a small CSV, like a typical claim email (--kind claim),
    or the same size as a question lesbot cannot act on (--kind enquiry: the core alone)."""
    m = EmailMessage()
    p = i % PRACTICES
    m["From"] = sender(i)
    m["To"] = INBOX
    m["Subject"] = f"LES claim {i}" if KIND == "claim" else f"Question {i}"
    m["Date"] = "Mon, 05 Oct 2026 08:14:20 +0000"
    m["Message-ID"] = f"<bench-{i}-{os.getpid()}-{time.time_ns()}@nhs.net>"
    if KIND == "claim":
        m.set_content(f"Practice code: Y{90000 + p:05d}\nMonth: last month\nDenosumab injections: {i % 20}\n"
                      + "Kind regards\n" * 200)
        m.add_attachment(("service,month,count,notes\n" + "MSK consultation no injection,last month,2,"
                          + "x" * 1400 + "\n").encode(), maintype="text", subtype="csv", filename="claim.csv")
    else:
        m.set_content("Hello, when is the next payment run?\n" + "Kind regards\n" * 200)
        m.add_attachment(("notes\n" + "x" * 1400 + "\n").encode(), maintype="text", subtype="plain",
                         filename="notes.txt")
    return m.as_bytes(policy=SMTP_POLICY)


def run_sink(port: int):
    """A bare aiosmtpd server: 250 to everything, nothing stored. Also the relay's far end."""
    from aiosmtpd.smtp import SMTP

    class Sink:
        async def handle_DATA(self, server, session, envelope):
            return "250 OK"

    async def main():
        loop = asyncio.get_running_loop()
        srv = await loop.create_server(lambda: SMTP(Sink(), hostname="sink", data_size_limit=36700160),
                                       "127.0.0.1", port)
        async with srv:
            await srv.serve_forever()
    asyncio.run(main())


def start_sink() -> tuple[int, mp.Process]:
    port = free_port()
    proc = mp.get_context("fork").Process(target=run_sink, args=(port,), daemon=True)
    proc.start()
    wait_port(port, type("P", (), {"poll": lambda self: None})())
    return port, proc


def _client_proc(port, payloads, start_evt, out_q):
    def conn_worker(chunk, res):
        s = smtplib.SMTP("127.0.0.1", port, timeout=60)
        for sender, raw in chunk:
            s.sendmail(sender, [INBOX], raw)
            res.append(time.time())
        s.quit()
    per = [payloads[i::CONNECTIONS // PROCS] for i in range(CONNECTIONS // PROCS)]
    results = [[] for _ in per]
    threads = [threading.Thread(target=conn_worker, args=(c, r)) for c, r in zip(per, results)]
    start_evt.wait()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out_q.put(max((r[-1] for r in results if r), default=time.time()))


def blast(port: int, n: int, offset: int) -> tuple[float, float]:
    """Send n messages over 16 connections; return (start, time of the last 250)."""
    payloads = [(sender(offset + i), message(offset + i)) for i in range(n)]
    ctx = mp.get_context("fork")
    start_evt, out_q = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_client_proc, args=(port, payloads[i::PROCS], start_evt, out_q))
             for i in range(PROCS)]
    for p in procs:
        p.start()
    time.sleep(0.3)
    t0 = time.time()
    start_evt.set()
    ends = [out_q.get() for _ in procs]
    for p in procs:
        p.join()
    return t0, max(ends)


def wait_port(port, proc, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server did not listen")


def start_lesbot(home: Path, port: int, relay_port: int | None = None):
    env = dict(os.environ, LESBOT_HOME=str(home), LESBOT_INBOX=INBOX,
               LESBOT_LIMITS__REPLIES_PER_SENDER_PER_DAY="1000000")
    env.pop("LESBOT_CONFIG", None)
    if relay_port:
        env.update(LESBOT_RELAY__HOST="127.0.0.1", LESBOT_RELAY__PORT=str(relay_port),
                   LESBOT_RELAY__SECURITY="none")
    csv = home / "dir.csv"
    home.mkdir(parents=True, exist_ok=True)
    csv.write_text("ods_code,name,kind,emails,services\n" + "".join(
        f"Y{90000 + i:05d},Practice {i},practice,practice{i}@nhs.net,denosumab\n" for i in range(PRACTICES)))
    subprocess.run([sys.executable, "-m", "bot.cli", "directory", "import", str(csv)], env=env, cwd=ROOT,
                   check=True, capture_output=True)
    p = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--smtp-port", str(port)], env=env, cwd=ROOT,
                         stdout=subprocess.DEVNULL, stderr=open(home / "serve.log", "w"))
    wait_port(port, p)
    return p


def count(db: Path, sql: str) -> int:
    c = sqlite3.connect(str(db), timeout=30)
    try:
        return c.execute(sql).fetchone()[0]
    finally:
        c.close()


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process so far (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def children(serve_pid: int) -> dict[str, int]:
    """serve's child processes by role: the worker that decides ("process") and the mailer
    ("deliver"); one "all" worker in older layouts."""
    with open(f"/proc/{serve_pid}/task/{serve_pid}/children") as f:
        kids = [int(k) for k in f.read().split()]
    out = {}
    for k in kids:
        with open(f"/proc/{k}/cmdline", "rb") as f:
            args = f.read().split(b"\0")
        if not args[0]:
            continue                  # a child that has just ended
        role = args[args.index(b"--role") + 1].decode() if b"--role" in args else "all"
        out[role] = k
    return out


def wait_for(db: Path, sql: str, target: int, poll: float = 0.02) -> float:
    while count(db, sql) < target:
        time.sleep(poll)
    return time.time()


def sink_round(n: int) -> tuple[float, float]:
    """The sink's rate, and its CPU ms per message."""
    port, proc = start_sink()
    try:
        blast(port, 200, 0)                                  # warm-up
        cpu0 = cpu_seconds(proc.pid)
        t0, t1 = blast(port, n, 1000)
        return n / (t1 - t0), (cpu_seconds(proc.pid) - cpu0) / n * 1000
    finally:
        proc.terminate()
        proc.join()


def lesbot_round(home: Path, n: int, relay: bool, latency_seconds: float = 0.0) -> dict:
    """Acceptance and end-to-end rates of one fresh lesbot, and its CPU per message."""
    relay_port, relay_proc = start_sink() if relay else (None, None)
    port = free_port()
    lb = start_lesbot(home, port, relay_port)
    db = home / "lesbot.db"
    sent = "SELECT count(*) FROM outbox WHERE state='sent'"
    try:
        blast(port, 200, 100_000)                            # warm-up: imports, first-use compiling
        wait_for(db, sent, 200, 0.05)
        kids = children(lb.pid)
        pids = (lb.pid, kids.get("process", kids.get("all")), kids.get("deliver"))
        cpu0 = [cpu_seconds(p) if p else 0.0 for p in pids]
        t0, t1 = blast(port, n, 200_000)
        queued = wait_for(db, "SELECT count(*) FROM outbox", n + 200)
        delivered = wait_for(db, sent, n + 200)
        cpu = [(cpu_seconds(p) - c) / n * 1000 if p else 0.0 for p, c in zip(pids, cpu0)]
        out = {"accept": n / (t1 - t0), "queued": n / (queued - t0), "delivered": n / (delivered - t0),
               "serve_ms": cpu[0], "worker_ms": cpu[1], "mailer_ms": cpu[2]}
        if latency_seconds:
            out["latency"] = latency_run(port, db, latency_seconds)
        return out
    finally:
        lb.terminate()
        lb.wait(20)
        if relay_proc:
            relay_proc.terminate()
            relay_proc.join()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=2000, help="messages per round")
    ap.add_argument("--rounds", type=int, default=3, help="sink and lesbot alternate; medians are reported")
    ap.add_argument("--rate-seconds", type=float, default=10.0, help="length of the 50 msg/s latency run")
    ap.add_argument("--kinds", default="enquiry,claim",
                    help="claim: valid claims through the claims handler; enquiry: the core pipeline alone")
    ap.add_argument("--outboxes", default="maildir,relay", help="which lesbot runs: maildir, relay or both")
    args = ap.parse_args()
    global KIND
    n = args.messages
    tmp = Path(tempfile.mkdtemp(prefix="lesbot-bench-"))
    try:
        for kind in args.kinds.split(","):
            KIND = kind
            sink, sink_cpu, runs = [], [], {"maildir": [], "relay": []}
            for rnd in range(args.rounds):
                # Alternate the order, so neither side always runs on a warmer (or busier) machine.
                order = ["sink", "maildir", "relay"] if rnd % 2 == 0 else ["relay", "maildir", "sink"]
                for side in order:
                    if side not in ("sink", *args.outboxes.split(",")):
                        continue
                    if side == "sink":
                        rate, cpu = sink_round(n)
                        sink.append(rate)
                        sink_cpu.append(cpu)
                        continue
                    last = rnd == args.rounds - 1 and side == "maildir"
                    runs[side].append(lesbot_round(tmp / f"{kind}-{side}-{rnd}", n, side == "relay",
                                                   args.rate_seconds if last else 0.0))
            report(kind, n, sink, sink_cpu, runs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def report(kind: str, n: int, sink: list[float], sink_cpu: list[float], runs: dict) -> None:
    med = statistics.median
    print(f"{kind}: {len(sink)} alternating rounds of {n} messages (~{len(message(1)) // 1024} KB each), "
          f"{CONNECTIONS} connections, {os.cpu_count()} cores; medians")
    print(f"  sink (aiosmtpd, 250 only)                 {med(sink):6.0f} msg/s   1.00x   "
          f"(rounds: {', '.join(f'{r:.0f}' for r in sink)})")
    lines = (("acceptance (250, durable), Maildir run", "maildir", "accept"),
             ("acceptance (250, durable), relay run  ", "relay", "accept"),
             ("end-to-end, reply queued              ", "maildir", "queued"),
             ("end-to-end, reply in the Maildir      ", "maildir", "delivered"),
             ("end-to-end, reply taken by the relay  ", "relay", "delivered"))
    for label, side, key in lines:
        if not runs[side]:
            continue
        rates = [r[key] for r in runs[side]]
        ratios = [r / s for r, s in zip(rates, sink)]
        print(f"  lesbot {label} {med(rates):6.0f} msg/s   {med(ratios):.2f}x   "
              f"(round ratios: {', '.join(f'{x:.2f}' for x in ratios)})")
    print(f"  CPU per message (sink   ): {med(sink_cpu):.2f} ms")
    for side in ("maildir", "relay"):
        if not runs[side]:
            continue
        print(f"  CPU per message ({side:7}): serve {med(r['serve_ms'] for r in runs[side]):.2f} ms, "
              f"worker {med(r['worker_ms'] for r in runs[side]):.2f} ms, "
              f"mailer {med(r['mailer_ms'] for r in runs[side]):.2f} ms")
    if not runs["maildir"]:
        return
    lat = sorted(next(r["latency"] for r in runs["maildir"] if "latency" in r))
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    print(f"  at 50 msg/s: 250 -> reply queued       p50 {med(lat):.1f} ms, p99 {p99:.1f} ms "
          f"({len(lat)} messages)")


def latency_run(port, db, seconds) -> list[float]:
    """A steady 50 messages/s on one connection; ms from stored (250) to reply queued."""
    before = count(db, "SELECT coalesce(max(id), 0) FROM messages")
    total = int(50 * seconds)
    s = smtplib.SMTP("127.0.0.1", port, timeout=30)
    start = time.time()
    for i in range(total):
        delay = start + i / 50 - time.time()
        if delay > 0:
            time.sleep(delay)
        s.sendmail(sender(300_000 + i), [INBOX], message(300_000 + i))
    s.quit()
    while count(db, f"SELECT count(*) FROM outbox WHERE message>{before}") < total:
        time.sleep(0.05)
    # received_at is stamped as the message is spooled, just before its 250.
    c = sqlite3.connect(str(db))
    try:
        return [(datetime.fromisoformat(created) - datetime.fromisoformat(rec)).total_seconds() * 1000
                for rec, created in c.execute(
                    "SELECT m.received_at, o.created_at FROM messages m JOIN outbox o ON o.message=m.id "
                    "WHERE m.id>?", (before,))]
    finally:
        c.close()


if __name__ == "__main__":
    main()
