#!/usr/bin/env python3
"""Per-kind ingest cost, this checkout against an earlier revision, in one run.

The reading layer (issue 10) reads more of every message; this shows what that costs per
kind: plain enquiries, claims in the body / as a CSV / as an XLSX, MSK referrals, denosumab
transfer letters and IMSK referrals. Each round ingests every kind with both checkouts,
alternating which goes first, in fresh homes.
Each side runs in a process of its own checkout: one warm-up message (imports, first-use
compiling), then N messages stored and processed as `lesbot ingest` does; the figure is the
process's CPU time per message (steadier than wall time on a shared machine). Medians over the
rounds; the ratio is after / before (1.00 = no change). The outcomes show both did the same work.

    python bench/bench_reading.py [--before REV] [--emails 150] [--rounds 3]

REV defaults to the commit before issue 10's reading work; it is checked out with
`git worktree` into a temporary folder and removed afterwards.
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from bench_referrals import email_of, letter_body, nhs_numbers  # noqa: E402

BEFORE = "4de32bb"
KINDS = ("enquiry", "claim_body", "claim_csv", "claim_xlsx", "referral", "transfer", "imsk")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def claim(kind: str, i: int) -> bytes:
    p = i % 100
    m = EmailMessage()
    m["From"], m["To"] = f"practice{p}@nhs.net", "les.inbox@nhs.net"
    m["Subject"] = "LES claim October 2026"
    m["Date"] = "Mon, 05 Oct 2026 09:00:00 +0000"
    m["Message-ID"] = f"<bench-{kind}-{i}@nhs.net>"
    den, msk = 3 + i % 11, 1 + i % 5
    if kind == "claim_body":
        m.set_content(f"Practice code: Y{90000 + p:05d}\nMonth: October 2026\n"
                      f"Denosumab 60mg injection: {den}\nMSK consultation, no injection given: {msk}\n\nThanks\n")
        return m.as_bytes()
    m.set_content("Our October claim is attached.\n\nThanks\n")
    rows = [["Service", "Month", "Number"], ["Denosumab 60mg injection", "October 2026", den],
            ["MSK consultation, no injection given", "October 2026", msk]]
    if kind == "claim_csv":
        data = "\n".join(",".join(str(c) for c in r) for r in rows).encode()
        m.add_attachment(data, maintype="text", subtype="csv", filename="claim.csv")
    else:
        from openpyxl import Workbook
        wb = Workbook()
        for r in rows:
            wb.active.append(r)
        buf = io.BytesIO()
        wb.save(buf)
        m.add_attachment(buf.getvalue(), maintype="application", subtype=XLSX.split("/")[1],
                         filename="claim.xlsx")
    return m.as_bytes()


def write_mail(folder: Path, kind: str, n: int, letter: str) -> None:
    folder.mkdir(parents=True)
    for i, number in enumerate(nhs_numbers(n)):
        raw = claim(kind, i) if kind.startswith("claim") else email_of(kind, i, number, letter)
        (folder / f"{i:05d}.eml").write_bytes(raw)


def home_for(tmp: Path, checkout: Path, tag: str) -> tuple[Path, dict]:
    home = Path(tempfile.mkdtemp(prefix=f"home-{tag}-", dir=tmp))
    env = dict(os.environ, LESBOT_HOME=str(home), LESBOT_INBOX="les.inbox@nhs.net,imsk.spa@nhs.net",
               LESBOT_ROUTES='{"imsk.spa@nhs.net": "imsk"}', LESBOT_IMSK__TRIAGE_TEAM="triage@nhs.net",
               LESBOT_LIMITS__REPLIES_PER_SENDER_PER_DAY="100000", PYTHONPATH=str(checkout))
    env.pop("LESBOT_CONFIG", None)
    (home / "dir.csv").write_text("ods_code,name,kind,emails,services\n" + "".join(
        f"Y{90000 + p:05d},Practice {p},practice,practice{p}@nhs.net,denosumab;msk-injection;imsk\n"
        for p in range(100)) + "".join(
        f"Y9980{h},Hospital {h},hospital,hospital{h}@nhs.net,denosumab\n" for h in range(5)))
    cli(checkout, env, "directory", "import", str(home / "dir.csv"))
    return home, env


def cli(checkout: Path, env: dict, *args) -> str:
    r = subprocess.run([sys.executable, "-m", "bot.cli", *args], env=env, cwd=checkout,
                       capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"{checkout}: lesbot {' '.join(args[:2])} failed:\n{r.stderr[-1500:]}")
    return r.stdout


DRIVER = """
import sys, time
from pathlib import Path
try:                                  # this layout (issue 13)
    from bot.settings import config
    from store.directory import import_csv
    from bot.mail.intake import store
    from bot.mail.parse import received_time
    from bot.pipeline.pipeline import Pipeline
