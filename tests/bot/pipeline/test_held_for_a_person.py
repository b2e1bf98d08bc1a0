"""Issue 10, principle 5: when unsure, ask a person, not the sender — and one command settles it."""
from __future__ import annotations

import email
import json
from email import policy

from conftest import DATA, run_cli

KETTLEBROOK = "kettlebrook.hc@nhs.net"      # Z98103
HIGHMERE = "highmere.practice@nhs.net"      # Z98104, the practice sample 11's letter names


def conflicting_letter(tmp_path):
    """Sample 11's letter (it names Highmere), copied to Kettlebrook instead."""
    m = email.message_from_bytes((DATA / "11-denosumab-letter-in-body.eml").read_bytes(), policy=policy.default)
    del m["Cc"]
    m["Cc"] = KETTLEBROOK
    path = tmp_path / "conflict.eml"
    path.write_bytes(m.as_bytes())
    return path


def test_a_letter_whose_practice_conflicts_is_held_shown_and_settled_by_one_command(home, tmp_path):
    run_cli(home, "directory", "import", str(DATA / "directory.csv"))
    got = json.loads(run_cli(home, "ingest", "--json", str(conflicting_letter(tmp_path))).stdout.splitlines()[0])
    assert got["outcome"] == "quarantined"
    (held,) = [json.loads(line) for line in run_cli(home, "quarantine", "list", "--json").stdout.splitlines()]
    got["id"] = held["id"]
    shown = run_cli(home, "quarantine", "show", str(got["id"])).stdout
    assert "Highmere Practice (Z98104) (named in the letter)" in shown
    assert "Kettlebrook Health Centre (Z98103) (copied in)" in shown
    assert "--set practice=" in shown
    as_json = json.loads(run_cli(home, "quarantine", "show", str(got["id"]), "--json").stdout)
    assert as_json["reading"]["practice candidates"] and as_json["why"][0]["field"] == "practice"

    bad = run_cli(home, "quarantine", "release", str(got["id"]), "--set", "practice=Z00000", check=False)
    assert bad.returncode != 0 and "not in the directory" in bad.stderr
    run_cli(home, "quarantine", "release", str(got["id"]), "--set", "practice=z98104")
    listed = [json.loads(line) for line in run_cli(home, "register", "list", "--json").stdout.splitlines()]
    assert [r["practice"] for r in listed] == ["Z98104"]
    to = [json.loads(line)["to_addr"] for line in run_cli(home, "outbox", "list", "--json").stdout.splitlines()]
    assert HIGHMERE in to and KETTLEBROOK not in to
    after = json.loads(run_cli(home, "quarantine", "show", str(got["id"]), "--json").stdout)
    assert after["state"] == "accepted" and after["hints"] == {"practice": "Z98104"}
