"""Claims as practices send them: body, CSV, XLSX; every check, boundary and reply."""
from __future__ import annotations

import email
import io
import json
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from conftest import DATA, Lesbot, make_msg, run_cli
from handlers.contract.references import reference

LONDON = ZoneInfo("Europe/London")
PRIYA = "priya.raghunathan3@nhs.net"          # Meresfield MC, Z98101: denosumab + msk-injection
TRACEY = "tracey.holt7@nhs.net"              # Stonebridge Lane, Z98106: denosumab only


def at(*args) -> datetime:
    """A London wall-clock time, as the UTC instant the inbox received it."""
    return datetime(*args, tzinfo=LONDON).astimezone(timezone.utc)


def case_ref(bot, result):
    """The reference of the case the SQLite file records for this message."""
    return reference(bot.row(result["id"])["case_id"])


def body_claim(lines: str, sender=PRIYA, subject="LES claim", **kw):
    return make_msg(sender=sender, subject=subject, body=lines, **kw)


def reply_text(bot, n=-1) -> str:
    m = email.message_from_bytes(bot.outbox()[n]["raw"])
    for part in m.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode().replace("\r\n", "\n")
    raise AssertionError("no text part")


def reply_attachments(bot, n=-1) -> list[tuple[str, bytes]]:
    m = email.message_from_bytes(bot.outbox()[n]["raw"])
    return [(p.get_filename(), p.get_payload(decode=True)) for p in m.walk() if p.get_filename()]


def accepted(bot):
    return [tuple(r) for r in bot.conn.execute(
        "SELECT org_code, service, month, count, amount_pence, run FROM claims WHERE state='accepted' ORDER BY id")]


# -- the samples ---------------------------------------------------------------------
def test_sample_claims(bot):
    expect = {
        "01": ("accepted", [("Z98101", "denosumab", "2026-09", 14, 28000, "2026-10"),
                            ("Z98101", "msk-injection", "2026-09", 3, 13041, "2026-10")]),
        "02": ("accepted", [("Z98103", "denosumab", "2026-08", 7, 14000, "2026-09"),
                            ("Z98103", "msk-injection", "2026-08", 2, 8694, "2026-09")]),
        "03": ("accepted", [("Z98102", "denosumab", "2026-09", 11, 22000, "2026-10"),
                            ("Z98102", "denosumab", "2026-08", 1, 2000, "2026-10")]),
        # received Saturday 10 October 23:14 UTC = 00:14 on the 11th in London: next run
        "04": ("accepted", [("Z98104", "denosumab", "2026-09", 9, 18000, "2026-11"),
                            ("Z98104", "denosumab", "2026-08", 2, 4000, "2026-11")]),
        "05": ("accepted", [("Z98105", "msk-injection", "2026-09", 3, 13041, "2026-10")]),
        # June is past the 3-month limit on 12 October; July to September are paid
        "06": ("partially_accepted", [("Z98106", "denosumab", "2026-07", 6, 12000, "2026-11"),
                                      ("Z98106", "denosumab", "2026-08", 5, 10000, "2026-11"),
                                      ("Z98106", "denosumab", "2026-09", 8, 16000, "2026-11")]),
    }
    for prefix, (outcome, lines) in expect.items():
        before = len(accepted(bot))
        path = next(DATA.glob(f"{prefix}-*.eml"))
        r = bot.ingest(path)
        assert (r["kind"], r["outcome"]) == ("claim", outcome), (prefix, r)
        assert accepted(bot)[before:] == lines, prefix
    text = reply_text(bot)
    assert "June 2026: not payable" in text and "30 September 2026" in text
    assert "Payment run: November 2026" in text and "after the 10th of October 2026" in text


def test_accepted_reply_lists_lines_amounts_total_and_run(bot):
    r = bot.ingest(DATA / "01-claim-plain-text.eml")
    assert r["reference"] == case_ref(bot, r)
    text = reply_text(bot)
    assert "14 x £20.00 = £280.00" in text and "3 x £43.47 = £130.41" in text
    assert "Total accepted: £410.41" in text
    assert "Payment run: October 2026, because it was received by the 10th of October 2026" in text
    assert bot.outbox()[0]["subject"] == f"[{r['reference']}] Claim accepted"
    assert reply_attachments(bot) == []


