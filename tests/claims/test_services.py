"""IMSK referral triage and training-LES applications, each on its own inbox address."""
from __future__ import annotations

import email
import io
import smtplib
from datetime import date

import docx
import pytest

from handlers.clock import digest
from handlers.clock import reminders
from store.directory import import_csv
from conftest import DATA, Lesbot, at, make_msg, outbox_files, run_cli, text_of, wait_for

LES, IMSK, TRAINING = "ashmeres.les@nhs.net", "imsk.spa@nhs.net", "training.les@nhs.net"
TRIAGE, LEAD, PANEL = "imsk.triage@nhs.net", "imsk.lead@nhs.net", "ashmeres.panel@nhs.net"
OSEI = "kwame.osei4@nhs.net"            # Stonebridge Lane Z98106: covered by IMSK
FALLOW = "d.mcallister@nhs.net"         # Fallowcombe Z98105: not covered
EXTRA = ("ods_code,name,kind,emails,services\n"
         "Z98101,Meresfield Medical Centre,practice,ashmeres.meresfieldmc@nhs.net;priya.raghunathan3@nhs.net,"
         "denosumab;msk-injection;imsk\n"
         "Z98106,Stonebridge Lane Surgery,practice,stonebridgelane.admin@nhs.net;kwame.osei4@nhs.net;"
         "tracey.holt7@nhs.net,denosumab;imsk\n"
         "Z98901,Ashdown and Meres IMSK triage team,provider,imsk.triage@nhs.net,imsk\n"
         "Z98001,NHS Ashdown and Meres ICB,commissioner,ashmeres.les@nhs.net;ashmeres.panel@nhs.net,"
         "denosumab;msk-injection\n")
SETTINGS = {"inbox": f"{LES},{IMSK},{TRAINING}", "routes": {IMSK: "imsk", TRAINING: "training"},
            "imsk": {"triage_team": TRIAGE, "service_lead": LEAD}, "training": {"panel": PANEL},
            "contract_team": "contract.team@nhs.net"}


@pytest.fixture
def sbot(home):
    b = Lesbot(home, **SETTINGS)
    import_csv(b.conn, EXTRA)
    yield b
    b.close()


FORM = ("Patient name: Mrs Ima TESTER\nDate of birth: {dob}\nNHS number: 999 035 6793\n"
        "Registered practice: {practice}\nReferral specialty: {specialty}\n"
        "Clinical details: Low back pain for 4 months, not settled with physiotherapy exercises and analgesia.\n"
        "Red flags: {red}\nUrgency: {urgency}\n")


def imsk_referral(sender=OSEI, dob="03/06/1958", practice="Stonebridge Lane Surgery (Z98106)",
                  specialty="Physiotherapy", red="no", urgency="routine", body=None):
    return make_msg(sender=sender, to=IMSK, subject="IMSK referral",
                    body=body or FORM.format(dob=dob, practice=practice, specialty=specialty, red=red, urgency=urgency))


def reply(out_row, sender, body, to=IMSK):
    m = make_msg(sender=sender, to=to, subject="RE: " + out_row["subject"], body=body)
    m["In-Reply-To"] = f"<{out_row['msgid']}>"
    return m


def mails(bot, to):
    return [o for o in bot.outbox() if o["to_addr"] == to]


# -- routing -------------------------------------------------------------------------------------
def test_each_inbox_routes_to_its_service_and_replies_from_it(sbot):
    r = sbot.ingest(imsk_referral(), received_at=at(2026, 11, 2, 10))
    assert r["kind"] == "imsk_referral"
    r2 = sbot.ingest(make_msg(sender=OSEI, to=LES, subject="IMSK referral",
                              body=FORM.format(dob="03/06/1958", practice="Stonebridge Lane Surgery (Z98106)",
                                               specialty="Physiotherapy", red="no", urgency="routine")),
                     received_at=at(2026, 11, 2, 10, 5))
    assert r2["kind"] == "enquiry"                    # the LES inbox does not take IMSK referrals
    ack = mails(sbot, OSEI)
    assert email.message_from_bytes(ack[0]["raw"])["From"].endswith(f"<{IMSK}>")
    assert email.message_from_bytes(ack[1]["raw"])["From"].endswith(f"<{LES}>")


