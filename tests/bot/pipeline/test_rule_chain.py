"""The rule chain (bot/pipeline/rules.py): named rules, one line each, run in order; each rule's
check() on a hand-built message stored in a real database, and the chain through the pipeline."""
from __future__ import annotations

from bot.mail.intake import store
from bot.mail.parse import received_time
from bot.pipeline.facts import Incoming
from bot.pipeline.rules import RULES, LOOP_HEADER
from conftest import make_msg
from store import messages


def _incoming(bot, msg, envelope_from=None):
    raw = msg.as_bytes()
    new_id = store(bot.conn, raw, "file", received_time(raw), envelope_from, None, None)
    return Incoming(bot.settings, bot.conn, messages.for_processing(bot.conn, new_id), bot.pipeline.vetter)


def _by_name():
    return {r.name: r for r in RULES}


def test_every_rule_has_its_own_name_and_a_one_line_description():
    names = [r.name for r in RULES]
    assert len(names) == len(set(names))
    for r in RULES:
        assert r.description.strip() and "\n" not in r.description and callable(r.check)


def test_machine_mail_comes_before_the_sender_is_looked_at_and_the_thread_before_the_content():
    names = [r.name for r in RULES]
    assert names[0] == "duplicate"
    assert max(names.index(n) for n in ("loop", "bounce", "read_receipt", "auto_reply")) < names.index("sender")
    assert names.index("sender") < names.index("unknown_sender") < names.index("thread")
    assert names.index("thread") < names.index("attachments_refused") < names.index("thanks")


def test_a_plain_question_from_a_known_sender_passes_every_rule(bot):
    m = _incoming(bot, make_msg())
    assert [r.name for r in RULES if r.check(m) is not None] == []
    assert m.facts.org_code is not None and m.facts.case_id is None


def test_the_loop_rule_ignores_our_own_mail_and_names_why(bot):
    m = _incoming(bot, make_msg(extra={LOOP_HEADER: "1"}))
    d = _by_name()["loop"].check(m)
    assert (d.outcome, d.kind) == ("ignored", "loop") and LOOP_HEADER in d.errors[0]["problem"]


def test_the_unknown_sender_rule_holds_a_stranger_but_not_a_released_message(bot):
    m = _incoming(bot, make_msg(sender="stranger@example.org"))
    _by_name()["sender"].check(m)
    d = _by_name()["unknown_sender"].check(m)
    assert (d.outcome, d.kind) == ("quarantined", "unknown_sender")
    assert "stranger@example.org is not in the directory" in d.errors[0]["problem"]
    m.released = True
    assert _by_name()["unknown_sender"].check(m) is None


def test_the_duplicate_rule_points_at_the_first_copy_once_it_is_decided(bot):
    msg = make_msg()
    first = bot.ingest(msg)
    m = _incoming(bot, msg)
    d = _by_name()["duplicate"].check(m)
    assert d.outcome == "duplicate" and m.facts.duplicate_of == first["id"]