# -- checks --------------------------------------------------------------------------
def test_every_problem_at_once_and_the_form_attached(bot):
    r = bot.ingest(body_claim("Practice code: Z98102\nMonth: December 2026\nDenosumab injections: 4.5\n"
                              "Spirometry tests: 3\n"), received_at=at(2026, 11, 5, 9))
    assert r["outcome"] == "rejected"
    problems = " | ".join(e["problem"] for e in r["errors"])
    assert "names Z98102, but it was sent from an address of Meresfield Medical Centre" in problems
    assert "not a service lesbot knows" in problems
    text = reply_text(bot)
    assert "could\nnot be accepted" in text and "Nothing from it will be paid" in text
    (name, data), = reply_attachments(bot)
    assert name == "LES claim form Z98101.xlsx"
    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    assert ws["B5"].value == "Z98101" and ws["B4"].value == "Meresfield Medical Centre"


@pytest.mark.parametrize("line,words", [
    ("Denosumab injections: 4.5", "not a whole number"),
    ("Denosumab injections: -2", "not a whole number"),
    ("Denosumab injections: 9000", "more than the 300 injections"),
    ("Denosumab injections: lots", "not a number"),
])
def test_counts_must_be_plausible_whole_numbers(bot, line, words):
    r = bot.ingest(body_claim(f"Month: October 2026\n{line}\nMSK no injection consultations: 2\n"),
                   received_at=at(2026, 11, 5, 9))
    assert r["outcome"] == "partially_accepted"
    assert words in r["errors"][0]["problem"]
    assert accepted(bot) == [("Z98101", "msk-injection", "2026-10", 2, 8694, "2026-11")]


def test_future_month_and_missing_month(bot):
    r = bot.ingest(body_claim("Month: December 2026\nDenosumab injections: 4\n"), received_at=at(2026, 11, 5, 9))
    assert r["outcome"] == "rejected" and "has not happened yet" in r["errors"][0]["problem"]
    r = bot.ingest(body_claim("Denosumab injections: 4\n", subject="claim"), received_at=at(2026, 11, 5, 9))
    assert r["outcome"] == "rejected" and "no month is given" in r["errors"][0]["problem"]


def test_not_signed_up_and_not_payable_lines_are_explained(bot):
    r = bot.ingest(body_claim("Month: October 2026\nDenosumab injections: 3\nMSK no injection consultations: 2\n",
                              sender=TRACEY), received_at=at(2026, 11, 5, 9))
    assert r["outcome"] == "partially_accepted"
    assert "not signed up for MSK steroid injection consultation" in r["errors"][0]["problem"]
    r = bot.ingest(body_claim("Month: October 2026\nMSK joint injections given: 5\n"
                              "MSK consultations for our registered patients: 2\n"
                              "MSK consultations, no injection given: 1\n"), received_at=at(2026, 11, 5, 9))
    assert r["outcome"] == "partially_accepted"
    problems = [e["problem"] for e in r["errors"]]
    assert "Minor Surgery DES" in problems[0] and "not registered with your practice" in problems[1]
    assert accepted(bot)[-1] == ("Z98101", "msk-injection", "2026-10", 1, 4347, "2026-11")


def test_wrong_self_calculated_total_is_corrected(bot):
    bot.ingest(body_claim("Month: October 2026\nMSK consultations, no injection given: 3\n"
                          "Rate: £45.00 per consultation\nTotal claimed: £135.00\n"), received_at=at(2026, 11, 5, 9))
    text = reply_text(bot)
    assert "You calculated a total of £135.00; lesbot's total for the lines accepted is £130.41" in text


def test_a_hospital_cannot_claim(bot):
    r = bot.ingest(body_claim("Month: October 2026\nDenosumab injections: 3\n", sender="agh.metabolicbone@nhs.net"),
                   received_at=at(2026, 11, 5, 9))
    assert r["outcome"] == "rejected" and "only practices claim" in r["errors"][0]["problem"]


