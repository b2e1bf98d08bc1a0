"""Denosumab: hospital transfer letters to the practice register, doses, stops, untoward events,
and claims reconciled against what lesbot recorded."""
from __future__ import annotations

import email
import json
import re
from datetime import date

import pytest

from bot.mail.intake import store
from conftest import DATA, Lesbot, at, make_msg, run_cli, sample_07_seen_without_injection, text_of
from handlers.contract.references import reference

AGH = "agh.metabolicbone@nhs.net"                 # hospital Z98801
MVHT = "mvht.rheumatology.admin@nhs.net"          # hospital Z98802
HIGHMERE = "highmere.practice@nhs.net"            # Z98104, denosumab
MERESFIELD = "ashmeres.meresfieldmc@nhs.net"      # Z98101
PRIYA = "priya.raghunathan3@nhs.net"              # Z98101
GOVERNANCE = "governance.lead@example.nhs.uk"


def sample_body(name: str) -> str:
    m = email.message_from_bytes((DATA / name).read_bytes())
    part = next(p for p in m.walk() if p.get_content_type() == "text/plain")
    return part.get_payload(decode=True).decode().replace("\r\n", "\n")


LETTER = sample_body("11-denosumab-letter-in-body.eml")


def letter(body=LETTER, sender=AGH, subject="Denosumab transfer of care", **kw):
    return make_msg(sender=sender, subject=subject, body=body, **kw)


def register(bot):
    return bot.conn.execute("SELECT * FROM register ORDER BY id").fetchall()


@pytest.fixture
def gbot(home):
    b = Lesbot(home, clinical_governance=GOVERNANCE)
    yield b
    b.close()


# -- transfer letters ----------------------------------------------------------------------------
def test_letter_in_the_body_puts_the_patient_on_the_practice_register(bot):
    r = bot.ingest("11-denosumab-letter-in-body.eml")
    case = reference(bot.row(r["id"])["case_id"])
    assert (r["kind"], r["outcome"], r["reference"]) == ("denosumab_transfer", "accepted", case)
    (e,) = register(bot)
    assert e["case_id"] == bot.row(r["id"])["case_id"]
    assert (e["nhs_number"], e["practice_code"], e["hospital_code"], e["first_dose_on"], e["next_due"],
            e["status"]) == ("9999609058", "Z98104", "Z98801", "2026-08-18", "2027-02-18", "active")
    assert [tuple(d) for d in bot.conn.execute("SELECT given_on, source FROM doses")] == [("2026-08-18", "hospital")]
    ack = [o for o in bot.outbox() if o["to_addr"] == AGH]
    to_practice = [o for o in bot.outbox() if o["to_addr"] == HIGHMERE]
    assert len(ack) == 1 and len(to_practice) == 1
    body = text_of(to_practice[0]["raw"])
    for need in ("Next injection due: 18/02/2027", "Mrs Gillian Rosemary HARTWELL", "999 960 9058", "22/04/1952",
                 "Postmenopausal osteoporosis", "Therapy initiated: 18/08/2026", "Assessment interval",
                 "URGENT", "zoledronic acid", "700139004"):
        assert need in body, need
    assert "HARTWELL" not in text_of(ack[0]["raw"]) and "ending 9058" in text_of(ack[0]["raw"])
    for o in bot.outbox():
        assert "Hartwell" not in o["subject"] and "9058" not in o["subject"]


def test_letter_as_a_pdf_attachment(bot):
    r = bot.ingest("12-denosumab-letter-pdf-attachment.eml")
    assert r["outcome"] == "accepted", r["errors"]
    (e,) = register(bot)
    assert (e["nhs_number"], e["practice_code"], e["next_due"]) == ("9991255680", "Z98101", "2027-04-02")
    note = next(o for o in bot.outbox() if o["to_addr"] == MERESFIELD)
    m = email.message_from_bytes(note["raw"])
    names = [p.get_filename() for p in m.walk() if p.get_filename()]
    assert names == ["transfer-letter.pdf"]          # not the hospital's file name, which carried its number
    assert "MV4417203" not in note["subject"] and "[secure]" not in note["subject"]


