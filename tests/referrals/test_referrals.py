"""MSK inter-practice referrals: real .eml in, references, checks, forwarding, outcomes, returns."""
from __future__ import annotations

import email
import io
import json

import docx
import pytest

from conftest import DATA, at, make_msg, run_cli, text_of
from handlers.contract.references import reference

OSEI = "kwame.osei4@nhs.net"                  # Stonebridge Lane Z98106 (denosumab only)
MERESFIELD = "ashmeres.meresfieldmc@nhs.net"   # Z98101: msk-injection, receives referrals
KETTLEBROOK = "kettlebrook.hc@nhs.net"         # Z98103: msk-injection
ANJALI = "anjali.mehta22@nhs.net"              # Ashdown Vale Z98102


def case_ref(bot, result):
    """The reference of the case the SQLite file records for this message."""
    return reference(bot.row(result["id"])["case_id"])


def sent(bot, to=None):
    return [o for o in bot.outbox() if to is None or o["to_addr"] == to]


def reply_to(out_row, sender, body, subject=None, **kw):
    """A practice replying to something lesbot sent, as Outlook does."""
    m = make_msg(sender=sender, subject=subject or "RE: " + out_row["subject"], body=body, **kw)
    m["In-Reply-To"] = out_row["msgid"] if out_row["msgid"].startswith("<") else f"<{out_row['msgid']}>"
    return m


FORM = """Dear colleagues,

Referring practice: Stonebridge Lane Surgery (Z98106)
Receiving practice: Meresfield Medical Centre (Z98101)

Patient name: {name}
Date of birth: {dob}
NHS number: {nhs}
Address: 1 Test Row, Stonebridge AM6 3LP
Telephone: 01632 960000
Registered practice: {registered}
Joint / site: Left knee
Clinical reason: Osteoarthritis flare with effusion, not settled with analgesia and physiotherapy.
Anticoagulants: none
Allergies: none known
Diabetes: no
Previous injections: none
"""


def form(name="Mr Test PATIENT", dob="03/06/1958", nhs="999 035 6793",
         registered="Stonebridge Lane Surgery (Z98106)", **kw):
    return FORM.format(name=name, dob=dob, nhs=nhs, registered=registered, **kw)


def referral(body, sender=OSEI, subject="MSK joint injection referral", **kw):
    return make_msg(sender=sender, subject=subject, body=body, **kw)