def test_patient_details_are_not_stored_and_the_reply_says_so(bot):
    csv = ("Service,Month,Number,Patient NHS number\r\nDenosumab,Oct-26,1,999 035 6793\r\n"
           "Denosumab,Sep-26,1,9998326338\r\n").encode()
    m = body_claim("Claim attached", subject="LES claim")
    m.add_attachment(csv, maintype="text", subtype="csv", filename="claim.csv")
    r = bot.ingest(m, received_at=at(2026, 11, 5, 9))
    assert r["outcome"] == "accepted"
    assert "did not record them" in reply_text(bot)
    dump = "\n".join(str(tuple(r)) for r in bot.conn.execute("SELECT * FROM claims"))
    assert "9990356793" not in dump and "999 035 6793" not in dump and "9998326338" not in dump


# -- the 10th, the 3-month limit, clock changes, leap years ------------------------------
@pytest.mark.parametrize("when,run", [
    (at(2026, 10, 10, 23, 59), "2026-10"),     # BST, before the clocks go back on 25 October
    (at(2026, 10, 11, 0, 0), "2026-11"),
    (at(2026, 11, 10, 23, 59), "2026-11"),     # GMT, after
    (at(2026, 11, 11, 0, 0), "2026-12"),
    (at(2027, 3, 10, 23, 59), "2027-03"),      # GMT, before the clocks go forward on 28 March
    (at(2027, 4, 10, 23, 59), "2027-04"),      # BST, after
    (at(2027, 4, 11, 0, 0), "2027-05"),
])
def test_the_tenth_in_london_time(bot, when, run):
    r = bot.ingest(body_claim("Month: last month\nDenosumab injections: 2\n"), received_at=when)
    assert r["outcome"] == "accepted"
    assert accepted(bot)[-1][5] == run


@pytest.mark.parametrize("when,payable", [
    (at(2027, 4, 20, 12, 0), True),            # late April: within 3 months of 31 January
    (at(2027, 4, 30, 23, 59), True),
    (at(2027, 5, 1, 0, 0), False),             # early May: too late
    (at(2027, 5, 3, 9, 0), False),
])
def test_activity_on_31_january(bot, when, payable):
    r = bot.ingest(body_claim("Month: January 2027\nDenosumab injections: 2\n"), received_at=when)
    assert r["outcome"] == ("accepted" if payable else "rejected")
    if not payable:
        assert "the last day for January 2027 was 30 April 2027" in r["errors"][0]["problem"]


@pytest.mark.parametrize("when,payable", [
    (at(2028, 2, 29, 23, 59), True),           # leap year: November's limit is 29 February
    (at(2028, 3, 1, 0, 0), False),
])
def test_leap_year_limit(bot, when, payable):
    r = bot.ingest(body_claim("Month: November 2027\nDenosumab injections: 2\n"), received_at=when)
    assert (r["outcome"] == "accepted") is payable


@pytest.mark.parametrize("month_text,month", [
    ("last month", "2026-10"), ("Sep-26", "2026-09"), ("10/2026", "2026-10"), ("Sept 2026", "2026-09"),
    ("2026-09", "2026-09"), ("01/10/2026", "2026-10"), ("46266", "2026-09"),
])
def test_months_as_people_write_them(bot, month_text, month):
    bot.ingest(body_claim(f"Month: {month_text}\nDenosumab injections: 2\n"), received_at=at(2026, 11, 5, 9))
    assert accepted(bot)[-1][2] == month


# -- a second claim ------------------------------------------------------------------
def test_second_claim_replaces_first_then_closed_run_goes_to_a_human(bot, home):
    first = bot.ingest(body_claim("Month: October 2026\nDenosumab injections: 10\n"), received_at=at(2026, 11, 3, 9))
    second = bot.ingest(body_claim("Month: October 2026\nDenosumab injections: 12\n", subject="Corrected claim"),
                        received_at=at(2026, 11, 4, 9))
    assert second["outcome"] == "accepted"
    assert f"replaces your earlier claim {first['reference']} of 10 (£200.00); +2" in reply_text(bot)
    states = [tuple(r) for r in bot.conn.execute("SELECT count, state FROM claims ORDER BY id")]
    assert states == [(10, "replaced"), (12, "accepted")]
    run_cli(home, "payments", "close", "2026-11")
    third = bot.ingest(body_claim("Month: October 2026\nDenosumab injections: 15\n", subject="Corrected again"),
                       received_at=at(2026, 11, 20, 9))
    assert (third["outcome"], third["kind"], third["reply"]) == ("quarantined", "claim", None)
    assert "closed" in third["errors"][0]["problem"]
    # a new claim for a later month goes to the next open run
    later = bot.ingest(body_claim("Month: November 2026\nDenosumab injections: 1\n"), received_at=at(2026, 12, 2, 9))
    assert later["outcome"] == "accepted" and accepted(bot)[-1][5] == "2026-12"