def test_the_same_letter_twice_never_makes_a_second_entry(bot):
    bot.ingest("11-denosumab-letter-in-body.eml")
    again = bot.ingest("11-denosumab-letter-in-body.eml")
    assert again["outcome"] == "duplicate"
    # sent again as a new email (new Message-ID, a line added)
    r = bot.ingest(letter(LETTER + "\nResent as requested."), received_at=at(2026, 9, 28, 9, 0))
    assert (r["outcome"], r["errors"][0]["problem"]) == ("accepted", "already on the register")
    assert len(register(bot)) == 1
    assert "no second entry" in text_of(bot.outbox()[-1]["raw"])


def test_two_letters_for_one_patient_in_one_batch_make_one_entry(bot):
    """The worker decides a batch before committing it: the patient key keeps them apart."""
    for sender, when in ((AGH, at(2026, 9, 24, 16)), (MVHT, at(2026, 9, 24, 16, 1))):
        raw = letter(sender=sender).as_bytes()
        store(bot.conn, raw, "file", when, None, None, None)
    results = bot.pipeline.process_pending()
    assert [r["outcome"] for r in results] == ["accepted", "accepted"]
    assert results[1]["errors"][0]["problem"] == "already on the register"
    assert len(register(bot)) == 1


@pytest.mark.parametrize("cut, field", [
    (r"Recommendation / management plan.*?(?=Threshold)", "management plan"),
    (r"- Assessment interval:[^\n]*\n", "assessment interval"),
    (r"Threshold for fast-track re-referral.*?(?=Where this advice)", "fast-track re-referral"),
    (r"Denosumab therapy initiated: 18/08/2026\n", "date therapy initiated"),
    (r"First dose:[^\n]*\n", "first dose"),
    (r"Information given to the patient.*?(?=Yours sincerely)", "information given to the patient"),
    (r"Diagnosis\n.*?(?=Denosumab therapy)", "diagnosis"),
    (r"Address:[^\n]*\n", "address"),
])
def test_each_required_item_missing_is_named(bot, cut, field):
    body = re.sub(cut, "", LETTER, flags=re.S)
    assert body != LETTER
    r = bot.ingest(letter(body), received_at=at(2026, 9, 24, 16, 0))
    assert r["outcome"] == "rejected"
    assert field in [e["field"] for e in r["errors"]], r["errors"]
    assert register(bot) == []


def test_all_problems_in_one_reply(bot):
    body = LETTER.replace("999 960 9058", "999 960 9085").replace("22/04/1952", "31/04/1952")
    body = re.sub(r"Where this advice differs from local guidelines\n.*?(?=Information given)",
                  "Where this advice differs from local guidelines\nSee clinic notes.\n\n", body, flags=re.S)
    r = bot.ingest(letter(body), received_at=at(2026, 9, 24, 16, 0))
    fields = {e["field"] for e in r["errors"]}
    assert {"NHS number", "date of birth", "deviation from local guidelines"} <= fields
    replies = [o for o in bot.outbox() if o["to_addr"] == AGH]
    assert len(replies) == 1
    text = text_of(replies[0]["raw"])
    assert "check digit" in text and "not a real date" in text and "does not explain why" in text


def test_no_deviation_needs_no_explanation(bot):
    body = re.sub(r"Where this advice differs from local guidelines\n.*?(?=Information given)", "", LETTER,
                  flags=re.S)
    r = bot.ingest(letter(body), received_at=at(2026, 9, 24, 16, 0))
    assert r["outcome"] == "accepted", r["errors"]


def test_practice_named_only_by_name_and_address(bot):
    body = LETTER.replace("Highmere Practice (Z98104)", "Highmere Practice")
    r = bot.ingest(letter(body), received_at=at(2026, 9, 24, 16, 0))
    assert r["outcome"] == "accepted" and register(bot)[0]["practice_code"] == "Z98104"


