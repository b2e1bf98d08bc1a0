"""The reading layer for MSK inter-practice referrals (issue 10): patients, practices, negation,
referral letters in several styles, and outcomes - unit tests and whole messages of our own."""
import csv
from datetime import date
from pathlib import Path

import pytest

from handlers.contract.reading import negation, patient, practices
from handlers.referrals.outcome_reading import read_outcome, read_outcomes
from handlers.referrals.reader import extract
from conftest import DATA, at, text_of

STYLES = Path(__file__).resolve().parents[1] / "data" / "referral-styles"
KETTLEBROOK, MERESFIELD = "kettlebrook.hc@nhs.net", "ashmeres.meresfieldmc@nhs.net"


def directory() -> practices.Directory:
    rows = list(csv.DictReader((DATA / "directory.csv").open()))
    for r in rows:
        r["emails"] = r["emails"].split(";")
        r["services"] = [s for s in r["services"].split(";") if s]
    return practices.Directory(rows)


# -- patients ----------------------------------------------------------------------------------------
def test_nhs_numbers_in_every_spelling_and_phones_are_not():
    for written in ("999 100 0011", "999-100-0011", "9991000011"):
        assert patient.nhs_number(f"NHS No: {written}") == "9991000011"
    assert patient.nhs_number("Mobile: +44 9997700015") is None          # passes Modulus 11, still a phone
    assert patient.nhs_number("Tel 9997700015") is None
    assert patient.nhs_number("Name: X\nNHS: 999 100 0011\nTel: 999 770 0015") == "9991000011"
    bad = patient.invalid_nhs_numbers("NHS number: 999 100 0012")
    assert [c.digits for c in bad] == ["9991000012"] and not bad[0].valid
    assert patient.invalid_nhs_numbers("Order ref 999 100 0012") == []      # no label: not a claim to be one
    assert patient.nhs_label_empty("Name: A\nNHS No:\nDOB: 01/01/1950")


@pytest.mark.parametrize("written,expected", [
    ("DOB 3rd October 1948", date(1948, 10, 3)), ("D.O.B: 17.4.52", date(1952, 4, 17)),
    ("Date of Birth: 1951-07-09", date(1951, 7, 9)), ("born 14/03/1952", date(1952, 3, 14)),
    ("Date of birth:   14-Feb-1957   (69y)", date(1957, 2, 14)), ("DOB 02/11/46", date(1946, 11, 2)),
    ("DOB: 05/07/1955", date(1955, 7, 5)),                      # day first: 5 July
])
def test_dates_of_birth(written, expected):
    assert patient.date_of_birth(written, on=date(2026, 12, 1)) == expected


def test_no_date_of_birth_from_an_age_or_a_clinic_date():
    assert patient.date_of_birth("Mr T, 64 yrs, seen 03/12/2026", on=date(2026, 12, 5)) is None


def test_patient_names():
    assert patient.patient_name("Surname/Forename: CLEGG / Desmond") == "Desmond CLEGG"
    assert patient.patient_name("Patient name: TEMPLE, Alfred") == "Alfred TEMPLE"
    assert patient.patient_name("Re: Mrs Patricia Anne KEMBLE, DOB 14/03/1948") == "Mrs Patricia Anne KEMBLE"
    assert patient.patient_name("Could you see Mrs Ellison (DOB 1/2/50) please") == "Mrs Ellison"
    assert patient.patient_name("Could you see Kieran Hollis (DOB 10/12/2000)") == "Kieran Hollis"


# -- negation ----------------------------------------------------------------------------------------
def test_negations_are_a_recorded_no():
    said = negation.from_prose("She is not on anticoagulants, has no known drug allergies and is non-diabetic.")
    assert {k: v.answer for k, v in said.items()} == {"anticoagulants": "No", "allergies": "No", "diabetes": "No"}
    assert negation.value("anticoagulants", "nil").answer == "No"
    assert negation.value("anticoagulants", "not on anticoagulants").answer == "No"
    assert negation.value("anticoagulants", "On warfarin, INR 2.5").answer == "Yes"
    assert negation.value("diabetes", "☐ Yes ☒ No").answer == "No"
    assert negation.value("allergies", "Penicillin (rash)").answer == "Yes"
    assert negation.from_prose("Allergic to ibuprofen.")["allergies"].answer == "Yes"


# -- practices ---------------------------------------------------------------------------------------
def test_practices_by_code_name_fuzzy_and_role():
    d = directory()
    found = practices.find_in_text("Could Kettlebrook HC please see her? She is registered with "
                                   "Ashdown Vale Surgery (Z98102).", d)
    roles = {(m.ods_code, m.role) for m in found}
    assert ("Z98103", "receiving") in roles and ("Z98102", "registered") in roles
    assert practices.match_name("Meresfeild Medical Center", d)[0][0] == "Z98101"     # typos
    assert practices.match_name("Fallowcombe", d)[0][0] == "Z98105"
    # a street of the same name is an address, not the practice
    assert not [m for m in practices.find_in_text("Address: 12 Highmere Practice Road", d)]
    assert practices.unknown_ods_codes("Receiving practice (ODS): Z98131", d) == ["Z98131"]


