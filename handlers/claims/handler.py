"""Monthly LES claims: lines in the body, a CSV or an XLSX (lesbot's own form included).

Every problem is reported at once, each with the fix; lines that can be paid are
accepted even when others cannot (partially_accepted). The checks are in checks.py.
"""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from bot.mail.attachments import text_of
from bot.settings.logs import for_the_record
from handlers.base import Context, Decision, Reply, error
from handlers.claims import reader, tables
from handlers.claims.checks import Line, Review
from handlers.claims.extracted import Extracted, merge
from handlers.claims.form import build_form
from handlers.claims.payments import run_for, submission_day
from handlers.contract.periods import key
from handlers.contract.periods import label as label_of
from handlers.contract.reading.services import is_thanks_only
from handlers.contract.references import reference
from store import claims as claims_store
from store.db import audit, utcnow
from store.payments import is_closed

name = "claims"
CLAIM_WORDS = re.compile(r"\b(claim|claims|claiming|claim form)\b", re.I)
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ATTACHED_WORDS = re.compile(r"\b(attached|attachment|enclosed|see attached|find attached)\b", re.I)


def extract(ctx: Context) -> Extracted:
    cat = ctx.settings.catalogue
    p = ctx.parsed
    ex = reader.from_body(p.new_text, cat, ctx.received_at, subject=p.subject, full_text=p.text)
    documents_wanted = bool(CLAIM_WORDS.search(p.subject) or CLAIM_WORDS.search(p.new_text[:2000]))
    for att in ctx.vetting.kept:
        if att.kind in ("csv", "xlsx"):
            read = tables.from_csv if att.kind == "csv" else tables.from_xlsx
            try:
                merge(ex, read(att.data, att.filename, cat, ctx.received_at))
            except Exception as e:       # damaged or hostile (a 140 KB cell, a broken zip): say which file
                ex.problems.append((att.filename, f"could not be read ({type(e).__name__}). Save it again from "
                                                  "Excel, or send the figures in the email, and resend."))
        elif att.kind in ("docx", "pdf") and (documents_wanted or CLAIM_WORDS.search(att.filename)):
            try:
                text = text_of(att)
            except Exception as e:       # a damaged file: say so, never fail the whole claim
                ex.problems.append((att.filename, f"could not be read ({type(e).__name__}). Send the figures "
                                                  "in the email or on the claim form."))
                continue
            merge(ex, reader.from_document(text, att.filename, cat, ctx.received_at,
                                           reader.subject_month(p.subject, ctx.received_at),
                                           "month taken from the subject"))
    return ex


def _counted(ex: Extracted) -> bool:
    return any(l.count_text.strip() or l.problem for l in ex.lines)


def match(ctx: Context) -> Extracted | None:
    """The claim read from the message, when it is one (None: not a claim)."""
    if ctx.org is None:
        return None
    if ctx.org.kind != "practice" and not CLAIM_WORDS.search(ctx.parsed.subject):
        return None       # hospitals write letters, not claims
    if ctx.case_id is not None and not ctx.vetting.kept and is_thanks_only(ctx.parsed.new_text):
        return None       # "thank you" in a claim's thread: nothing to act on (the pipeline records it)
    tables_kept = any(a.kind in ("csv", "xlsx") for a in ctx.vetting.kept)
    ex = extract(ctx)
    if tables_kept or _counted(ex):
        return ex
    # "Claim" in the subject but no lines: a claim gone wrong, unless it is a reply
    # about an earlier case ("RE: [LES-000123] ..."), which is a question for a human.
    gone_wrong = bool(CLAIM_WORDS.search(ctx.parsed.subject)) and ctx.case_id is None and \
        not re.match(r"^\s*(re|aw|sv)\s*:", ctx.parsed.subject, re.I)
    return ex if gone_wrong else None


def handle(ctx: Context, ex: Extracted) -> Decision:
    review = Review(ctx, ex)
    review.check_sender()
    lines = review.check_lines()
    review.account_for_mentions(lines)
    review.notes += ex.notes
    if not ex.lines and not review.problems and not review.rejected:
        review.problems.append(_nothing_found(ctx))
    cat = ctx.settings.catalogue
    run, run_why = run_for(ctx.conn, ctx.received_at, submission_day(cat, [l.service for l in lines]))
    closed_conflicts = _join_runs(ctx.conn, ctx.org.ods_code, lines, run)
    if closed_conflicts and not review.problems:
        return Decision("quarantined", "claim", [error(
            l.where, f"{l.service_name} for {label_of(l.month)} was already claimed ({p['count']}) and paid in run "
                     f"{p['run']}, which is closed; a human must decide about this second claim.")
            for l, p in closed_conflicts])
    accepted = lines if not review.problems else []
    return _decision(review, accepted, run, run_why)


