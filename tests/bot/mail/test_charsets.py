"""Bodies in every charset and transfer encoding people send, HTML-only mail, dates."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bot.mail.parse import parse, received_time
from conftest import DATA


def raw_msg(body: bytes, charset: str, cte: str, ctype="text/plain", subject="Claim") -> bytes:
    head = (f"From: Priya <priya.raghunathan3@nhs.net>\r\nTo: ashmeres.les@nhs.net\r\nSubject: {subject}\r\n"
            f"Date: Mon, 5 Oct 2026 08:14:20 +0000\r\nMessage-ID: <cs-{charset}-{cte}@nhs.net>\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: {ctype}; charset=\"{charset}\"\r\n"
            f"Content-Transfer-Encoding: {cte}\r\n\r\n").encode()
    return head + body


@pytest.mark.parametrize("body,charset,cte", [
    (b"Total =A3434.70 =96 thanks", "windows-1252", "quoted-printable"),
    (b"Total \xa3434.70 \x96 thanks", "iso-8859-1", "8bit"),          # latin-1 label, cp1252 bytes
    (b"Total \xc2\xa3434.70 \xe2\x80\x93 thanks", "utf-8", "8bit"),
    (b"VG90YWwgwqM0MzQuNzAg4oCTIHRoYW5rcw==", "utf-8", "base64"),
    (b"Total =C2=A3434.70 =E2=80=93 thanks", "UTF-8", "quoted-printable"),
    (b"Total \xc2\xa3434.70 \xe2\x80\x93 thanks", "x-unknown-charset", "8bit"),   # unknown label: try utf-8
])
def test_body_decodes(bot, body, charset, cte):
    p = parse(raw_msg(body, charset, cte))
    assert "Total £434.70 – thanks" in p.text
    r = bot.ingest(raw_msg(body, charset, cte))
    assert r["outcome"] == "rejected"     # a known sender, understood as far as the core goes


def test_windows_1252_sample_with_split_encoded_subject():
    p = parse((DATA / "05-claim-windows-1252-qp.eml").read_bytes())
    assert "£" in p.text and "\ufffd" not in p.text
    assert p.subject.startswith("Fallowcombe Surgery – MSK injection LES claim")


def test_outlook_html_only_becomes_text_keeping_table_rows():
    p = parse((DATA / "02-claim-outlook-html-only.eml").read_bytes())
    assert "<td" not in p.text and "mso-" not in p.text
    lines = [l for l in p.text.splitlines() if "£" in l]
    assert lines, p.text
    assert p.subject == "Kettlebrook HC – LES claim August 2026"


def test_8bit_utf8_flowed_sample():
    p = parse((DATA / "16-unknown-sender-non-nhs.eml").read_bytes())
    assert "£" in p.text and "\ufffd" not in p.text


def test_received_time_is_topmost_received_header_not_date():
    raw = (DATA / "04-claim-xlsx-attachment.eml").read_bytes()
    assert received_time(raw) == datetime(2026, 10, 10, 23, 14, 9, tzinfo=timezone.utc)


def test_received_time_falls_back_to_date():
    raw = raw_msg(b"hi", "utf-8", "7bit").replace(b"+0000", b"+0100")
    assert received_time(raw) == datetime(2026, 10, 5, 7, 14, 20, tzinfo=timezone.utc)


def test_received_at_option_overrides(home, tmp_path):
    import json
    from conftest import run_cli
    run_cli(home, "directory", "import", str(DATA / "directory.csv"))
    r = run_cli(home, "ingest", "--json", "--no-send", "--received-at", "2026-11-01T09:00:00+0000",
                str(DATA / "01-claim-plain-text.eml"))
    assert json.loads(r.stdout.splitlines()[0])["outcome"] == "accepted"   # September, claimed in November
    from store.db import connect
    c = connect(home / "lesbot.db")
    assert c.execute("SELECT received_at FROM messages").fetchone()[0].startswith("2026-11-01T09:00:00")


def test_new_text_leaves_out_quotes_forwards_and_disclaimer():
    reply = parse((DATA / "09-msk-outcome-reply-no-injection.eml").read_bytes())
    assert "consultation only" in reply.new_text
    assert "LES-000042" in reply.text and "Referral received" not in reply.new_text
    reminder = parse((DATA / "06-claim-reply-to-reminder-several-months.eml").read_bytes())
    assert "Sept - 8" in reminder.new_text and "due by" not in reminder.new_text.lower()
    claim = parse((DATA / "01-claim-plain-text.eml").read_bytes())
    assert "ODS code: Z98101" in claim.new_text and "NHSmail is the secure" not in claim.new_text
    forwarded = parse((DATA / "08-msk-referral-forwarded.eml").read_bytes())
    assert "Forwarding the referral below" in forwarded.new_text
    assert "999" not in forwarded.new_text and "999" in forwarded.text    # the referral is in the forward
