"""A new referral: one reference per patient. Complete ones are passed to the receiving practice;
incomplete ones wait for a reply; one sent again while incomplete replaces the old one; one already
passed on is a duplicate."""
from __future__ import annotations

from datetime import date, timedelta

from handlers import casework
from handlers.base import Context, Decision, Reply, error
from handlers.contract import nhs
from handlers.contract.periods import london
from handlers.contract.references import reference
from handlers.referrals.assess import Assessed, assess
from handlers.referrals.forward import pass_on, referrer_email, tail
from handlers.referrals.reader import PATIENT_KEYS, Referral
from store import referrals as store
from store.db import audit, reserve_case_ids, utcnow


def new_referrals(ctx: Context, refs: list[Referral], text: str) -> Decision:
    conn = ctx.conn
    on = london(ctx.received_at).date()
    copied = casework.copied_orgs(conn, ctx.parsed)
    items = [assess(conn, r, on, ctx.org, text, copied) for r in refs]
    held = [a for a in items if a.conflict]
    if held:
        # conflicting evidence: a person decides, the sender is not asked
        return Decision("quarantined", "referral_unclear", [error("practice", a.conflict) for a in held])
    _find_earlier(conn, items)
    fresh = [a for a in items if not a.duplicate_of and not a.replaces]
    earlier = [a.replaces or a.duplicate_of for a in items if a.replaces or a.duplicate_of]
    ids = _number(ctx, fresh)
    fresh += [a for a in items if a.replaces]
    for a in fresh:
        a.referrer_email = referrer_email(conn, ctx, a)
    notices = []
    for a in fresh:
        if a.state == "forwarded":
            notices += pass_on(ctx, a, a.id)
    accepted = [a for a in items if a.state == "forwarded"]
    outcome = "accepted" if len(accepted) == len(items) else "partially_accepted" if accepted else "rejected"
    errors = [dict(e, field=f"{_ref(a)} {e['field']}") for a in items for e in a.problems] + \
        [error(_ref(a), a.not_eligible) for a in items if a.not_eligible]
    chase = ctx.settings.reminders.outcome_chase_days[0]
    return Decision(outcome, "referral", errors, case_kind="referral", apply=_writes(ctx, fresh, on, chase),
                    notices=notices, case_id=earlier[0] if earlier and not ids else None,
                    keys={f"nhs:{a.referral.nhs_number}" for a in items if a.referral.nhs_number},
                    reply=Reply("referral_result", {"items": [_summary(conn, a, ctx.org.ods_code) for a in items],
                                                     "outcome": outcome}))


def _find_earlier(conn, items: list[Assessed]) -> None:
    """The same patient already referred to the same practice: an incomplete one is replaced (the
    same referral, corrected), a forwarded one makes this a duplicate."""
    for a in items:
        number = a.referral.nhs_number
        if number and nhs.is_valid(number) and a.receiving:
            hit = store.open_referral(conn, number, a.receiving)
            if hit and hit["state"] == "incomplete":
                a.replaces = a.id = hit["id"]     # sent again, corrected: the same referral
            elif hit:
                a.duplicate_of = hit["id"]


def _number(ctx: Context, fresh: list[Assessed]) -> list[int]:
    """A reference for each new referral: the message's own (when it opens no other case), then
    reserved ones."""
    ids = [ctx.message_row] if ctx.case_id is None and fresh else []
    ids += reserve_case_ids(ctx.settings.db_path, len(fresh) - len(ids))
    for a, i in zip(fresh, ids):
        a.id = i
    return ids


def _writes(ctx: Context, fresh: list[Assessed], on: date, chase: int):
    """The Decision's apply: run by the pipeline inside its transaction."""
    def apply(wconn, case_id):
        now = utcnow()
        for a in fresh:
            if a.id != case_id and not a.replaces:
                store.open_case(wconn, a.id, now=now, org_code=ctx.org.ods_code, state=a.state,
                                first_message=ctx.message_row)
            r = a.referral
            if a.replaces:
                store.drop_incomplete(wconn, a.id)
                store.set_case_state(wconn, a.id, a.state)
            forwarded = a.state == "forwarded"
            store.add_referral(
                wconn, a.id, message=ctx.message_row, now=now, referred_on=on.isoformat(), state=a.state,
                problems=a.problems + ([error("eligibility", a.not_eligible)] if a.not_eligible else []),
                referrer=a.referrer, referrer_email=a.referrer_email, receiving=a.receiving,
                registered=a.registered, nhs_number=r.nhs_number,
                patient={k: r.get(k) for k in PATIENT_KEYS},
                clinical={k: v for k, v in r.fields.items() if k not in PATIENT_KEYS}, joint=r.get("joint"),
                forwarded_at=ctx.received_at.isoformat() if forwarded else None,
                outcome_due=(on + timedelta(days=chase)).isoformat() if forwarded else None)
            store.link_parties(wconn, a.id, a.receiving, a.referrer, a.registered)
            audit(wconn, "referral", a.id, a.state, "pipeline", {"message": ctx.message_row,
                                                                 "problems": len(a.problems)})
    return apply


def _ref(a: Assessed) -> str:
    return reference(a.id) if a.id else "Referral"


def _summary(conn, a: Assessed, sender_code: str) -> dict:
    return {"reference": reference(a.id) if a.id else "", "state": a.state,
            "duplicate_of": reference(a.duplicate_of) if a.duplicate_of else "",
            "patient": tail(a.referral.nhs_number), "joint": a.referral.get("joint") or "joint not given",
            "receiving": casework.name_of(conn, a.receiving), "problems": a.problems,
            "not_eligible": a.not_eligible, "sender_is_receiving": a.receiving == sender_code,
            "assumed": a.assumed}
