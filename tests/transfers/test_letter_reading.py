"""Denosumab transfer letters and register updates written in other hands (issue 10): the clinic
letter layout (bot/reading/clinicletter.py), the specification's items (bot/transferparse.py), the
practice, several letters in one email, and practices' doses, leavers, deaths and events.
Test mail is in tests/data/letter-styles/ (written by tests/data/letter-styles/make.py)."""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from handlers.transfers import reader as tp
from handlers.contract.reading import clinicletter as cl
from conftest import Lesbot, at, make_msg, text_of

STYLES = Path(__file__).resolve().parents[1] / "data" / "letter-styles"
GOVERNANCE = "governance.lead@example.nhs.uk"
KETTLEBROOK, STONEBRIDGE, ASHDOWN_VALE = "kettlebrook.hc@nhs.net", "stonebridgelane.admin@nhs.net", \
    "ashdownvale.surgery@nhs.net"


def style(name: str) -> bytes:
    return (STYLES / name).read_bytes()


def body_of(name: str) -> str:
    import email
    m = email.message_from_bytes(style(name))
    part = next(p for p in m.walk() if p.get_content_type() == "text/plain")
    return part.get_payload(decode=True).decode()


def register(bot):
    return bot.conn.execute("SELECT * FROM register ORDER BY id").fetchall()


@pytest.fixture
def gbot(home):
    b = Lesbot(home, clinical_governance=GOVERNANCE)
    yield b
    b.close()


# -- the layout -----------------------------------------------------------------------------------
def test_re_line_gives_name_dob_nhs_and_the_address_block_under_it():
    p = cl.patient(body_of("re-line-clinic-today.eml"))
    assert (p.name, p.dob_raw, p.nhs_raw) == ("Mr Thomas Edward QUILLAN", "3.10.48", "9990000018")
    assert p.address == "14 Wheelwright Row, Kettlebrook, AM6 2QT"


def test_labelled_fields_with_the_address_under_its_label():
    p = cl.patient(body_of("labelled-established-typo-practice.eml"))
    assert (p.name, p.dob_raw, p.nhs_raw) == ("Mrs Rosa Maria DELACROIX", "05/11/1944", "9990000026")
    assert p.address == "Flat 2, Gunmakers Yard, Meresfield AM2 6DX"


def test_a_pasted_table_and_a_label_alone_on_its_line():
    text = ("Patient          Mr Ivo NANCARROW\n\nDate of birth    7.1.39\n\nNHS number\n999 000 0042\n\n"
            "Address          3 Rope Walk\n                 Kettlebrook AM6 1RW\n")
    p = cl.patient(text)
    assert (p.name, p.dob_raw, p.nhs_raw, p.address) == ("Mr Ivo NANCARROW", "7.1.39", "9990000042",
                                                         "3 Rope Walk, Kettlebrook AM6 1RW")


def test_a_phone_number_is_not_an_nhs_number_and_words_after_the_label_are_no_number():
    assert cl.nhs_numbers("Tel: 999 000 0018") == []
    assert cl.nhs_numbers("NHS No: awaited - hospital no. RX44120") == [("", True, 0)]


@pytest.mark.parametrize("heading, key", [
    ("Impression", "diagnosis"), ("Problems:", "diagnosis"), ("Diagnoses:", "diagnosis"),
    ("Recommendations:", "plan"), ("Actions for GP:", "plan"), ("Management plan", "plan"),
    ("Re-refer if:", "threshold"), ("Please refer back urgently if", "threshold"),
    ("Fast-track re-referral criteria (email us, marked URGENT):", "threshold"),
    ("Information given to patient:", "information"), ("Patient informed", "information"),
])
def test_headings_by_synonym(heading, key):
    text = f"{heading}\nsome words that belong to this section here\n\nYours sincerely\n"
    assert cl.sections(text).get(key) == "some words that belong to this section here"


def test_today_is_the_clinic_date_not_the_typed_or_sent_date():
    d = cl.dose_dates(body_of("re-line-clinic-today.eml"), 27, fallback=date(2026, 10, 1))
    assert (d.letter_date, d.first_dose, d.initiated) == (date(2026, 9, 9), date(2026, 9, 9), date(2026, 9, 9))