def test_two_inboxes_in_one_running_lesbot(serve, home):
    srv = serve({"LESBOT_INBOX": f"{LES},{IMSK},{TRAINING}",
                 "LESBOT_ROUTES": '{"%s": "imsk", "%s": "training"}' % (IMSK, TRAINING),
                 "LESBOT_IMSK__TRIAGE_TEAM": TRIAGE, "LESBOT_SCHEDULER__ENABLED": "false"})
    (home / "extra.csv").write_text(EXTRA)
    run_cli(home, "directory", "import", str(home / "extra.csv"))
    with smtplib.SMTP("127.0.0.1", srv.port) as s:
        s.send_message(imsk_referral())
        s.send_message(make_msg(sender=OSEI, to=TRAINING, subject="Training LES application",
                                body="We would like to apply."))
        s.send_message(make_msg(sender=OSEI, to=LES, subject="A question", body="When is the next run?"))
    wait_for(lambda: len(outbox_files(home)) >= 4, timeout=30)      # 3 replies + the triage notice
    got = [email.message_from_bytes(p.read_bytes()) for p in outbox_files(home)]
    froms = sorted(m["From"].rsplit("<", 1)[1].rstrip(">") for m in got if m["To"] == OSEI)
    assert froms == sorted([LES, IMSK, TRAINING])
    assert any(m["To"] == TRIAGE for m in got)
    srv.stop()


# -- the standard referral --------------------------------------------------------------------------
def test_accepted_referral_goes_to_triage_with_a_2_working_day_deadline(sbot):
    r = sbot.ingest(imsk_referral(), received_at=at(2026, 11, 2, 10))      # Monday
    assert r["outcome"] == "accepted"
    (note,) = mails(sbot, TRIAGE)
    assert "Triage by 04/11/2026" in text_of(note["raw"]) and "TESTER" in text_of(note["raw"])
    assert "TESTER" not in note["subject"] and "TESTER" not in text_of(mails(sbot, OSEI)[0]["raw"])
    row = sbot.conn.execute("SELECT * FROM imsk_referrals").fetchone()
    assert (row["state"], row["triage_due"], row["specialty"], row["red_flags"]) == \
        ("awaiting_triage", "2026-11-04", "physiotherapy", 0)


def test_triage_deadline_over_a_bank_holiday_weekend(sbot):
    # received Thursday 24 December 2026: Christmas Day, the weekend, Boxing Day observed on Monday 28th
    sbot.ingest(imsk_referral(), received_at=at(2026, 12, 24, 15))
    assert sbot.conn.execute("SELECT triage_due FROM imsk_referrals").fetchone()[0] == "2026-12-30"
    # Maundy Thursday 2027, over Easter
    sbot.ingest(imsk_referral(body=FORM.format(dob="01/01/1960", practice="Meresfield Medical Centre (Z98101)",
                                               specialty="Rheumatology", red="no", urgency="routine")
                              .replace("999 035 6793", "999 832 6338")), received_at=at(2027, 3, 25, 11))
    assert sbot.conn.execute("SELECT triage_due FROM imsk_referrals ORDER BY id DESC").fetchone()[0] == "2027-03-31"


@pytest.mark.parametrize("change, field", [
    ({"specialty": ""}, "referral specialty"), ({"specialty": "Dermatology"}, "referral specialty"),
    ({"red": "maybe"}, "red flags"), ({"urgency": "whenever"}, "urgency"), ({"dob": "31/02/1960"}, "date of birth"),
])
def test_an_incomplete_referral_gets_targeted_feedback_and_a_reply_completes_it(sbot, change, field):
    r = sbot.ingest(imsk_referral(**change), received_at=at(2026, 11, 2, 10))
    assert r["outcome"] == "rejected" and field in [e["field"] for e in r["errors"]]
    assert mails(sbot, TRIAGE) == []
    ask = mails(sbot, OSEI)[-1]
    assert "standard referral" in text_of(ask["raw"])
    fix = {"referral specialty": "Referral specialty: Physiotherapy", "red flags": "Red flags: no",
           "urgency": "Urgency: routine", "date of birth": "Date of birth: 03/06/1958"}[field]
    r = sbot.ingest(reply(ask, OSEI, fix), received_at=at(2026, 11, 2, 12))
    assert r["outcome"] == "accepted", r["errors"]
    assert sbot.conn.execute("SELECT count(*), max(state) FROM imsk_referrals").fetchone()[:] == (1, "awaiting_triage")


