#!/usr/bin/env python3
"""Hostile and malformed mail, made by mutating real messages; and a soak that feeds it to lesbot.

    python bench/hostile.py [--messages 10000] [--seed 1]

Each message is stored and processed in-process (the same Pipeline `lesbot ingest` uses) on a
fresh home with the sample directory. The soak reports how many were tried, how many crashed
the process (an exception escaping the pipeline), how many ended `failed`, how many had no named
state, how many took over 5 s, and the peak RSS. tests/test_fuzz.py runs a few hundred of the
same in CI.
"""
from __future__ import annotations

import argparse
import io
import random
import re
import resource
import sys
import tempfile
import time
import zipfile
from collections import Counter
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
INBOX = "ashmeres.les@nhs.net"
SENDERS = ["priya.raghunathan3@nhs.net", "kwame.osei4@nhs.net", "agh.metabolicbone@nhs.net",
           "lorraine.bishop@nhs.net", "someone@example.org", "MAILER-DAEMON@nhs.net"]
PID = "Mr Test PATIENT, NHS 999 035 6793, DOB 03/06/1958"
XLSX = "vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "vnd.openxmlformats-officedocument.wordprocessingml.document"


def seeds() -> list[bytes]:
    return [p.read_bytes() for p in sorted(DATA.glob("*.eml"))]


def _msg(rnd, subject="LES claim", body="Denosumab 60mg: 4\nMonth: September 2026\n") -> EmailMessage:
    m = EmailMessage()
    m["From"] = rnd.choice(SENDERS)
    m["To"] = INBOX
    m["Subject"] = subject
    m["Date"] = "Mon, 05 Oct 2026 09:00:00 +0100"
    m["Message-ID"] = f"<hostile-{rnd.randrange(1 << 40)}@nhs.net>"
    m.set_content(body)
    return m


def _xlsx(rows: int = 3, dimension: str | None = None) -> bytes:
    from openpyxl import Workbook
    wb = Workbook()
    ws = wb.active
    ws.append(["Service", "Month", "Number"])
    for i in range(rows):
        ws.append(["Denosumab 60mg injection", "September 2026", i % 9])
    buf = io.BytesIO()
    wb.save(buf)
    data = buf.getvalue()
    if dimension:      # a sheet that claims to be huge
        zin = zipfile.ZipFile(io.BytesIO(data))
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
            for item in zin.infolist():
                body = zin.read(item.filename)
                if item.filename.startswith("xl/worksheets/"):
                    body = re.sub(rb'<dimension ref="[^"]*"', f'<dimension ref="{dimension}"'.encode(), body, 1)
                zout.writestr(item, body)
        data = out.getvalue()
    return data


# -- mutations: each takes (rnd) and returns raw bytes ----------------------------------------
def utf8_headers(rnd):
    m = _msg(rnd)
    m.add_attachment(b"Service,Count\nDenosumab,3\n", maintype="text", subtype="csv", filename="claim.csv")
    raw = m.as_bytes()
    return raw.replace(b'filename="claim.csv"', 'filename="Claim – Sept ✓.csv"'.encode()) \
              .replace(b"Subject: LES claim", "Subject: Claim – September £ ✓ Ünïcode".encode())


def huge_csv_field(rnd):
    m = _msg(rnd)
    m.add_attachment(b"Service,Count\n" + b'"' + b"x" * rnd.choice([140_000, 300_000]) + b'",3\n',
                     maintype="text", subtype="csv", filename="claim.csv")
    return m.as_bytes()