def test_ticked_box_not_the_first_listed():
    d = directory()
    form = "Receiving practice (tick one)\n☐ Meresfield Medical Centre\n☒ Kettlebrook Health Centre\n☐ Fallowcombe Surgery"
    ticked = [m for m in practices.find_in_text(form, d) if m.how == "ticked"]
    assert [m.ods_code for m in ticked] == ["Z98103"] and ticked[0].role == "receiving"


def test_headers_through_the_directory():
    d = directory()
    got = practices.in_headers(d, to=["LES <ashmeres.les@nhs.net>"], cc=["Dr K <lorraine.bishop@nhs.net>"],
                               sender="martin.coles12@nhs.net")
    assert {(m.ods_code, m.how) for m in got} == {("Z98103", "cc"), ("Z98102", "from")}


# -- referrals in several styles ---------------------------------------------------------------------------
def _body(name: str) -> tuple[str, str]:
    from bot.mail.parse import parse
    p = parse((STYLES / name).read_bytes())
    return p.text, p.subject


def test_prose_letter_is_read_whole():
    text, subject = _body("prose-letter-cc-receiving.eml")
    (r,) = extract(text, date(2026, 10, 5), subject)
    assert r.get("patient_name") == "Mrs Rosalind Ellison" and r.dob == date(1952, 3, 14)
    assert r.nhs_number == "9991000011"                     # not the signature's +44 mobile
    assert r.get("address").startswith("4 Orchard Rise") and r.get("telephone") == "07700 900123"
    assert r.get("joint").lower() == "left shoulder" and "painful arc" in r.get("reason")
    extras = r.extras()
    assert extras["anticoagulants"].startswith("No") and extras["allergies"].startswith("No")
    assert extras["diabetes"].startswith("No") and extras["previous_injections"] == "not stated"
    assert r.problems(date(2026, 10, 5)) == []


def test_a_table_with_a_column_per_patient():
    text, subject = _body("column-table-two-patients.eml")
    a, b = extract(text, date(2026, 10, 5), subject)
    assert (a.get("patient_name"), b.get("patient_name")) == ("Mr Alfred TEMPLE", "Mrs Doris TEMPLE")
    assert (a.nhs_number, b.nhs_number) == ("9991000038", "9991000046")
    assert (a.dob, b.dob) == (date(1941, 2, 2), date(1942, 6, 30))
    assert (a.get("joint"), b.get("joint")) == ("R knee", "L hip")
    assert a.extras()["anticoagulants"].startswith("No") and b.extras()["anticoagulants"].startswith("Yes")


def test_outcomes_one_line_and_several():
    o = read_outcome("Mr Temple had his R knee injected on 20/10.", on=date(2026, 10, 22))
    assert (o.kind, o.seen_on) == ("injection", date(2026, 10, 20))
    o = read_outcome("Seen 20/10/2026, no injection given - consultation only.", on=date(2026, 10, 22))
    assert o.kind == "no_injection"
    assert read_outcome("She did not attend on 21/10/2026.").kind == "did_not_attend"
    people = [(1, "Mr Alfred TEMPLE", "9991000038"), (2, "Mrs Doris TEMPLE", "9991000046")]
    got = read_outcomes("Mr and Mrs Temple were seen on 20/10/2026.\nMr Temple - knee injected.\n"
                        "Mrs Temple - examined, no injection needed, consultation only.", people, date(2026, 10, 22))
    assert got[1].kind == "injection" and got[2].kind == "no_injection"
    assert got[1].seen_on == got[2].seen_on == date(2026, 10, 20)


# -- whole messages through the pipeline ----------------------------------------------------------------
def test_prose_referral_goes_to_the_practice_copied_in(bot):
    r = bot.ingest(STYLES / "prose-letter-cc-receiving.eml", received_at=at(2026, 10, 5, 9, 0))
    assert r["outcome"] == "accepted", r["errors"]
    forward = [o for o in bot.outbox() if o["to_addr"] == KETTLEBROOK]
    assert len(forward) == 1
    body = text_of(forward[0]["raw"])
    assert "999 100 0011" in body and "Anticoagulants: No" in body and "not stated" in body
    ack = text_of([o for o in bot.outbox() if o["to_addr"] == "martin.coles12@nhs.net"][0]["raw"])
    assert "Kettlebrook Health Centre" in ack


def test_unthreaded_outcome_table_records_each_patient(bot):
    r = bot.ingest(STYLES / "column-table-two-patients.eml", received_at=at(2026, 10, 5, 10, 0))
    assert r["outcome"] == "accepted", r["errors"]
    r = bot.ingest(STYLES / "outcome-table-unthreaded.eml", received_at=at(2026, 10, 22, 16, 0))
    assert r["outcome"] == "accepted", r["errors"]
    rows = bot.conn.execute("SELECT nhs_number, outcome, payable FROM referrals ORDER BY id").fetchall()
    assert [(x["outcome"], x["payable"]) for x in rows] == [("injection", 0), ("no_injection", 1)]
    reply = text_of([o for o in bot.outbox() if o["to_addr"] == "priya.raghunathan3@nhs.net"][-1]["raw"])
    assert "£43.47" in reply and "Minor Surgery" in reply
