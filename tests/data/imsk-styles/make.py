"""Writes the .eml files of this folder (run from anywhere: python make.py). Styles of our own:
a prose letter, an Outlook HTML-only table, a Word form with [x] boxes, a phone number that passes
Modulus 11, a practice the service does not cover, an ISO date of birth of a 17-year-old, a triage
reply threaded only by References, and a numbered training application with promises."""
import io
from email.message import EmailMessage
from email.utils import format_datetime
from datetime import datetime, timezone
from pathlib import Path

import docx

HERE = Path(__file__).parent
IMSK, TRAINING = "imsk.test@nhs.net", "training.test@nhs.net"


def msg(name, sender, to, subject, when, body=None, html=None, msgid=None, refs=None, attach=None):
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = sender, to, subject
    m["Date"] = format_datetime(when)
    m["Message-ID"] = f"<{msgid or name}@mail.example.nhs.net>"
    if refs:
        m["References"] = " ".join(f"<{r}@mail.example.nhs.net>" for r in refs)
        m["In-Reply-To"] = f"<{refs[-1]}@mail.example.nhs.net>"
    if body is not None:
        m.set_content(body)
    if html is not None:
        if body is None:
            m.set_content(html, subtype="html")
        else:
            m.add_alternative(html, subtype="html")
    if attach:
        fname, data = attach
        m.add_attachment(data, maintype="application",
                         subtype="vnd.openxmlformats-officedocument.wordprocessingml.document", filename=fname)
    raw = m.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    stamp = format_datetime(when).encode()
    (HERE / f"{name}.eml").write_bytes(b"Received: from relay.example.nhs.net; " + stamp + b"\r\n" + raw)


def d(*a):
    return datetime(*a, tzinfo=timezone.utc)


msg("r1-prose-letter", "dr.a.quimby@nhs.net", IMSK, "Letter for the MSK service", d(2026, 11, 2, 10), body="""\
Dear colleagues

Re: Miss Ophelia MARCHBANK (born 4.7.88)   NHS No. 999-590-8301

Would you kindly arrange for this young woman to be seen by your rheumatology team.

For the past ten weeks she has had swollen, painful wrists and knuckles on both hands with two hours of
stiffness each morning, and her mother has rheumatoid arthritis. Her CRP was 31 last week and she is
struggling to hold a pen at work. Naproxen has taken the edge off it only.

She denies fevers or weight loss and I found no red flag features. I would regard this as urgent given
how quickly it is progressing.

With thanks

Dr Anselm Quimby
Harrowgate Lane Surgery
Mob: 1632 960001
""")

TABLE = "".join(f"<tr><td><p>{k}</p></td><td><p>{v}</p></td></tr>" for k, v in [
    ("Pt Name", "Mr Tobias WREN"), ("DOB", "11th Sept 1969"), ("NHS #", "999 661 3186"),
    ("Address", "4 Millrace Row<br>Brackenfield<br>ZZ9 9ZZ"),
    ("Registered GP Practice", "Brackenfield MC"), ("Service Requested", "Physio"),
    ("Presenting Problem", "Left Achilles pain for 4 months after starting to run, worse in the morning, "
                           "thickened mid-portion tendon, no rupture on calf squeeze. Tried heel raises."),
    ("Any red flags?", "Nil"), ("Priority", "Non-urgent")])
msg("r2-outlook-html-only", "brackenfield.mc@nhs.net", IMSK, "IMSK ref", d(2026, 11, 3, 9, 30),
    html=f"<html><body><p>Hello,</p><p>Referral as below.</p><table class=MsoTableGrid>{TABLE}</table>"
         "<p>Thanks, Brackenfield MC admin team</p></body></html>", msgid="r2")

