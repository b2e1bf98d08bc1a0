"""The `lesbot` command as an operator uses it: help, settings, directory, ingest."""
from __future__ import annotations

import email
import json
import mailbox

import pytest

from conftest import DATA, make_msg, outbox_files, run_cli
from handlers.contract.references import reference

def _all_commands(group=None, path=()):
    """Every group and command of `lesbot`, found by walking the click group (new ones included)."""
    from bot.cli.main import main
    group = group or main
    yield list(path)
    for name, cmd in sorted(group.commands.items()):
        if hasattr(cmd, "commands"):
            yield from _all_commands(cmd, path + (name,))
        else:
            yield list(path + (name,))


@pytest.mark.parametrize("args", list(_all_commands()), ids=lambda a: " ".join(a) or "lesbot")
def test_every_command_explains_itself(home, args):
    import logging
    from click.testing import CliRunner
    from bot.cli.main import main
    root = logging.getLogger()
    saved = root.handlers[:]          # `lesbot` points logging at CliRunner's stream, gone after
    try:
        r = CliRunner().invoke(main, [*args, "--help"], env={"LESBOT_HOME": str(home)})
    finally:
        root.handlers[:] = saved
    assert r.exit_code == 0 and "Usage: " in r.output and len(r.output.splitlines()) > 3


def test_wrong_setting_is_a_clear_error_at_start(home):
    r = run_cli(home, "serve", check=False, env_extra={"LESBOT_SMTP_PORT": "seventy"})
    assert r.returncode != 0 and "smtp_port" in r.stderr and "Traceback" not in r.stderr
    r = run_cli(home, "check-config", check=False, env_extra={"LESBOT_INBOX": "not-an-address"})
    assert r.returncode == 1 and "inbox: Value error, 'not-an-address' is not an email address" in r.stderr


def test_settings_file_and_env(home, tmp_path):
    toml = tmp_path / "lesbot.toml"
    toml.write_text('inbox = "les@nhs.net"\n[limits]\nreplies_per_sender_per_day = 7\n[imap]\nfolder = "LES"\n')
    r = run_cli(home, "check-config", env_extra={"LESBOT_CONFIG": str(toml), "LESBOT_INBOX": "env@nhs.net"})
    cfg = json.loads(r.stdout)
    assert cfg["inbox"] == "env@nhs.net"          # environment beats the file
    assert cfg["limits"]["replies_per_sender_per_day"] == 7 and cfg["imap"]["folder"] == "LES"
    toml.write_text("[limits]\nreplies_per_sender_per_day = -1\nno_such_setting = 1\n")
    r = run_cli(home, "check-config", check=False, env_extra={"LESBOT_CONFIG": str(toml)})
    assert r.returncode == 1 and "replies_per_sender_per_day" in r.stderr and "no_such_setting" in r.stderr


def test_example_settings_file_is_valid(home):
    from pathlib import Path
    example = Path(__file__).resolve().parents[3] / "lesbot.example.toml"
    r = run_cli(home, "check-config", env_extra={"LESBOT_CONFIG": str(example)})
    assert json.loads(r.stdout)["limits"]["max_message_bytes"] == 35 * 1024 * 1024


def test_directory_reimport_updates_never_duplicates(home, tmp_path):
    assert "9 added" in run_cli(home, "directory", "import", str(DATA / "directory.csv")).stdout
    changed = (DATA / "directory.csv").read_text().replace("Highmere Practice,", "Highmere Medical Practice,")
    changed = changed.replace("joanne.ferris2@nhs.net", "joanne.ferris2@nhs.net;new.secretary@nhs.net")
    (tmp_path / "d.csv").write_text(changed)
    assert "0 added, 9 updated" in run_cli(home, "directory", "import", str(tmp_path / "d.csv")).stdout
    orgs = [json.loads(l) for l in run_cli(home, "directory", "list", "--json").stdout.splitlines()]
    assert len(orgs) == 9
    high = next(o for o in orgs if o["ods_code"] == "Z98104")
    assert high["name"] == "Highmere Medical Practice" and "new.secretary@nhs.net" in high["emails"]


def test_directory_import_reports_bad_rows(home, tmp_path):
    (tmp_path / "bad.csv").write_text("ods_code,name,kind,emails,services\nZ9,X,surgery,nope,\n")
    r = run_cli(home, "directory", "import", str(tmp_path / "bad.csv"), check=False)
    assert r.returncode == 1
    assert "line 2" in r.stderr and "kind must be" in r.stderr and "not an email address" in r.stderr


