#!/usr/bin/env python3
"""Claims: how fast lesbot reads them, against the bare read of the same file in the same run.

1. Claims per second through `lesbot ingest` (one process, --no-send) for body, CSV and XLSX
   claims, beside the same number of plain enquiries (the pipeline without a claim).
2. A 50,000-row CSV and XLSX claim attachment: time and peak memory (tracemalloc) of
   lesbot's reader, beside csv.reader / openpyxl read-only iterating the same bytes.

    python bench/bench_claims.py [--emails 300] [--rows 50000]
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime, timezone
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from handlers.claims import tables as claimparse  # noqa: E402
from handlers.contract.catalogue import load  # noqa: E402

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
RECEIVED = datetime(2026, 11, 5, 9, tzinfo=timezone.utc)


def rows(n: int, seed=1):
    rnd = random.Random(seed)
    services = ["Denosumab 60mg injection", "MSK consultation, no injection given"]
    months = ["Oct-26", "Sep-26", "Aug-26"]
    return [[rnd.choice(services), rnd.choice(months), rnd.randint(1, 20), "20.00"] for _ in range(n)]


def csv_bytes(n):
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["Service", "Activity month", "Number", "Unit price"])
    w.writerows(rows(n))
    return buf.getvalue().encode()


def xlsx_bytes(n):
    from openpyxl import Workbook
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Claim")
    ws.append(["Service", "Activity month", "Number", "Unit price"])
    for r in rows(n):
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def measure(fn, repeat=5):
    """Median time with nothing watching, then peak memory in a separate traced run
    (tracemalloc slows allocation-heavy code many times over)."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return statistics.median(times), peak


def bare_csv(data):
    for _ in csv.reader(io.StringIO(data.decode("utf-8"))):
        pass


def bare_xlsx(data):
    import openpyxl
    wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    for ws in wb.worksheets:
        for _ in ws.iter_rows(values_only=True):
            pass
    wb.close()


def email_of(kind: str, i: int) -> bytes:
    p = i % 100
    m = EmailMessage()
    m["From"] = f"practice{p}@nhs.net"
    m["To"] = "les.inbox@nhs.net"
    m["Subject"] = "LES claim" if kind != "enquiry" else "A question"
    m["Date"] = "Thu, 05 Nov 2026 09:00:00 +0000"
    m["Message-ID"] = f"<bench-{kind}-{i}@nhs.net>"
    if kind == "body":
        m.set_content(f"Practice code: Y{90000 + p:05d}\nMonth: October 2026\nDenosumab injections: {i % 20}\n"
                      f"MSK consultations, no injection given: {i % 5}\n\nKind regards\n")
    elif kind == "enquiry":
        m.set_content("Hello, when is the next payment run?\n\nKind regards\n")
    else:
        m.set_content("Our claim is attached.\n")
        if kind == "csv":
            data = (f"Service,Month,Number\nDenosumab,Oct-26,{i % 20}\nMSK no injection,Oct-26,{i % 5}\n").encode()
            m.add_attachment(data, maintype="text", subtype="csv", filename="claim.csv")
        else:
            from openpyxl import Workbook
            wb = Workbook()
            ws = wb.active
            ws.append(["ODS code:", f"Y{90000 + p:05d}"])
            ws.append(["Service", "Activity month", "Number"])
            ws.append(["Denosumab", datetime(2026, 10, 1), i % 20])
            ws.append(["MSK no injection", datetime(2026, 10, 1), i % 5])
            buf = io.BytesIO()
            wb.save(buf)
            m.add_attachment(buf.getvalue(), maintype="application", subtype=XLSX.split("/")[1],
                             filename="claim.xlsx")
    return m.as_bytes()


def ingest_rate(tmp: Path, kind: str, n: int) -> float:
    home = tmp / f"home-{kind}"
    src = tmp / f"mail-{kind}"
    src.mkdir()
    for i in range(n):
        (src / f"{i:05d}.eml").write_bytes(email_of(kind, i))
    env = dict(os.environ, LESBOT_HOME=str(home), LESBOT_INBOX="les.inbox@nhs.net",
               LESBOT_LIMITS__REPLIES_PER_SENDER_PER_DAY="100000")
    env.pop("LESBOT_CONFIG", None)
    home.mkdir()
    (home / "dir.csv").write_text("ods_code,name,kind,emails,services\n" + "".join(
        f"Y{90000 + p:05d},Practice {p},practice,practice{p}@nhs.net,denosumab;msk-injection\n" for p in range(100)))
    cli = [sys.executable, "-m", "bot.cli"]
    subprocess.run([*cli, "directory", "import", str(home / "dir.csv")], env=env, cwd=ROOT, check=True,
                   capture_output=True)
    t = time.perf_counter()
    r = subprocess.run([*cli, "ingest", "--no-send", str(src)], env=env, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    want = "accepted: " if kind != "enquiry" else "rejected: "
    assert f"{want}{n}" in r.stdout, r.stdout
    return n / elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--emails", type=int, default=300)
    ap.add_argument("--rows", type=int, default=50_000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="lesbot-bench-claims-"))
    try:
        rates = {k: ingest_rate(tmp, k, args.emails) for k in ("enquiry", "body", "csv", "xlsx")} \
            if args.emails else {}
        print(f"lesbot ingest, {args.emails} emails each (one process, including start-up):" if rates else "")
        for k, v in rates.items():
            print(f"  {k:<8} {v:7.0f} claims/s   {v / rates['enquiry']:.2f}x of plain enquiries")
        cat = load()
        c, x = csv_bytes(args.rows), xlsx_bytes(args.rows)
        print(f"{args.rows:,}-row claim attachment (CSV {len(c) / 1e6:.1f} MB, XLSX {len(x) / 1e6:.1f} MB):")
        for label, data, bare, ours in (
                ("CSV ", c, bare_csv, lambda d: claimparse.from_csv(d, "claim.csv", cat, RECEIVED)),
                ("XLSX", x, bare_xlsx, lambda d: claimparse.from_xlsx(d, "claim.xlsx", cat, RECEIVED))):
            tb, mb = measure(lambda: bare(data))
            tl, ml = measure(lambda: ours(data))
            print(f"  {label}  bare read {tb * 1000:7.1f} ms {mb / 1e6:6.1f} MB peak | lesbot {tl * 1000:7.1f} ms "
                  f"{ml / 1e6:6.1f} MB peak | time {tl / tb:.2f}x, memory {ml / max(mb, 1):.2f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