def test_me_cfs_arrives_under_rheumatology(sbot):
    sbot.ingest(imsk_referral(specialty="ME/CFS"), received_at=at(2026, 11, 2, 10))
    row = sbot.conn.execute("SELECT specialty, mecfs FROM imsk_referrals").fetchone()
    assert tuple(row) == ("rheumatology", 1)


def test_exclusions_are_returned_to_the_gp_with_the_reason(sbot):
    r = sbot.ingest(imsk_referral(dob="01/01/2010"), received_at=at(2026, 11, 2, 10))
    assert r["outcome"] == "rejected" and "under 18" in r["errors"][0]["problem"]
    assert "returned to you" in text_of(mails(sbot, OSEI)[-1]["raw"])
    r = sbot.ingest(imsk_referral(sender=FALLOW, practice="Fallowcombe Surgery (Z98105)"),
                    received_at=at(2026, 11, 2, 11))
    assert "not one the IMSK service covers" in r["errors"][0]["problem"]
    assert mails(sbot, TRIAGE) == []
    assert {r[0] for r in sbot.conn.execute("SELECT state FROM imsk_referrals")} == {"returned"}


def test_red_flags_are_accepted_and_flagged_urgent(sbot):
    r = sbot.ingest(imsk_referral(red="yes - night pain and weight loss", urgency="urgent"),
                    received_at=at(2026, 11, 2, 10))
    assert r["outcome"] == "accepted"
    note = mails(sbot, TRIAGE)[0]
    assert note["subject"].split("] ", 1)[1].startswith("URGENT") and "red-flag symptoms" in text_of(note["raw"])


# -- triage decisions and standards ----------------------------------------------------------------
def triaged(sbot, decision, when, **kw):
    sbot.ingest(imsk_referral(**kw), received_at=at(2026, 11, 2, 10))
    note = mails(sbot, TRIAGE)[-1]
    return sbot.ingest(reply(note, TRIAGE, decision), received_at=when)


def test_triage_decision_is_recorded_and_the_gp_told(sbot):
    r = triaged(sbot, "Decision: accept into physiotherapy\nFirst appointment: 20/11/2026", at(2026, 11, 3, 14))
    assert (r["kind"], r["outcome"]) == ("imsk_triage", "accepted")
    row = sbot.conn.execute("SELECT * FROM imsk_referrals").fetchone()
    assert (row["decision"], row["first_appointment"], row["triage_ok"], row["appointment_ok"]) == \
        ("physiotherapy", "2026-11-20", 1, 1)
    told = mails(sbot, OSEI)[-1]
    assert "accepted into physiotherapy, first appointment 20/11/2026" in text_of(told["raw"])


@pytest.mark.parametrize("words, decision", [
    ("Decision: return to GP - advice on self-management", "return_to_gp"),
    ("Decision: MSK assessment and treatment\nFirst appointment 10/11/2026", "msk_assessment"),
    ("Decision: rheumatology\nFirst appointment 10/11/2026", "rheumatology"),
    ("Decision: pain management\nFirst appointment 10/11/2026", "pain_management"),
    ("Decision: ME/CFS\nFirst appointment 10/11/2026", "mecfs"),
    ("Decision: re-direct to secondary care (suspected fracture)", "secondary_care"),
])
def test_the_seven_decisions(sbot, words, decision):
    triaged(sbot, words, at(2026, 11, 3, 14))
    assert sbot.conn.execute("SELECT decision FROM imsk_referrals").fetchone()[0] == decision


def test_late_triage_and_a_first_appointment_beyond_5_weeks_are_flagged(sbot):
    r = triaged(sbot, "Decision: physiotherapy\nFirst appointment: 15/12/2026", at(2026, 11, 5, 9))
    text = text_of(mails(sbot, TRIAGE)[-1]["raw"])
    assert "after the deadline (04/11/2026" in text and "more than 5 weeks" in text
    row = sbot.conn.execute("SELECT triage_ok, appointment_ok FROM imsk_referrals").fetchone()
    assert tuple(row) == (0, 0) and r["outcome"] == "accepted"