def damaged_office(rnd):
    kind = rnd.choice(["xlsx", "docx", "zip", "pdf"])
    if kind == "pdf":
        data = b"%PDF-1.4\n" + PID.encode() + bytes(rnd.randrange(256) for _ in range(rnd.randrange(10, 3000)))
        sub, main, name = "pdf", "application", "letter.pdf"
    else:
        data = _xlsx()
        data = data[:rnd.randrange(10, len(data))] if rnd.random() < 0.6 else \
            bytes(b ^ 0xFF if rnd.random() < 0.01 else b for b in data)
        sub, main, name = {"xlsx": (XLSX, "application", "claim.xlsx"), "docx": (DOCX, "application", "form.docx"),
                           "zip": ("zip", "application", "bundle.zip")}[kind]
    m = _msg(rnd, subject=rnd.choice(["LES claim", "Denosumab transfer letter", "Joint injection referral"]))
    m.add_attachment(data, maintype=main, subtype=sub, filename=name)
    return m.as_bytes()


def huge_dimension(rnd):
    m = _msg(rnd)
    m.add_attachment(_xlsx(3, rnd.choice(["A1:XFD20000", "A1:XFD1048576", "A1:Z1000000"])),
                     maintype="application", subtype=XLSX, filename="claim.xlsx")
    return m.as_bytes()


def many_rows(rnd):
    m = _msg(rnd)
    m.add_attachment(_xlsx(rnd.choice([5_000, 20_000])), maintype="application", subtype=XLSX, filename="claim.xlsx")
    return m.as_bytes()


def non_ascii_ids(rnd):
    raw = _msg(rnd).as_bytes()
    return raw.replace(b"Message-ID: <", "Message-ID: <é-ü-".encode(), 1) \
              .replace(b"\nDate:", "\nReferences: <ré@x> <ok@nhs.net>\nIn-Reply-To: <ñ@x>\nDate:".encode(), 1)


def odd_charset(rnd):
    cs = rnd.choice([b"undefined", b"x-unknown", b"utf-7", b"iso-2022-jp", b"", b"utf-8\"; junk=\"", b"cp65001"])
    body = bytes(rnd.randrange(256) for _ in range(200)) + b"\nDenosumab 60mg: 4\n"
    return (b"From: " + rnd.choice(SENDERS).encode() + b"\r\nTo: " + INBOX.encode() + b"\r\nSubject: claim\r\n"
            b"Message-ID: <cs-" + str(rnd.randrange(1 << 40)).encode() + b"@nhs.net>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=" + cs + b"\r\nContent-Transfer-Encoding: " +
            rnd.choice([b"8bit", b"base64", b"quoted-printable", b"x-uuencode", b"7bit"]) + b"\r\n\r\n" + body)


def nested(rnd):
    depth = rnd.choice([50, 500, 1000, 1500])
    head = (b"From: priya.raghunathan3@nhs.net\r\nTo: " + INBOX.encode() + b"\r\nSubject: nested\r\n"
            b"Message-ID: <n-" + str(rnd.randrange(1 << 40)).encode() + b"@nhs.net>\r\nMIME-Version: 1.0\r\n")
    body = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i) for i in range(depth))
    return head + body + b"Content-Type: text/plain\r\n\r\nhi\r\n"


def header_injection(rnd):
    raw = _msg(rnd).as_bytes()
    return raw.replace(b"Message-ID: <", b"Message-ID: <=?utf-8?q?x@y=0D=0AX-Injected:_yes=0D=0ABcc:_v@e.org?=", 1)


def broken_from(rnd):
    frm = rnd.choice([b"", b"<>", b"@@@", b"priya.raghunathan3@nhs.net, kwame.osei4@nhs.net",
                      b"=?utf-8?q?=22Dr_K_Osei=22_=3Ckwame=2Eosei4=40nhs=2Enet=3E=2C?= <x@example.org>",
                      b"\"unterminated <priya.raghunathan3@nhs.net", b"a" * 5000 + b"@nhs.net"])
    return b"From: " + frm + b"\r\nTo: " + INBOX.encode() + b"\r\nSubject: hi\r\n\r\nDenosumab 60mg: 4\r\n"


def many_attachments(rnd):
    m = _msg(rnd)
    for i in range(rnd.choice([25, 60])):
        m.add_attachment(b"Service,Count\nDenosumab,1\n", maintype="text", subtype="csv", filename=f"c{i}.csv")
    return m.as_bytes()


