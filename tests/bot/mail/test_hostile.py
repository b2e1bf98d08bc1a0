"""Issue 11: hostile and malformed mail ends in a named state, and never reaches our own headers."""
from __future__ import annotations

import email
import json

from conftest import DATA, make_msg, run_cli

from bot.mail.parse import normalise_message_id, parse
from bot.mail.compose import build


def nested(depth: int) -> bytes:
    head = (b"From: priya.raghunathan3@nhs.net\r\nTo: ashmeres.les@nhs.net\r\nSubject: nested\r\n"
            b"Message-ID: <nested-%d@nhs.net>\r\nDate: Mon, 5 Oct 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n" % depth)
    body = b""
    for i in range(depth):
        body += b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
    body += b"Content-Type: text/plain\r\n\r\nhello\r\n"
    for i in reversed(range(depth)):
        body += b"--b%d--\r\n" % i
    return head + body


def test_a_thousand_nested_parts_do_not_end_an_ingest_run(home, tmp_path):
    run_cli(home, "directory", "import", str(DATA / "directory.csv"))
    folder = tmp_path / "mail"
    folder.mkdir()
    (folder / "a.eml").write_bytes(nested(1000))
    (folder / "b.eml").write_bytes(make_msg(subject="after it", body="When is the payment run?").as_bytes())
    out = run_cli(home, "ingest", "--json", str(folder)).stdout.splitlines()
    results = [json.loads(line) for line in out]
    assert len(results) == 2
    assert results[0]["outcome"] in ("failed", "quarantined", "rejected")
    assert results[1]["outcome"] == "rejected" and results[1]["kind"] == "enquiry"


def test_an_encoded_message_id_never_puts_a_line_break_in_our_reply(bot):
    raw = (b"From: priya.raghunathan3@nhs.net\r\nTo: ashmeres.les@nhs.net\r\nSubject: q\r\n"
           b"Message-ID: <=?utf-8?q?x@y=0D=0AX-Injected:_yes=0D=0ABcc:_victim@example.org?=>\r\n"
           b"References: <ok-1@nhs.net> <=?utf-8?q?a=0Db@c?=>\r\n"
           b"Date: Mon, 5 Oct 2026 09:00:00 +0000\r\n\r\nWhen is the payment run?\r\n")
    bot.ingest(raw)
    (reply,) = bot.outbox()
    head = reply["raw"].split(b"\r\n\r\n", 1)[0]
    m = email.message_from_bytes(reply["raw"])
    assert m["X-Injected"] is None and m["Bcc"] is None
    assert b"\r" not in head.replace(b"\r\n", b"")
    assert all(ord(c) < 128 for c in head.decode("latin-1"))


def test_message_ids_we_would_copy_are_checked():
    assert normalise_message_id("<abc@nhs.net>") == "abc@nhs.net"
    assert normalise_message_id("<a\r\nb@c>") == "ab@c"              # folding whitespace is not part of it
    assert normalise_message_id("<a b@c>") == ""
    assert normalise_message_id("<caf\u00e9@nhs.net>") == ""
    assert normalise_message_id("<" + "x" * 300 + "@c>") == ""
    p = parse(b"Message-ID: <\xc3\xa9@x>\r\nFrom: a@nhs.net\r\n\r\nhi\r\n")
    assert p.message_id == ""


def test_build_drops_ids_it_cannot_copy_safely(bot):
    _, raw = build(bot.settings, to="a@nhs.net", subject="s", text="t", html="<p>t</p>", ref="LES-000001",
                   in_reply_to="x\r\nBcc: v@e.org", references=["ok@nhs.net", "bad\rid"])
    m = email.message_from_bytes(raw)
    assert m["In-Reply-To"] is None and m["Bcc"] is None