def test_an_urgent_redirection_must_be_the_same_day(sbot):
    triaged(sbot, "Decision: re-direct to secondary care.\nRedirected via 2WW on 05/11/2026.",
            at(2026, 11, 3, 14), red="yes", urgency="urgent")
    assert sbot.conn.execute("SELECT redirect_ok FROM imsk_referrals").fetchone()[0] == 0


def test_transfer_within_3_weeks_discharge_and_a_self_referral_back(sbot):
    triaged(sbot, "Decision: physiotherapy\nFirst appointment: 20/11/2026", at(2026, 11, 3, 14))
    # the case the GP's referral opened, as the SQLite file records it
    (gp_case,), = sbot.conn.execute("SELECT case_id FROM messages WHERE kind='imsk_referral'").fetchall()
    note = mails(sbot, TRIAGE)[0]
    r = sbot.ingest(reply(note, TRIAGE, "Transfer to rheumatology. Last appointment 01/12/2026, "
                                        "appointment 28/12/2026."), received_at=at(2026, 12, 2, 9))
    assert r["kind"] == "imsk_transfer"
    assert "NOT within 3 weeks" in text_of(mails(sbot, TRIAGE)[-1]["raw"])
    r = sbot.ingest(reply(note, TRIAGE, "Patient discharged on 15/01/2027."), received_at=at(2027, 1, 15, 16))
    assert sbot.conn.execute("SELECT discharged_on FROM imsk_referrals").fetchone()[0] == "2027-01-15"
    # the patient self-refers within 2 months: a follow-up, and the GP is told
    r = sbot.ingest(make_msg(sender=TRIAGE, to=IMSK, subject="Self-referral",
                             body="Self-referral received by phone from NHS 999 035 6793, same back pain."),
                    received_at=at(2027, 3, 1, 10))
    assert r["kind"] == "imsk_self_referral"
    row = sbot.conn.execute("SELECT kind, followup_of FROM imsk_referrals ORDER BY id DESC").fetchone()
    assert gp_case is not None and tuple(row) == ("self", gp_case)
    assert "follow-up" in text_of(mails(sbot, "stonebridgelane.admin@nhs.net")[-1]["raw"])
    # after 2 months it is a new self-referral
    r = sbot.ingest(make_msg(sender=TRIAGE, to=IMSK, subject="Self-referral",
                             body="Self-referral: NHS 999 035 6793."), received_at=at(2027, 3, 20, 10))
    assert sbot.conn.execute("SELECT followup_of FROM imsk_referrals ORDER BY id DESC").fetchone()[0] is None


def test_triage_reminders_and_the_digest_section(sbot):
    sbot.ingest(imsk_referral(), received_at=at(2026, 11, 2, 10))
    s = sbot.settings.reminders
    s.claims_due = s.money_at_risk = s.outcome_chase = s.recall = False
    assert reminders.run(sbot.settings, sbot.conn, at(2026, 11, 3, 9)) == []
    due = reminders.run(sbot.settings, sbot.conn, at(2026, 11, 4, 9))
    assert [(r["kind"], r["to"]) for r in due] == [("imsk_triage_due", TRIAGE)]
    late = reminders.run(sbot.settings, sbot.conn, at(2026, 11, 5, 9))
    assert [(r["kind"], r["to"]) for r in late] == [("imsk_triage_overdue", LEAD)]
    assert reminders.run(sbot.settings, sbot.conn, at(2026, 11, 6, 9)) == []
    note = mails(sbot, TRIAGE)[0]
    sbot.ingest(reply(note, TRIAGE, "Decision: physiotherapy\nFirst appointment 20/11/2026"),
                received_at=at(2026, 11, 5, 10))
    sbot.ingest(imsk_referral(dob="01/01/2010"), received_at=at(2026, 11, 5, 11))
    d = digest.run(sbot.settings, sbot.conn, at(2026, 11, 11, 8), "month", dry_run=True, with_chart=False)
    assert "IMSK" in d["text"]
    line = next(ln for ln in d["text"].splitlines() if "Stonebridge Lane Surgery" in ln and "%" in ln)
    assert "2 received" in line and "triaged in 2 working days 0%" in line and "within 5 weeks 100%" in line
    assert "under 18" in d["text"]


