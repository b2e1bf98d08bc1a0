"""The IMSK referral and training-application readers on mail written in many styles (issue 10):
tick boxes, tables, label-under-heading, prose letters, numbered headings; then the handlers end to
end on .eml files of our own (tests/data/imsk-styles/, written by its make.py)."""
from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import docx
import pytest

from handlers.imsk import reader as imskparse
from store.directory import import_csv
from handlers.contract.reading import forms
from conftest import Lesbot, text_of
from handlers.training import handler as training

STYLES = Path(__file__).resolve().parents[1] / "data" / "imsk-styles"
ON = date(2026, 11, 2)


# -- forms: tick boxes, layouts, sections, Word -------------------------------------------------
@pytest.mark.parametrize("value, chosen", [
    ("☐ Physiotherapy  ☒ Orthopaedics  ☐ Rheumatology", ["Orthopaedics"]),
    ("[x] Yes [ ] No", ["Yes"]), ("[ ] Urgent   [X] Routine", ["Routine"]),
    ("☐ Yes ☐ No", []), ("Routine", None), ("☑ Pain management ☐ Physio", ["Pain management"]),
])
def test_ticked_options(value, chosen):
    assert forms.ticked(value) == chosen


def test_an_unticked_word_never_reads_as_the_answer():
    text = forms.untick("Urgency | ☒ Routine ☐ Urgent\nRed flags present? ☐ Yes ☒ No")
    assert "Urgent" not in text and "Yes" not in text
    assert imskparse.urgency_of(text) == "routine"


LABELS = forms.LabelSet({"name": ["patient name", "name"], "dob": ["date of birth", "dob"],
                         "clinical": ["clinical details"], "address": ["address"]})


@pytest.mark.parametrize("text", [
    "Patient name: Mrs Iris Quill", "Patient name - Mrs Iris Quill", "PATIENT NAME    Mrs Iris Quill",
    "Patient name | Mrs Iris Quill", "• Patient name: Mrs Iris Quill", "Patient name\nMrs Iris Quill",
    "Patient name:\n\nMrs Iris Quill", "  Name\t Mrs Iris Quill",
])
def test_a_label_in_any_layout(text):
    assert [f.value for f in LABELS.find(text)["name"]] == ["Mrs Iris Quill"]


def test_an_outlook_cell_running_on_over_indented_lines_and_a_heading_with_indented_body():
    text = ("    Address                12 Orchard Way\n                           Tillbury\n"
            "    DOB                    01/02/1950\n"
            "Clinical details\n  Six weeks of pain,\n  worse at night.\n\nOther text")
    found = LABELS.find(text)
    assert found["address"][0].value == "12 Orchard Way, Tillbury"
    assert found["dob"][0].value == "01/02/1950"
    assert found["clinical"][0].value == "Six weeks of pain, worse at night."


def test_a_sentence_is_not_a_label():
    assert LABELS.find("Named on the letter as Iris.\nDate of the letter: 3/4/2026") == {}


def test_sections_numbered_and_headed():
    text = ("1. Name of applicant\nDr Una Field\n\n2. Practice: Harrowgate Lane Surgery\n"
            "Benefits: 40 fewer referrals a year\n7. A demonstration of how the proposal supports the FRP\n"
            "Saves £9,000.")
    secs = forms.sections(text, {"name": ["name of applicant"], "practice": ["practice"],
                                 "benefits": ["benefits"]})
    assert [(s.key, s.number, s.body) for s in secs] == [
        ("name", 1, "Dr Una Field"), ("practice", 2, "Harrowgate Lane Surgery"),
        ("benefits", None, "40 fewer referrals a year"), (None, 7, "Saves £9,000.")]


