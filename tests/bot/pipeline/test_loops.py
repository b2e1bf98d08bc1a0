"""Issue 11, item 9: machine mail in any language, and a responder that answers every reply at once."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from conftest import make_msg

PRIYA = "priya.raghunathan3@nhs.net"


def answer_to(out_row, body, subject=None, sender=PRIYA):
    m = make_msg(sender=sender, subject=subject or "RE: " + out_row["subject"], body=body)
    m["In-Reply-To"] = f"<{out_row['msgid']}>"
    m["References"] = f"<{out_row['msgid']}>"
    return m


@pytest.mark.parametrize("subject", [
    "Abwesenheitsnotiz: [LES-000001] How to write to the LES inbox",
    "Réponse automatique : [LES-000001] How to write to the LES inbox",
    "Respuesta automática: consulta",
    "AW: Automatische Antwort: Ihre Nachricht",
    "Out of Office - back Monday",
    "Automatisch antwoord: uw bericht",
])
def test_out_of_office_subjects_in_other_languages_are_ignored(bot, subject):
    r = bot.ingest(make_msg(sender=PRIYA, subject=subject, body="Ich bin bis 12.10. nicht im Büro."))
    assert (r["outcome"], r["kind"]) == ("ignored", "auto_reply")
    assert bot.outbox() == []


@pytest.mark.parametrize("subject,kind", [
    ("Read: [LES-000001] Claim accepted", "read_receipt"),
    ("Delivered: [LES-000001] Claim accepted", "read_receipt"),
    ("Gelesen: Ihre Nachricht", "read_receipt"),
    ("Undeliverable: [LES-000001] Claim accepted", "bounce"),
    ("Unzustellbar: Ihre Nachricht", "bounce"),
])
def test_plain_text_receipts_and_non_delivery_notices_are_ignored(bot, subject, kind):
    r = bot.ingest(make_msg(sender=PRIYA, subject=subject, body="Your message was read on 5 October 2026."))
    assert (r["outcome"], r["kind"]) == ("ignored", kind)
    assert bot.outbox() == []


def test_a_human_subject_that_starts_like_a_receipt_is_read(bot):
    r = bot.ingest(make_msg(sender=PRIYA, subject="Read - new claim form question", body="How do I claim?"))
    assert r["outcome"] != "ignored"


def test_an_out_of_office_said_only_in_the_body_of_a_reply_to_us_is_ignored(bot):
    bot.ingest(make_msg(sender=PRIYA, subject="Question", body="When is the payment run?"))
    (ours,) = bot.outbox()
    ooo = answer_to(ours, "Hello, I am on annual leave and will return on Monday 12 October.\n"
                          "For anything urgent please call reception.\n\nPriya")
    r = bot.ingest(ooo)
    assert (r["outcome"], r["kind"]) == ("ignored", "auto_reply")
    assert len(bot.outbox()) == 1


def test_a_naive_responder_is_held_after_two_quick_answers_and_spends_few_replies(bot):
    """It answers every mail from lesbot within a second, with words that are not a plain thanks."""
    bot.ingest(make_msg(sender=PRIYA, subject="Question", body="When is the payment run?"),
               received_at=datetime.now(timezone.utc))
    outcomes = []
    for i in range(6):
        last = bot.outbox()[-1]
        r = bot.ingest(answer_to(last, f"Message {i} received by the Meresfield mailbox system. Ticket 55{i}."),
                       received_at=datetime.now(timezone.utc))
        outcomes.append((r["outcome"], r["kind"]))
        if r["outcome"] == "quarantined":
            break
    assert outcomes[-1] == ("quarantined", "auto_responder")
    assert len(outcomes) == 3
    assert len(bot.outbox()) == 3              # the first reply and two to the responder, then silence


def test_replies_after_a_day_are_not_quick_answers(bot):
    bot.ingest(make_msg(sender=PRIYA, subject="Question", body="When is the payment run?"))
    for i in range(4):
        last = bot.outbox()[-1]
        r = bot.ingest(answer_to(last, f"Another question {i}: where is the form?"),
                       received_at=datetime(2030, 1, 1 + i, tzinfo=timezone.utc))
        assert r["kind"] != "auto_responder"
