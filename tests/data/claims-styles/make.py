"""Writes the claim .eml files in this folder: claims in styles of our own (issue 10), for
tests/test_claim_reading.py. Fictional practices from ../directory.csv and ./directory.csv; NHS
numbers start 999 and pass Modulus 11. Run: python tests/data/claims-styles/make.py"""
from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).parent
INBOX = "ashmeres.les@nhs.net"


def write(name, sender, subject, when, text=None, html=None, extra=None):
    m = EmailMessage()
    m["Received"] = f"from mail.nhs.net by inbox.nhs.net; {format_datetime(when)}"
    m["From"] = sender
    m["To"] = INBOX
    m["Subject"] = subject
    m["Date"] = format_datetime(when)
    m["Message-ID"] = make_msgid(idstring=name.split("-")[0], domain="nhs.net")
    for k, v in (extra or {}).items():
        m[k] = v
    if text is not None:
        m.set_content(text)
        if html is not None:
            m.add_alternative(html, subtype="html")
    else:
        m.set_content(html, subtype="html")
    (HERE / f"{name}.eml").write_bytes(m.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))


def utc(*a):
    return datetime(*a, tzinfo=timezone.utc)


write("c01-forwarded-nurse-prose", "lorraine.bishop@nhs.net", "FW: jabs", utc(2026, 11, 2, 10, 0), text="""\
FYI - the figures from Hannah below, can these go on as our October claim?

Lorraine
Kettlebrook Health Centre

-----Original Message-----
From: Hannah Prewitt <hannah.prewitt9@nhs.net>
Sent: 30 October 2026 16:40
To: Lorraine Bishop <lorraine.bishop@nhs.net>
Subject: jabs

Hi Lorraine, in October I gave eleven Prolia injections, and I saw two temporary residents about \
their knees but decided not to inject either of them.
Hannah
""")

write("c02-html-months-as-columns", "priya.raghunathan3@nhs.net", "LES figures", utc(2026, 11, 4, 11, 30), html="""\
<html><body><p>Hello, our catch-up figures are below.</p>
<table class=MsoNormalTable border=1>
<tr><td><b>Service</b></td><td><b>Aug 2026</b></td><td><b>Sep 2026</b></td><td><b>Oct 2026</b></td></tr>
<tr><td>Denosumab 60mg</td><td>3</td><td></td><td>5</td></tr>
<tr><td>MSK consults (no injection, non-registered)</td><td>1</td><td>2</td><td>-</td></tr>
</table>
<p>Priya<br>Meresfield Medical Centre | Tel 01632 960214</p></body></html>
""")

write("c03-quarter-in-words", "d.mcallister@nhs.net", "MSK claim Q2 2026/27", utc(2026, 10, 5, 9, 15), text="""\
Dear LES team,

Joint injection consultations where no injection was given, patients registered elsewhere: six for the quarter.

Deirdre McAllister
Fallowcombe Surgery
""")

write("c04-last-month-signature", "tracey.holt7@nhs.net", "claim", utc(2026, 12, 3, 8, 5), text="""\
Hi, claim for last month: denosumab x 6

Tracey
Stonebridge Lane Surgery | ODS Z98106
Tel 01632 960311 | Bleep 2231 | Fax 01632 960312
Query ref (patient) 999 000 0018
""")

write("c05-signed-up-for-nothing", "office@brackenfold.nhs.net", "LES claim November 2026", utc(2026, 12, 2, 9, 0),
      text="Month: November 2026\nDenosumab: 3\n\nBrackenfold Surgery\n")

write("c06-mixed-problems", "priya.raghunathan3@nhs.net", "October claim + corrections", utc(2026, 11, 5, 10, 0), text="""\
Denosumab Oct 2026: 4
Denosumab Sep 2026: -1
MSK consultations Oct 2026: 2000
Denosumab Dec 2026: 3
B12 injections Oct 2026: 12

Priya
""")

write("c07-typos-dash-list", "lorraine.bishop@nhs.net", "Oct-26 LES", utc(2026, 11, 6, 14, 0), text="""\
Denosamab injections - Oct-26 - 7
MSK jt inj consult no inj - Oct-26 - 1

Lorraine
""")
print("written")