def test_ingest_json_contract_on_all_samples(home):
    run_cli(home, "directory", "import", str(DATA / "directory.csv"))
    files = sorted(str(p) for p in DATA.glob("*.eml"))
    r = run_cli(home, "ingest", "--json", *files, env_extra={"LESBOT_INBOX": "ashmeres.les@nhs.net"})
    objs = [json.loads(l) for l in r.stdout.splitlines()]
    assert len(objs) == len(files)
    for o in objs:
        assert set(o) == {"message_id", "kind", "outcome", "reference", "errors", "reply"}
        assert o["outcome"] in {"accepted", "partially_accepted", "rejected", "quarantined", "ignored",
                                "duplicate", "failed"}
        assert all(set(e) == {"field", "problem"} for e in o["errors"])
    by_file = dict(zip((f.rsplit("/", 1)[1][:2] for f in files), objs))
    assert by_file["13"]["outcome"] == "ignored" and by_file["14"]["outcome"] == "ignored"
    assert by_file["16"]["outcome"] == "quarantined" and by_file["18"]["outcome"] == "quarantined"
    assert by_file["17"]["reply"]["to"] == "lorraine.bishop@nhs.net"
    # ingest delivers at its end unless --no-send; referrals also pass a copy on (a notice)
    sent = [email.message_from_bytes(p.read_bytes()) for p in outbox_files(home)]
    assert sum(1 for m in sent if m["Auto-Submitted"] == "auto-replied") == sum(1 for o in objs if o["reply"])
    assert all(m["Auto-Submitted"] == "auto-generated" for m in sent if m["Auto-Submitted"] != "auto-replied")
    # replay: every message is a duplicate, nothing new is sent
    again = [json.loads(l) for l in run_cli(home, "ingest", "--json", *files).stdout.splitlines()]
    assert {o["outcome"] for o in again} == {"duplicate"}
    assert len(outbox_files(home)) == len(sent)


def test_ingest_maildir_and_mbox(home, tmp_path):
    run_cli(home, "directory", "import", str(DATA / "directory.csv"))
    md = mailbox.Maildir(str(tmp_path / "Maildir"), create=True)
    box = mailbox.mbox(str(tmp_path / "archive.mbox"), create=True)
    for i in range(3):
        md.add(make_msg(subject=f"maildir {i}").as_bytes())
        box.add(make_msg(sender="kwame.osei4@nhs.net", subject=f"mbox {i}", body=f"From here on {i}").as_bytes())
    box.flush()
    r = run_cli(home, "ingest", "--json", "--no-send", str(tmp_path / "Maildir"), str(tmp_path / "archive.mbox"))
    objs = [json.loads(l) for l in r.stdout.splitlines()]
    assert [o["outcome"] for o in objs] == ["rejected"] * 6
    assert outbox_files(home) == []          # --no-send
    listing = run_cli(home, "outbox", "list").stdout
    assert listing.count("queued") == 6
    assert "6 sent" in run_cli(home, "outbox", "flush").stdout
    assert len(outbox_files(home)) == 6


def test_ingest_missing_path(home):
    r = run_cli(home, "ingest", "/no/such/file.eml", check=False)
    assert r.returncode == 1 and "no such file" in r.stderr


def test_messages_show_has_history_and_reply(home):
    run_cli(home, "directory", "import", str(DATA / "directory.csv"))
    got, = run_cli(home, "ingest", "--json", str(DATA / "17-nhsmail-exchange-full-headers.eml")).stdout.splitlines()
    ref = json.loads(got)["reference"]
    stored, = [json.loads(l) for l in run_cli(home, "messages", "list", "--json").stdout.splitlines()]
    assert stored["reference"] == ref
    d = json.loads(run_cli(home, "messages", "show", str(stored["id"])).stdout)
    assert d["id"] == stored["id"] and reference(d["case_id"]) == ref
    assert d["state"] == "rejected" and d["history"][0]["action"] == "rejected"
    assert d["replies"][0]["state"] == "sent"
    raw = run_cli(home, "messages", "show", str(stored["id"]), "--raw").stdout
    assert "Query - denosumab for a temporary resident" in raw
    assert ref in run_cli(home, "messages", "list").stdout
