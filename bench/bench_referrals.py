#!/usr/bin/env python3
"""Referrals and the register, against the core pipeline in the same run.

1. Messages per second through `lesbot ingest --no-send` (one process, start-up included):
   plain enquiries (the core pipeline's baseline), MSK referrals (one patient each, passed on
   to the receiving practice), denosumab transfer letters (register entry + practice notice) and
   IMSK standard referrals on their own inbox (acknowledgement + the triage team's copy).
2. `lesbot register list` over a register of 100,000 patients (each with two doses): the CLI
   end to end and the query alone, beside a bare SELECT of the same rows, and as patients per
   second beside the plain-message rate above.

    python bench/bench_referrals.py [--emails 300] [--patients 100000]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from handlers.returns import activity  # noqa: E402
from handlers.contract import nhs
from store.db import open_db  # noqa: E402

CLI = [sys.executable, "-m", "bot.cli"]
LETTER = (ROOT / "tests" / "data" / "11-denosumab-letter-in-body.eml")


def nhs_numbers(n: int, start: int = 0):
    """Valid (Modulus 11) fictional NHS numbers starting 999."""
    i = start
    while n:
        stem = f"999{i:06d}"
        total = sum(int(d) * w for d, w in zip(stem, range(10, 1, -1)))
        check = (11 - total % 11) % 11
        if check != 10:
            yield stem + str(check)
            n -= 1
        i += 1


def letter_body() -> str:
    import email
    m = email.message_from_bytes(LETTER.read_bytes())
    return next(p for p in m.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()


def email_of(kind: str, i: int, number: str, letter: str) -> bytes:
    p = i % 100
    m = EmailMessage()
    m["To"] = "les.inbox@nhs.net"
    m["Date"] = "Mon, 05 Oct 2026 09:00:00 +0000"
    m["Message-ID"] = f"<bench-{kind}-{i}@nhs.net>"
    if kind == "enquiry":
        m["From"], m["Subject"] = f"practice{p}@nhs.net", "A question"
        m.set_content("Hello, when is the next payment run?\n\nKind regards\n")
    elif kind == "imsk":
        m.replace_header("To", "imsk.spa@nhs.net")
        m["From"], m["Subject"] = f"practice{p}@nhs.net", "IMSK referral"
        m.set_content(f"Patient name: Test {_surname(i)}\nDate of birth: 03/06/1958\nNHS number: {nhs.display(number)}\n"
                      f"Registered practice: Practice {p} (Y{90000 + p:05d})\nReferral specialty: Physiotherapy\n"
                      "Clinical details: low back pain for four months despite exercises and analgesia\n"
                      "Red flags: no\nUrgency: routine\n")
    elif kind == "referral":
        m["From"], m["Subject"] = f"practice{p}@nhs.net", "MSK joint injection referral"
        m.set_content(
            f"Referring practice: Practice {p} (Y{90000 + p:05d})\n"
            f"Receiving practice: Practice {(p + 1) % 100} (Y{90000 + (p + 1) % 100:05d})\n\n"
            f"Patient name: Test {_surname(i)}\nDate of birth: 03/06/1958\nNHS number: {nhs.display(number)}\n"
            "Address: 1 Test Row, AM6 3LP\nTelephone: 01632 960000\n"
            f"Registered practice: Practice {p} (Y{90000 + p:05d})\nJoint / site: Left knee\n"
            "Clinical reason: osteoarthritis flare not settled with analgesia and physiotherapy\n"
            "Anticoagulants: none\nAllergies: none\nDiabetes: no\nPrevious injections: none\n")
    else:
        m["From"], m["Subject"] = f"hospital{p % 5}@nhs.net", "Denosumab transfer of care"
        m.set_content(letter.replace("999 960 9058", nhs.display(number))
                      .replace("Highmere Practice (Z98104)", f"Practice {p} (Y{90000 + p:05d})"))
    return m.as_bytes()


def setup_home(tmp: Path, name: str) -> tuple[Path, dict]:
    home = tmp / name
    home.mkdir()
    env = dict(os.environ, LESBOT_HOME=str(home), LESBOT_INBOX="les.inbox@nhs.net,imsk.spa@nhs.net",
               LESBOT_ROUTES='{"imsk.spa@nhs.net": "imsk"}', LESBOT_IMSK__TRIAGE_TEAM="triage@nhs.net",
               LESBOT_LIMITS__REPLIES_PER_SENDER_PER_DAY="100000")
    env.pop("LESBOT_CONFIG", None)
    (home / "dir.csv").write_text("ods_code,name,kind,emails,services\n" + "".join(
        f"Y{90000 + p:05d},Practice {p},practice,practice{p}@nhs.net,denosumab;msk-injection;imsk\n" for p in range(100))
        + "".join(f"Y9980{h},Hospital {h},hospital,hospital{h}@nhs.net,denosumab\n" for h in range(5)))
    subprocess.run([*CLI, "directory", "import", str(home / "dir.csv")], env=env, cwd=ROOT, check=True,
                   capture_output=True)
    return home, env


def ingest_rate(tmp: Path, kind: str, n: int) -> float:
    home, env = setup_home(tmp, f"home-{kind}")
    src = tmp / f"mail-{kind}"
    src.mkdir()
    letter = letter_body()
    for i, number in enumerate(nhs_numbers(n)):
        (src / f"{i:05d}.eml").write_bytes(email_of(kind, i, number, letter))
    t = time.perf_counter()
    r = subprocess.run([*CLI, "ingest", "--no-send", str(src)], env=env, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    want = "rejected: " if kind == "enquiry" else "accepted: "
    assert f"{want}{n}" in r.stdout, r.stdout
    return n / elapsed


def fill_register(db: Path, n: int) -> None:
    conn = open_db(db)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    today = date(2026, 11, 23)
    for i, number in enumerate(nhs_numbers(n)):
        first = date(2025, 1 + i % 12, 1 + i % 28)
        second = date(first.year + (first.month + 6 > 12), (first.month + 5) % 12 + 1, first.day)
        cur = conn.execute(
            "INSERT INTO register (nhs_number, practice_code, hospital_code, patient, first_dose_on, last_dose_on, "
            "next_due, status, case_id, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (number, f"Y{90000 + i % 100:05d}", "Y99800", "{}", first.isoformat(), second.isoformat(),
             date(second.year + (second.month + 6 > 12), (second.month + 5) % 12 + 1, second.day).isoformat(),
             "active" if i % 20 else "stopped", i + 1, today.isoformat(), today.isoformat()))
        conn.executemany("INSERT INTO doses (register_id, given_on, source, recorded_at) VALUES (?,?,?,?)",
                         [(cur.lastrowid, first.isoformat(), "hospital", ""),
                          (cur.lastrowid, second.isoformat(), "practice", "")])
    conn.execute("COMMIT")
    conn.close()


def timed(fn, repeat=5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--emails", type=int, default=300)
    ap.add_argument("--patients", type=int, default=100_000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="lesbot-bench-referrals-"))
    try:
        rates = {k: ingest_rate(tmp, k, args.emails) for k in ("enquiry", "referral", "transfer", "imsk")}
        print(f"lesbot ingest --no-send, {args.emails} emails each (one process, start-up included):")
        for k, v in rates.items():
            print(f"  {k:<9} {v:7.0f} msg/s   {v / rates['enquiry']:.2f}x of plain messages")
        home, env = setup_home(tmp, "home-register")
        db = home / "lesbot.db"
        fill_register(db, args.patients)
        conn = sqlite3.connect(db)
        bare = timed(lambda: conn.execute("SELECT * FROM register r JOIN doses d ON d.register_id=r.id").fetchall())
        conn2 = open_db(db)
        today = date(2026, 11, 23)
        ours = timed(lambda: activity.register_rows(conn2, None, None, today))
        one = timed(lambda: activity.register_rows(conn2, "Y90007", None, today))
        due = timed(lambda: activity.register_rows(conn2, None, date(2026, 12, 31), today))
        t = time.perf_counter()
        r = subprocess.run([*CLI, "register", "list", "--json"], env=env, cwd=ROOT, capture_output=True, text=True)
        cli = time.perf_counter() - t
        assert r.returncode == 0 and r.stdout.count("\n") == args.patients, r.stderr[-500:]
        print(f"register of {args.patients:,} patients ({2 * args.patients:,} doses):")
        print(f"  bare SELECT of patients and doses      {bare * 1000:8.1f} ms")
        print(f"  register list (query + rows)           {ours * 1000:8.1f} ms   {ours / bare:.2f}x the bare SELECT")
        print(f"  register list --practice (1,000 rows)  {one * 1000:8.1f} ms")
        print(f"  register list --due-before             {due * 1000:8.1f} ms")
        print(f"  lesbot register list --json (CLI)      {cli * 1000:8.1f} ms   "
              f"{args.patients / cli:,.0f} patients/s = {args.patients / cli / rates['enquiry']:.0f}x "
              "the plain-message rate")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()


def _surname(i: int) -> str:
    """A surname per message, letters only ('PATIENT100' is rightly refused as a name by the IMSK
    reader, which would make the bench compare accepted mail with rejected mail)."""
    return "PATIENT" + "".join("ABCDEFGHIJ"[int(d)] for d in str(i))
