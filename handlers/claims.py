"""Monthly LES claims: lines in the body, a CSV or an XLSX (lesbot's own form included).

Every problem is reported at once, each with the fix; lines that can be paid are
accepted even when others cannot (partially_accepted).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from bot import claimparse as cp
from bot.claimform import build_form
from bot.payments import is_closed, run_for
from bot.periods import add_months, key, label, london, month_end, month_start
from handlers.base import Context, Decision, Reply, error
from store.db import audit, utcnow

name = "claims"
CLAIM_WORDS = re.compile(r"\b(claim|claims|claiming|claim form)\b", re.I)
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass
class Line:
    service: str
    service_name: str
    unit: str
    month: date
    count: int
    rate: Decimal
    where: str
    run: str = ""
    replaces: dict | None = None      # the earlier accepted line this one replaces
    notes: list[str] = field(default_factory=list)

    @property
    def amount(self) -> Decimal:
        return self.rate * self.count


def extract(ctx: Context) -> cp.Extracted:
    cat = ctx.settings.catalogue
    ex = cp.from_body(ctx.parsed.new_text, cat, ctx.received_at)
    for att in ctx.vetting.kept:
        if att.kind == "csv":
            cp.merge(ex, cp.from_csv(att.data, att.filename, cat, ctx.received_at))
        elif att.kind == "xlsx":
            cp.merge(ex, cp.from_xlsx(att.data, att.filename, cat, ctx.received_at))
    return ex


def match(ctx: Context) -> bool:
    if ctx.org is None:
        return False
    if ctx.org.kind != "practice" and not CLAIM_WORDS.search(ctx.parsed.subject):
        return False      # hospitals write letters, not claims
    tables = any(a.kind in ("csv", "xlsx") for a in ctx.vetting.kept)
    ex = extract(ctx)
    ctx.extracted = ex
    if tables or ex.lines:
        return True
    # "Claim" in the subject but no lines: a claim gone wrong, unless it is a reply
    # about an earlier case ("RE: [LES-000123] ..."), which is a question for a human.
    return bool(CLAIM_WORDS.search(ctx.parsed.subject)) and ctx.case_id is None and \
        not re.match(r"^\s*(re|aw|sv)\s*:", ctx.parsed.subject, re.I)


def handle(ctx: Context) -> Decision:
    cat = ctx.settings.catalogue
    ex = getattr(ctx, "extracted", None) or extract(ctx)
    org = ctx.org
    received = ctx.received_at
    today = london(received).date()
    this_month = month_start(today)
    problems: list[dict] = []          # the claim as a whole
    rejected: list[dict] = []          # single lines that cannot be paid
    notes: list[str] = []
    if org.kind != "practice":
        problems.append(error("sender", f"{org.name} is a {org.kind}, and only practices claim LES payments. "
                                        "Ask the practice to send its own claim."))
    others = sorted(c for c in ex.practice_codes if c != org.ods_code)
    if others:
        problems.append(error("practice code", f"the claim names {', '.join(others)}, but it was sent from an "
                                               f"address of {org.name} ({org.ods_code}). Each practice sends its "
                                               "own claim from its own address."))
    for where, problem in ex.problems:
        problems.append(error(where, problem))
    if ex.patient_identifiers:
        notes.append("Your claim contained patient details (NHS numbers or a patient column). Claims must hold "
                     "counts only: lesbot did not record them. Please leave them out next time.")

    lines: list[Line] = []
    seen: dict[tuple[str, date], Line] = {}
    for raw in ex.lines:
        where = raw.where
        svc = raw.service
        if svc is None:
            rejected.append(error(where, f"'{raw.label}' is not a service lesbot knows. Name one of: "
                                         f"{'; '.join(cat.get(c).name for c in org.services if cat.get(c))}."))
            continue
        if raw.count_text.strip() == "":
            continue      # a blank row on the form: nothing claimed
        if raw.times > 1:
            rejected.append(error(where, f"the same row ({raw.label}, {raw.month_text}, {raw.count_text}) appears "
                                         f"{raw.times} times. Send one row per service and month with the "
                                         "total for that month."))
            continue
        reason = svc.not_payable_reason(raw.label)
        if reason:
            rejected.append(error(where, f"'{raw.label}': not payable under this LES: {reason}"))
            continue
        if svc.code not in org.services:
            rejected.append(error(where, f"{org.name} is not signed up for {svc.name}, so it cannot be paid. "
                                         "If you have signed up recently, ask the contract team to update "
                                         "the directory."))
            continue
        month = raw.month or (ex.default_month if not raw.month_text else None)
        if month is None:
            what = f"'{raw.month_text}' is not a month lesbot can read" if raw.month_text else "no month is given"
            rejected.append(error(where, f"{svc.name}: {what}. Say which month the activity was in, "
                                         "e.g. 'Month: September 2026'."))
            continue
        if svc.period == "quarterly":
            month = date(month.year, (month.month - 1) // 3 * 3 + 1, 1)
        if month > this_month:
            rejected.append(error(where, f"{svc.name} for {label(month)}: that month has not happened yet. "
                                         "Check the month."))
            continue
        count_text = raw.count_text.strip().replace(",", "").replace("£", "")
        try:
            count_f = float(count_text)
        except ValueError:
            rejected.append(error(where, f"{svc.name} for {label(month)}: '{raw.count_text}' is not a number."))
            continue
        if count_f != int(count_f) or count_f < 0:
            rejected.append(error(where, f"{svc.name} for {label(month)}: {raw.count_text} is not a whole "
                                         f"number of {svc.unit}s of 0 or more."))
            continue
        count = int(count_f)
        if count > svc.max_count:
            rejected.append(error(where, f"{svc.name} for {label(month)}: {count} is more than the "
                                         f"{svc.max_count} {svc.unit}s a practice could plausibly provide in a "
                                         f"{'quarter' if svc.period == 'quarterly' else 'month'}. Check the "
                                         "number; if it is right, ask the contract team."))
            continue
        span = 3 if svc.period == "quarterly" else 1
        limit_day = month_end(add_months(month, span - 1 + svc.payment_limit_months))
        if today > limit_day:
            rejected.append(error(where, f"{svc.name} for {label(month)}: not payable. Activity must be claimed "
                                         f"within {svc.payment_limit_months} months; the last day for "
                                         f"{label(month)} was {limit_day:%-d %B %Y}."))
            continue
        rate = svc.rate_on(month)
        if rate is None:
            rejected.append(error(where, f"{svc.name} had no tariff in {label(month)}."))
            continue
        line = Line(svc.code, svc.name, svc.unit, month, count, rate, where)
        for stated, what in ((raw.unit_price_text, "unit price"), (raw.total_text, "line total")):
            value = cp.money(stated)
            want = rate if what == "unit price" else line.amount
            if value is not None and value != want:
                line.notes.append(f"you gave a {what} of £{value}; at the tariff of £{rate} per {svc.unit} "
                                  f"it is £{want}")
        dup = seen.get((svc.code, month))
        if dup:
            if dup.count != count:
                rejected.append(error(where, f"{svc.name} for {label(month)} appears twice with different "
                                             f"numbers ({dup.count} and {count}). Send one number per service "
                                             "and month."))
                lines.remove(dup)
                seen.pop((svc.code, month))
            continue
        seen[(svc.code, month)] = line
        lines.append(line)

    if not ex.lines and not problems:
        problems.append(error("claim", "lesbot found no claim lines in your email. Write one line per service "
                                       "and month, e.g. 'Denosumab injections: 14' with 'Month: September 2026', "
                                       "or use the attached claim form."))

    run, run_why = run_for(ctx.conn, received, min((ctx.settings.catalogue.get(l.service).submission_day
                                                      for l in lines), default=10))
    closed_conflicts = []
    for line in lines:
        line.run = run
        prev = ctx.conn.execute(
            "SELECT id, count, run, case_id, amount_pence FROM claims WHERE org_code=? AND service=? AND month=? "
            "AND state='accepted' ORDER BY id DESC LIMIT 1", (org.ods_code, line.service, key(line.month))
        ).fetchone()
        if prev:
            if is_closed(ctx.conn, prev["run"]):
                closed_conflicts.append((line, prev))
            else:
                line.replaces = dict(prev)
                line.run = prev["run"]      # still open: the replacement stays in the same run

    if closed_conflicts and not problems:
        return Decision("quarantined", "claim", [error(
            l.where, f"{l.service_name} for {label(l.month)} was already claimed ({p['count']}) and paid in run "
                     f"{p['run']}, which is closed; a human must decide about this second claim.")
            for l, p in closed_conflicts])

    accepted = lines if not problems else []
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
    errors = problems + rejected
    form = build_form(org, ctx.settings.catalogue, ctx.settings.inboxes[0], today) if outcome == "rejected" else b""
    reply = Reply("claim_result", {
        "outcome": outcome, "lines": [_line_view(l) for l in accepted], "total": f"{computed:.2f}",
        "run": run, "run_label": f"{date.fromisoformat(run + '-01'):%B %Y}", "run_why": run_why,
        "problems": problems, "rejected": rejected, "notes": notes, "claimed_by": ex.claimed_by,
    }, attachments=[(f"LES claim form {org.ods_code}.xlsx", XLSX_TYPE, form)] if outcome == "rejected" else [])

    def apply(conn, case_id):
        stamp = utcnow()
        for l in accepted:
            cur = conn.execute(
                "INSERT INTO claims (created_at, message, case_id, org_code, service, month, count, tariff_pence, "
                "amount_pence, run, state, source, replaces, claimed_by) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (stamp, ctx.message_row, case_id, org.ods_code, l.service, key(l.month), l.count,
                 int(l.rate * 100), int(l.amount * 100), l.run, "accepted", l.where,
                 l.replaces["id"] if l.replaces else None, ex.claimed_by or None))
            if l.replaces:
                conn.execute("UPDATE claims SET state='replaced', replaced_by=? WHERE id=?",
                             (cur.lastrowid, l.replaces["id"]))
                audit(conn, "claim", l.replaces["id"], "replaced", "claims", {"by": cur.lastrowid})
        for r in rejected:
            conn.execute("INSERT INTO claims (created_at, message, case_id, org_code, state, reason, source) "
                         "VALUES (?,?,?,?,?,?,?)", (stamp, ctx.message_row, case_id, org.ods_code, "rejected",
                                                    r["problem"], r["field"]))
    return Decision(outcome, "claim", errors, reply=reply, apply=apply, case_kind="claim")


def _line_view(l: Line) -> dict:
    change = None
    if l.replaces:
        old = l.replaces["count"]
        change = (f"replaces your earlier claim LES-{l.replaces['case_id']:06d} of {old} "
                  f"(£{Decimal(l.replaces['amount_pence']) / 100:.2f}); "
                  + ("no change" if old == l.count else f"{'+' if l.count > old else ''}{l.count - old}"))
    return {"service": l.service_name, "month": label(l.month), "count": l.count, "unit": l.unit,
            "rate": f"{l.rate:.2f}", "amount": f"{l.amount:.2f}", "change": change, "notes": l.notes}