def test_word_in_reading_order_with_tables_and_legacy_check_boxes():
    d = docx.Document()
    d.add_paragraph("Costs")
    t = d.add_table(rows=1, cols=2)
    t.rows[0].cells[0].text, t.rows[0].cells[1].text = "Course", "£900"
    d.add_paragraph("Letter of support")
    p = d.add_paragraph("Urgent ")
    # a legacy FORMCHECKBOX, ticked: no glyph in the text, only <w:checkBox><w:checked/>
    from docx.oxml import parse_xml
    r = parse_xml('<w:r xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:fldChar '
                  'w:fldCharType="begin"><w:ffData><w:checkBox><w:checked/></w:checkBox></w:ffData></w:fldChar></w:r>')
    p._p.append(r)
    buf = io.BytesIO()
    d.save(buf)
    lines = forms.docx_text(buf.getvalue()).splitlines()
    assert lines[:3] == ["Costs", "Course | £900", "Letter of support"]
    assert lines[3].startswith("Urgent ☒")


def test_disclaimer_cut():
    assert forms.strip_disclaimer("Hello\n\n*************\nThis message may contain confidential x") == "Hello"


# -- the referral reader --------------------------------------------------------------------------
@pytest.mark.parametrize("written, dob", [
    ("DOB: 09.12.08", date(2008, 12, 9)), ("Born: 2nd April '79", date(1979, 4, 2)),
    ("Date of birth: 1994-06-15", date(1994, 6, 15)), ("D.O.B. 17-Aug-1983", date(1983, 8, 17)),
    ("Date of birth - 31st December 1945", date(1945, 12, 31)), ("DOB 3.10.48", date(1948, 10, 3)),
    ("DOB: 11th Sept 1969", date(1969, 9, 11)),
])
def test_dates_of_birth_in_many_spellings(written, dob):
    assert imskparse.read_referral(written, on=date(2026, 12, 10)).dob == dob


def test_nhs_numbers_dashed_plain_labelled_and_a_phone_that_passes_modulus_11():
    assert imskparse.read_referral("NHS: 999-590-8301").nhs_number == "9995908301"
    assert imskparse.read_referral("Re: Mr A B, NHS 9995908301").nhs_number == "9995908301"
    # 1632 960001 passes Modulus 11 but sits after 'Mob:' / 'Direct line'
    assert imskparse.read_referral("Patient: Mr A Bee\nMob: 1632 960001\nDirect line 9991600019").nhs_number is None
    r = imskparse.read_referral("NHS number: 999 590 8310")       # last two digits swapped
    assert [f for f, _ in r.problems(ON)].count("NHS number") == 1 and "check digit" in dict(r.problems(ON))[
        "NHS number"]


@pytest.mark.parametrize("text, flags", [
    ("Red flags: None identified", False), ("Red flags - N", False), ("Red flag symptoms: Yes - night pain", True),
    ("Red flags? No (no weight loss)", False), ("so I do not think there are any red flags here.", False),
    ("There are no red flags.", False), ("Red flags: none except new night pain", None),
    ("Red flags present? ☒ Yes ☐ No", True), ("Red flags present? ☐ Yes ☒ No", False),
    ("Red flag referrals: please also telephone us", None), ("Neurology normal, reflexes brisk.", None),
])
def test_red_flags_with_their_negation(text, flags):
    assert imskparse.read_referral(text).red_flags is flags


@pytest.mark.parametrize("text, specialty", [
    ("Specialty: ME/CFS", "rheumatology"), ("Referral specialty | ☐ Physiotherapy ☒ Orthopaedics", "orthopaedics"),
    ("Could you see him in your orthopaedic clinic please.", "orthopaedics"),
    ("Referral - Persistent MSK Pain Management", "pain management"),
    ("Referral To: Integrated MSK Service\nSpecialty: Rheumatology\nClinic Type: ME/CFS", "rheumatology"),
    ("Clinical details: tried physiotherapy exercises, no better", None),
])
def test_specialty_from_labels_ticks_and_prose_but_not_from_the_history(text, specialty):
    assert imskparse.read_referral(text).specialty == specialty


def test_urgency_the_first_word_wins_and_prose():
    assert imskparse.read_referral("Priority: Routine (soon please if possible)").urgency == "routine"
    assert imskparse.read_referral("This is a routine referral.").urgency == "routine"
    assert imskparse.read_referral("Urgency: not urgent").urgency == "routine"
    assert imskparse.read_referral("For anything urgent ring the practice.").urgency is None