def test_ingest_delivers_every_reply_not_just_the_first_two_hundred(home, tmp_path):
    rows = ["ods_code,name,kind,emails,services"] + [
        f"Y{90000 + i:05d},Practice {i},practice,practice{i}@nhs.net,denosumab" for i in range(210)]
    (tmp_path / "dir.csv").write_text("\n".join(rows) + "\n")
    run_cli(home, "directory", "import", str(tmp_path / "dir.csv"))
    folder = tmp_path / "mail"
    folder.mkdir()
    for i in range(210):
        (folder / f"{i:03d}.eml").write_bytes(make_msg(sender=f"practice{i}@nhs.net", body=f"Question {i}?").as_bytes())
    run_cli(home, "ingest", str(folder))
    queued = [json.loads(x) for x in run_cli(home, "outbox", "list", "--state", "queued", "--json").stdout.splitlines()]
    assert queued == []
    sent = run_cli(home, "outbox", "list", "--state", "sent", "--limit", "1000").stdout.splitlines()
    assert len(sent) == 1 + 210          # the header row, then one line per reply


PID = ("999 035 6793", "9990356793", "999-035-6793", "03/06/1958")


def junk_attachments() -> list[tuple[str, str, str, bytes]]:
    """Damaged files of every kind lesbot reads, each carrying a patient's details where a
    library's complaint would quote them."""
    import io
    import zipfile
    pid = b"Patient 999 035 6793 DOB 03/06/1958 NHS 9990356793"
    pdf = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
           b"trailer << /Root 1 0 R /Info (" + pid + b") /Size 999-035-6793 >>\nstartxref\n9990356793\n%%EOF\n")
    bad_zip = io.BytesIO()
    with zipfile.ZipFile(bad_zip, "w") as z:
        z.writestr("[Content_Types].xml", b"<Types " + pid + b">")
        z.writestr("word/document.xml", b"<w:document>" + pid)
        z.writestr("xl/workbook.xml", b"<workbook>" + pid)
    return [("application", "pdf", "letter.pdf", pdf),
            ("application", "vnd.openxmlformats-officedocument.wordprocessingml.document", "form.docx",
             bad_zip.getvalue()),
            ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet", "claim.xlsx", bad_zip.getvalue()),
            ("text", "csv", "claim.csv", b"Service,Count\n" + pid + b",\"unclosed\n\x00\xff"),
            ("application", "zip", "bundle.zip", bad_zip.getvalue()[:-30])]


def test_no_patient_details_reach_the_log_from_damaged_attachments(home, tmp_path):
    run_cli(home, "directory", "import", str(DATA / "directory.csv"))
    folder = tmp_path / "mail"
    folder.mkdir()
    for i, (maintype, subtype, name, data) in enumerate(junk_attachments()):
        for sender, subject in (("agh.metabolicbone@nhs.net", "Denosumab transfer letter"),
                                ("priya.raghunathan3@nhs.net", "LES claim and joint injection referral")):
            m = make_msg(sender=sender, subject=subject, body="Please see attached.")
            m.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
            (folder / f"{i}-{sender[:4]}.eml").write_bytes(m.as_bytes())
    r = run_cli(home, "-v", "ingest", "--json", str(folder))
    results = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(results) == 10 and all(x["outcome"] for x in results)
    for pid in PID:
        assert pid not in r.stderr, f"{pid} in the log:\n{r.stderr[-2000:]}"


def test_the_log_filter_masks_numbers_and_dates_in_messages_and_tracebacks():
    import logging
    from bot.settings.logs import Scrub
    try:
        int("999 035 6793")
    except ValueError:
        import sys
        rec = logging.LogRecord("x", logging.ERROR, __file__, 1, "bad %s on %s", ("9990356793", "03/06/1958"),
                                sys.exc_info())
    Scrub().filter(rec)
    text = logging.Formatter().format(rec)
    assert "bad [number] on [date]" in text and "999 035 6793" not in text and "Traceback" in text


