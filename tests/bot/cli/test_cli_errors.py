"""Issue 12, for the people who run lesbot: every command, given bad input of each kind, ends in
one line of error and a non-zero exit, never a traceback; list commands have a header row and
--json; misspelt LESBOT_* variables are named; files that are not email are skipped; `serve`
says why it cannot listen and logs what it does without naming a patient.

The walk goes over `main.commands` recursively, so a new command is covered as soon as it
exists: a required parameter or a text option this file does not know makes the walk fail and
say which, so whoever adds it also says how it can go wrong."""
from __future__ import annotations

import contextlib
import io
import json
import logging
import smtplib
import socket
import sqlite3
import subprocess
import time
from importlib.metadata import version
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from bot.cli.main import main
from conftest import DATA, INBOX, LESBOT, Lesbot, cli_env, make_msg, run_cli, wait_for
from handlers.contract.references import reference

ROOT = Path(__file__).resolve().parents[3]
NOT_A_PRACTICE = "ZZ999"

# How each parameter goes wrong, by its name: (a value that passes, [values that must be refused]).
# A value of None for "passes" means the parameter is optional and left out when others are tested.
PARAMS: dict[str, tuple[list[str] | None, list[str]]] = {
    "quarter": (["2026Q3"], ["2026Q9", "third quarter"]),
    "year": (["2026"], ["x", "1999", "20266"]),
    "address": (["nobody@nhs.net"], ["nobody@nhs.net"]),       # an address that is not suppressed
    "file": ([str(DATA / "directory.csv")], ["/no/such/directory.csv"]),
    "paths": ([str(DATA / "17-nhsmail-exchange-full-headers.eml")], ["/no/such/mail.eml"]),
    "msg_id": (["1"], ["999", "x", "0", "99999999999999999999"]),
    "outbox_id": (["1"], ["999", "x", "-3"]),
    "run": (["2026-10"], ["2026-13", "Octobre"]),
    "runs": (["2026-10"], ["2026-13"]),
    "reference": (["LES-000001"], ["LES-999999", "banana", "LES-99999999999999999999"]),
    "practice": (["Z98101"], [NOT_A_PRACTICE]),
    "org": (None, [NOT_A_PRACTICE]),
    "sets": (None, ["practice", f"practice={NOT_A_PRACTICE}"]),
    "out": (["{tmp}/out.file"], ["/no/such/folder/out.file"]),
    "month": (None, ["2026-13", "Octobre", "13/2026"]),
    "state": (None, ["bogus"]),
    "kind": (None, ["bogus"]),
    "due_before": (None, ["31/02/2027", "soon"]),
    "as_of": (None, ["2026-13-01", "tomorrow"]),
    "now_s": (None, ["tomorrow", "0001-01-01T00:00"]),
    "received_at": (None, ["yesterday"]),
    "smtp_host": (None, ["no.such.host.invalid"]),
    "smtp_port": (None, ["x", "0", "70000"]),
    "wake_fd": (None, ["x", "-1"]),
    "ready_fd": (None, ["x", "-1"]),
    "mail_wake_fd": (None, ["x", "-1"]),
    "role": (None, ["everything"]),
    "nice": (None, ["x", "20"]),
    "limit": (None, ["x", "0"]),
    "fmt": (None, ["nonsense"]),
    "period": (None, ["nonsense"]),
    "service": (None, ["nonsense"]),
}
NO_DATABASE = {("check-config",)}      # settings only: a broken home is not its problem
SLOW = {("serve",), ("worker",)}       # would run on if an input were wrongly taken: a subprocess with a timeout


def leaves(group: click.Group, path=()):
    for name, cmd in sorted(group.commands.items()):
        if isinstance(cmd, click.Group):
            yield from leaves(cmd, path + (name,))
        else:
            yield path + (name,), cmd


def _flag(p: click.Parameter) -> list[str]:
    return [p.opts[0]] if isinstance(p, click.Option) else []