def test_a_prose_letter_reads_whole():
    r = imskparse.read_referral((STYLES / "r1-prose-letter.eml").read_text().split("\n\n", 1)[1], on=ON)
    assert r.get("patient_name") == "Miss Ophelia MARCHBANK" and r.dob == date(1988, 7, 4)
    assert (r.nhs_number, r.specialty, r.red_flags, r.urgency) == ("9995908301", "rheumatology", False, "urgent")
    assert "ten weeks" in r.get("clinical")
    assert [f for f, _ in r.problems(ON)] == []


def test_a_self_referral_back_names_its_discharge():
    r = imskparse.read_referral("He self-referred back: discharged from physio on 20/11/2026.", on=date(2027, 1, 12))
    assert r.self_referral_back == date(2026, 11, 20)


# -- the triage team's words ------------------------------------------------------------------------
@pytest.mark.parametrize("text, decision", [
    ("Triage outcome: 7) Re-direct to secondary care", "secondary_care"), ("Outcome 4 - accept into rheumatology.",
                                                                           "rheumatology"),
    ("Decision: accept into pain management (outcome 5).", "pain_management"), ("Accept into physio.", "physiotherapy"),
    ("Outcome: 3 - will need x-rays first", "msk_assessment"), ("Triage decision: 6) Accept into ME/CFS", "mecfs"),
    ("1) Return back to GP - advice and management in primary care.", "return_to_gp"),
    ("Accepted back into physiotherapy as a follow-up.", "physiotherapy"),
])
def test_the_seven_decisions_by_number_and_words(text, decision):
    assert imskparse.read_decision(text)[0] == decision


@pytest.mark.parametrize("text, appt", [
    ("First appt offered: 13/01/27 14:00", date(2027, 1, 13)), ("Appt 14-Jan-2027 16:40", date(2027, 1, 14)),
    ("Discharged 20/11/2026. Follow-up appointment Tuesday 26/01/2027 08:40", date(2027, 1, 26)),
    ("Received 07/12/2026, due 09/12/2026.\nBooked for an assessment on 12th January 2027", date(2027, 1, 12)),
    ("Initial assessment with the OT on 12.01.2027 at 13:30", date(2027, 1, 12)),
])
def test_the_appointment_is_not_the_discharge_or_receipt_date(text, appt):
    assert imskparse.appointment(text, date(2026, 12, 10)) == appt


def test_transfer_last_and_new_appointment():
    text = ("Seen in physiotherapy on 06/01/2027 (first appointment). Transferred to rheumatology.\n"
            "Rheumatology appointment: Friday 22/01/2027 at 14:00.")
    assert imskparse.transfer_dates(text, date(2027, 1, 12)) == (date(2027, 1, 6), date(2027, 1, 22))


# -- training applications ----------------------------------------------------------------------------
def test_a_promise_is_not_the_item_and_the_numbering_gap_is_found():
    text = ("1. Name: Dr Una Field\n2. Practice: Harrowgate Lane Surgery\n"
            "3. Clinical Lead support: a letter of support from the Clinical Lead will follow.\n"
            "4. Service redesign: locality clinic, £2,000.\n5. Practice based commissioning: 90 cases, £50 each.\n"
            "6. LDP: supports the LDP's aim of care closer to home for the whole locality.\n"
            "8. Benefits: 90 fewer referrals.\n9. Training costs: course £1,000.")
    assert [e["field"] for e in training.missing_items(text)] == [
        "written support of the clinical lead", "support for the Financial Recovery Plan"]
    letter = "\n\nLetter of support\nAs Clinical Lead I fully support Dr Field's proposal."
    assert [e["field"] for e in training.missing_items(text + letter)] == ["support for the Financial Recovery Plan"]


