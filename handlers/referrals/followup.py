"""Replies about earlier referrals: what was missing (an incomplete referral completed and passed
on), and the receiving practice's outcome (which makes a no-injection consultation payable)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from handlers import casework
from handlers.base import Context, Decision, Notice, Reply, error
from handlers.contract import dates, nhs
from handlers.contract.periods import london
from handlers.contract.references import reference
from handlers.referrals.assess import Assessed, assess
from handlers.referrals.forward import pass_on
from handlers.referrals.outcome_reading import Outcome, read_outcome, read_outcomes
from handlers.referrals.outcomes import (OUTCOME_NAMES, named, outcome_line, outcome_problems, people,
                                         registered_here)
from handlers.referrals.reader import PATIENT_KEYS, Referral, extract
from store import referrals as store
from store.db import audit, utcnow


@dataclass
class Progress:
    """What a reply achieves, referral by referral."""
    errors: list[dict] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    changes: list[tuple] = field(default_factory=list)   # ("complete" | "still", row, Assessed) or
    lines: list[str] = field(default_factory=list)       # ("outcome", row, (kind, seen_on, payable))


def followup(ctx: Context, rows: list) -> Decision:
    on = london(ctx.received_at).date()
    text = ctx.parsed.new_text
    if len(rows) > 1:
        outcomes = read_outcomes(text, people(rows), on)
    else:
        outcomes = {r["id"]: read_outcome(text, on) for r in rows}
    own = registered_here(text)
    p = Progress()
    for row in rows:
        if row["state"] == "incomplete":
            row = _complete(ctx, row, text, on, p)
            if row is None:
                continue
        held = _take_outcome(ctx, row, outcomes.get(row["id"]) or Outcome(None, None), on,
                             own and len(rows) == 1, p)
        if held:
            return held
    if not p.changes and not p.lines:
        if not p.errors:
            return Decision("rejected", "referral_update", [error("message", (
                "lesbot could not tell what this changes. To complete a referral, give the missing item "
                "(e.g. 'NHS number: 999 123 4567'); to report an outcome, give the date seen and the outcome."))],
                reply=Reply("referral_outcome", {"lines": [], "held": False}))
        return Decision("rejected", "referral_update", p.errors,
                        reply=Reply("referral_outcome", {"lines": [], "held": False}))
    chase = ctx.settings.reminders.outcome_chase_days[0]
    progress = p.lines or any(c[0] in ("complete", "outcome") for c in p.changes)
    outcome = "accepted" if not p.errors else "partially_accepted" if progress else "rejected"
    kind = "referral_outcome" if any(c[0] == "outcome" for c in p.changes) else "referral_update"
    return Decision(outcome, kind, p.errors, apply=_writes(ctx, p.changes, on, chase), notices=p.notices,
                    case_id=rows[0]["id"] if ctx.case_id is None and rows else None,
                    keys={f"nhs:{r['nhs_number']}" for r in rows if r["nhs_number"]},
                    reply=Reply("referral_outcome", {"lines": p.lines, "held": False}))


def _complete(ctx: Context, row, text: str, on: date, p: Progress):
    """An incomplete referral with what the reply supplies: passed on when complete (the row as it
    now is, for an outcome in the same reply), else None with what is still missing."""
    conn = ctx.conn
    ref = reference(row["id"])
    r = Referral(dict(casework.loads(row["patient"]) | casework.loads(row["clinical"])))
    _supply(r, text)
    a = assess(conn, r, on, ctx.org, text, known={
        "referrer": row["referrer_code"], "receiving": row["receiving_code"] if row["receiving_code"] else None,
        "registered": row["registered_code"]})
    a.id = row["id"]
    if a.state == "forwarded":
        p.changes.append(("complete", row, a))
        p.notices += pass_on(ctx, a, row["id"])
        p.lines.append(f"{ref}: now complete and passed to {casework.name_of(conn, a.receiving)}.")
        return dict(row, state="forwarded", receiving_code=a.receiving)
    p.changes.append(("still", row, a))
    p.errors += [dict(e, field=f"{ref} {e['field']}") for e in a.problems]
    if a.not_eligible:
        p.errors.append(error(ref, a.not_eligible))
    return None


def _take_outcome(ctx: Context, row, o: Outcome, on: date, own: bool, p: Progress) -> Decision | None:
    """The receiving practice's outcome for one referral. A Decision only when it would change an
    outcome already recorded: that is for the contract team."""
    conn, code = ctx.conn, ctx.org.ods_code
    ref = reference(row["id"])
    if o.kind and code == row["receiving_code"]:
        problems = outcome_problems(row, o, on)
        if problems:
            p.errors += [dict(e, field=f"{ref} {e['field']}") for e in problems]
            return None
        if row["outcome"]:
            if (row["outcome"], row["seen_on"]) == (o.kind, o.seen_on.isoformat()):
                p.lines.append(f"{ref}: this outcome was already recorded; nothing changed.")
                return None
            return Decision("quarantined", "referral_outcome", [error(ref, (
                f"an outcome ({OUTCOME_NAMES[row['outcome']]}, {dates.uk(row['seen_on'])}) is already "
                "recorded; a change needs the contract team, who have been told."))],
                reply=Reply("referral_outcome", {"lines": [], "held": True}))
        here = row["registered_code"] == code or own
        payable = o.kind == "no_injection" and not here
        p.changes.append(("outcome", row, (o.kind, o.seen_on, payable)))
        p.lines.append(outcome_line(ref, o.kind, o.seen_on, payable, ctx.settings.catalogue))
        to = row["referrer_email"] or casework.address_of(conn, row["referrer_code"])
        if to and row["referrer_code"] != code:
            p.notices.append(Notice(to, "referral_outcome_referrer", {
                "outcome_name": OUTCOME_NAMES[o.kind], "seen_on": dates.uk(o.seen_on),
                "receiving": casework.name_of(conn, code), "joint": row["joint"] or "",
                "patient": named(row)}, case_id=row["id"]))
    elif o.kind is None and code == row["receiving_code"] and row["state"] == "forwarded" \
            and not any(c[1]["id"] == row["id"] for c in p.changes):
        p.errors.append(error(ref, "lesbot could not find the outcome. Say 'injection given', "
                                   "'consultation only - no injection' or 'did not attend', and the date seen."))
    return None


def _supply(r: Referral, text: str) -> None:
    """Fill a stored referral from a reply: labelled fields, or a lone valid NHS number."""
    more = extract(text)
    given = more[0].fields if len(more) == 1 else {}
    for k, v in given.items():
        if v and (k not in r.fields or not r.fields[k] or k in ("nhs_number", "dob")):
            r.fields[k] = v
    if "nhs_number" not in given:
        valid = {"".join(m.groups()) for m in nhs.separated(text) if nhs.is_valid("".join(m.groups()))}
        if len(valid) == 1:
            r.fields["nhs_number"] = valid.pop()


def _writes(ctx: Context, changes: list[tuple], on: date, chase: int):
    """The Decision's apply: run by the pipeline inside its transaction."""
    def apply(wconn, case_id):
        now = utcnow()
        for what, row, info in changes:
            if what in ("complete", "still"):
                _store_completion(ctx, wconn, row["id"], info, on, chase, now)
            else:
                kind, seen, payable = info
                store.record_outcome(wconn, row["id"], outcome=kind, seen_on=seen.isoformat(),
                                     message=ctx.message_row, now=now, payable=payable,
                                     quarter=dates.quarter_of(seen))
                audit(wconn, "referral", row["id"], "outcome", "pipeline",
                      {"outcome": kind, "payable": payable, "message": ctx.message_row})
    return apply


def _store_completion(ctx: Context, wconn, referral_id: int, a: Assessed, on: date, chase: int, now: str) -> None:
    r = a.referral
    forwarded = a.state == "forwarded"
    store.update_referral(
        wconn, referral_id, state=a.state, problems=a.problems, nhs_number=r.nhs_number,
        patient={k: r.get(k) for k in PATIENT_KEYS},
        clinical={k: v for k, v in r.fields.items() if k not in PATIENT_KEYS}, receiving=a.receiving,
        joint=r.get("joint"), now=now, forwarded_at=ctx.received_at.isoformat() if forwarded else None,
        outcome_due=(on + timedelta(days=chase)).isoformat() if forwarded else None)
    store.set_case_state(wconn, referral_id, a.state)
    store.link_parties(wconn, referral_id, a.receiving)
    audit(wconn, "referral", referral_id, a.state, "pipeline", {"message": ctx.message_row})
