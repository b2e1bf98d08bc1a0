"""Claims as practices write them (issue 10): the month, service and count recognisers, the claim
reader on .eml files of our own (tests/data/claims-styles/, written by its make.py), and a property
test that writes claims in many random styles and checks that every service named is accounted
for: an accepted line or a listed problem, never dropped."""
from __future__ import annotations

import io
from datetime import date, datetime, timezone
from pathlib import Path

import docx
import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.claims import reader as cp
from handlers.contract.catalogue import load
from store.directory import import_csv
from handlers.contract.reading import months, services
from conftest import Lesbot, at, make_msg, text_of

STYLES = Path(__file__).resolve().parents[1] / "data" / "claims-styles"
CAT = load()
DEC = datetime(2026, 12, 3, 9, tzinfo=timezone.utc)


def accepted(bot):
    return [tuple(r) for r in bot.conn.execute(
        "SELECT org_code, service, month, count FROM claims WHERE state='accepted' ORDER BY id")]


def reply(bot) -> str:
    return text_of(bot.outbox()[-1]["raw"])


@pytest.fixture
def cbot(home):
    b = Lesbot(home)
    import_csv(b.conn, (STYLES / "directory.csv").read_text())
    yield b
    b.close()


# -- months ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, first, last", [
    ("Month of activity: November 2026", "2026-11", "2026-11"),
    ("dmab x 7 for nov thanks", "2026-11", "2026-11"),
    ("for the period 01/11/26-30/11/26:", "2026-11", "2026-11"),
    ("activity month 11/2026", "2026-11", "2026-11"),
    ("Q3 activity (2026/27): 7", "2026-10", "2026-12"),      # NHS financial year: Q1 is April to June
    ("Q2 (Jul-Sep)", "2026-07", "2026-09"),
    ("December's denosumab: 10 x 60mg", "2026-12", "2026-12"),   # no year: the latest December by 3 Dec 2026
    ("claim for last month", "2026-11", "2026-11"),
    ("July to September 2026", "2026-07", "2026-09"),
    ("Sept - 12", "2026-09", "2026-09"),                      # 12 is a count, not 2012
    ("Nov-26: 10", "2026-11", "2026-11"),
])
def test_months_in_text(text, first, last):
    spans = months.find(text, DEC)
    assert spans, text
    assert (f"{spans[0].first:%Y-%m}", f"{spans[0].last:%Y-%m}") == (first, last)


def test_may_the_verb_is_not_a_month_and_last_month_is_judged_in_london():
    assert months.find("This message may contain confidential information", DEC) == []
    # 23:30 UTC on 31 October 2026 is already... still 31 October in London (GMT from 25 October)
    assert months.find("last month", datetime(2026, 10, 31, 23, 30, tzinfo=timezone.utc))[0].first == date(2026, 9, 1)
    # 23:30 UTC on 30 September is 00:30 on 1 October in London (BST): last month is September
    assert months.find("last month", datetime(2026, 9, 30, 23, 30, tzinfo=timezone.utc))[0].first == date(2026, 9, 1)


# -- services and counts --------------------------------------------------------------------------
@pytest.mark.parametrize("text, code", [
    ("dmab x 7", "denosumab"), ("Prolia 60mg inj - 6", "denosumab"), ("Denosumub injectons", "denosumab"),
    ("Jt inj consults (no inj given) - 2", "msk-injection"), ("MSK consultations no injection", "msk-injection"),
    ("complex injections: 3", "denosumab"), ("Zoladex x 3", "other"), ("SNOMED 700139004", "denosumab"),
])
def test_service_names_synonyms_and_typos(text, code):
    assert services.finder(CAT).codes(text)[:1] == [code]


def test_a_word_that_merely_looks_alike_is_not_a_service():
    assert services.finder(CAT).codes("Our receptionist Denise sent the dementia figures") == []


def count_of(text):
    spans = [(s.start, s.end) for s in months.find(text, DEC)]
    svc = [(m.start, m.end) for m in services.finder(CAT).find(text)]
    return services.choose(services.numbers(text, spans, svc), text)[:2]


@pytest.mark.parametrize("text, count, how", [
    ("Complex injections - Denosumab 60mg (SNOMED 700139004): 14 injections", 14, ""),
    ("Denosumab 60mg injections – Nov-26: 10 (was 9)", 10, ""),
    ("were twelve (12) in total, so that's 12 x £25 = £300", 12, ""),
    ("Dmab: main site 11, Moss Lane branch 6", 17, "sum"),
    ("MSK no-inj consults: nil", 0, ""),
    ("before the 3-month cut-off – 4 denosumab injections", 4, ""),
    ("We found five October denosumab jabs", 5, ""),
    ("one of our nurses missed a denosumab injection (ref LES-000006)", None, ""),
    ("Tel: 01632 960101 | Mob: 07700 900118 | NHS 999 000 0018", None, ""),
    ("Denosumab injections: 4 9", None, "ambiguous"),
])
def test_counts_and_numbers_that_are_not_counts(text, count, how):
    assert count_of(text) == (count, how)