# -- attachments ---------------------------------------------------------------------
def with_file(name, data, ctype="text/csv", sender=PRIYA):
    m = body_claim("Our claim is attached.", sender=sender)
    maintype, subtype = ctype.split("/")
    m.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return m


@pytest.mark.parametrize("csv", [
    b"\xef\xbb\xbfService;Month;Number\r\nDenosumab;Oct-26;4\r\n;;\r\nMSK no injection;Oct-26;2\r\n",   # ; BOM blanks
    b"Practice,Service,Extra,Month,Qty,Notes,Unit price,Total\nZ98101,Denosumab 60mg,x,10/2026,4,,\"\xc2\xa320.00\",\"\xc2\xa380.00\"\n"
    b"Z98101,MSK consultation no injection,y,10/2026,2,,43.47,86.94\n,,,,,,Total,\"\xc2\xa3166.94\"\n",
    b"Service\tMonth\tCount\nDenosumab\t2026-10\t4\nMSK consultation, no injection given\t2026-10\t2\n",
])
def test_csv_shapes(bot, csv):
    r = bot.ingest(with_file("claim.csv", csv), received_at=at(2026, 11, 5, 9))
    assert r["outcome"] == "accepted", r
    assert [a[1:4] for a in accepted(bot)] == [("denosumab", "2026-10", 4), ("msk-injection", "2026-10", 2)]


def test_csv_without_a_header_row(bot):
    r = bot.ingest(with_file("claim.csv", b"4,5,6\n1,2,3\n"), received_at=at(2026, 11, 5, 9))
    assert r["outcome"] == "rejected" and "no header row" in r["errors"][0]["problem"]


def test_huge_csv_ends_in_a_clear_reply(bot):
    rows = b"Service,Month,Number\n" + b"Denosumab,Oct-26,1\n" * 120_000
    b = Lesbot(bot.home.parent / "big", limits={"max_attachment_bytes": 10_000_000})
    try:
        r = b.ingest(with_file("claim.csv", rows), received_at=at(2026, 11, 5, 9))
        assert r["outcome"] == "rejected"
        assert "more than 100,000 rows" in r["errors"][0]["problem"]
    finally:
        b.close()


def xlsx(rows_by_sheet: dict, merged=None) -> bytes:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows in rows_by_sheet.items():
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
        for rng in (merged or {}).get(title, []):
            ws.merge_cells(rng)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def test_xlsx_several_sheets_merged_cells_formulas_and_serials(bot):
    data = xlsx({
        "Notes": [["Read me first"], ["Nothing to claim here"]],
        "Claim": [["Claim form"], ["ODS code:", "Z98101"], ["Claim month:", datetime(2026, 10, 1)], [],
                  ["Service", "Activity month", "Number", "Unit price (£)", "Total (£)"],
                  ["Denosumab 60 mg", 46296, 4, 20, "=C6*D6"],          # a date as an Excel serial
                  ["MSK consultation, no injection", None, 2, 43.47, "=C7*D7"],
                  ["Total", None, "=SUM(C6:C7)", None, "=SUM(E6:E7)"]],
    }, merged={"Claim": ["A1:E1"]})
    r = bot.ingest(with_file("claim.xlsx", data, XLSX), received_at=at(2026, 11, 5, 9))
    assert r["outcome"] == "accepted", r
    assert [a[1:4] for a in accepted(bot)] == [("denosumab", "2026-10", 4), ("msk-injection", "2026-10", 2)]