def test_unknown_practice_is_held_for_a_person_and_the_hospital_told(bot, home):
    body = LETTER.replace("Highmere Practice (Z98104)", "Lowmere Surgery").replace("Highmere", "Lowmere")
    r = bot.ingest(letter(body), received_at=at(2026, 9, 24, 16, 0))
    assert (r["outcome"], r["kind"]) == ("quarantined", "denosumab_transfer")
    assert "no practice in the letter matches the directory" in r["errors"][0]["problem"]
    told, = bot.outbox()
    assert told["to_addr"] == AGH and "held for the contract team" in told["subject"]
    assert register(bot) == []
    # the contract team adds the practice, then releases the letter
    bot.conn.execute("INSERT INTO orgs (ods_code, name, kind, services) VALUES "
                     "('Z98107', 'Lowmere Surgery', 'practice', 'denosumab')")
    bot.conn.execute("INSERT INTO org_emails (email, ods_code) VALUES ('lowmere@nhs.net', 'Z98107')")
    run_cli(home, "quarantine", "release", str(r["id"]))
    (e,) = register(bot)
    assert e["practice_code"] == "Z98107" and e["case_id"] == r["id"]
    assert any(o["to_addr"] == "lowmere@nhs.net" for o in bot.outbox())


def test_two_practices_named_is_held(bot):
    body = LETTER.replace("The Old Granary", "Registered with Kettlebrook Health Centre (Z98103)\nThe Old Granary")
    body = body.replace("Highmere Practice (Z98104)\n", "Highmere Practice (Z98104)\n", 1)
    r = bot.ingest(letter(body), received_at=at(2026, 9, 24, 16, 0))
    assert r["outcome"] == "quarantined" and "more than one practice" in r["errors"][0]["problem"]


# -- practices report doses, stops, events ----------------------------------------------------------
@pytest.fixture
def registered(gbot):
    gbot.ingest("11-denosumab-letter-in-body.eml")
    return gbot


def dose(text, sender=HIGHMERE, subject="Denosumab injection given", when=at(2027, 2, 19, 10, 0), **kw):
    return make_msg(sender=sender, subject=subject, body=text, **kw), when


def test_a_dose_moves_the_next_due_date_on_six_months(registered, home):
    bot = registered
    m, when = dose("Denosumab 60 mg given to NHS 999 960 9058 on 18/02/2027.")
    r = bot.ingest(m, received_at=when)
    assert (r["kind"], r["outcome"]) == ("denosumab_dose", "accepted")
    e = register(bot)[0]
    assert (e["last_dose_on"], e["next_due"]) == ("2027-02-18", "2027-08-18")
    assert "next due 18/08/2027" in text_of(bot.outbox()[-1]["raw"])
    # the same dose again, a future one, one before the last, someone else's patient
    for text, words in [("Given 999 960 9058 on 18/02/2027", "already recorded"),
                        ("Given 999 960 9058 on 18/03/2027", "in the future"),
                        ("Given 999 960 9058 on 01/01/2027", "before the last recorded dose"),
                        ("Denosumab given 999 035 6793 on 10/02/2027", "not on any practice's")]:
        m, when = dose(text)
        r = bot.ingest(m, received_at=when)
        assert r["outcome"] == "rejected" and words in r["errors"][0]["problem"], (text, r["errors"])
    m, when = dose("Denosumab given to NHS 999 960 9058 on 18/08/2027.", sender=PRIYA, when=at(2027, 8, 19))
    r = bot.ingest(m, received_at=when)
    assert "not on your practice's denosumab register" in r["errors"][0]["problem"]
    rows = [json.loads(x) for x in run_cli(home, "register", "list", "--practice", "Z98104", "--json").stdout.splitlines()]
    assert rows[0]["first_dose"] == "2026-08-18" and rows[0]["later_doses"] == ["2027-02-18"]
    assert rows[0]["next_due"] == "2027-08-18"


def test_overdue_and_due_before(registered, home):
    rows = [json.loads(x) for x in run_cli(home, "register", "list", "--due-before", "2027-03-01", "--json")
            .stdout.splitlines()]
    assert len(rows) == 1 and rows[0]["overdue"] is (date.today().isoformat() > "2027-02-18")
    assert run_cli(home, "register", "list", "--due-before", "01/01/2027").stdout == ""


@pytest.mark.parametrize("text, status", [
    ("Mrs Hartwell (NHS 999 960 9058) has left the practice as of 01/12/2026. Denosumab recall please stop.", "left"),
    ("Please note the patient NHS 999 960 9058 has stopped denosumab treatment on 01/12/2026.", "stopped"),
])
def test_left_or_stopped_ends_recalls_and_keeps_history(registered, status, text):
    bot = registered
    m, _ = dose(text, subject="Denosumab register")
    r = bot.ingest(m, received_at=at(2026, 12, 2, 9, 0))
    assert r["outcome"] == "accepted", r["errors"]
    e = register(bot)[0]
    assert (e["status"], e["next_due"], e["status_on"]) == (status, None, "2026-12-01")
    assert bot.conn.execute("SELECT count(*) FROM doses").fetchone()[0] == 1