except ImportError:                   # the earlier one, for the "before" side
    from bot import config
    from bot.directory import import_csv
    from bot.intake import store
    from bot.mailparse import received_time
    from bot.pipeline import Pipeline
from store.db import open_db
s = config.load()
conn = open_db(s.db_path)
import_csv(conn, Path(sys.argv[1]).read_text())
p = Pipeline(s, conn)
raws = [f.read_bytes() for f in sorted(Path(sys.argv[2]).iterdir())]
p.process(store(conn, raws[0], "file", received_time(raws[0]), None, None, "warm-up"))
outcomes = {}
cpu, wall = time.process_time(), time.perf_counter()
for i, raw in enumerate(raws[1:]):
    r = p.process(store(conn, raw, "file", received_time(raw), None, None, str(i)))
    outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
n = len(raws) - 1
print((time.process_time() - cpu) / n * 1000, (time.perf_counter() - wall) / n * 1000, outcomes)
p.close()
"""


def ingest_ms(tmp: Path, checkout: Path, folder: Path, tag: str) -> tuple[float, float, dict]:
    """CPU and wall ms per message to store and process the folder's mail (after one warm-up
    message, so imports and first-use compiling are left out), in a process of that checkout."""
    home, env = home_for(tmp, checkout, tag)
    r = subprocess.run([sys.executable, "-c", DRIVER, str(home / "dir.csv"), str(folder)], env=env, cwd=checkout,
                       capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"{checkout}: {r.stderr[-1500:]}")
    cpu, wall, outcomes = r.stdout.strip().split(" ", 2)
    return float(cpu), float(wall), outcomes


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", default=BEFORE)
    ap.add_argument("--emails", type=int, default=150)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--kinds", default=",".join(KINDS))
    args = ap.parse_args()
    kinds = args.kinds.split(",")
    tmp = Path(tempfile.mkdtemp(prefix="lesbot-bench-reading-"))
    old = tmp / "before"
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(old), args.before], cwd=ROOT, check=True)
    try:
        letter = letter_body()
        for k in kinds:
            write_mail(tmp / f"mail-{k}", k, args.emails + 1, letter)
        sides = {"before": old, "after": ROOT}
        per = {(s, k): [] for s in sides for k in kinds}
        seen = {}
        for r in range(args.rounds):
            order = list(sides.items()) if r % 2 == 0 else list(sides.items())[::-1]
            for k in kinds:
                for side, checkout in order:
                    cpu, wall, outcomes = ingest_ms(tmp, checkout, tmp / f"mail-{k}", side)
                    per[side, k].append(cpu)
                    seen[side, k] = outcomes
        print(f"store + process, CPU ms per message (median of {args.rounds} alternating rounds, {args.emails} "
              f"emails per kind after a warm-up one); before = {args.before}, after = this checkout")
        print(f"  {'kind':<11} {'before':>8} {'after':>8} {'after/before':>13}  {'round ratios':>18}   outcomes (before | after)")
        for k in kinds:
            b, a = statistics.median(per["before", k]), statistics.median(per["after", k])
            # each round's own ratio (the two sides ran back to back): the spread shows the noise
            rr = sorted(y / x for x, y in zip(per["before", k], per["after", k]))
            print(f"  {k:<11} {b:8.2f} {a:8.2f} {a / b:12.2f}x  {rr[0]:8.2f}–{rr[-1]:.2f}x   "
                  f"{seen['before', k]} | {seen['after', k]}")
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