# -- training LES applications ---------------------------------------------------------------------
APPLICATION = """Name of GPwSI: Dr Pat Example
Practice: Stonebridge Lane Surgery (Z98106)

Clinical lead support: the proposal is supported by Dr K Osei, Clinical Lead for the locality (letter attached).

Service redesign: a community dermatology clinic under Investing In Your Health, cost £12,000 a year.

Practice based commissioning: shifts 300 outpatient attendances a year from secondary to primary care, saving £45,000.

Local Delivery Plan: the clinic delivers the LDP priority of care closer to home for skin conditions.

Financial Recovery Plan: the saving contributes to the PCT's financial recovery plan in 2027/28 and later years.

Benefits: 300 fewer referrals a year; waits cut from 18 to 6 weeks for patients; income for the practice.

Training costs: diploma course fees £3,500; locum cover £4,000; travel £300.
"""


def test_a_complete_application_goes_to_the_panel_and_the_decision_comes_back(sbot):
    app = make_msg(sender=OSEI, to=TRAINING, subject="Training LES application", body=APPLICATION)
    r = sbot.ingest(app, received_at=at(2026, 11, 2, 10))
    assert (r["kind"], r["outcome"]) == ("training_application", "accepted"), r["errors"]
    panel = mails(sbot, PANEL)
    assert len(panel) == 1 and "Dr Pat Example" in text_of(panel[0]["raw"])
    r = sbot.ingest(reply(panel[0], PANEL, "Approved. Reasons: meets the LDP priorities. Commitment: three "
                                           "financial years after completing the training.", to=TRAINING),
                    received_at=at(2026, 12, 1, 10))
    assert r["kind"] == "training_decision"
    told = mails(sbot, OSEI)[-1]
    assert "approved" in told["subject"] and "3 financial years" in text_of(told["raw"])
    # the applicant completes the training in November 2027 (FY 2027/28): three whole years after
    r = sbot.ingest(reply(told, OSEI, "Training completed on 20/11/2027.", to=TRAINING),
                    received_at=at(2027, 11, 21, 10))
    row = sbot.conn.execute("SELECT state, commitment_years, training_completed_on, commitment_ends "
                            "FROM training_applications").fetchone()
    assert tuple(row) == ("approved", 3, "2027-11-20", "2031-03-31")
    d = digest.run(sbot.settings, sbot.conn, at(2027, 12, 11, 8), "month", dry_run=True, with_chart=False)
    assert "TRAINING LES" in d["text"] and "31/03/2031" in d["text"]


@pytest.mark.parametrize("cut, item", [
    ("Name of GPwSI: Dr Pat Example\n", "name of the GPwSI / PwSI"),
    ("Practice: Stonebridge Lane Surgery (Z98106)\n", "practice / PbC locality / provider organisation"),
    ("Clinical lead support: the proposal is supported by Dr K Osei, Clinical Lead for the locality "
     "(letter attached).\n", "written support of the clinical lead"),
    (", cost £12,000 a year", "service redesign (Investing In Your Health), with costs"),
    (", saving £45,000", "practice based commissioning and the secondary-to-primary shift, with costs"),
    ("Local Delivery Plan: the clinic delivers the LDP priority of care closer to home for skin conditions.\n",
     "support for the Local Delivery Plan"),
    ("Financial Recovery Plan: the saving contributes to the PCT's financial recovery plan in 2027/28 and later "
     "years.\n", "support for the Financial Recovery Plan"),
    ("Benefits: 300 fewer referrals a year; waits cut from 18 to 6 weeks for patients; income for the practice.\n",
     "quantified benefits"),
    ("Training costs: diploma course fees £3,500; locum cover £4,000; travel £300.\n", "detailed training costs"),
])
def test_each_missing_item_is_named(sbot, cut, item):
    assert cut in APPLICATION
    r = sbot.ingest(make_msg(sender=OSEI, to=TRAINING, subject="Application", body=APPLICATION.replace(cut, "")),
                    received_at=at(2026, 11, 2, 10))
    assert r["outcome"] == "rejected" and [e["field"] for e in r["errors"]] == [item]
    assert mails(sbot, PANEL) == []