def _nothing_found(ctx: Context) -> dict:
    """The problem with a claim in which no line was found."""
    kept = [a for a in ctx.vetting.kept]
    if ATTACHED_WORDS.search(ctx.parsed.new_text) and not kept:
        return error("attachment", "your email says a file is attached, but no claim file came with "
                                   "it (only pictures in the signature, if anything). Send it again "
                                   "with the file attached, or write the figures in the email: one "
                                   "line per service and month.")
    return error("claim", "lesbot found no claim lines in your email. Write one line per service "
                          "and month, e.g. 'Denosumab injections: 14' with 'Month: September "
                          "2026', or use the attached claim form.")


def _join_runs(conn, org_code: str, lines: list[Line], run: str) -> list[tuple]:
    """Put each line in its payment run: a line replacing an accepted one in a run still open joins
    that run. Returns the lines whose earlier claim was paid in a closed run, with that claim."""
    closed_conflicts = []
    for line in lines:
        line.run = run
        prev = claims_store.last_accepted(conn, org_code, line.service, key(line.month))
        if prev:
            if is_closed(conn, prev["run"]):
                closed_conflicts.append((line, prev))
            else:
                line.replaces = dict(prev)
                line.run = prev["run"]      # still open: the replacement stays in the same run
    return closed_conflicts


def _decision(review: Review, accepted: list[Line], run: str, run_why: str) -> Decision:
    ctx, ex, org = review.ctx, review.ex, review.org
    problems, rejected, notes = review.problems, review.rejected, review.notes
    stated_total = ex.stated_total
    computed = sum((l.amount for l in accepted), Decimal("0.00"))
    if accepted and stated_total is not None and stated_total != computed:
        notes.append(f"You calculated a total of £{stated_total}; lesbot's total for the lines accepted is "
                     f"£{computed} (at the tariffs in force for each month).")
    if problems or not accepted:
        outcome = "rejected"
    elif rejected:
        outcome = "partially_accepted"
    else:
        outcome = "accepted"
    form = build_form(org, ctx.settings.catalogue, ctx.settings.inboxes[0], review.today) \
        if outcome == "rejected" and review.signed_up and org.kind == "practice" else b""
    run_late = "after the" in run_why
    reply = Reply("claim_result", {
        "outcome": outcome, "lines": [_line_view(l) for l in accepted], "total": f"{computed:.2f}",
        "run": run, "run_label": f"{date.fromisoformat(run + '-01'):%B %Y}", "run_why": run_why,
        "problems": problems, "rejected": rejected, "notes": notes, "claimed_by": ex.claimed_by,
        "read": review.read, "late": run_late,
    }, attachments=[(f"LES claim form {org.ods_code}.xlsx", XLSX_TYPE, form)] if form else [])
    return Decision(outcome, "claim", problems + rejected, reply=reply,
                    apply=_recorder(ctx.message_row, org.ods_code, ex.claimed_by, accepted, rejected),
                    case_kind="claim")


def _recorder(message_row: int, org_code: str, claimed_by: str, accepted: list[Line], rejected: list[dict]):
    """The Decision's apply: record the accepted lines (each replacing the earlier one, if any) and the
    rejected ones, inside the pipeline's transaction."""
    def apply(conn, case_id):
        stamp = utcnow()
        for l in accepted:
            new_id = claims_store.add_accepted(
                conn, created_at=stamp, message=message_row, case_id=case_id, org_code=org_code,
                service=l.service, month=key(l.month), count=l.count, tariff_pence=int(l.rate * 100),
                amount_pence=int(l.amount * 100), run=l.run, source=l.where,
                replaces=l.replaces["id"] if l.replaces else None, claimed_by=claimed_by or None)
            if l.replaces:
                claims_store.mark_replaced(conn, l.replaces["id"], new_id)
                audit(conn, "claim", l.replaces["id"], "replaced", "claims", {"by": new_id})
        for r in rejected:
            claims_store.add_rejected(conn, created_at=stamp, message=message_row, case_id=case_id,
                                      org_code=org_code, reason=for_the_record(r["problem"]),
                                      source=for_the_record(r["field"]))
    return apply


def _line_view(l: Line) -> dict:
    change = None
    if l.replaces:
        old = l.replaces["count"]
        change = (f"replaces your earlier claim {reference(l.replaces['case_id'])} of {old} "
                  f"(£{Decimal(l.replaces['amount_pence']) / 100:.2f}); "
                  + ("no change" if old == l.count else f"{'+' if l.count > old else ''}{l.count - old}"))
    return {"service": l.service_name, "month": l.period or label_of(l.month), "count": l.count, "unit": l.unit,
            "rate": f"{l.rate:.2f}", "amount": f"{l.amount:.2f}", "change": change, "notes": l.notes}