def test_a_death_is_an_untoward_event_forwarded_to_governance_and_stops_recalls(registered, home):
    bot = registered
    m, _ = dose("Sadly the patient NHS 999 960 9058 died on 20/11/2026 after an emergency admission.",
                subject="Denosumab patient")
    r = bot.ingest(m, received_at=at(2026, 11, 21, 9, 0))
    assert (r["kind"], r["outcome"]) == ("untoward_event", "accepted")
    ev = bot.conn.execute("SELECT * FROM events").fetchone()
    assert (ev["kind"], ev["event_on"], ev["late"], ev["forwarded_to"]) == ("death", "2026-11-20", 0, GOVERNANCE)
    assert register(bot)[0]["status"] == "died"
    gov, = [o for o in bot.outbox() if o["to_addr"] == GOVERNANCE]
    assert "999 960 9058" in text_of(gov["raw"]) and "9058" not in gov["subject"]
    assert "LATE" not in run_cli(home, "events").stdout


def test_an_event_reported_after_72_hours_is_flagged(registered, home):
    bot = registered
    m, _ = dose("Significant adverse event: NHS 999 960 9058 had a severe injection site reaction on "
                "10/11/2026 after denosumab.", subject="Adverse event")
    r = bot.ingest(m, received_at=at(2026, 11, 14, 9, 0))      # 81 hours after the end of 10 November
    ev = bot.conn.execute("SELECT * FROM events").fetchone()
    assert ev["late"] == 1 and ev["kind"] == "significant adverse event"
    assert "more than 72 hours" in text_of([o for o in bot.outbox() if o["to_addr"] == HIGHMERE][-1]["raw"])
    assert "LATE" in run_cli(home, "events").stdout
    assert register(bot)[0]["status"] == "active" and r["outcome"] == "accepted"


def test_an_event_without_a_governance_address_is_kept_for_the_contract_team(bot):
    bot.ingest("11-denosumab-letter-in-body.eml")
    m, _ = dose("Emergency admission of NHS 999 960 9058 on 01/12/2026 (fall).", subject="Denosumab patient")
    r = bot.ingest(m, received_at=at(2026, 12, 2, 9, 0))
    assert r["outcome"] == "accepted"
    assert bot.conn.execute("SELECT forwarded_to FROM events").fetchone()[0] is None
    assert "the contract team will pass it" in text_of(bot.outbox()[-1]["raw"])


# -- reconciliation -------------------------------------------------------------------------------
def test_claims_are_reconciled_with_recorded_activity(bot, home):
    bot.ingest("11-denosumab-letter-in-body.eml")        # Highmere: one patient, dose due 18/02/2027
    claim = make_msg(sender="joanne.ferris2@nhs.net", subject="LES claim",
                     body="Practice: Z98104\nMonth: February 2027\nDenosumab: 3\n")
    r = bot.ingest(claim, received_at=at(2027, 3, 5, 9, 0))
    assert r["outcome"] == "accepted"
    flags = [json.loads(x) for x in run_cli(home, "reconcile", "--as-of", "2027-03-05", "--json").stdout.splitlines()]
    kinds = {(f["kind"], f["ods_code"], f["period"]) for f in flags}
    assert ("implausible_claim", "Z98104", "2027-02") in kinds
    # a recorded no-injection consultation never claimed is listed with its last claim day
    sample_07_seen_without_injection(bot)
    flags = [json.loads(x) for x in run_cli(home, "reconcile", "--as-of", "2026-10-01", "--json").stdout.splitlines()]
    un = [f for f in flags if f["kind"] == "unclaimed"]
    assert un and un[0]["ods_code"] == "Z98101" and "claim by 31/12/2026" in un[0]["detail"]
    # more claimed than recorded for a quarter is flagged, not refused
    r = bot.ingest(make_msg(sender=PRIYA, subject="LES claim",
                            body="Practice: Z98101\nMonth: September 2026\nMSK joint injection consultations: 3\n"),
                   received_at=at(2026, 10, 5, 9, 0))
    assert r["outcome"] == "accepted"
    flags = [json.loads(x) for x in run_cli(home, "reconcile", "--as-of", "2026-10-06", "--json").stdout.splitlines()]
    assert any(f["kind"] == "claim_exceeds_recorded" and f["period"] == "2026Q3" and f["claimed"] == 3
               and f["recorded"] == 1 for f in flags)
    assert not [f for f in flags if f["kind"] == "unclaimed" and f["ods_code"] == "Z98101"]