# -- accepted, forwarded, outcome ----------------------------------------------------------
def test_plain_referral_is_forwarded_and_the_outcome_becomes_payable_activity(bot, home):
    r = bot.ingest("07-msk-referral-plain.eml")
    case = r["reference"]
    assert (r["kind"], r["outcome"], case) == ("referral", "accepted", case_ref(bot, r))
    ack, = sent(bot, OSEI)
    fwd, = sent(bot, MERESFIELD)
    assert ack["subject"] == f"[{case}] Referral received"
    assert fwd["subject"] == f"[{case}] Inter-practice referral: MSK joint injection consultation"
    body = text_of(fwd["raw"])
    for need in ("Mr Desmond Arthur PRYCE", "03/06/1958", "999 035 6793", "14 Tanners Row", "01632 960358",
                 "Right shoulder", "Penicillin", "aspirin", "type 2", "February 2025", "temporary resident",
                 "reply to this email", "consultation only"):
        assert need in body, need
    # nothing identifying in any subject
    for o in bot.outbox():
        assert "PRYCE" not in o["subject"].upper() and "6793" not in o["subject"]
    assert "ending 6793" in text_of(ack["raw"]) and "PRYCE" not in text_of(ack["raw"])
    ref = bot.conn.execute("SELECT * FROM referrals").fetchone()
    assert (ref["state"], ref["nhs_number"], ref["receiving_code"], ref["registered_code"]) == \
        ("forwarded", "9990356793", "Z98101", "Z98106")
    assert ref["outcome_due"] == "2026-10-12"        # 28 days after 14 September: for the scheduler

    # the receiving practice answers the forwarded email (sample 09's words)
    sample = email.message_from_bytes((DATA / "09-msk-outcome-reply-no-injection.eml").read_bytes())
    words = next(p for p in sample.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
    r = bot.ingest(reply_to(fwd, MERESFIELD, words), received_at=at(2026, 9, 30, 13, 6))
    assert (r["kind"], r["outcome"], r["reference"]) == ("referral_outcome", "accepted", case)
    ref = bot.conn.execute("SELECT * FROM referrals").fetchone()
    assert (ref["outcome"], ref["seen_on"], ref["payable"], ref["quarter"]) == ("no_injection", "2026-09-29", 1,
                                                                                "2026Q3")
    thanks = sent(bot, MERESFIELD)[-1]
    assert "payable under this LES" in text_of(thanks["raw"])
    told = sent(bot, OSEI)[-1]
    assert told["subject"] == f"[{case}] Outcome of your referral"
    assert "consultation only, no injection, seen on 29/09/2026" in text_of(told["raw"])

    # the same outcome again changes nothing; a different one goes to a person
    r = bot.ingest(reply_to(fwd, MERESFIELD, words + "\n(resent)"), received_at=at(2026, 9, 30, 14, 0))
    assert r["outcome"] == "accepted" and "already recorded" in text_of(sent(bot, MERESFIELD)[-1]["raw"])
    r = bot.ingest(reply_to(fwd, MERESFIELD, "Correction: seen 29/09/2026, injection was given."),
                   received_at=at(2026, 9, 30, 15, 0))
    assert r["outcome"] == "quarantined" and "contract team" in r["errors"][0]["problem"]
    assert bot.conn.execute("SELECT outcome FROM referrals").fetchone()[0] == "no_injection"

    # monitoring return and audit, as CSV
    out = run_cli(home, "activity", "--service", "msk-injection", "--quarter", "2026Q3").stdout.splitlines()
    assert out[0].startswith("quarter,ods_code,practice,referrals_received,attended,injection_given,no_injection")
    row = next(x for x in out if ",Z98101," in x)
    assert row.startswith("2026Q3,Z98101,Meresfield Medical Centre,1,1,0,1,0,0,1,43.47,")
    audit = run_cli(home, "audit", "--year", "2026").stdout
    assert "2026,Z98101,Meresfield Medical Centre,1,1,0,1,0,1" in audit
    assert "PRYCE" not in audit and "6793" not in audit
    listed = [json.loads(x) for x in run_cli(home, "referrals", "list", "--json").stdout.splitlines()]
    assert listed[0]["reference"] == case and listed[0]["payable"] is True
    shown = json.loads(run_cli(home, "referrals", "show", case).stdout)
    assert shown["nhs_number"] == "999 035 6793" and len(shown["sent"]) >= 3


def test_forwarded_referral_with_a_bad_nhs_number_is_completed_by_a_reply_with_the_outcome(bot):
    r = bot.ingest("08-msk-referral-forwarded.eml")
    assert (r["kind"], r["outcome"]) == ("referral", "rejected")
    assert "check digit" in r["errors"][0]["problem"]
    case = r["reference"]
    assert case == case_ref(bot, r)
    ask, = sent(bot)
    assert ask["to_addr"] == KETTLEBROOK and ask["subject"] == f"[{case}] Referral needs attention"
    assert "Reply to this email with the missing details" in text_of(ask["raw"])
    ref = bot.conn.execute("SELECT * FROM referrals").fetchone()
    # forwarded by the receiving practice: the referrer is the practice in the quoted From:
    assert (ref["state"], ref["referrer_code"], ref["receiving_code"]) == ("incomplete", "Z98102", "Z98103")

    sample = email.message_from_bytes((DATA / "10-msk-outcome-reply-injection-given.eml").read_bytes())
    words = next(p for p in sample.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
    r = bot.ingest(reply_to(ask, KETTLEBROOK, words), received_at=at(2026, 10, 13, 12, 20))
    assert (r["kind"], r["outcome"], r["reference"]) == ("referral_outcome", "accepted", case)
    ref = bot.conn.execute("SELECT * FROM referrals").fetchone()
    assert (ref["nhs_number"], ref["outcome"], ref["seen_on"], ref["payable"]) == \
        ("9998326338", "injection", "2026-10-12", 0)
    lines = text_of(sent(bot, KETTLEBROOK)[-1]["raw"])
    assert "now complete" in lines and "injection given" in lines
    copy = [o for o in sent(bot, ANJALI)]
    assert [o["subject"] for o in copy] == [f"[{case}] Outcome of your referral"]


def test_one_email_several_patients_gets_one_reference_each(bot):
    body = form() + "\n" + form(name="Mrs Second PERSON", dob="1 Feb 1950", nhs="9998326338")
    r = bot.ingest(referral(body), received_at=at(2026, 10, 5, 9, 0))
    assert r["outcome"] == "accepted"
    ids = [x[0] for x in bot.conn.execute("SELECT id FROM referrals ORDER BY id")]
    # the first patient takes the message's own case; the second a number reserved past it
    assert r["reference"] == case_ref(bot, r) == f"LES-{ids[0]:06d}" and len(ids) == 2 and ids[1] > ids[0]
    fwds = sent(bot, MERESFIELD)
    assert sorted(o["case_id"] for o in fwds) == ids
    assert {o["subject"][:12] for o in fwds} == {f"[LES-{i:06d}]" for i in ids}
    ack = text_of(sent(bot, OSEI)[0]["raw"])
    assert f"LES-{ids[0]:06d}" in ack and f"LES-{ids[1]:06d}" in ack
    # the next message still gets a number of its own
    r = bot.ingest(make_msg(sender=OSEI, subject="Question", body="When is the next training day?"))
    assert int(r["reference"][4:]) not in ids
    # each forward's reply reaches its own referral
    second = next(o for o in fwds if o["case_id"] == ids[1])
    r = bot.ingest(reply_to(second, MERESFIELD, "Seen on 08/10/2026: consultation only, no injection given."),
                   received_at=at(2026, 10, 9, 9, 0))
    assert r["reference"] == f"LES-{ids[1]:06d}"
    got = dict(bot.conn.execute("SELECT id, outcome FROM referrals").fetchall())
    assert got == {ids[0]: None, ids[1]: "no_injection"}
    # the receiving practice may also write with the reference in the subject
    r = bot.ingest(make_msg(sender=MERESFIELD, subject=f"Outcome [LES-{ids[0]:06d}]",
                            body="Patient did not attend on 07/10/2026."), received_at=at(2026, 10, 9, 10, 0))
    assert r["reference"] == f"LES-{ids[0]:06d}"
    assert bot.conn.execute("SELECT outcome FROM referrals WHERE id=?", (ids[0],)).fetchone()[0] == "did_not_attend"


# -- checks ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dob", ["03/10/1960", "3 Oct 1960", "1960-10-03", "3rd October 1960"])
def test_dates_are_read_day_first_in_every_usual_spelling(bot, dob):
    r = bot.ingest(referral(form(dob=dob)), received_at=at(2026, 10, 5, 9, 0))
    assert r["outcome"] == "accepted"
    patient = json.loads(bot.conn.execute("SELECT patient FROM referrals").fetchone()[0])
    from handlers.contract import dates
    assert dates.parse(patient["dob"]).isoformat() == "1960-10-03"


@pytest.mark.parametrize("change, field, words", [
    ({"dob": "31/02/1960"}, "date of birth", "not a real date"),
    ({"dob": "12/13/1960"}, "date of birth", "not a real date"),
    ({"dob": "06/10/2008"}, "date of birth", "under 18"),
    ({"nhs": "999 035 6739"}, "NHS number", "check digit"),
    ({"nhs": "999 035 679"}, "NHS number", "not 10 digits"),
    ({"nhs": ""}, "NHS number", "missing"),
])
def test_patient_checks_each_name_the_problem_and_the_fix(bot, change, field, words):
    body = form(**change)
    if change.get("nhs") == "":
        body = body.replace("NHS number: \n", "")
    r = bot.ingest(referral(body), received_at=at(2026, 10, 5, 9, 0))
    assert r["outcome"] == "rejected"
    hit = [e for e in r["errors"] if e["field"].endswith(field)]
    assert hit and words in hit[0]["problem"], r["errors"]
    assert bot.conn.execute("SELECT state FROM referrals").fetchone()[0] == "incomplete"
    assert sent(bot, MERESFIELD) == []          # nothing passed on while incomplete


def test_an_adult_on_the_referral_date_is_18_on_their_birthday(bot):
    ok = bot.ingest(referral(form(dob="05/10/2008")), received_at=at(2026, 10, 5, 9, 0))
    assert ok["outcome"] == "accepted"


def test_receiving_practice_must_be_known_and_signed_up(bot):
    body = form().replace("Meresfield Medical Centre (Z98101)", "Ashdown Vale Surgery (Z98102)")
    r = bot.ingest(referral(body), received_at=at(2026, 10, 5, 9, 0))
    assert r["outcome"] == "rejected"
    assert "has not signed up" in r["errors"][0]["problem"] and "Meresfield" in r["errors"][0]["problem"]
    body = form().replace("Meresfield Medical Centre (Z98101)", "Nowhere Surgery")
    r = bot.ingest(referral(body, sender="tracey.holt7@nhs.net"), received_at=at(2026, 10, 5, 9, 0))
    assert "is not a practice lesbot knows" in r["errors"][0]["problem"]


def test_a_patient_registered_with_the_receiving_practice_is_not_this_les(bot):
    r = bot.ingest(referral(form(registered="Meresfield Medical Centre (Z98101)")), received_at=at(2026, 10, 5, 9))
    assert r["outcome"] == "rejected"
    assert "registered with Meresfield Medical Centre" in r["errors"][-1]["problem"]
    assert "Minor Surgery DES" in text_of(sent(bot)[0]["raw"])
    assert bot.conn.execute("SELECT state FROM referrals").fetchone()[0] == "not_eligible"


def test_a_sender_who_is_not_the_registered_practice_must_say_why(bot):
    body = form(registered="Kettlebrook Health Centre (Z98103)")
    r = bot.ingest(referral(body), received_at=at(2026, 10, 5, 9, 0))
    assert r["outcome"] == "rejected" and "Say why" in r["errors"][0]["problem"]
    r = bot.ingest(referral(body.replace("Dear colleagues,", "Dear colleagues, we are referring on behalf of "
                                         "Kettlebrook Health Centre while their GP is away.") + "\n"),
                   received_at=at(2026, 10, 5, 9, 5))
    assert r["outcome"] == "accepted"


def test_a_reply_supplying_the_missing_item_completes_the_referral(bot):
    r = bot.ingest(referral(form(nhs="")), received_at=at(2026, 10, 5, 9, 0))
    assert r["outcome"] == "rejected"
    ask = sent(bot, OSEI)[0]
    r = bot.ingest(reply_to(ask, OSEI, "Sorry - NHS number: 999 035 6793\n\nKwame"), received_at=at(2026, 10, 5, 11))
    assert (r["kind"], r["outcome"]) == ("referral_update", "accepted")
    assert bot.conn.execute("SELECT state, nhs_number FROM referrals").fetchone()[:] == ("forwarded", "9990356793")
    fwd, = sent(bot, MERESFIELD)
    assert fwd["subject"].startswith(f"{r['reference'].join('[]')} Inter-practice referral")
    # a reply that still lacks it says so again
    r = bot.ingest(referral(form(dob="", nhs="9998326338")), received_at=at(2026, 10, 6, 9, 0))
    assert r["outcome"] == "rejected"
    ask = sent(bot, OSEI)[-1]
    r = bot.ingest(reply_to(ask, OSEI, "Will send it later."), received_at=at(2026, 10, 6, 10, 0))
    assert r["outcome"] == "rejected" and "date of birth" in r["errors"][0]["field"]


def test_the_same_patient_referred_twice_is_not_doubled(bot):
    first = bot.ingest(referral(form()), received_at=at(2026, 10, 5, 9, 0))
    assert first["reference"] == case_ref(bot, first)
    r = bot.ingest(referral(form() + "\nResending in case the first did not arrive."),
                   received_at=at(2026, 10, 5, 10, 0))
    assert bot.conn.execute("SELECT count(*) FROM referrals").fetchone()[0] == 1
    assert f"already recorded as {first['reference']}" in text_of(sent(bot, OSEI)[-1]["raw"])
    assert len(sent(bot, MERESFIELD)) == 1 and r["outcome"] == "rejected"


def test_html_only_referral(bot):
    html = "<html><body><p>Dear colleagues,</p><table>" + "".join(
        f"<tr><td>{k}:</td><td>{v}</td></tr>" for k, v in [
            ("Referring practice", "Stonebridge Lane Surgery (Z98106)"),
            ("Receiving practice", "Meresfield Medical Centre (Z98101)"),
            ("Patient name", "Mr Html ONLY"), ("Date of birth", "03/06/1958"), ("NHS number", "999 035 6793"),
            ("Registered practice", "Stonebridge Lane Surgery (Z98106)"), ("Joint / site", "Right hip"),
            ("Clinical reason", "Trochanteric bursitis, 3 months"), ("Telephone", "01632 960000")]) + \
        "</table></body></html>"
    m = make_msg(sender=OSEI, subject="Joint injection referral", body="x")
    m.set_content(html, subtype="html")
    r = bot.ingest(m, received_at=at(2026, 10, 5, 9, 0))
    assert r["outcome"] == "accepted", r["errors"]
    assert "Mr Html ONLY" in text_of(sent(bot, MERESFIELD)[0]["raw"])


def test_referral_in_an_attached_word_form(bot):
    d = docx.Document()
    d.add_paragraph("Inter-practice referral for MSK steroid joint injection")
    t = d.add_table(rows=0, cols=2)
    for k, v in [("Referring practice", "Stonebridge Lane Surgery (Z98106)"),
                 ("Receiving practice", "Meresfield Medical Centre (Z98101)"),
                 ("Patient name", "Ms Word FORM"), ("Date of birth", "1958-06-03"), ("NHS number", "9990356793"),
                 ("Registered practice", "Stonebridge Lane Surgery (Z98106)"), ("Joint / site", "Left shoulder"),
                 ("Clinical reason", "Frozen shoulder, 4 months"), ("Address", "2 Test Row, AM6 3LP")]:
        c = t.add_row().cells
        c[0].text, c[1].text = k, v
    buf = io.BytesIO()
    d.save(buf)
    m = make_msg(sender=OSEI, subject="Referral", body="Please see the attached joint injection referral form.")
    m.add_attachment(buf.getvalue(), maintype="application",
                     subtype="vnd.openxmlformats-officedocument.wordprocessingml.document", filename="referral.docx")
    r = bot.ingest(m, received_at=at(2026, 10, 5, 9, 0))
    assert r["outcome"] == "accepted", r["errors"]
    assert "Ms Word FORM" in text_of(sent(bot, MERESFIELD)[0]["raw"])


def test_outcome_only_from_the_receiving_practice_and_with_a_date(bot):
    bot.ingest("07-msk-referral-plain.eml")
    fwd, = sent(bot, MERESFIELD)
    r = bot.ingest(reply_to(fwd, MERESFIELD, "Outcome: consultation only, no injection."),
                   received_at=at(2026, 9, 30, 9, 0))
    assert r["outcome"] == "partially_accepted" or r["outcome"] == "rejected"
    assert any("date seen" in e["field"] for e in r["errors"])
    r = bot.ingest(reply_to(fwd, MERESFIELD, "Seen 01/11/2026, no injection given."), received_at=at(2026, 9, 30, 9))
    assert any("in the future" in e["problem"] for e in r["errors"])
    # the referrer cannot record the receiving practice's outcome
    ack = sent(bot, OSEI)[0]
    bot.ingest(reply_to(ack, OSEI, "Seen 29/09/2026, no injection given."), received_at=at(2026, 9, 30, 10))
    assert bot.conn.execute("SELECT outcome FROM referrals").fetchone()[0] is None


# -- the practices' own returns ---------------------------------------------------------------
def test_quarterly_monitoring_return_is_recorded_compared_and_never_paid(bot):
    bot.ingest("07-msk-referral-plain.eml")
    fwd, = sent(bot, MERESFIELD)
    bot.ingest(reply_to(fwd, MERESFIELD, "Seen 29/09/2026: consultation only - no injection."),
               received_at=at(2026, 9, 30, 9, 0))
    r = bot.ingest(make_msg(sender=MERESFIELD, subject="Quarterly monitoring return Q3 2026",
                            body="Referrals received: 1\nAttended: 2\nNo injection: 2\nInjection given: 0\n"),
                   received_at=at(2026, 10, 2, 9, 0))
    assert (r["kind"], r["outcome"]) == ("monitoring_return", "accepted")
    text = text_of(sent(bot, MERESFIELD)[-1]["raw"])
    assert "attended: you said 2; lesbot recorded 1 - differs" in text
    assert "referrals received: you said 1; lesbot recorded 1\n" in text
    row = bot.conn.execute("SELECT * FROM returns").fetchone()
    assert row["period"] == "2026Q3" and json.loads(row["differences"])["attended"] == {"stated": 2, "recorded": 1}
    assert bot.conn.execute("SELECT count(*) FROM claims").fetchone()[0] == 0
    r = bot.ingest(make_msg(sender=MERESFIELD, subject="Yearly audit return 2026",
                            body="Patients attending: 1\nNo injection: 1\n"), received_at=at(2026, 12, 2, 9, 0))
    assert (r["kind"], r["outcome"]) == ("audit_return", "accepted")
    r = bot.ingest(make_msg(sender=MERESFIELD, subject="Monitoring return", body="All fine this quarter."),
                   received_at=at(2026, 10, 2, 9, 0))
    assert r["outcome"] == "rejected" and {e["field"] for e in r["errors"]} == {"period", "figures"}


def pdf_of(lines: list[str]) -> bytes:
    """A one-page text PDF, written out by hand (as a scanner-free form export would be)."""
    def esc(s):
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    stream = "BT /F1 10 Tf 14 TL 50 800 Td " + " ".join(f"({esc(x)}) Tj T*" for x in lines) + " ET"
    objs = ["<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
            "/Resources << /Font << /F1 5 0 R >> >> >>",
            f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream",
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = b"%PDF-1.4\n", []
    for i, o in enumerate(objs, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{o}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n{0:010d} 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def test_referral_in_an_attached_pdf_form_with_labels_above_values(bot):
    pdf = pdf_of(["MSK joint injection referral form", "Referred to", "Meresfield Medical Centre (Z98101)",
                  "Name", "Mr Pdf FORM", "D.O.B.", "3 Jun 1958", "NHS No.", "999-035-6793",
                  "GP practice", "Stonebridge Lane Surgery (Z98106)", "Site", "Right knee",
                  "Reason for referral", "Osteoarthritis, flare for 6 weeks", "Contact number", "07700 900123"])
    m = make_msg(sender=OSEI, subject="Referral", body="Joint injection referral attached.")
    m.add_attachment(pdf, maintype="application", subtype="pdf", filename="Pryce referral.pdf")
    r = bot.ingest(m, received_at=at(2026, 10, 5, 9, 0))
    assert r["outcome"] == "accepted", r["errors"]
    body = text_of(sent(bot, MERESFIELD)[0]["raw"])
    assert "Mr Pdf FORM" in body and "999 035 6793" in body and "Right knee" in body


def test_labels_written_other_ways(bot):
    body = ("Referred to: Meresfield Medical Centre (Z98101)\n\n- Name: Mrs Other LABELS\n- DOB: 1958-06-03\n"
            "- NHS No: 9990356793\n- Patient's GP practice: Stonebridge Lane Surgery (Z98106)\n"
            "- Joint(s): both knees\n- Reason: bilateral knee OA\n- Anticoagulation: warfarin\n- Allergy: nil\n"
            "- Diabetic: no\n- Previous joint injections: R knee 03/2026\n- Tel: 01632 960000\n")
    r = bot.ingest(referral(body, subject="Steroid injection referral"), received_at=at(2026, 10, 5, 9, 0))
    assert r["outcome"] == "accepted", r["errors"]
    clinical = json.loads(bot.conn.execute("SELECT clinical FROM referrals").fetchone()[0])
    assert clinical["anticoagulants"] == "warfarin" and clinical["joint"] == "both knees"
    assert clinical["previous_injections"] == "R knee 03/2026"
