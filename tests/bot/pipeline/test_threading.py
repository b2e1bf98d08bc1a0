"""Issue 10, principles 1 and 7: thread before classifying, and dedup on what identifies a message.

Real .eml files in tests/data/threading (Thunderbird and list-server styles) and messages built
here as Outlook and Apple Mail write replies.
"""
from __future__ import annotations

from conftest import DATA, at, make_msg, text_of

from bot.mail.parse import latest_reply
from handlers.contract.reading.courtesy import is_courtesy

HERE = DATA / "threading"
PRIYA = "priya.raghunathan3@nhs.net"          # Meresfield MC, Z98101
MERESFIELD = "ashmeres.meresfieldmc@nhs.net"
LORRAINE = "lorraine.bishop@nhs.net"          # Kettlebrook HC, Z98103
CLAIM = "Practice code: Z98101\nMonth: September 2026\nDenosumab 60mg injections: 6\n\nThanks, Priya\n"


def replies(bot, to):
    return [o for o in bot.outbox() if o["to_addr"] == to]


# -- principle 7: dedup ---------------------------------------------------------------
def test_exchange_redelivery_with_new_trace_headers_is_a_duplicate_and_not_answered(bot):
    first = bot.ingest(HERE / "enquiry-thunderbird.eml")
    again = bot.ingest(HERE / "enquiry-thunderbird-redelivered.eml")
    assert first["outcome"] != "duplicate"
    assert again["outcome"] == "duplicate" and bot.row(again["id"])["duplicate_of"] == first["id"]
    assert len(replies(bot, LORRAINE)) == 1


def test_same_message_id_with_other_words_is_not_a_duplicate(bot):
    # a client that reuses a Message-ID for different content must not lose the second message
    m = make_msg(sender=PRIYA, mid="<reused-1@nhs.net>", subject="Question", body="When is the payment run?")
    n = make_msg(sender=PRIYA, mid="<reused-1@nhs.net>", subject="Question", body="Where do I send the form?")
    assert bot.ingest(m)["outcome"] != "duplicate"
    assert bot.ingest(n)["outcome"] != "duplicate"


def test_the_same_claim_resent_under_a_new_message_id_is_told_it_was_already_received(bot):
    first = bot.ingest(make_msg(sender=PRIYA, subject="Claim", body=CLAIM), received_at=at(2026, 10, 5, 9))
    assert first["outcome"] == "accepted"
    again = bot.ingest(make_msg(sender=PRIYA, subject="Claim", body=CLAIM), received_at=at(2026, 10, 5, 15))
    assert again["outcome"] == "duplicate" and again["reference"] == first["reference"]
    told = text_of(replies(bot, PRIYA)[-1]["raw"])
    assert "already received" in told and first["reference"] in told
    n = bot.conn.execute("SELECT count(*) FROM claims WHERE state='accepted'").fetchone()[0]
    assert n == 1


def test_a_resend_days_later_is_read_again(bot):
    bot.ingest(make_msg(sender=PRIYA, subject="Claim", body=CLAIM), received_at=at(2026, 10, 2, 9))
    later = bot.ingest(make_msg(sender=PRIYA, subject="Claim", body=CLAIM), received_at=at(2026, 10, 5, 9))
    assert later["outcome"] != "duplicate"


# -- principle 1: thread before classifying --------------------------------------------
def test_a_reply_all_to_the_referrers_own_message_threads_by_references(bot):
    """The receiving practice answers the referral it was copied on: References carries the
    referring practice's Message-ID, which lesbot stored, not one lesbot sent."""
    r = bot.ingest("07-msk-referral-plain.eml")
    original = bot.row(r["id"])["message_id"]
    out = make_msg(sender=MERESFIELD, subject="RE: injection referral",
                   body="Seen 29/09/2026: consultation only, no injection given.\n\nMeresfield reception")
    out["In-Reply-To"] = "<never-seen-by-lesbot@nhs.net>"
    out["References"] = f"<{original}> <never-seen-by-lesbot@nhs.net>"
    got = bot.ingest(out, received_at=at(2026, 9, 30, 9))
    assert got["reference"] == r["reference"]
    assert got["kind"] == "referral_outcome" and got["outcome"] == "accepted"