def test_day_first_dates_and_the_last_dose_of_an_established_patient():
    text = ("Date of clinic: 05/11/2026   Date typed: 11/12/2026\nDXA 09/10/2026; L3 fracture 12/08/2026.\n"
            "Denosumab initiated 03/02/2022 - 9 doses given here, the last on 06/05/2026.\n")
    d = cl.dose_dates(text, 27)
    assert (d.letter_date, d.initiated, d.latest_dose) == (date(2026, 11, 5), date(2022, 2, 3), date(2026, 5, 6))


def test_a_list_of_doses_and_a_distractor_limit():
    text = ("Denosumab initiated 14/05/2024.\nDoses given: 2024-05-14, 2024-11-11, 2025-05-20.\n"
            "Do not let it run beyond 7 months (20/12/2025).\n")
    d = cl.dose_dates(text, 27)
    assert d.latest_dose == date(2025, 5, 20)


def test_that_day_and_a_date_without_a_year():
    d = cl.dose_dates("Denosumab was initiated on 2nd March 2026 - the first dose was given that day.", 27)
    assert d.first_dose == date(2026, 3, 2)
    d = cl.dose_dates("Her first injection was given on 24th Sept.", 27, fallback=date(2026, 10, 1))
    assert d.first_dose == date(2026, 9, 24)


def test_practice_names_fuzzy_but_a_different_name_is_not_matched():
    directory = [("Z1", "St Ebba's Surgery", set()), ("Z2", "The Old Chapel Surgery", set()),
                 ("Z3", "Riverside Orthopaedic Centre", set())]
    assert cl.practices_in("The General Practitioner\nSt. Ebbas Surgery\n12 Abbey Walk", directory) == ["Z1"]
    assert cl.practices_in("Dr R Meredith\nOld Chapel Surgery\nChapel Street", directory) == ["Z2"]
    assert cl.practices_in("GP: Dr P Venn, Riverside Medical Group, 9 Tannery Lane", directory) == []
    assert cl.practice_mentions("GP: Dr P Venn, Riverside Medical Group, 9 Tannery Lane") == ["Riverside Medical Group"]


# -- the specification's items ---------------------------------------------------------------------
def test_deviation_needs_an_explanation_only_when_the_letter_deviates():
    base = body_of("re-line-clinic-today.eml")
    on = date(2026, 10, 1)
    assert not tp.read(base, on).deviates
    lt = tp.read(base.replace("in keeping with", "outside"), on)
    assert lt.deviates and "deviation from local guidelines" in [f for f, _ in tp.problems(lt, on)]
    lt = tp.read(base.replace("in keeping with the Ashdown and Meres bone pathway.",
                              "outside the Ashdown and Meres bone pathway, because zoledronic acid caused an "
                              "acute kidney injury in 2024 and oral bisphosphonates were not tolerated."), on)
    assert lt.deviates and tp.problems(lt, on) == []


def test_a_note_that_is_not_a_letter_lists_every_missing_item():
    text = "Please add to the register.\nName: Mrs Ada Pell\nDOB: 12/09/1941\nNHS: 999 000 0050\n" \
           "First dose given today 15/12/2026 in clinic. Next due June 2027.\n"
    fields = {f for f, _ in tp.problems(tp.read(text, date(2026, 12, 15)), date(2026, 12, 15))}
    assert {"address", "diagnosis", "management plan", "assessment interval", "fast-track re-referral",
            "information given to the patient"} <= fields


def test_a_cc_to_the_patient_is_not_information_given():
    base = body_of("re-line-clinic-today.eml")
    text = base.replace("Mr Quillan has had his condition explained and knows his injections will now be given by "
                        "his own GP surgery.", "cc Mr T Quillan (patient)\n   Kettlebrook Health Centre")
    fields = [f for f, _ in tp.problems(tp.read(text, date(2026, 10, 1)), date(2026, 10, 1))]
    assert fields == ["information given to the patient"]


# -- through the pipeline --------------------------------------------------------------------------
def test_letter_with_re_line_and_clinic_today_is_registered_due_from_the_clinic_date(bot):
    r = bot.ingest(style("re-line-clinic-today.eml"), received_at=at(2026, 10, 1, 10))
    assert (r["kind"], r["outcome"]) == ("denosumab_transfer", "accepted"), r["errors"]
    (e,) = register(bot)
    assert (e["nhs_number"], e["practice_code"], e["first_dose_on"], e["next_due"]) == \
        ("9990000018", "Z98103", "2026-09-09", "2027-03-09")
    note, = [o for o in bot.outbox() if o["to_addr"] == KETTLEBROOK]
    assert "Next injection due: 09/03/2027" in text_of(note["raw"])