def _fill(values: list[str], tmp: Path) -> list[str]:
    return [v.replace("{tmp}", str(tmp)) for v in values]


def required_args(cmd: click.Command, tmp: Path, leave_out: str | None = None) -> list[str]:
    args = []
    for p in cmd.params:
        if not p.required or p.name == leave_out:
            continue
        good = PARAMS.get(p.name, (None, []))[0]
        assert good, f"tests/test_cli_errors.py: give PARAMS[{p.name!r}] a value that passes (for {cmd.name})"
        args += _flag(p) + _fill(good, tmp)
    return args


def cases(tmp: Path, broken_toml: Path, a_file: Path):
    """(id, command path, args, env) for every command and every kind of bad input."""
    out = []
    for path, cmd in leaves(main):
        name = " ".join(path)
        good = required_args(cmd, tmp)
        out.append((f"{name}: unknown option", path, [*path, *good, "--no-such-option"], {}, "--no-such-option"))
        out.append((f"{name}: broken lesbot.toml", path, [*path, *good], {"LESBOT_CONFIG": str(broken_toml)},
                    f"{broken_toml}, line 3"))
        out.append((f"{name}: missing settings file", path, [*path, *good],
                    {"LESBOT_CONFIG": str(tmp / "missing.toml")}, "missing.toml: no such file"))
        out.append((f"{name}: bad setting", path, [*path, *good], {"LESBOT_SMTP_PORT": "seventy"},
                    "LESBOT_SMTP_PORT"))
        if path not in NO_DATABASE:
            out.append((f"{name}: home is a file", path, [*path, *good], {"LESBOT_HOME": str(a_file)},
                        "cannot open the database"))
        for p in cmd.params:
            if p.required:
                out.append((f"{name}: without {p.name}", path, [*path, *required_args(cmd, tmp, leave_out=p.name)],
                            {}, "Missing"))
            if isinstance(p, click.Option) and p.is_flag:
                continue
            if p.name not in PARAMS:
                pytest.fail(f"tests/test_cli_errors.py: say in PARAMS how {p.name!r} of `lesbot {name}` goes wrong")
            for bad in PARAMS[p.name][1]:
                args = [*path, *required_args(cmd, tmp, leave_out=p.name), *_flag(p), bad]
                out.append((f"{name}: {p.name}={bad}", path, args, {}, bad))
    return out


