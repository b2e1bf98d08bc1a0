"""Inter-practice referrals for MSK steroid joint injections, and what follows them.

A new referral (body, forwarded chain, DOCX/PDF form; one or several patients)
gets one reference per patient. Complete ones are passed to the receiving
practice; incomplete ones wait for a reply that supplies what is missing. The
receiving practice's outcome makes a no-injection consultation payable activity.
Patient details go only to directory addresses, never into a subject.

Here: which messages are referrals or replies about them. new.py, followup.py and
the modules beside them decide what they mean.
"""
from __future__ import annotations

import re

from handlers import casework
from handlers.base import Context, Decision, could_say
from handlers.contract.periods import london
from handlers.contract.reading import patient
from handlers.referrals.followup import followup
from handlers.referrals.new import new_referrals
from handlers.referrals.outcome_reading import outcome_kind, read_outcomes
from handlers.referrals.outcomes import people
from handlers.referrals.reader import extract
from store import referrals as store

name = "referrals"
REFERRAL = re.compile(r"\b(?:refer\w*|re-refer\w*|(?:could|can|would|please)\b.{0,60}\bsee\b)", re.I)
INJECTION = re.compile(r"\b(inject|steroid|joint)", re.I)
OTHER_SERVICE = re.compile(r"\b(denosumab|prolia|xgeva|d-?mab|complex injections?)\b", re.I)


def match(ctx: Context) -> tuple | None:
    """("followup", referrals) for outcomes of earlier referrals, ("new", referrals, text) for new
    ones, else None."""
    if ctx.org is None or ctx.org.kind != "practice":
        return None
    if ctx.case_id is not None:
        linked = _linked(ctx)
        if linked:
            return ("followup", linked)
    text = casework.letter_text(ctx)
    head = ctx.parsed.subject + "\n" + text
    if not could_say(head, "inject", "steroid", "joint") or not INJECTION.search(head) \
            or OTHER_SERVICE.search(head):
        return None
    if not REFERRAL.search(head) and not (patient.nhs_numbers(text) or patient.dates_of_birth(text)):
        return None
    # outcomes sent as a new message (no thread): patients this practice was sent, named by NHS number
    reported = _reported_outcomes(ctx)
    if reported:
        return ("followup", reported)
    on = london(ctx.received_at).date()
    refs = extract(text, on, ctx.parsed.subject)
    return ("new", refs, text) if refs else None


def handle(ctx: Context, found: tuple) -> Decision:
    what, *rest = found
    if what == "new":
        return new_referrals(ctx, *rest)
    return followup(ctx, rest[0])


def _reported_outcomes(ctx: Context) -> list:
    """Forwarded referrals to the sender's practice whose NHS numbers the new text gives, when it
    reads as outcomes (seen / injection given / consultation only / did not attend)."""
    text = ctx.parsed.new_text
    if not outcome_kind(text):
        return []
    numbers = patient.valid_nhs_numbers(text)
    if not numbers:
        return []
    return store.forwarded_to_with_numbers(ctx.conn, ctx.org.ods_code, numbers)


def _linked(ctx: Context) -> list:
    """Referrals the message answers: its case, or others opened by the same email (those the text
    names, by LES reference, NHS number or name; else the case itself)."""
    conn = ctx.conn
    rows = store.referral_and_siblings(conn, ctx.case_id)
    named = {int(n) for n in re.findall(r"LES-(\d{6,})", ctx.parsed.new_text)}
    if named & {r["id"] for r in rows}:
        rows = [r for r in rows if r["id"] in named]
    elif len(rows) > 1:
        mentioned = read_outcomes(ctx.parsed.new_text, people(rows))
        rows = [r for r in rows if r["id"] in mentioned] or [r for r in rows if r["id"] == ctx.case_id] or rows
    code = ctx.org.ods_code
    return [r for r in rows if code in (r["referrer_code"], r["receiving_code"], r["registered_code"])
            or store.case_opened_by(conn, r["id"], code)]