def test_a_spool_file_made_anew_never_matches_messages_moved_from_the_old_one(home):
    """Issue 11, item 10: spool.db deleted while lesbot.db is kept; its ids restart at 1."""
    from conftest import INBOX
    from bot.settings import config
    from bot.mail.intake import _values, move_spooled, open_spool, spool_path
    from store.spool import SPOOL_INSERT
    from store.db import open_db
    s = config.load(home=home, inbox=INBOX)
    conn = open_db(s.db_path)
    for n in range(2):
        spool = open_spool(spool_path(s))
        spool.execute(SPOOL_INSERT, _values(make_msg(body=f"message {n}").as_bytes(), "smtp", None, "", INBOX, None))
        assert move_spooled(spool, conn) == 1
        spool.close()
        for suffix in ("", "-wal", "-shm"):
            p = spool_path(s).with_name("spool.db" + suffix)
            if p.exists():
                p.unlink()
    assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 2
    conn.close()


def test_a_practices_words_quoted_back_stay_in_the_reply_not_in_the_record_or_the_digest(home, tmp_path):
    """Issue 11, item 2: rejected claim lines are stored and shown to the contract team without the
    practice's own text; only the reply to that practice quotes it."""
    from conftest import Lesbot, at, text_of
    b = Lesbot(home)
    try:
        body = ("Month: September 2026\nDenosumab 60mg injections: 4\n"
                "Desmond PRYCE 999 035 6793 flu jab: 3\n")
        r = b.ingest(make_msg(sender="priya.raghunathan3@nhs.net", subject="LES claim", body=body),
                     received_at=at(2026, 10, 5, 9))
        assert r["outcome"] == "partially_accepted"
        reply = text_of(b.outbox()[-1]["raw"])
        assert "PRYCE" in reply                       # the practice sees what it wrote, to fix it
        reasons = " ".join(x[0] or "" for x in b.conn.execute("SELECT reason FROM claims"))
        errors = " ".join(x[0] or "" for x in b.conn.execute("SELECT errors FROM messages"))
        for record in (reasons, errors):
            assert "PRYCE" not in record and "999 035 6793" not in record and "9990356793" not in record
        assert "not stored" in reasons
    finally:
        b.close()
    from datetime import datetime, timedelta
    # the daily digest covers the day before its time: ask two hours on (London may be UTC+1), so the message
    # processed just now is inside it whatever the clock says
    soon = (datetime.now() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    digest = run_cli(home, "digest", "--period", "day", "--dry-run", "--now", soon).stdout
    assert "not stored" in digest
    assert "PRYCE" not in digest and "999 035 6793" not in digest


def test_a_decision_that_overruns_is_stopped_for_real_and_the_next_message_goes_on(serve, home):
    """Issue 11, item 6: a thread cannot be stopped, so the worker process that ran an overrunning
    decision ends once the overrun is recorded, and `serve` starts a fresh one."""
    import smtplib
    import sys
    from pathlib import Path
    from conftest import wait_for
    from store.db import connect
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
    import hostile
    srv = serve({"LESBOT_LIMITS__HANDLER_TIMEOUT_SECONDS": "0.3"})
    heavy = make_msg(subject="LES claim", body="Our claim is attached.")
    heavy.add_attachment(hostile._xlsx(20_000), maintype="application", subtype=hostile.XLSX,
                         filename="claim.xlsx")             # 20,000 rows: well over 0.3 s to read
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.send_message(heavy)
    db = connect(home / "lesbot.db")
    first = wait_for(lambda: db.execute("SELECT state, error FROM messages WHERE state!='received'").fetchone(),
                     timeout=60)
    assert first["state"] == "failed" and "longer than" in first["error"]
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.send_message(make_msg(subject="after it", body="When is the next payment run?"))
    assert wait_for(lambda: db.execute("SELECT count(*) FROM messages WHERE state='rejected' AND kind='enquiry'")
                    .fetchone()[0] == 1, timeout=60)
    log = (home / "serve.log").read_text()
    assert "restarting the worker" in log and "starting a new one" in log