def test_claim_form_round_trip_by_email(bot, home):
    r = bot.ingest(make_msg(sender=PRIYA, subject="TEMPLATE", body="please"), received_at=at(2026, 11, 2, 9))
    assert (r["kind"], r["outcome"]) == ("template_request", "accepted")
    (name, data), = reply_attachments(bot)
    wb = openpyxl.load_workbook(io.BytesIO(data))
    ws = wb["Claim"]
    rows = {ws.cell(r, 1).value: r for r in range(1, ws.max_row + 1)}
    assert ws["B5"].value == "Z98101"
    den = next(r for k, r in rows.items() if k and "denosumab" in k.lower())
    msk = next(r for k, r in rows.items() if k and k.startswith("MSK"))
    ws.cell(den, 3).value = datetime(2026, 10, 1)
    ws.cell(den, 4).value = 6
    ws.cell(msk, 3).value = datetime(2026, 10, 1)
    ws.cell(msk, 4).value = 1
    ws.cell(rows["Name of person claiming:"], 2).value = "Priya Raghunathan"
    buf = io.BytesIO()
    wb.save(buf)
    r = bot.ingest(with_file(name, buf.getvalue(), XLSX), received_at=at(2026, 11, 6, 9))
    assert r["outcome"] == "accepted", r
    assert [a[1:4] for a in accepted(bot)] == [("denosumab", "2026-10", 6), ("msk-injection", "2026-10", 1)]
    assert bot.conn.execute("SELECT claimed_by FROM claims").fetchone()[0] == "Priya Raghunathan"
    # the same form from the command line
    run_cli(home, "template", "--practice", "Z98106", "--out", str(home / "form.xlsx"))
    ws = openpyxl.load_workbook(home / "form.xlsx")["Claim"]
    services = [ws.cell(r, 1).value for r in range(11, ws.max_row + 1) if ws.cell(r, 1).value]
    assert services[0] == "Complex injections (denosumab 60 mg)" and not any("MSK" in s for s in services)


def test_macro_workbook_is_refused_with_a_reason(bot):
    r = bot.ingest(with_file("claim.xlsm", xlsx({"Claim": [["x"]]}), "application/vnd.ms-excel.sheet.macroEnabled.12"))
    assert r["outcome"] == "rejected" and "macro-enabled" in r["errors"][0]["problem"]


# -- the catalogue is data -------------------------------------------------------------
def test_a_new_les_and_a_tariff_change_need_no_code(home, tmp_path):
    cat = tmp_path / "catalogue.toml"
    cat.write_text('''
[[service]]
code = "spirometry"
name = "Spirometry (diagnostic)"
unit = "test"
period = "quarterly"
words = ["spirometry"]
max_count = 500
[[service.tariff]]
from = 2024-04-01
pounds = "15.50"

[[service]]
code = "denosumab"
name = "Complex injections (denosumab 60 mg)"
unit = "injection"
words = ["denosumab"]
snomed = ["700139004"]
max_count = 300
[[service.tariff]]
from = 2020-04-01
pounds = "20.00"
[[service.tariff]]
from = 2026-10-01
pounds = "21.50"
''')
    b = Lesbot(home, catalogue_file=str(cat))
    try:
        b.conn.execute("UPDATE orgs SET services='denosumab;msk-injection;spirometry' WHERE ods_code='Z98101'")
        r = b.ingest(body_claim("Spirometry tests (Q3, August 2026): 7\nMonth: September 2026\n"
                                "Denosumab injections for September 2026: 2\nDenosumab injections for October 2026: 2\n"),
                     received_at=at(2026, 11, 5, 9))
        assert r["outcome"] == "accepted", r
        got = {(a[1], a[2]): a[4] for a in accepted(b)}
        assert got == {("spirometry", "2026-07"): 10850, ("denosumab", "2026-09"): 4000,
                       ("denosumab", "2026-10"): 4300}
    finally:
        b.close()


def test_bad_catalogue_is_a_settings_error(home, tmp_path):
    from bot.settings import config
    cat = tmp_path / "bad.toml"
    cat.write_text('[[service]]\ncode = "x"\nname = "X"\nunit = "u"\nwords = ["x"]\n')
    with pytest.raises(config.ConfigError, match="tariff"):
        config.load(home=home, catalogue_file=str(cat))