def test_established_patient_due_from_the_last_dose_and_a_misspelt_practice(bot):
    r = bot.ingest(style("labelled-established-typo-practice.eml"), received_at=at(2026, 10, 26, 9))
    assert r["outcome"] == "accepted", r["errors"]
    (e,) = register(bot)
    assert (e["practice_code"], e["initiated_on"], e["last_dose_on"], e["next_due"]) == \
        ("Z98102", "2023-02-04", "2026-08-07", "2027-02-07")
    assert any(o["to_addr"] == ASHDOWN_VALE for o in bot.outbox())


@pytest.mark.parametrize("name, words", [
    ("practice-conflicts-with-cc.eml", "copied to Kettlebrook"),
    ("unknown-practice-no-cc.eml", "Brookside Family Practice"),
])
def test_uncertain_practice_is_held_and_the_hospital_told(bot, name, words):
    r = bot.ingest(style(name), received_at=at(2026, 10, 26, 10))
    assert r["outcome"] == "quarantined" and words in r["errors"][0]["problem"], r["errors"]
    assert register(bot) == []
    replies = [o for o in bot.outbox()]
    assert len(replies) == 1 and "held" in replies[0]["subject"]


def test_deviation_without_explanation_is_rejected(bot):
    r = bot.ingest(style("deviation-unexplained.eml"), received_at=at(2026, 10, 1, 10))
    assert r["outcome"] == "rejected"
    assert [e["field"] for e in r["errors"]] == ["deviation from local guidelines"]


def test_two_letters_in_two_attachments_are_two_patients(bot):
    r = bot.ingest(style("two-letters-two-docx.eml"), received_at=at(2026, 10, 26, 11))
    assert r["outcome"] == "accepted", r["errors"]
    rows = register(bot)
    assert [(x["nhs_number"], x["next_due"]) for x in rows] == [("9990000026", "2027-02-07"),
                                                               ("9990000034", "2027-02-14")]
    notes = [o for o in bot.outbox() if o["to_addr"] == STONEBRIDGE]
    assert len(notes) == 2
    ack, = [o for o in bot.outbox() if o["to_addr"] == "mvht.rheumatology.admin@nhs.net"]
    assert "ending 0026" in text_of(ack["raw"]) and "ending 0034" in text_of(ack["raw"])


def test_husband_and_wife_at_one_address_are_two_patients(bot):
    one = body_of("re-line-clinic-today.eml")
    two = one.replace("Mr Thomas Edward QUILLAN, born 3.10.48, NHS no. 999 000 0018",
                      "Mrs Edith May QUILLAN, born 9.4.50, NHS no. 999 000 0069").replace(" his ", " her ")
    for n, body in enumerate((one, two)):
        r = bot.ingest(make_msg(sender="agh.metabolicbone@nhs.net", subject="Bone clinic letter - denosumab",
                                body=body, extra={"Cc": KETTLEBROOK}), received_at=at(2026, 10, 1, 10, 3 * n))
        assert r["outcome"] == "accepted", r["errors"]
    assert [x["nhs_number"] for x in register(bot)] == ["9990000018", "9990000069"]


def test_the_same_letter_resent_makes_no_second_entry_nor_notice(bot):
    bot.ingest(style("re-line-clinic-today.eml"), received_at=at(2026, 10, 1, 10))
    again = make_msg(sender="agh.metabolicbone@nhs.net", subject="RESEND: Bone clinic letter",
                     body="Resending in case it did not arrive.\n\n" + body_of("re-line-clinic-today.eml"),
                     extra={"Cc": KETTLEBROOK})
    r = bot.ingest(again, received_at=at(2026, 10, 5, 10))
    assert r["outcome"] in ("accepted", "duplicate") and len(register(bot)) == 1
    assert len([o for o in bot.outbox() if o["to_addr"] == KETTLEBROOK]) == 1