def test_application_in_a_word_document_completed_by_a_reply(sbot):
    d = docx.Document()
    for para in APPLICATION.replace("Training costs: diploma course fees £3,500; locum cover £4,000; travel £300.\n",
                                    "").split("\n\n"):
        d.add_paragraph(para)
    buf = io.BytesIO()
    d.save(buf)
    m = make_msg(sender=OSEI, to=TRAINING, subject="Application", body="Our proposal is attached.")
    m.add_attachment(buf.getvalue(), maintype="application",
                     subtype="vnd.openxmlformats-officedocument.wordprocessingml.document", filename="proposal.docx")
    r = sbot.ingest(m, received_at=at(2026, 11, 2, 10))
    assert [e["field"] for e in r["errors"]] == ["detailed training costs"]
    ask = mails(sbot, OSEI)[-1]
    r = sbot.ingest(reply(ask, OSEI, "Training costs: course fees £3,500 and locum cover £4,000.", to=TRAINING),
                    received_at=at(2026, 11, 3, 10))
    assert r["outcome"] == "accepted", r["errors"]
    assert len(mails(sbot, PANEL)) == 1


def test_a_declined_application_is_passed_on_with_the_reasons(sbot):
    sbot.ingest(make_msg(sender=OSEI, to=TRAINING, subject="Application", body=APPLICATION),
                received_at=at(2026, 11, 2, 10))
    panel = mails(sbot, PANEL)[0]
    sbot.ingest(reply(panel, PANEL, "Declined. Reasons: not a current priority.", to=TRAINING),
                received_at=at(2026, 12, 1, 10))
    told = mails(sbot, OSEI)[-1]
    assert "declined" in told["subject"] and "not a current priority" in text_of(told["raw"])
    assert sbot.conn.execute("SELECT state FROM training_applications").fetchone()[0] == "declined"


def test_financial_years_run_april_to_march():
    from handlers.training.handler import financial_year_end
    assert financial_year_end(date(2027, 3, 31), 2) == date(2029, 3, 31)
    assert financial_year_end(date(2027, 4, 1), 2) == date(2030, 3, 31)
    assert DATA.exists()


def test_a_gp_writing_again_about_a_referral_never_replaces_it(sbot):
    sbot.ingest(imsk_referral(), received_at=at(2026, 11, 2, 10))
    ack = mails(sbot, OSEI)[-1]
    r = sbot.ingest(reply(ack, OSEI, "Has this been triaged yet?"), received_at=at(2026, 11, 3, 10))
    assert (r["kind"], r["outcome"]) == ("imsk_enquiry", "rejected")
    assert "waiting for triage (due 04/11/2026)" in text_of(mails(sbot, OSEI)[-1]["raw"])
    row = sbot.conn.execute("SELECT count(*), max(state), max(specialty) FROM imsk_referrals").fetchone()
    assert tuple(row) == (1, "awaiting_triage", "physiotherapy")


def test_writing_about_an_application_with_the_panel_never_replaces_it(sbot):
    sbot.ingest(make_msg(sender=OSEI, to=TRAINING, subject="Application", body=APPLICATION),
                received_at=at(2026, 11, 2, 10))
    ack = mails(sbot, OSEI)[-1]
    r = sbot.ingest(reply(ack, OSEI, "Any news?", to=TRAINING), received_at=at(2026, 11, 20, 10))
    assert r["outcome"] == "rejected" and "with the commissioner's panel" in r["errors"][0]["problem"]
    assert sbot.conn.execute("SELECT state FROM training_applications").fetchone()[0] == "with_panel"


def test_a_triage_reminder_comes_from_the_imsk_inbox_and_its_answer_goes_back_there(sbot):
    sbot.ingest(imsk_referral(), received_at=at(2026, 11, 2, 10))
    s = sbot.settings.reminders
    s.claims_due = s.money_at_risk = s.outcome_chase = s.recall = False
    reminders.run(sbot.settings, sbot.conn, at(2026, 11, 4, 9))
    remind = mails(sbot, TRIAGE)[-1]
    assert email.message_from_bytes(remind["raw"])["From"].endswith(f"<{IMSK}>")
    assert sbot.settings.inbox_for("les") == LES and sbot.settings.inbox_for("training") == TRAINING