@pytest.fixture(scope="module")
def walk_home(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("walk")
    home = tmp / "var"
    run_cli(home, "directory", "import", str(DATA / "directory.csv"))
    codes = [json.loads(x)["ods_code"] for x in run_cli(home, "directory", "list", "--json").stdout.splitlines()]
    assert "Z98101" in codes and NOT_A_PRACTICE not in codes
    broken = tmp / "lesbot.toml"
    broken.write_text('inbox = "les@nhs.net"\n[limits]\nreplies_per_sender_per_day = = 3\n')
    a_file = tmp / "not-a-folder"
    a_file.write_text("x")
    return tmp, home, broken, a_file


@pytest.fixture(autouse=True)
def _keep_logging():
    """`lesbot` points the root logger at the stream of the moment; CliRunner's is gone after."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    yield
    root.handlers[:] = saved
    root.setLevel(level)


def run(path, args, env, home, timeout=60):
    full = {**cli_env(home), **env}          # cli_env leaves out any LESBOT_CONFIG of the caller's
    if path in SLOW:
        r = subprocess.run([*LESBOT, *args], env=full, capture_output=True, text=True, cwd=ROOT, timeout=timeout)
        return r.returncode, r.stdout + r.stderr, None
    # In-process: the same click group the `lesbot` script runs, far quicker than a process per case.
    with contextlib.chdir(ROOT):
        r = CliRunner().invoke(main, args, env={"LESBOT_CONFIG": None, **full})
    return r.exit_code, r.output, r.exception


def assert_one_line_error(code, output, exc, must_show=None):
    assert code != 0, f"exit 0:\n{output}"
    assert exc is None or isinstance(exc, SystemExit), f"escaped: {exc!r}"
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1, f"not one error line:\n{output}"
    rest = [line for line in lines if not line.startswith("Error: ")]
    # or a usage error: click's usage line and its hint, then the error
    assert rest == [] or (len(rest) == 2 and rest[0].startswith("Usage: ") and rest[1].startswith("Try '")
                          and lines[-1] == errors[0]), output
    if must_show:
        assert must_show in errors[0], f"{must_show!r} not in {errors[0]!r}"


def test_every_command_refuses_bad_input_in_one_line(walk_home):
    tmp, home, broken, a_file = walk_home
    all_cases = cases(tmp, broken, a_file)
    commands = {c[1] for c in all_cases}
    assert len(commands) == len(list(leaves(main))) and len(commands) > 25
    failures = []
    for case_id, path, args, env, must_show in all_cases:
        code, output, exc = run(path, args, env, home)
        try:
            assert_one_line_error(code, output, exc, must_show)
        except AssertionError as e:
            failures.append(f"--- {case_id}: lesbot {' '.join(args)}\n{e}")
    assert not failures, f"{len(failures)} of {len(all_cases)} cases:\n" + "\n".join(failures)


def test_a_broken_database_and_an_unexpected_error_are_one_line_too(tmp_path):
    home = tmp_path / "var"
    b = Lesbot(home)
    b.ingest(make_msg())
    b.conn.execute("UPDATE messages SET errors='{not json'")      # damaged by hand
    b.conn.execute("DROP TABLE events")
    b.close()
    code, output, exc = run(("messages", "list"), ["messages", "list", "--json"], {}, home)
    assert_one_line_error(code, output, exc, "internal error (JSONDecodeError")
    log = (home / "errors.log").read_text()
    assert "Traceback" in log and "json" in log          # the detail is kept for whoever fixes it
    code, output, exc = run(("events",), ["events"], {}, home)
    assert_one_line_error(code, output, exc, "database problem: no such table: events")


def test_a_toml_syntax_error_names_the_file_and_line(home, tmp_path):
    toml = tmp_path / "lesbot.toml"
    toml.write_text('inbox = "les@nhs.net"\n\n[relay]\nhost = "smtp.example.nhs.uk\nport = 25\n')
    r = run_cli(home, "check-config", check=False, env_extra={"LESBOT_CONFIG": str(toml)})
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "Traceback" not in r.stderr
    assert f"{toml}, line 4" in r.stderr and "TOML syntax error" in r.stderr


def test_a_misspelt_setting_in_the_file_gets_a_suggestion(home, tmp_path):
    toml = tmp_path / "lesbot.toml"
    toml.write_text('[limits]\nreplies_per_sendr_per_day = 3\n')
    r = run_cli(home, "check-config", check=False, env_extra={"LESBOT_CONFIG": str(toml)})
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
    assert "did you mean limits.replies_per_sender_per_day?" in r.stderr and str(toml) in r.stderr


def test_version_comes_from_the_installed_package(home):
    r = run_cli(home, "--version")
    assert r.stdout.strip() == f"lesbot {version('lesbot')}"


def test_a_misspelt_environment_variable_is_named_with_what_was_meant(home):
    r = run_cli(home, "check-config", env_extra={"LESBOT_INBXO": "other@nhs.net", "LESBOT_IMAP__PASWORD": "pw",
                                                 "LESBOT_NOTHING_LIKE_IT": "1"})
    warnings = r.stderr.strip().splitlines()
    assert len(warnings) == 3
    assert any("LESBOT_INBXO" in w and "did you mean LESBOT_INBOX?" in w for w in warnings)
    assert any("LESBOT_IMAP__PASWORD" in w and "did you mean LESBOT_IMAP__PASSWORD?" in w for w in warnings)
    assert any("LESBOT_NOTHING_LIKE_IT" in w and "did you mean" not in w for w in warnings)
    cfg = json.loads(r.stdout)                      # ignored, and lesbot still starts
    assert cfg["inbox"] == INBOX and cfg["imap"]["password"] == ""
    # names lesbot's own tools read, and well-spelt settings, are not warned about
    r = run_cli(home, "check-config", env_extra={"LESBOT_OAUTH_CLIENT_ID": "x", "LESBOT_IMAP__PASSWORD": "pw",
                                                 "LESBOT_ROUTES": "{}"})
    assert r.stderr == "" and json.loads(r.stdout)["imap"]["password"] == "***"


def _png() -> bytes:
    import struct
    import zlib
    raw = b"\x00\xff\x00\x00"
    chunk = lambda kind, data: (struct.pack(">I", len(data)) + kind + data +          # noqa: E731
                                struct.pack(">I", zlib.crc32(kind + data)))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _xlsx() -> bytes:
    from openpyxl import Workbook
    wb = Workbook()
    wb.active.append(["Practice", "Denosumab"])
    wb.active.append(["Z98101", 4])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_files_that_are_not_email_are_skipped_and_nothing_is_stored(home, tmp_path):
    run_cli(home, "directory", "import", str(DATA / "directory.csv"))
    folder = tmp_path / "in"
    folder.mkdir()
    not_mail = {"claim.xlsx": _xlsx(), "scan.png": _png(), "empty.eml": b"", "blob": bytes(range(256)) * 8,
                "notes.txt": b"Remember to chase Meresfield.\n\nThanks\n"}
    for name, data in not_mail.items():
        (folder / name).write_bytes(data)
    real = folder / "real.eml"
    real.write_bytes(make_msg(body="When is the payment run?").as_bytes())
    r = run_cli(home, "ingest", "--json", "--no-send", *(str(folder / n) for n in not_mail), str(real), check=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert [json.loads(line)["outcome"] for line in r.stdout.splitlines()] == ["rejected"]
    for name in not_mail:
        line, = [x for x in r.stderr.splitlines() if x.startswith(str(folder / name) + ":")]
        assert "not an email message" in line and "skipped" in line
    db = sqlite3.connect(home / "lesbot.db")
    assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 1         # nothing else stored
    # text mode: the summary says so too; only email: exit 0
    r = run_cli(home, "ingest", "--no-send", str(folder / "scan.png"), check=False)
    assert r.returncode == 1 and r.stdout.strip() == "nothing ingested; 1 file skipped (see above)"
    assert run_cli(home, "ingest", "--no-send", str(DATA / "01-claim-plain-text.eml")).returncode == 0


def test_ingest_says_how_many_replies_the_daily_cap_held_back(home, tmp_path):
    run_cli(home, "directory", "import", str(DATA / "directory.csv"))
    for i in range(5):
        (tmp_path / f"{i}.eml").write_bytes(make_msg(body=f"Question {i}: when is the payment run?").as_bytes())
    files = [str(tmp_path / f"{i}.eml") for i in range(5)]
    env = {"LESBOT_LIMITS__REPLIES_PER_SENDER_PER_DAY": "2"}
    r = run_cli(home, "ingest", "--no-send", *files[:4], env_extra=env)
    assert r.stdout.strip() == ("rejected: 4; 2 replies held back: an address reached the daily cap of 2 "
                                "(limits.replies_per_sender_per_day)")
    r = run_cli(home, "ingest", "--json", "--no-send", files[4], env_extra=env)
    assert json.loads(r.stdout)["reply"] is None and "1 reply held back" in r.stderr
    # under the cap, nothing is said
    r = run_cli(home, "ingest", "--no-send", str(DATA / "01-claim-plain-text.eml"))
    assert "held back" not in r.stdout + r.stderr


# -- list commands ---------------------------------------------------------------------------------
LISTS = {("directory", "list"): [], ("messages", "list"): ["--limit", "1000"], ("quarantine", "list"): [],
         ("outbox", "list"): ["--limit", "1000"], ("bounces", "list"): [], ("claims", "list"): ["--all"],
         ("referrals", "list"): [], ("register", "list"): [], ("events",): [], ("reminders",): [],
         ("reconcile",): ["--as-of", "2026-11-30"]}
NOT_LISTS = {("ingest",), ("remind",), ("quarantine", "show"), ("activity",), ("audit",)}   # their own outputs


def _hard_bounce(reply) -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@relay.nhs.net>\r\nTo: lesbot-bounces@nhs.net\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <bounce-1@relay.nhs.net>\r\n"
        "Date: Mon, 5 Oct 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; relay.nhs.net\r\n\r\n"
        f"Final-Recipient: rfc822; {reply['to_addr']}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: <{reply['msgid']}>\r\nSubject: {reply['subject']}\r\n\r\n--b--\r\n").encode()


@pytest.fixture(scope="module")
def busy_home(tmp_path_factory):
    """A home with something in every list: the sample mail, a hard bounce, an untoward event, reminders."""
    from conftest import at
    home = tmp_path_factory.mktemp("busy") / "var"
    b = Lesbot(home, clinical_governance="governance.lead@example.nhs.uk", contract_team="contract.team@nhs.net")
    for p in sorted(DATA.glob("*.eml")):
        b.ingest(p.name)
    b.ingest(_hard_bounce(b.outbox()[0]), envelope_from="")
    # sample 11 put this (fictional) patient on Highmere's register
    b.ingest(make_msg(sender="highmere.practice@nhs.net", subject="Denosumab patient",
                      body="Sadly the patient NHS 999 960 9058 died on 20/11/2026 after an emergency admission."),
             received_at=at(2026, 11, 21, 9, 0))
    b.close()
    run_cli(home, "remind", "--now", "2026-11-03T09:00", "--no-send",
            env_extra={"LESBOT_CONTRACT_TEAM": "contract.team@nhs.net"})
    return home


def test_every_list_command_is_known_here():
    with_json = {path for path, cmd in leaves(main) if any(p.name == "as_json" for p in cmd.params)}
    listing = {path for path, _ in leaves(main) if path[-1] == "list"}
    assert listing <= with_json, f"list commands without --json: {listing - with_json}"
    assert with_json - NOT_LISTS == set(LISTS), "add the new list command to LISTS (or NOT_LISTS)"


@pytest.mark.parametrize("path", sorted(LISTS), ids=" ".join)
def test_list_commands_have_a_header_row_and_json(busy_home, path):
    args = [*path, *LISTS[path]]
    text = run_cli(busy_home, *args).stdout.split("\n\n")[0].splitlines()     # reminders: job runs follow
    objs = [json.loads(line) for line in run_cli(busy_home, *args, "--json").stdout.splitlines()]
    assert objs, f"nothing in {' '.join(path)}: the fixture should fill it"
    header = text[0].split()
    assert header == [w.upper() for w in header] and all(any(c.isalpha() for c in w) for w in header), text[0]
    assert len(text) == 1 + len(objs)
    # columns line up under the header: each header word starts where its column does
    starts = [text[0].index(w) for w in text[0].split("  ") if w.strip()]
    assert starts == sorted(starts)
    if path == ("messages", "list"):
        assert all(isinstance(o["errors"], list) for o in objs) and any(o["errors"] for o in objs)
    if path == ("bounces", "list"):
        assert objs[0]["email"] and "hard bounce" in objs[0]["reason"]


def test_an_empty_list_says_so_on_stderr_and_prints_nothing(home):
    run_cli(home, "directory", "import", str(DATA / "directory.csv"))
    r = run_cli(home, "claims", "list", "--month", "2026-10")
    assert r.stdout == "" and "no claim lines" in r.stderr
    assert run_cli(home, "claims", "list", "--json").stdout == ""


def test_a_month_without_a_year_is_the_latest_one_as_in_a_claim(busy_home):
    from datetime import datetime
    from zoneinfo import ZoneInfo
    today = datetime.now(ZoneInfo("Europe/London")).date()
    year = today.year if today.month >= 10 else today.year - 1
    r = run_cli(busy_home, "claims", "list", "--month", "October", "--json")
    assert f"reading --month 'October' as {year}-10" in r.stderr
    assert all(json.loads(x)["month"] == f"{year}-10" for x in r.stdout.splitlines())


def test_quarters_are_read_in_the_usual_spellings(busy_home):
    seen = run_cli(busy_home, "referrals", "list", "--quarter", "2026Q3", "--json").stdout
    assert seen and run_cli(busy_home, "referrals", "list", "--quarter", "q3 2026", "--json").stdout == seen
    q4 = run_cli(busy_home, "referrals", "list", "--quarter", "2026-Q4", "--json").stdout
    assert q4 and not set(q4.splitlines()) & set(seen.splitlines())
    assert run_cli(busy_home, "referrals", "list", "--quarter", "Q1 2025", "--json").stdout == ""


def test_months_are_read_as_claims_name_them(busy_home):
    by_key = [json.loads(x)["id"] for x in run_cli(busy_home, "claims", "list", "--month", "2026-09", "--json")
              .stdout.splitlines()]
    assert by_key
    for spelling in ("Sep 2026", "September 2026", "09/2026", "sep-26"):
        r = run_cli(busy_home, "claims", "list", "--month", spelling, "--json")
        assert [json.loads(x)["id"] for x in r.stdout.splitlines()] == by_key, spelling
        assert "as 2026-09" in r.stderr


# -- serve -----------------------------------------------------------------------------------------
def test_serve_on_a_port_in_use_says_so_in_one_line(home):
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    port = held.getsockname()[1]
    try:
        r = subprocess.run([*LESBOT, "serve", "--smtp-port", str(port)], env=cli_env(home), capture_output=True,
                           text=True, cwd=ROOT, timeout=60)
    finally:
        held.close()
    assert r.returncode == 1 and r.stdout == "" and "Traceback" not in r.stderr
    assert r.stderr.strip() == (f"Error: port {port} on 127.0.0.1 is in use (is lesbot already running?): "
                                f"stop it or choose another port with --smtp-port or smtp_port")


def test_serve_logs_its_settings_and_each_message_without_naming_anyone(serve, home):
    srv = serve({"LESBOT_IMAP__PASSWORD": "s3cret-pw", "LESBOT_RELAY__OAUTH2_TOKEN_COMMAND": "fetch --key k3y"})
    m = make_msg(subject="Mrs Hartwell's injection", body="How do I claim?")
    with smtplib.SMTP("127.0.0.1", srv.port) as s:
        s.send_message(m)
    log_path = home / "serve.log"

    def done():
        with contextlib.closing(sqlite3.connect(home / "lesbot.db")) as db:
            return db.execute("SELECT id, case_id FROM messages WHERE state != 'received'").fetchone()
    msg_id, case_id = wait_for(done, timeout=30)
    deadline = time.time() + 30
    while time.time() < deadline and f"message {msg_id}:" not in log_path.read_text():
        time.sleep(0.2)
    srv.stop()
    log = log_path.read_text()
    start, = [line for line in log.splitlines() if "starting:" in line]
    assert " INFO " in start and f"smtp_port={srv.port}" in start and f"inbox={INBOX}" in start
    assert "imap.password=***" in start and "relay.oauth2_token_command=***" in start
    assert "s3cret-pw" not in log and "k3y" not in log
    line, = [x for x in log.splitlines() if f"message {msg_id}:" in x]
    assert " INFO " in line and "kind=enquiry" in line and "outcome=rejected" in line
    assert f"reference={reference(case_id)}" in line and "reply=@nhs.net" in line
    assert "Hartwell" not in log and "priya.raghunathan3" not in log
