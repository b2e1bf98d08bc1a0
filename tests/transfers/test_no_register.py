"""Denosumab claims while lesbot holds no register for the practice (the first months of the
contract): the reconciliation says there is nothing to compare with, not that the claim is
implausible. Judged per practice: another practice's transfer letters say nothing about this one."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from handlers.clock import digest
from conftest import Lesbot, at, make_msg, run_cli

PRIYA = "priya.raghunathan3@nhs.net"          # Meresfield, Z98101
HIGHMERE = "joanne.ferris2@nhs.net"           # Highmere, Z98104


def _flags(home, as_of):
    return [json.loads(x) for x in run_cli(home, "reconcile", "--as-of", as_of, "--json").stdout.splitlines()]


def _claim(bot, sender, code, month, n, when):
    r = bot.ingest(make_msg(sender=sender, subject="LES claim",
                            body=f"Practice: {code}\nMonth: {month}\nDenosumab injections: {n}\n"), received_at=when)
    assert r["outcome"] == "accepted", r["errors"]


def test_no_register_is_said_plainly_per_practice(home):
    b = Lesbot(home, contract_team="contract.team@nhs.net")
    try:
        _claim(b, PRIYA, "Z98101", "January 2027", 7, at(2027, 2, 3, 9))
        _claim(b, PRIYA, "Z98101", "February 2027", 5, at(2027, 3, 3, 9))
        flags = _flags(home, "2027-03-05")
        mine = [f for f in flags if f["ods_code"] == "Z98101"]
        assert {f["kind"] for f in mine} == {"no_register"}
        assert {(f["period"], f["claimed"]) for f in mine} == {("2027-01", 7), ("2027-02", 5)}
        assert all("no denosumab register entries for this practice" in f["detail"] for f in mine)

        # Highmere's letter starts the register, for Highmere only
        b.ingest("11-denosumab-letter-in-body.eml")        # one patient, dose due 18/02/2027
        _claim(b, HIGHMERE, "Z98104", "February 2027", 3, at(2027, 3, 5, 9))
        flags = _flags(home, "2027-03-05")
        kinds = {(f["kind"], f["ods_code"], f["period"]) for f in flags}
        assert ("implausible_claim", "Z98104", "2027-02") in kinds
        assert ("no_register", "Z98101", "2027-02") in kinds
        assert not [f for f in flags if f["kind"] == "implausible_claim" and f["ods_code"] == "Z98101"]

        # corrected (a second claim for the month replaces the first) to what the register expects
        _claim(b, HIGHMERE, "Z98104", "February 2027", 1, at(2027, 3, 5, 10))
        assert not [f for f in _flags(home, "2027-03-05") if f["ods_code"] == "Z98104"
                    and f["kind"] in ("implausible_claim", "no_register")]

        # the digest says it once per practice, with the months it covers
        d = digest.run(b.settings, b.conn, datetime.now(timezone.utc) + timedelta(minutes=1), "day", dry_run=True)
        rows = [ln for ln in d["text"].splitlines() if ln.strip().startswith("no register")]
        assert len(rows) == 1 and "Z98101" in rows[0] and "2027-01 to 2027-02" in rows[0]
        assert "12 injections claimed for 2 months" in rows[0]
        assert "implausible" not in rows[0]
    finally:
        b.close()