# -- practices write about their patients --------------------------------------------------------
@pytest.fixture
def onreg(gbot):
    gbot.ingest(style("re-line-clinic-today.eml"), received_at=at(2026, 10, 1, 10))
    return gbot


def update(bot, body, when, sender=KETTLEBROOK, subject="denosumab"):
    return bot.ingest(make_msg(sender=sender, subject=subject, body=body), received_at=when)


def test_dose_given_today_counts_from_the_day_received_and_the_reply_says_the_new_due_date(onreg):
    r = update(onreg, "Dmab given today to 9990000018", at(2027, 3, 8, 15), subject="dmab")
    assert (r["kind"], r["outcome"]) == ("denosumab_dose", "accepted"), r["errors"]
    assert register(onreg)[0]["next_due"] == "2027-09-08"
    assert "08/09/2027" in text_of(onreg.outbox()[-1]["raw"])


def test_yesterday_with_a_two_digit_year_and_a_table_with_a_dob_column(onreg):
    r = update(onreg, "Mr Quillan (999 000 0018) had his denosumab yesterday, 07/03/27.", at(2027, 3, 8, 9))
    assert r["outcome"] == "accepted" and register(onreg)[0]["last_dose_on"] == "2027-03-07"
    table = ("NHS number\tName\tDOB\tDate given\n999 000 0018\tQUILLAN, Thomas\t03/10/1948\t06/09/2027\n"
             "999 000 0077\tPELL, Ada\t12/09/1941\t07/09/2027\n")
    r = update(onreg, "Denosumab injections this month:\n" + table, at(2027, 9, 10, 9))
    assert r["outcome"] == "partially_accepted"
    assert register(onreg)[0]["last_dose_on"] == "2027-09-06"
    reply = text_of(onreg.outbox()[-1]["raw"])
    assert "999 000 0077" in reply and "not on any practice's denosumab register" in reply


@pytest.mark.parametrize("body, status", [
    ("Please remove Mr Quillan (NHS 999 000 0018) from our denosumab register - deducted from our list "
     "on 02/11/2026 after moving out of the area.", "left"),
    ("The consultant wants him to STOP denosumab; please take him off our register. NHS 999 000 0018, "
     "letter dated 02/11/2026.", "stopped"),
])
def test_leavers_and_stops_end_recalls(onreg, body, status):
    r = update(onreg, body, at(2026, 11, 3, 9))
    assert r["outcome"] == "accepted", r["errors"]
    e = register(onreg)[0]
    assert (e["status"], e["status_on"], e["next_due"]) == (status, "2026-11-02", None)


def test_an_admission_over_a_weekend_is_within_72_hours_and_goes_to_governance(onreg):
    r = update(onreg, "Mr Quillan, NHS 999 000 0018, DOB 03/10/1948, was admitted as an emergency on Saturday "
                      "07/11/2026 with pneumonia.", at(2026, 11, 9, 9, 5))
    assert (r["kind"], r["outcome"]) == ("untoward_event", "accepted")
    ev = onreg.conn.execute("SELECT * FROM events").fetchone()
    assert (ev["event_on"], ev["late"]) == ("2026-11-07", 0)
    gov, = [o for o in onreg.outbox() if o["to_addr"] == GOVERNANCE]
    assert "Kettlebrook Health Centre" in text_of(gov["raw"])


def test_a_death_reported_late_is_flagged(onreg):
    r = update(onreg, "Sadly Mr Quillan (NHS 999 000 0018, DOB 03/10/1948) died on 20/10/2026.",
               at(2026, 10, 30, 9))
    assert r["outcome"] == "accepted"
    ev = onreg.conn.execute("SELECT * FROM events").fetchone()
    assert (ev["kind"], ev["event_on"], ev["late"]) == ("death", "2026-10-20", 1)
    assert register(onreg)[0]["status"] == "died"
    assert json.loads(register(onreg)[0]["patient"])["name"] == "Mr Thomas Edward QUILLAN"


def test_a_claim_listing_patients_on_no_register_is_left_to_the_claims_handler(onreg):
    r = update(onreg, "Denosumab injections we gave in October, not claimed yet:\n"
                      "1. Mrs A Pell  NHS no 999 000 0077  given 06/10/2026\nTotal 1 injections.", at(2026, 11, 3, 9))
    assert r["kind"] not in ("denosumab_dose", "register_update", "untoward_event")