def test_headings_copied_from_the_les_are_not_answers():
    text = "\n".join(f"{n}. {h}\n" for n, h in enumerate([
        "The name of the GPwSI and/or PwSI", "The name of practice / PbC Locality / Provider Organisation",
        "The written support of the proposal from the Clinical Lead of the practice / PbC Locality",
        "Details (including associated costs) of how the proposal directly supports Service Redesign",
        "Details (including associated costs) of how the proposal directly supports the development of Practice "
        "Based Commissioning", "A demonstration of how the proposal supports the LDP",
        "A demonstration of how the proposal supports the Financial Recovery Plans of the PCTs",
        "Quantify the benefits to Patients, the practice / PbC Locality and the PCT",
        "The inclusion of detailed costs of the training required and any other associated costs"], 1))
    assert len(training.missing_items(text)) == 9


# -- end to end on .eml files of our own ----------------------------------------------------------------
IMSK, TRAINING = "imsk.test@nhs.net", "training.test@nhs.net"
TRIAGE, LEAD, PANEL = "triage.test@nhs.net", "lead.test@nhs.net", "panel.test@nhs.net"


@pytest.fixture
def ibot(home):
    b = Lesbot(home, inbox=f"les.test@nhs.net,{IMSK},{TRAINING}", routes={IMSK: "imsk", TRAINING: "training"},
               imsk={"triage_team": TRIAGE, "service_lead": LEAD}, training={"panel": PANEL})
    import_csv(b.conn, (STYLES / "directory.csv").read_text())
    yield b
    b.close()


def mails(bot, to):
    return [o for o in bot.outbox() if o["to_addr"] == to]


def test_styles_end_to_end(ibot):
    r = ibot.ingest(STYLES / "r1-prose-letter.eml")
    assert r["outcome"] == "accepted", r["errors"]
    note = mails(ibot, TRIAGE)[-1]
    assert note["subject"].split("] ", 1)[1].startswith("URGENT")
    ack = text_of(mails(ibot, "dr.a.quimby@nhs.net")[-1]["raw"])
    assert "assumed: the referring practice" in ack and "MARCHBANK" not in ack     # echoed, nothing identifying

    r = ibot.ingest(STYLES / "r2-outlook-html-only.eml")
    assert r["outcome"] == "accepted", r["errors"]
    row = ibot.conn.execute("SELECT registered_code, specialty, urgency, red_flags FROM imsk_referrals "
                            "ORDER BY id DESC").fetchone()
    assert tuple(row) == ("Z97102", "physiotherapy", "routine", 0)          # 'Brackenfield MC', 'Non-urgent'

    r = ibot.ingest(STYLES / "r3-docx-ticks.eml")
    assert r["outcome"] == "accepted", r["errors"]
    note = text_of(mails(ibot, TRIAGE)[-1]["raw"])
    assert "URGENT" in note and "pain management" in note.lower()             # red flags [x] Yes, Routine ticked

    r = ibot.ingest(STYLES / "r4-phone-passes-mod11.eml")
    assert r["outcome"] == "rejected" and [e["field"] for e in r["errors"]] == ["NHS number"]

    r = ibot.ingest(STYLES / "r5-not-covered.eml")
    assert r["outcome"] == "rejected" and "not covered" in text_of(mails(ibot, "saltmarsh.hc@nhs.net")[-1]["raw"])

    r = ibot.ingest(STYLES / "r6-under-18-iso.eml")
    assert r["outcome"] == "rejected" and "under 18" in r["errors"][0]["problem"]

    # threaded by References only; late (due 05/11) and the appointment beyond 5 weeks (by 08/12)
    r = ibot.ingest(STYLES / "t1-triage-late-beyond-5-weeks.eml")
    assert (r["kind"], r["outcome"]) == ("imsk_triage", "accepted"), r["errors"]
    lead = text_of(mails(ibot, LEAD)[-1]["raw"])
    assert "05/11/2026" in lead and "08/12/2026" in lead
    assert "22/12/2026" in text_of(mails(ibot, "brackenfield.mc@nhs.net")[-1]["raw"])

    r = ibot.ingest(STYLES / "a1-training-promises.eml")
    assert r["outcome"] == "rejected"
    assert [e["field"] for e in r["errors"]] == ["written support of the clinical lead", "detailed training costs"]
    assert mails(ibot, PANEL) == []