# -- for the contract team ----------------------------------------------------------------
def test_payments_export_and_claims_list(bot, home):
    first = bot.ingest(body_claim("Month: October 2026\nDenosumab injections: 10\nMSK no injection consultations: 2\n"),
                       received_at=at(2026, 11, 3, 9))
    assert first["reference"] == case_ref(bot, first)
    bot.conn.execute("UPDATE orgs SET name='=HYPERLINK(\"http://x\")' WHERE ods_code='Z98106'")
    bot.ingest(body_claim("Month: October 2026\nDenosumab injections: 3\n", sender=TRACEY),
               received_at=at(2026, 11, 4, 9))
    out = run_cli(home, "payments", "export", "--run", "2026-11").stdout
    lines = out.lstrip("\ufeff").splitlines()
    assert lines[0] == ("Payment run,Practice,ODS code,Service,Service code,Activity months,Claims,Tariff (£),"
                        "Amount (£),References")
    assert ("2026-11,Meresfield Medical Centre,Z98101,Complex injections (denosumab 60 mg),denosumab,2026-10,10,"
            "20.00,200.00," + first["reference"]) in lines
    import csv as csvmod
    cells = [c for row in csvmod.reader(lines) for c in row]
    assert "'=HYPERLINK(\"http://x\")" in cells and not any(c.startswith("=") for c in cells)  # never a formula
    assert lines[-1] == "Total,,,,,,15,,346.94,"
    run_cli(home, "payments", "export", "--run", "2026-11", "--format", "xlsx", "--out", str(home / "run.xlsx"))
    ws = openpyxl.load_workbook(home / "run.xlsx")["Run 2026-11"]
    name = next(c for row in ws.iter_rows() for c in row if c.value == '=HYPERLINK("http://x")')
    assert name.data_type == "s"        # the practice's "name" stays text, never a formula
    # the only formulas are the Total row's sums
    assert [c.coordinate for row in ws.iter_rows() for c in row if c.data_type == "f"] == \
        [f"E{ws.max_row}", f"G{ws.max_row}"]
    values = openpyxl.load_workbook(home / "run.xlsx", data_only=True)["Run 2026-11"]
    assert values.cell(values.max_row, 7).value == 346.94
    listed = [json.loads(l) for l in run_cli(home, "claims", "list", "--practice", "Z98101", "--json").stdout.splitlines()]
    assert {(d["service"], d["count"]) for d in listed} == {("denosumab", 10), ("msk-injection", 2)}
    assert run_cli(home, "payments", "export", "--run", "2026-13", check=False).returncode == 2


def test_repeated_identical_rows_are_questioned_not_summed(bot):
    csv = b"Service,Month,Number\r\n" + b"Denosumab,Oct-26,1\r\n" * 3 + b"MSK consultation no injection,Oct-26,2\r\n"
    r = bot.ingest(with_file("claim.csv", csv), received_at=at(2026, 11, 5, 9))
    assert r["outcome"] == "partially_accepted"
    assert "appears 3 times" in r["errors"][0]["problem"] and "claim.csv row 2" == r["errors"][0]["field"]
    assert [a[1:4] for a in accepted(bot)] == [("msk-injection", "2026-10", 2)]


def test_a_question_about_a_claim_is_not_a_claim(bot):
    claim = bot.ingest(body_claim("Month: October 2026\nDenosumab injections: 10\n"), received_at=at(2026, 11, 3, 9))
    assert claim["reference"] == case_ref(bot, claim)
    r = bot.ingest(make_msg(sender=PRIYA, subject=f"RE: [{claim['reference']}] Claim accepted",
                            body="Thanks - when will this be paid?"), received_at=at(2026, 11, 3, 10))
    assert (r["kind"], r["outcome"], r["reference"]) == ("enquiry", "rejected", claim["reference"])
    r = bot.ingest(make_msg(sender=PRIYA, subject="October claim", body="Sorry, forgot to attach it"),
                   received_at=at(2026, 11, 3, 11))
    assert (r["kind"], r["outcome"]) == ("claim", "rejected")
    assert "no claim lines" in r["errors"][0]["problem"]