def test_a_reference_in_the_quoted_text_threads_for_the_same_practice_only(bot):
    claim = bot.ingest(make_msg(sender=PRIYA, subject="Claim", body=CLAIM), received_at=at(2026, 10, 5, 9))
    quoted = (f"Lovely, thank you.\n\nPriya\n\n-----Original Message-----\nFrom: LES inbox\n"
              f"Subject: [{claim['reference']}] Claim accepted\n")
    mine = bot.ingest(make_msg(sender=MERESFIELD, subject="your email", body=quoted))
    assert (mine["kind"], mine["outcome"], mine["reference"]) == ("thanks", "ignored", claim["reference"])
    theirs = bot.ingest(make_msg(sender=LORRAINE, subject="your email", body=quoted))
    assert theirs["reference"] != claim["reference"]        # Kettlebrook is not in that case


def test_thanks_in_a_thread_is_recorded_against_its_case_and_not_answered(bot):
    claim = bot.ingest(make_msg(sender=PRIYA, subject="Claim", body=CLAIM), received_at=at(2026, 10, 5, 9))
    ack = replies(bot, PRIYA)[-1]
    thanks = make_msg(sender=PRIYA, subject="Re: " + ack["subject"],
                      body="Great, many thanks!\n\nPriya\nMeresfield Medical Centre\nTel 01632 960111\n\n"
                           "On 5 Oct 2026, at 09:00, LES inbox <ashmeres.les@nhs.net> wrote:\n> Claim accepted\n")
    thanks["In-Reply-To"] = ack["msgid"]
    r = bot.ingest(thanks)
    assert (r["kind"], r["outcome"], r["reference"]) == ("thanks", "ignored", claim["reference"])
    assert len(replies(bot, PRIYA)) == 1


def test_thanks_with_something_to_act_on_is_read(bot):
    bot.ingest(make_msg(sender=PRIYA, subject="Claim", body=CLAIM), received_at=at(2026, 10, 5, 9))
    ack = replies(bot, PRIYA)[-1]
    more = make_msg(sender=PRIYA, subject="Re: " + ack["subject"],
                    body="Thanks - but could you check the count? We think it was wrong.\n\nPriya")
    more["In-Reply-To"] = ack["msgid"]
    r = bot.ingest(more)
    assert r["outcome"] != "ignored"
    assert len(replies(bot, PRIYA)) == 2


def test_thanks_outside_any_thread_is_still_answered(bot):
    r = bot.ingest(make_msg(sender=PRIYA, subject="thanks", body="Thank you!\n\nPriya"))
    assert r["outcome"] != "ignored" and replies(bot, PRIYA)


def test_a_list_bulletin_from_outside_the_directory_is_ignored_without_a_reply(bot):
    r = bot.ingest(HERE / "bulletin-list.eml")
    assert (r["kind"], r["outcome"]) == ("list", "ignored")
    assert bot.outbox() == []


# -- the new text and the courtesy reader -----------------------------------------------
def test_latest_reply_stops_at_each_clients_marker():
    outlook = "Noted, thanks\n\nSam\n\n________________________________\nFrom: LES inbox <a@nhs.net>\nSent: today\n"
    owa = "Please add 2 more.\n\nFrom: LES inbox <a@nhs.net>\nSent: 05 October 2026 09:00\nTo: x\n"
    apple = "Cheers!\n\nOn 5 Oct 2026, at 09:00, LES inbox <a@nhs.net> wrote:\n\n> accepted\n"
    classic = "See the corrected count.\n-----Original Message-----\nFrom: LES\n"
    assert latest_reply(outlook) == "Noted, thanks\n\nSam"
    assert latest_reply(owa) == "Please add 2 more."
    assert latest_reply(apple) == "Cheers!"
    assert latest_reply(classic) == "See the corrected count."


def test_courtesy_is_only_thanks_with_nothing_else():
    assert is_courtesy("Thanks very much!\n\nJo\nReception")
    assert is_courtesy("Received, thank you.\n\nKind regards\nDr A Smith\nTel 01632 960000")
    assert not is_courtesy("Thanks, 7 for November")
    assert not is_courtesy("Thank you. Is the rate the same next year?")
    assert not is_courtesy("Thanks - please cancel the referral for Mrs Y.")
    assert not is_courtesy("Hello, how do I claim for the last quarter")
