"""Groundwork for referrals: NHS numbers and reading referral fields (no handler yet)."""
from datetime import date

from handlers.contract import nhs
from bot.mail.parse import parse
from handlers.referrals.reader import extract
from conftest import DATA


def test_nhs_number_check_digit():
    assert nhs.is_valid("9990356793") and nhs.is_valid("9998326338")
    assert not nhs.is_valid("9998323638")          # two digits swapped (sample 08)
    assert nhs.normalise("999-035-6793") == "9990356793" and nhs.normalise("999 035 679") is None
    assert nhs.display("9990356793") == "999 035 6793"
    # where the check digit would be 10, no number with that stem is valid
    stem = next(f"999000{i:03d}" for i in range(1000)
                if 11 - sum(int(d) * w for d, w in zip(f"999000{i:03d}", range(10, 1, -1))) % 11 == 10)
    assert not any(nhs.is_valid(stem + str(d)) for d in range(10))


def test_labelled_referral_form():
    (r,) = extract(parse((DATA / "07-msk-referral-plain.eml").read_bytes()).new_text)
    assert r.get("patient_name") == "Mr Desmond Arthur PRYCE"
    assert r.dob == date(1958, 6, 3) and r.nhs_number == "9990356793"
    assert r.ods("registered_practice") == "Z98106" and r.ods("receiving_practice") == "Z98101"
    assert r.get("joint").startswith("Right shoulder") and r.get("allergies") == "Penicillin (rash)"
    assert r.get("anticoagulants").startswith("None") and r.get("diabetes").startswith("Yes")
    assert r.problems(date(2026, 9, 14)) == []


def test_letter_in_a_forwarded_chain_with_a_bad_nhs_number():
    (r,) = extract(parse((DATA / "08-msk-referral-forwarded.eml").read_bytes()).text)
    assert r.get("patient_name") == "Ms Siobhán KEANE" and r.dob == date(1971, 11, 17)
    assert r.ods("registered_practice") == "Z98102"
    assert r.get("anticoagulants").startswith("apixaban")
    problems = dict(r.problems(date(2026, 9, 22)))
    assert "check digit" in problems["NHS number"] and "999 832 3638" in problems["NHS number"]


def test_several_patients_and_a_child():
    text = ("Receiving practice: Meresfield Medical Centre (Z98101)\n"
            "Patient name: A One\nDate of birth: 01/02/1950\nNHS number: 999 035 6793\nJoint: L knee\nReason: OA\n\n"
            "Patient name: B Two\nDate of birth: 01/02/2012\nNHS number: 9998326338\nJoint: R knee\nReason: pain\n")
    a, b = extract(text)
    assert a.ods("receiving_practice") == b.ods("receiving_practice") == "Z98101"
    assert a.problems(date(2026, 10, 1)) == []
    assert "under 18" in dict(b.problems(date(2026, 10, 1)))["date of birth"]