doc = docx.Document()
doc.add_paragraph("MSK REFERRAL")
t = doc.add_table(rows=0, cols=2)
for k, v in [("Surname, forename", "DELACROIX, Hilde"), ("Patient name", "Mrs Hilde DELACROIX"),
             ("Date of birth", "1950-02-28"), ("NHS number", "9994628194"),
             ("Practice", "Harrowgate Lane Surgery (Z97101)"),
             ("Referral specialty", "[ ] Physiotherapy  [ ] Orthopaedics  [ ] Rheumatology  [x] Pain management"),
             ("Clinical details", "Chronic widespread pain for five years, poor sleep, tried amitriptyline and "
                                  "duloxetine; wants a pain management programme."),
             ("Red flags", "[x] Yes  [ ] No"), ("Urgency", "[ ] Urgent  [x] Routine")]:
    row = t.add_row().cells
    row[0].text, row[1].text = k, v
buf = io.BytesIO()
doc.save(buf)
msg("r3-docx-ticks", "harrowgate.lane@nhs.net", IMSK, "referral form", d(2026, 11, 4, 11), body="Form attached.",
    attach=("referral.docx", buf.getvalue()))

msg("r4-phone-passes-mod11", "harrowgate.lane@nhs.net", IMSK, "IMSK", d(2026, 11, 4, 12), body="""\
Name - Mr Idris Fenwick
DOB - 02/10/1961
Practice - Harrowgate Lane Surgery
Specialty - Orthopaedics
Clinical details - Right knee pain and locking for six months, MRI shows a degenerate medial meniscal tear.
Red flags - none
Urgency - routine

Harrowgate Lane Surgery | Direct line 9991600019 | Tel: 1632 960036
""")

msg("r5-not-covered", "saltmarsh.hc@nhs.net", IMSK, "Referral", d(2026, 11, 4, 13), body="""\
Patient: Mrs Ada Pennywhistle
Date of birth: 30/06/1957
NHS number: 999 147 1049
Registered practice: Saltmarsh Health Centre (Z97103)
Referral specialty: Physiotherapy
Clinical details: Stiff painful left shoulder for three months, loss of external rotation, frozen shoulder.
Red flags: No
Urgency: Routine
""")

msg("r6-under-18-iso", "brackenfield.mc@nhs.net", IMSK, "Physio referral", d(2026, 11, 5, 9), body="""\
Patient: Sam Okonjo-Reyes
Date of birth: 2009-01-15
NHS number: 999 078 6666
Registered practice: Brackenfield Medical Centre
Referral specialty: Physiotherapy
Clinical details: Osgood-Schlatter type pain both knees, plays rugby four times a week.
Red flags: no
Urgency: routine
""")

msg("t1-triage-late-beyond-5-weeks", "triage.test@nhs.net", IMSK, "RE: IMSK ref", d(2026, 11, 6, 15),
    refs=["r2", "LES-000999.lesbot"], body="""\
Outcome no. 2 - accepted into physiotherapy (tendinopathy class).

Patient booked into clinic on 22.12.2026 at 10:00. Previous episode discharged 01/10/2026.

IMSK triage

________________________________
From: IMSK <imsk.test@nhs.net>
Sent: 03 November 2026 09:31
Subject: IMSK referral for triage
Received: 03/11/2026 09:30
Triage due by: 05/11/2026
""")

msg("a1-training-promises", "dr.a.quimby@nhs.net", TRAINING, "Training LES bid", d(2026, 11, 9, 10), body="""\
Training of Practitioners LES - proposal

1) Name of applicant
Dr Anselm Quimby

2) Practice / locality
Harrowgate Lane Surgery (Z97101), Harrowgate locality

3) Written support of the Clinical Lead
Letter to follow from our clinical lead once she is back from leave.

4) Service redesign
Community vasectomy service for the locality under Investing In Your Health; equipment £3,200.

5) Practice Based Commissioning
Moves about 120 procedures a year out of the urology day-case list; £240 cheaper per procedure.

6) LDP
The Local Delivery Plan asks for planned care to move into community settings where it is safe to do so.

7) Financial Recovery Plan
Saves roughly £28,800 a year against the Financial Recovery Plan's planned care savings target.

8) Benefits
Patients wait 4 weeks instead of 30; the practice keeps the skills; the ICB saves money.

9) Training costs
TBC - the course provider has not published its fees yet.

Anselm
""")
