#!/usr/bin/env python3
"""Acceptance and end-to-end rates of `lesbot serve` against a bare aiosmtpd sink.

Both servers are fed, in the same run, by the same client: 16 parallel SMTP
connections (4 processes x 4 threads), each sending its share over one session.
Prints the ratios to the sink, then the p99 time from 250 to reply queued at a
steady 50 messages/s.

    python bench/bench_smtp.py [--messages 3000] [--rate-seconds 10]
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


def message(i: int) -> bytes:
    """About 6 KB, multipart with a small CSV, like a typical claim email (--kind claim),
    or the same size as a question lesbot cannot act on (--kind enquiry: the core alone)."""
    m = EmailMessage()
    p = i % PRACTICES
    m["From"] = f"practice{p}@nhs.net"
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


def _client_proc(port, payloads, start_evt, out_q):
    def conn_worker(chunk, res):
        s = smtplib.SMTP("127.0.0.1", port, timeout=60)
        for raw in chunk:
            s.sendmail("practice@nhs.net", [INBOX], raw)
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
    payloads = [message(offset + i) for i in range(n)]
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


def start_lesbot(home: Path, port: int):
    env = dict(os.environ, LESBOT_HOME=str(home), LESBOT_INBOX=INBOX,
               LESBOT_LIMITS__REPLIES_PER_SENDER_PER_DAY="1000000")
    env.pop("LESBOT_CONFIG", None)
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=2000, help="messages per round")
    ap.add_argument("--rounds", type=int, default=3, help="sink and lesbot alternate; medians are reported")
    ap.add_argument("--rate-seconds", type=float, default=10.0, help="length of the 50 msg/s latency run")
    ap.add_argument("--kind", choices=["claim", "enquiry"], default="claim",
                    help="claim: valid claims through the claims handler; enquiry: the core pipeline alone")
    args = ap.parse_args()
    global KIND
    KIND = args.kind
    n = args.messages
    tmp = Path(tempfile.mkdtemp(prefix="lesbot-bench-"))
    sink_rates, accept_rates, queued_rates, delivered_rates = [], [], [], []
    try:
        for rnd in range(args.rounds):
            # the sink
            port = free_port()
            sink = mp.get_context("fork").Process(target=run_sink, args=(port,), daemon=True)
            sink.start()
            wait_port(port, type("P", (), {"poll": lambda self: None})())
            blast(port, 200, 0)                              # warm-up
            t0, t1 = blast(port, n, 1000)
            sink_rates.append(n / (t1 - t0))
            sink.terminate()
            sink.join()

            # lesbot, on a fresh home each round
            port = free_port()
            home = tmp / f"lesbot{rnd}"
            lb = start_lesbot(home, port)
            db = home / "lesbot.db"
            try:
                blast(port, 200, 100_000)                    # warm-up
                while count(db, "SELECT count(*) FROM outbox WHERE state='sent'") < 200:
                    time.sleep(0.05)
                t0, t1 = blast(port, n, 200_000)
                accept_rates.append(n / (t1 - t0))
                while count(db, "SELECT count(*) FROM outbox") < n + 200:
                    time.sleep(0.02)
                queued_rates.append(n / (time.time() - t0))
                while count(db, "SELECT count(*) FROM outbox WHERE state='sent'") < n + 200:
                    time.sleep(0.05)
                delivered_rates.append(n / (time.time() - t0))
                if rnd == args.rounds - 1:
                    lat = latency_run(port, db, args.rate_seconds)
            finally:
                lb.terminate()
                lb.wait(20)
        med = statistics.median
        sink_rate = med(sink_rates)
        lat.sort()
        p50 = statistics.median(lat)
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        print(f"{args.kind}: {args.rounds} rounds of {n} messages (~{len(message(1)) // 1024} KB each), "
              f"16 connections, {os.cpu_count()} cores; medians")
        print(f"sink (aiosmtpd, 250 only)            {sink_rate:6.0f} msg/s   1.00x   "
              f"(rounds: {', '.join(f'{r:.0f}' for r in sink_rates)})")
        for label, rates in (("lesbot acceptance (250, durable)    ", accept_rates),
                             ("lesbot end-to-end (reply queued)    ", queued_rates),
                             ("lesbot end-to-end (reply in Maildir)", delivered_rates)):
            ratios = [r / s for r, s in zip(rates, sink_rates)]
            print(f"{label} {med(rates):6.0f} msg/s   {med(ratios):.2f}x   "
                  f"(round ratios: {', '.join(f'{x:.2f}' for x in ratios)})")
        print(f"at 50 msg/s: 250 -> reply queued     p50 {p50:.1f} ms, p99 {p99:.1f} ms ({len(lat)} messages)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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
        s.sendmail("practice@nhs.net", [INBOX], message(300_000 + i))
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