def test_practice_named_only_by_its_address_matches_on_the_postcode(bot):
    bot.conn.execute("UPDATE orgs SET postcodes='AM3 8PA' WHERE ods_code='Z98104'")
    body = LETTER.replace("Highmere Practice (Z98104)", "The Surgery")
    r = bot.ingest(letter(body), received_at=at(2026, 9, 24, 16, 0))
    assert r["outcome"] == "accepted" and register(bot)[0]["practice_code"] == "Z98104"


def test_directory_import_reads_postcodes(home, tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text("ods_code,name,kind,emails,services,postcodes\n"
                   "Z98104,Highmere Practice,practice,highmere.practice@nhs.net,denosumab,am3 8pa;AM3 9ZZ\n")
    run_cli(home, "directory", "import", str(csv))
    from store.db import open_db
    assert open_db(home / "lesbot.db").execute("SELECT postcodes FROM orgs").fetchone()[0] == "AM3 8PA;AM3 9ZZ"


def test_letter_forwarded_by_a_secretary_and_html_only(bot):
    fwd = ("Please see below.\n\nRebecca\n\n________________________________\nFrom: Dr H Marchetti "
           "<agh.metabolicbone@nhs.net>\nSent: 24 September 2026 14:00\nTo: Metabolic Bone Service\n"
           "Subject: letter\n\n" + LETTER)
    r = bot.ingest(letter(fwd, subject="FW: letter"), received_at=at(2026, 9, 24, 16, 0))
    assert r["outcome"] == "accepted", r["errors"]
    html = "<html><body>" + "".join(f"<p>{line}</p>" for line in LETTER.replace("999 960 9058", "999 035 6793")
                                    .split("\n")) + "</body></html>"
    m = make_msg(sender=MVHT, subject="Transfer of care", body="x")
    m.set_content(html, subtype="html")
    r = bot.ingest(m, received_at=at(2026, 9, 24, 16, 5))
    assert r["outcome"] == "accepted", r["errors"]
    assert len(register(bot)) == 2


def test_denosumab_quarterly_activity(registered, home):
    m, when = dose("Denosumab given to NHS 999 960 9058 on 18/02/2027.")
    registered.ingest(m, received_at=when)
    out = run_cli(home, "activity", "--service", "denosumab", "--quarter", "2027Q1").stdout
    assert "2027Q1,Z98104,Highmere Practice,1,0,1,0," in out


def test_a_dose_by_reply_to_the_register_email_needs_no_nhs_number(registered):
    bot = registered
    # the case the transfer letter opened, as the SQLite file records it
    (letter_case,), = bot.conn.execute("SELECT case_id FROM messages WHERE kind='denosumab_transfer'").fetchall()
    case = reference(letter_case)
    note = next(o for o in bot.outbox() if o["to_addr"] == HIGHMERE)
    m = make_msg(sender="joanne.ferris2@nhs.net", subject="RE: " + note["subject"],
                 body="Second denosumab injection given today, 18/02/2027.")
    m["In-Reply-To"] = note["msgid"]
    r = bot.ingest(m, received_at=at(2027, 2, 18, 15, 0))
    assert (r["kind"], r["outcome"], r["reference"]) == ("denosumab_dose", "accepted", case)
    assert register(bot)[0]["next_due"] == "2027-08-18"
    # or with the reference in the subject of a new email
    m = make_msg(sender=HIGHMERE, subject=f"{case} denosumab", body="Injection given on 17/08/2027.")
    r = bot.ingest(m, received_at=at(2027, 8, 17, 15, 0))
    assert r["outcome"] == "accepted" and register(bot)[0]["next_due"] == "2028-02-17"