def bit_flips(rnd):
    raw = bytearray(rnd.choice(seeds()))
    for _ in range(rnd.randrange(1, 40)):
        raw[rnd.randrange(len(raw))] = rnd.randrange(256)
    return bytes(raw)


def truncated(rnd):
    raw = rnd.choice(seeds())
    return raw[:rnd.randrange(0, len(raw))]


def garbage(rnd):
    return bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 4000)))


def no_boundary(rnd):
    return (b"From: priya.raghunathan3@nhs.net\r\nTo: " + INBOX.encode() + b"\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed\r\n\r\n--zzz\r\nContent-Type: text/plain\r\n\r\nDenosumab 4\r\n")


def pid_everywhere(rnd):
    m = _msg(rnd, subject=f"Claim {PID}", body=f"{PID} injection 3\nPryce 9990356793 x 2\nMonth: September 2026\n")
    return m.as_bytes()


MUTATIONS = [utf8_headers, huge_csv_field, damaged_office, huge_dimension, many_rows, non_ascii_ids, odd_charset,
             nested, header_injection, broken_from, many_attachments, bit_flips, truncated, garbage, no_boundary,
             pid_everywhere]
CHEAP = [m for m in MUTATIONS if m not in (many_rows,)]      # for CI


def generate(n: int, seed: int = 1, mutations=MUTATIONS):
    rnd = random.Random(seed)
    for i in range(n):
        mutate = mutations[i % len(mutations)]
        yield mutate.__name__, mutate(rnd)


def soak(n: int, seed: int, home: Path, mutations=MUTATIONS, report=print) -> dict:
    sys.path.insert(0, str(ROOT))
    from bot.settings import config
    from store.directory import import_csv
    from bot.mail.intake import store
    from bot.mail.parse import received_time
    from bot.pipeline.pipeline import Pipeline
    from store.db import open_db
    settings = config.load(home=home, inbox=INBOX, limits={"replies_per_sender_per_day": 1_000_000})
    conn = open_db(settings.db_path)
    import_csv(conn, (DATA / "directory.csv").read_text())
    pipeline = Pipeline(settings, conn)
    stats = Counter()
    slow: list[tuple[str, float]] = []
    named = {"accepted", "partially_accepted", "rejected", "quarantined", "ignored", "duplicate"}
    for kind, raw in generate(n, seed, mutations):
        stats["tried"] += 1
        t = time.perf_counter()
        try:
            mid = store(conn, raw, "file", received_time(raw), None, None, None)
            result = pipeline.process(mid)
        except Exception as e:       # an exception escaping the pipeline would end a real run
            stats["crashed"] += 1
            report(f"CRASH {kind}: {type(e).__name__}: {e}")
            continue
        took = time.perf_counter() - t
        if took > 5:
            slow.append((kind, took))
        state = result["outcome"] if result else None
        stats[f"state:{state}"] += 1
        if state == "failed":
            stats["failed"] += 1
            report(f"FAILED {kind}: {(result.get('errors') or [{}])[0]}")
        elif state not in named:
            stats["unnamed"] += 1
    pipeline.close()
    stats["over_5s"] = len(slow)
    stats["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    for kind, took in slow:
        report(f"SLOW {kind}: {took:.1f} s")
    return dict(stats)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lesbot-soak-") as d:
        t = time.perf_counter()
        stats = soak(args.messages, args.seed, Path(d))
        took = time.perf_counter() - t
    print(f"hostile soak: {stats['tried']} tried in {took:.0f} s; crashed {stats.get('crashed', 0)}, "
          f"failed {stats.get('failed', 0)}, no named state {stats.get('unnamed', 0)}, "
          f"over 5 s {stats['over_5s']}, peak RSS {stats['peak_rss_mb']} MB")
    print("  " + ", ".join(f"{k[6:]} {v}" for k, v in sorted(stats.items()) if k.startswith("state:")))


if __name__ == "__main__":
    main()