def test_thanks_only():
    assert services.is_thanks_only("Brilliant, thank you!\n\nSunita")
    assert not services.is_thanks_only("Thanks - but the November figure should be 12, not 10")
    assert not services.is_thanks_only("Thank you. When will this be paid?")


# -- the reader on whole messages of our own ----------------------------------------------------
def test_forwarded_prose_with_words_for_numbers(bot):
    r = bot.ingest(STYLES / "c01-forwarded-nurse-prose.eml")
    assert r["outcome"] == "accepted", r
    assert accepted(bot) == [("Z98103", "denosumab", "2026-10", 11), ("Z98103", "msk-injection", "2026-10", 2)]
    assert "What lesbot read" in reply(bot)


def test_outlook_table_with_months_as_columns_keeps_empty_cells_empty(bot):
    r = bot.ingest(STYLES / "c02-html-months-as-columns.eml")
    assert r["outcome"] == "accepted", r
    assert sorted(accepted(bot)) == [("Z98101", "denosumab", "2026-08", 3), ("Z98101", "denosumab", "2026-10", 5),
                                     ("Z98101", "msk-injection", "2026-08", 1),
                                     ("Z98101", "msk-injection", "2026-09", 2)]
    assert "'-' is not a number" in reply(bot)


def test_quarter_from_the_subject_for_a_monthly_service(bot):
    r = bot.ingest(STYLES / "c03-quarter-in-words.eml")
    assert r["outcome"] == "accepted", r
    text = reply(bot)
    assert "July to September 2026: 6 x £43.47 = £260.82" in text
    assert "month taken from the subject" in text


def test_last_month_and_signature_numbers(bot):
    r = bot.ingest(STYLES / "c04-last-month-signature.eml")
    assert r["outcome"] == "accepted", r
    assert accepted(bot) == [("Z98106", "denosumab", "2026-11", 6)]
    text = reply(bot)
    assert "'last month' read as November 2026" in text and "did not record them" in text
    assert "999 000 0018" not in text


def test_a_practice_signed_up_for_nothing_is_rejected_clearly(cbot):
    r = cbot.ingest(STYLES / "c05-signed-up-for-nothing.eml")
    assert (r["kind"], r["outcome"]) == ("claim", "rejected"), r
    assert "not signed up for any Local Enhanced Service" in r["errors"][0]["problem"]
    assert accepted(cbot) == []


def test_every_line_gets_its_own_reason(bot):
    r = bot.ingest(STYLES / "c06-mixed-problems.eml")
    assert r["outcome"] == "partially_accepted", r
    assert accepted(bot) == [("Z98101", "denosumab", "2026-10", 4)]
    problems = [e["problem"] for e in r["errors"]]
    assert len(problems) == 4
    joined = " | ".join(problems)
    assert "not a whole number" in joined and "corrected total for that month" in joined
    assert "more than the 200 consultations" in joined
    assert "has not happened yet" in joined
    assert "B12 injections" in joined and "not a service lesbot knows" in joined


def test_typos_and_dashes(bot):
    r = bot.ingest(STYLES / "c07-typos-dash-list.eml")
    assert r["outcome"] == "accepted", r
    assert accepted(bot) == [("Z98103", "denosumab", "2026-10", 7), ("Z98103", "msk-injection", "2026-10", 1)]


def test_a_resend_replaces_the_earlier_claim_and_is_never_paid_twice(bot):
    bot.ingest(make_msg(sender="martin.coles12@nhs.net", subject="claim", body="Oct denosumab: 5"),
               received_at=at(2026, 11, 3, 9))
    r = bot.ingest(make_msg(sender="martin.coles12@nhs.net", subject="corrected claim",
                            body="Sorry, October denosumab should be 6"), received_at=at(2026, 11, 4, 9))
    assert r["outcome"] == "accepted"
    rows = [tuple(x) for x in bot.conn.execute("SELECT month, count, state FROM claims ORDER BY id")]
    assert rows == [("2026-10", 5, "replaced"), ("2026-10", 6, "accepted")]


def test_thanks_in_the_claims_thread_is_ignored_without_a_reply(bot):
    bot.ingest(make_msg(sender="martin.coles12@nhs.net", subject="claim", body="Oct denosumab: 5"),
               received_at=at(2026, 11, 3, 9))
    ack = bot.outbox()[-1]
    thanks = make_msg(sender="martin.coles12@nhs.net", subject="RE: " + ack["subject"],
                      body="Great, many thanks!\n\nMartin\n\n> Oct denosumab: 5 x £20.00 = £100.00")
    thanks["In-Reply-To"] = ack["msgid"]
    r = bot.ingest(thanks, received_at=at(2026, 11, 3, 10))
    assert r["outcome"] == "ignored" and r["reply"] is None
    assert len(bot.outbox()) == 1 and accepted(bot) == [("Z98102", "denosumab", "2026-10", 5)]


