#!/usr/bin/env python3
"""The contract team's digest over one year of data for an ICB of 200 practices
(about 5,000 claim lines, 20,000 referrals, 50,000 register entries, 60,000 messages),
beside one `SELECT count(*)` over each of the same tables in the same run.

    python bench/bench_digest.py [--practices 200] [--referrals 20000] [--register 50000]
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import tracemalloc
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_referrals import timed  # noqa: E402  (median of repeated runs)
from bot.settings import config  # noqa: E402
from handlers.clock import digest
from store.db import open_db  # noqa: E402

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=timezone.utc)
TABLES = ["messages", "claims", "referrals", "register", "doses", "events", "bounces", "outbox"]


def fill(db: Path, practices: int, n_referrals: int, n_register: int, seed: int = 7) -> dict:
    rnd = random.Random(seed)
    conn = open_db(db)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    codes = [f"Y{90000 + p:05d}" for p in range(practices)]
    for c in codes:
        conn.execute("INSERT INTO orgs (ods_code, name, kind, services, updated_at) VALUES (?,?,?,?,?)",
                     (c, f"Practice {c}", "practice", "denosumab;msk-injection", "2026-01-01"))
        conn.execute("INSERT INTO org_emails (email, ods_code) VALUES (?,?)", (f"{c.lower()}@nhs.net", c))
    start = NOW - timedelta(days=365)
    kinds = ["claim", "referral", "referral_outcome", "denosumab_transfer", "denosumab_dose", "enquiry", "duplicate"]
    states = ["accepted", "accepted", "accepted", "rejected", "quarantined", "failed"]
    n_messages = 60_000
    for i in range(n_messages):
        t = (start + timedelta(seconds=i * 365 * 86400 // n_messages)).isoformat()
        conn.execute("INSERT INTO messages (received_at, source, raw, size, state, kind, org_code, processed_at) "
                     "VALUES (?,?,?,?,?,?,?,?)", (t, "smtp", b"x" * 1000, 1000, rnd.choice(states),
                                                  rnd.choice(kinds), rnd.choice(codes), t))
    months = [(date(2025, 12, 1) + timedelta(days=31 * k)).replace(day=1) for k in range(12)]
    n_claims = 0
    for c in codes:
        for m in months:
            for svc, rate in (("denosumab", 2000), ("msk-injection", 4347)):
                n = rnd.randint(0, 12)
                run = (m + timedelta(days=40)).replace(day=1)
                conn.execute("INSERT INTO claims (created_at, org_code, service, month, count, tariff_pence, "
                             "amount_pence, run, state) VALUES (?,?,?,?,?,?,?,?,?)",
                             (f"{run:%Y-%m}-05T10:00:00+00:00", c, svc, f"{m:%Y-%m}", n, rate, n * rate,
                              f"{run:%Y-%m}", "accepted"))
                n_claims += 1
    for i in range(n_referrals):
        day = start.date() + timedelta(days=rnd.randrange(365))
        seen = day + timedelta(days=rnd.randint(5, 40))
        done = seen < NOW.date() and rnd.random() < 0.85
        outcome = rnd.choice(["injection", "no_injection", "did_not_attend"]) if done else None
        conn.execute("INSERT INTO referrals (id, message, created_at, referred_on, state, referrer_code, "
                     "receiving_code, registered_code, nhs_number, forwarded_at, outcome_due, outcome, seen_on, payable, "
                     "quarter) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                     (i + 1, i + 1, day.isoformat(), day.isoformat(), "seen" if done else "forwarded",
                      rnd.choice(codes), rnd.choice(codes), rnd.choice(codes), f"999{i:07d}",
                      f"{day.isoformat()}T10:00:00+00:00", (day + timedelta(days=28)).isoformat(), outcome,
                      seen.isoformat() if done else None, int(outcome == "no_injection"),
                      f"{seen.year}Q{(seen.month - 1) // 3 + 1}" if done else None))
    for i in range(n_register):
        first = start.date() + timedelta(days=rnd.randrange(365))
        rid = conn.execute("INSERT INTO register (nhs_number, practice_code, patient, first_dose_on, last_dose_on, "
                           "next_due, status, created_at) VALUES (?,?,?,?,?,?,?,?)",
                           (f"998{i:07d}", rnd.choice(codes), "{}", first.isoformat(), first.isoformat(),
                            (first + timedelta(days=182)).isoformat(), "active" if i % 25 else "stopped",
                            first.isoformat())).lastrowid
        conn.execute("INSERT INTO doses (register_id, given_on, source) VALUES (?,?,?)",
                     (rid, first.isoformat(), "hospital"))
    for i in range(200):
        conn.execute("INSERT INTO events (org_code, kind, event_on, reported_at, late, hours) VALUES (?,?,?,?,?,?)",
                     (rnd.choice(codes), "significant adverse event", "2026-11-01", (NOW - timedelta(hours=i)).isoformat(),
                      i % 3 == 0, 80.0))
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    return {"practices": practices, "claim lines": n_claims, "referrals": n_referrals, "register": n_register,
            "messages": n_messages}


def peak(fn) -> int:
    tracemalloc.start()
    fn()
    p = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return p


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--practices", type=int, default=200)
    ap.add_argument("--referrals", type=int, default=20_000)
    ap.add_argument("--register", type=int, default=50_000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="lesbot-bench-digest-"))
    try:
        settings = config.load(home=tmp, inbox="les.inbox@nhs.net", contract_team="team@nhs.net")
        sizes = fill(settings.db_path, args.practices, args.referrals, args.register)
        conn = open_db(settings.db_path)
        count = timed(lambda: [conn.execute(f"SELECT count(*) FROM {t}").fetchone() for t in TABLES])
        day = timed(lambda: digest.run(settings, conn, NOW, "day", dry_run=True))
        month = timed(lambda: digest.run(settings, conn, NOW, "month", dry_run=True, with_chart=False))
        chart = timed(lambda: digest.chart(conn, NOW, settings.catalogue), repeat=3)
        mem = peak(lambda: digest.run(settings, conn, NOW, "day", dry_run=True))
        print("data:", json.dumps(sizes))
        print(f"SELECT count(*) over {len(TABLES)} tables   {count * 1000:8.1f} ms   1.00x")
        print(f"daily digest (gather + render)      {day * 1000:8.1f} ms   {day / count:.1f}x   peak {mem / 1e6:.1f} MB")
        print(f"monthly digest without the chart    {month * 1000:8.1f} ms   {month / count:.1f}x")
        print(f"12-month chart (matplotlib, PNG)    {chart * 1000:8.1f} ms   {chart / count:.1f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
