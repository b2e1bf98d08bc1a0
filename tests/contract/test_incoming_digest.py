"""bot.pipeline.facts works out a message's identity from the body digest it already has (so the
text is hashed once): it must be exactly bot.mail.parse.identity, with or without a Message-ID."""
from __future__ import annotations

from pathlib import Path

import pytest

from bot.mail.parse import body_digest, identity, parse
from bot.pipeline.facts import identity_with

DATA = Path(__file__).resolve().parents[1] / "data"
MAIL = sorted(DATA.rglob("*.eml"))


def test_there_is_mail_to_check():
    assert len(MAIL) > 20


@pytest.mark.parametrize("path", MAIL, ids=lambda p: p.name)
def test_identity_from_the_digest_is_identity(path):
    raw = path.read_bytes()
    p = parse(raw)
    assert identity_with(p, raw, body_digest(p)) == identity(p, raw)
    # the same message without its Message-ID: identified by its content instead
    bare = b"\n".join(line for line in raw.split(b"\n") if not line.lower().startswith(b"message-id:"))
    q = parse(bare)
    assert not q.message_id
    assert identity_with(q, bare, body_digest(q)) == identity(q, bare)


def test_a_different_digest_is_a_different_identity():
    raw = MAIL[0].read_bytes()
    p = parse(raw)
    assert identity_with(p, raw, "0" * 64) != identity(p, raw)
