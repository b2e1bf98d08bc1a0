"""Writes tests/data/letter-styles/*.eml (fictional; NHS numbers 999, Modulus 11)."""
import io
from email.message import EmailMessage
from pathlib import Path
import docx

OUT = Path("/work/main/tests/data/letter-styles")
INBOX = "ashmeres.les@nhs.net"

def msg(sender, subject, body, date, cc=None, to=INBOX, html=None, mid=None):
    m = EmailMessage()
    m["From"] = sender; m["To"] = to
    if cc: m["Cc"] = cc
    m["Subject"] = subject; m["Date"] = date
    m["Message-ID"] = f"<{mid or subject.replace(' ', '.')[:30]}@nhs.net>"
    m.set_content(body)
    if html:
        m.add_alternative(html, subtype="html")
    return m

RE_LINE = """Hello

Letter below for the register, practice copied.

Thanks
Sam Okafor, secretary

-----
ASHDOWN GENERAL HOSPITAL - BONE CLINIC
Clinic: 09/09/2026        Typed: 30/09/2026

Re: Mr Thomas Edward QUILLAN, born 3.10.48, NHS no. 999 000 0018
      14 Wheelwright Row
      Kettlebrook
      AM6 2QT

Dear Dr Osei

Impression:
Osteoporosis with two vertebral fractures (T9, L2), alendronate not tolerated.

Recommendations:
He received his first injection of denosumab in clinic today. Please continue 60 mg every 6 months.
Review at each injection for falls, jaw symptoms and thigh pain.

Refer back if:
- a new fracture occurs, calcium is under 2.1, or stopping is considered.

Our advice is in keeping with the Ashdown and Meres bone pathway.

Mr Quillan has had his condition explained and knows his injections will now be given by his own GP surgery.

Best wishes
Dr A Lindgren
"""

ESTABLISHED = """Please find the letter below.

MERES VALLEY HOSPITALS - RHEUMATOLOGY
Date seen: 12/10/2026   Dictated 20/10/2026

Name:           Mrs Rosa Maria DELACROIX
D.O.B:          05/11/1944
NHS Number:     999-000-0026
Home address:
Flat 2
Gunmakers Yard
Meresfield AM2 6DX

GP: Dr Pryor, Ashdown Vayle Surgery

Problem list
1. Glucocorticoid-induced osteoporosis
2. Giant cell arteritis, in remission

Denosumab started 04/02/2023 in the day unit; she has had 7 doses, the most recent injection on 07/08/2026.

Management:
Transfer denosumab 60 mg 6-monthly to the practice. Monitor adjusted calcium before each dose.
Assessment interval - six-monthly review with each injection.

Fast track re-referral:
Contact us urgently if there is a new fracture, hypocalcaemia, jaw pain or a plan to stop.

Guidelines: as per local guidance.

Information given: explanation of osteoporosis and treatment; she understands her follow-up is now with her GP practice.

Dr K Mensah
"""

def write(name, m):
    (OUT / name).write_bytes(bytes(m))

write("re-line-clinic-today.eml", msg("agh.metabolicbone@nhs.net", "Bone clinic letter - denosumab", RE_LINE,
      "Thu, 01 Oct 2026 10:00:00 +0100", cc="Kettlebrook HC <kettlebrook.hc@nhs.net>"))
write("labelled-established-typo-practice.eml", msg("mvht.rheumatology.admin@nhs.net",
      "Denosumab transfer", ESTABLISHED, "Mon, 26 Oct 2026 09:00:00 +0000"))
write("practice-conflicts-with-cc.eml", msg("agh.metabolicbone@nhs.net", "Bone clinic letter - denosumab",
      RE_LINE.replace("Dear Dr Osei", "Highmere Practice, The Old Granary, Highmere\n\nDear Dr Fenwick"),
      "Thu, 01 Oct 2026 10:05:00 +0100", cc="kettlebrook.hc@nhs.net", mid="conflict"))
write("unknown-practice-no-cc.eml", msg("mvht.rheumatology.admin@nhs.net", "Denosumab transfer",
      ESTABLISHED.replace("Ashdown Vayle Surgery", "Brookside Family Practice"), "Mon, 26 Oct 2026 09:10:00 +0000",
      mid="unknown"))
write("deviation-unexplained.eml", msg("agh.metabolicbone@nhs.net", "Bone clinic letter - denosumab",
      RE_LINE.replace("Our advice is in keeping with the Ashdown and Meres bone pathway.",
                      "Note: this plan is contrary to the Ashdown and Meres bone pathway."),
      "Thu, 01 Oct 2026 10:10:00 +0100", cc="kettlebrook.hc@nhs.net", mid="deviation"))

# two letters as two Word documents in one email
def docx_bytes(text):
    d = docx.Document()
    for para in text.split("\n"):
        d.add_paragraph(para)
    b = io.BytesIO(); d.save(b); return b.getvalue()

one = ESTABLISHED.split("MERES VALLEY", 1)[1]
one = "MERES VALLEY" + one.replace("Ashdown Vayle Surgery", "Stonebridge Lane Surgery")
two = (one.replace("Mrs Rosa Maria DELACROIX", "Mr Henri Paul DELACROIX").replace("999-000-0026", "999 000 0034")
       .replace("05/11/1944", "19/01/1942").replace("07/08/2026", "14/08/2026").replace(" she ", " he ")
       .replace("her GP", "his GP"))
m = msg("mvht.rheumatology.admin@nhs.net", "Denosumab transfer letters (2)",
        "Two letters attached for Stonebridge Lane Surgery.\n\nRheumatology admin", "Mon, 26 Oct 2026 11:00:00 +0000",
        cc="stonebridgelane.admin@nhs.net", mid="twodocx")
for i, t in enumerate((one, two), 1):
    m.add_attachment(docx_bytes(t), maintype="application",
                     subtype="vnd.openxmlformats-officedocument.wordprocessingml.document", filename=f"letter{i}.docx")
write("two-letters-two-docx.eml", m)
print(sorted(p.name for p in OUT.iterdir()))