def test_claim_letter_as_docx(bot):
    d = docx.Document()
    d.add_paragraph("Dear Sir/Madam, please accept our Local Enhanced Services claim.")
    d.add_paragraph("Claim period: September 2026")
    t = d.add_table(rows=3, cols=3)
    for row, cells in zip(t.rows, [("Service", "Quantity", "Amount"), ("Denosumab 60 mg", "9", "£180.00"),
                                   ("MSK consultation (no injection)", "", "")]):
        for c, v in zip(row.cells, cells):
            c.text = v
    buf = io.BytesIO()
    d.save(buf)
    m = make_msg(subject="LES claim September", body="Please find our claim letter attached.")
    m.add_attachment(buf.getvalue(), maintype="application",
                     subtype="vnd.openxmlformats-officedocument.wordprocessingml.document", filename="claim.docx")
    r = bot.ingest(m, received_at=at(2026, 10, 6, 9))
    assert r["outcome"] == "accepted", r
    assert accepted(bot) == [("Z98101", "denosumab", "2026-09", 9)]


def test_workbook_patient_sheet_is_counted_not_read(bot):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Claim"
    for row in (["Month", datetime(2026, 10, 1)], [], ["Drug", "Qty"], ["Prolia", 2]):
        ws.append(row)
    p = wb.create_sheet("Who")
    for row in (["Patient name", "NHS number", "Date", "Item"], ["A Person", "999 000 0018", datetime(2026, 10, 3),
                                                                 "Denosumab"]):
        p.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    m = make_msg(subject="claim", body="attached")
    m.add_attachment(buf.getvalue(), maintype="application",
                     subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet", filename="oct.xlsx")
    r = bot.ingest(m, received_at=at(2026, 11, 2, 9))
    assert r["outcome"] == "accepted", r
    assert accepted(bot) == [("Z98101", "denosumab", "2026-10", 2)]
    assert "did not record them" in reply(bot)


def test_a_service_named_without_a_number_is_never_silently_dropped(bot):
    r = bot.ingest(make_msg(subject="claim", body="Month: October 2026\nDenosumab injections: 4\n"
                            "We also did some MSK consultations, figures to follow.\n"), received_at=at(2026, 11, 2, 9))
    assert r["outcome"] == "accepted"
    assert "names MSK steroid injection consultation" in reply(bot)
    r = bot.ingest(make_msg(subject="claim", body="Our denosumab for October, see the screenshot."),
                   received_at=at(2026, 11, 2, 10))
    assert r["outcome"] == "rejected" and "gives no number" in r["errors"][0]["problem"]


# -- property: every service named is accounted for ----------------------------------------------
SYN = {code: [w for w in services.lexicon()["services"][code]["synonyms"] if not w.isdigit()]
       for code in ("denosumab", "msk-injection")}
NUMWORDS = {v: k for k, v in services.lexicon()["numbers"]["words"].items() if 1 <= v <= 12 and k != "dozen"}
MONTH_STYLES = [lambda d: f"{d:%B %Y}", lambda d: f"{d:%b-%y}", lambda d: f"{d:%m/%Y}", lambda d: f"{d:%b %Y}",
                lambda d: f"{d:%B}"]
RECEIVED = datetime(2026, 12, 2, 10, tzinfo=timezone.utc)
PAST = [date(2026, 9, 1), date(2026, 10, 1), date(2026, 11, 1)]


@st.composite
def claim_items(draw):
    codes = draw(st.lists(st.sampled_from(["denosumab", "msk-injection"]), min_size=1, max_size=2, unique=True))
    items = []
    for code in codes:
        items.append((code, draw(st.sampled_from(SYN[code])), draw(st.integers(0, 40)),
                      draw(st.sampled_from(PAST)), draw(st.sampled_from(MONTH_STYLES)), draw(st.booleans())))
    layout = draw(st.sampled_from(["label", "dash", "times", "sentence", "table", "heading", "subject"]))
    return items, layout


def _count(n, words):
    return NUMWORDS[n] if words and n in NUMWORDS else str(n)


def write_claim(items, layout):
    subject = "LES claim"
    lines = ["Hello,", ""]
    if layout in ("heading", "subject"):
        # one month for the whole claim, given once
        d, style = items[0][3], items[0][4]
        items = [(c, s, n, d, style, w) for c, s, n, _, _, w in items]
        if layout == "heading":
            lines += [f"Month of activity: {style(d)}", ""]
        else:
            subject = f"LES claim {style(d)}"
    if layout == "table":
        lines += ["Service | Month | Number"]
    for code, syn, n, d, style, words in items:
        m = style(d)
        if layout == "label":
            lines.append(f"{syn.capitalize()} {m}: {_count(n, words)}")
        elif layout == "dash":
            lines.append(f"{m} - {syn} - {_count(n, words)}")
        elif layout == "times":
            lines.append(f"{syn} x {n} for {m}")
        elif layout == "sentence":
            lines.append(f"In {m} we did {_count(n, words)} {syn} appointments.")
        elif layout == "table":
            lines.append(f"{syn} | {m} | {n}")
        else:
            lines.append(f"{syn.capitalize()}: {_count(n, words)}")
    lines += ["", "Thanks", "Sam", "Tel 01632 960999 | Mob 07700 900999"]
    return subject, "\n".join(lines) + "\n", items


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(claim_items())
def test_property_every_service_mention_is_accounted_for(drawn):
    items, layout = drawn
    subject, body, items = write_claim(items, layout)
    ex = cp.from_body(body, CAT, RECEIVED, subject=subject, full_text=body)
    finder = services.finder(CAT)
    # 1. every line of the text that names a service ends as a line or a listed mention
    for n, text in enumerate(body.splitlines(), start=1):
        for code in finder.codes(text):
            assert any(l.where == f"body line {n}" for l in ex.lines) or \
                any(m[1] == f"body line {n}" for m in ex.mentions), (layout, text, ex)
    # 2. and in these plain styles each is read right: service, month and count
    for code, syn, n, d, style, words in items:
        got = [l for l in ex.lines if l.service and l.service.code == code and l.count_text == str(n)]
        assert got, (layout, body, [(l.label, l.count_text, l.month) for l in ex.lines])
        month = got[0].month or (cp.subject_month(subject, RECEIVED).first if layout == "subject" else None)
        assert month == d, (layout, body, got[0])


@pytest.fixture(scope="module")
def shared_bot(tmp_path_factory):
    b = Lesbot(tmp_path_factory.mktemp("prop") / "var")
    yield b
    b.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(claim_items())
def test_property_the_reply_accounts_for_every_line(shared_bot, drawn):
    """End to end: each service written is an accepted line or a listed problem in the answer."""
    items, layout = drawn
    subject, body, items = write_claim(items, layout)
    r = shared_bot.ingest(make_msg(subject=subject, body=body), received_at=RECEIVED)
    if r["outcome"] == "duplicate":
        return      # hypothesis wrote the same claim twice: the first copy was answered
    assert r["kind"] == "claim", r
    lines = {(x[1], x[2]) for x in shared_bot.conn.execute(
        "SELECT org_code, service, month FROM claims WHERE state='accepted' AND message=(SELECT max(id) FROM messages)")}
    for code, syn, n, d, style, words in items:
        assert (code, f"{d:%Y-%m}") in lines or any(e["problem"] for e in r["errors"]), (body, r)


@pytest.mark.parametrize("body, subject, want", [
    ("Dmab 5 / MSK 2\n", "claim Nov", [("denosumab", "2026-11", "5"), ("msk-injection", "2026-11", "2")]),
    ("5 dmab and 2 msk for November\n", "", [("denosumab", "2026-11", "5"), ("msk-injection", "2026-11", "2")]),
    ("Denosumab - Oct 5, Nov 7\n", "", [("denosumab", "2026-10", "5"), ("denosumab", "2026-11", "7")]),
    ("Service\tMonth\tNumber\nDenosumab\tNov-26\t4\nMSK no injection\t\t2\n", "claim Nov 2026",
     [("denosumab", "2026-11", "4"), ("msk-injection", "2026-11", "2")]),
    ("October: Dmab 4, MSK 1\n", "", [("denosumab", "2026-10", "4"), ("msk-injection", "2026-10", "1")]),
    ("MSK – 3 (temp residents, no injections given)\nMonth: Nov\n", "", [("msk-injection", "2026-11", "3")]),
    ("Denosumab injections for the last few months:\nJune - 4\nJuly - 6\n", "",
     [("denosumab", "2026-06", "4"), ("denosumab", "2026-07", "6")]),
])
def test_one_line_several_services_or_months(body, subject, want):
    ex = cp.from_body(body, CAT, DEC, subject=subject, full_text=body)
    got = [(l.service.code, f"{l.month:%Y-%m}" if l.month else None, l.count_text) for l in ex.lines]
    if subject and any(m is None for _, m, _ in got):
        sm = cp.subject_month(subject, DEC).first
        got = [(c, m or f"{sm:%Y-%m}", n) for c, m, n in got]
    assert got == want
