"""Monthly LES claims: lines in the body, a CSV or an XLSX (lesbot's own form included).

Every problem is reported at once, each with the fix; lines that can be paid are
accepted even when others cannot (partially_accepted).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from handlers.claims import reader as cp
from bot.mail.attachments import text_of
from handlers.claims.form import build_form
from handlers.contract.reading.months import describe
from handlers.contract.reading.services import is_thanks_only
from handlers.claims.payments import is_closed, run_for
from handlers.contract.periods import add_months, key, london, month_end, month_start
from handlers.contract.periods import label as label_of
from bot.settings.logs import for_the_record
from handlers.base import Context, Decision, Reply, error
from store.db import audit, utcnow
from handlers.contract.references import reference

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
    period: str = ""                  # "November 2026", "October to December 2026"

    @property
    def amount(self) -> Decimal:
        return self.rate * self.count


def extract(ctx: Context) -> cp.Extracted:
    cat = ctx.settings.catalogue
    p = ctx.parsed
    ex = cp.from_body(p.new_text, cat, ctx.received_at, subject=p.subject, full_text=p.text)
    documents_wanted = bool(CLAIM_WORDS.search(p.subject) or CLAIM_WORDS.search(p.new_text[:2000]))
    for att in ctx.vetting.kept:
        if att.kind in ("csv", "xlsx"):
            read = cp.from_csv if att.kind == "csv" else cp.from_xlsx
            try:
                cp.merge(ex, read(att.data, att.filename, cat, ctx.received_at))
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
            cp.merge(ex, cp.from_document(text, att.filename, cat, ctx.received_at,
                                          cp.subject_month(p.subject, ctx.received_at), "month taken from the subject"))
    return ex


def _counted(ex: cp.Extracted) -> bool:
    return any(l.count_text.strip() or l.problem for l in ex.lines)


def match(ctx: Context) -> cp.Extracted | None:
    """The claim read from the message, when it is one (None: not a claim)."""
    if ctx.org is None:
        return None
    if ctx.org.kind != "practice" and not CLAIM_WORDS.search(ctx.parsed.subject):
        return None       # hospitals write letters, not claims
    if ctx.case_id is not None and not ctx.vetting.kept and is_thanks_only(ctx.parsed.new_text):
        return None       # "thank you" in a claim's thread: nothing to act on (the pipeline records it)
    tables = any(a.kind in ("csv", "xlsx") for a in ctx.vetting.kept)
    ex = extract(ctx)
    if tables or _counted(ex):
        return ex
    # "Claim" in the subject but no lines: a claim gone wrong, unless it is a reply
    # about an earlier case ("RE: [LES-000123] ..."), which is a question for a human.
    gone_wrong = bool(CLAIM_WORDS.search(ctx.parsed.subject)) and ctx.case_id is None and \
        not re.match(r"^\s*(re|aw|sv)\s*:", ctx.parsed.subject, re.I)
    return ex if gone_wrong else None


ATTACHED_WORDS = re.compile(r"\b(attached|attachment|enclosed|see attached|find attached)\b", re.I)
NHS_LIKE = re.compile(r"(?<!\d)\d{3}[ -]?\d{3}[ -]?\d{4}(?!\d)")


def _typo_of(conn, code: str, own: str) -> bool:
    """An ODS code that names no organisation and is one slip (a swap or a wrong digit) from the
    sender's own code. A code that names another practice is never a typo."""
    from rapidfuzz.distance import DamerauLevenshtein
    if conn.execute("SELECT 1 FROM orgs WHERE ods_code=?", (code,)).fetchone():
        return False
    return DamerauLevenshtein.distance(code, own) <= 1 or sorted(code) == sorted(own) and \
        DamerauLevenshtein.distance(code, own) <= 2


def _safe(text: str, limit: int = 90) -> str:
    """Text of the claim echoed back: no NHS numbers, never a spreadsheet formula, kept short."""
    t = NHS_LIKE.sub("[number removed]", " ".join(str(text).split()))
    if t[:1] in ("=", "+", "@"):
        t = "'" + t
    return t if len(t) <= limit else t[:limit - 1] + "…"


def handle(ctx: Context, ex: cp.Extracted) -> Decision:
    cat = ctx.settings.catalogue
    org = ctx.org
    received = ctx.received_at
    today = london(received).date()
    this_month = month_start(today)
    problems: list[dict] = []          # the claim as a whole
    rejected: list[dict] = []          # single lines that cannot be paid
    notes: list[str] = []
    read: list[str] = []               # what lesbot read, echoed so a person can catch a misread
    if org.kind != "practice":
        problems.append(error("sender", f"{org.name} is a {org.kind}, and only practices claim LES payments. "
                                        "Ask the practice to send its own claim."))
    signed_up = [c for c in org.services if cat.get(c)]
    if org.kind == "practice" and not signed_up:
        problems.append(error("practice", f"{org.name} is not signed up for any Local Enhanced Service, so "
                                          "nothing can be paid. To sign up, ask the contract team "
                                          f"({ctx.settings.inboxes[0]} can pass it on); once the directory "
                                          "shows your services, send the claim again."))
    others = sorted(c for c in ex.practice_codes if c != org.ods_code)
    for c in list(others):
        if _typo_of(ctx.conn, c, org.ods_code):
            others.remove(c)
            notes.append(f"The ODS code {c} in your claim matches no practice; lesbot took it as a typing slip "
                         f"for your own code, {org.ods_code} (the claim came from {org.name}'s address).")
    if others:
        problems.append(error("practice code", f"the claim names {', '.join(others)}, but it was sent from an "
                                               f"address of {org.name} ({org.ods_code}). Each practice sends its "
                                               "own claim from its own address."))
    for where, problem in ex.problems:
        problems.append(error(where, problem))
    if ex.patient_identifiers:
        notes.append("Your claim contained patient details (NHS numbers or a patient column). Claims must hold "
                     "counts only: lesbot did not record them. Please leave them out next time.")
    services_named = "; ".join(cat.get(c).name for c in signed_up) or "none (not signed up)"

    # Body sentences that repeat a line of the attached form or a labelled line are the same claim.
    firm = {(r.service.code, r.month) for r in ex.lines if r.service and not r.prose and r.count_text.strip()}
    lines: list[Line] = []
    seen: dict[tuple[str, date], tuple[Line, cp.RawLine]] = {}
    for raw in ex.lines:
        where = raw.where
        svc = raw.service
        label = _safe(raw.label)
        if raw.other:
            rejected.append(error(where, f"'{label}' is not a service lesbot knows: it is not a Local Enhanced "
                                         f"Service in this ICB's catalogue, so it cannot be paid here. Services you can claim: {services_named}."))
            continue
        if svc is None:
            if raw.count_text.strip() == "":
                continue
            rejected.append(error(where, f"'{label}' is not a service lesbot knows. Name one of: "
                                         f"{services_named}."))
            continue
        if raw.problem:
            rejected.append(error(where, f"{svc.name}: '{label}': {raw.problem}"))
            continue
        if raw.count_text.strip() == "":
            continue      # a blank row on the form: nothing claimed
        if raw.times > 1:
            rejected.append(error(where, f"the same row ({label}, {raw.month_text}, {raw.count_text}) appears "
                                         f"{raw.times} times. Send one row per service and month with the "
                                         "total for that month."))
            continue
        reason = svc.not_payable_reason(raw.label)
        if reason:
            rejected.append(error(where, f"'{label}': not payable under this LES: {reason}"))
            continue
        if svc.code not in org.services:
            if signed_up:
                rejected.append(error(where, f"'{label}': {org.name} is not signed up for {svc.name}, so it "
                                             "cannot be paid. If you have signed up recently, ask the contract "
                                             "team to update the directory."))
            continue
        month, how = raw.month, raw.month_how
        if month is None and not raw.month_text and ex.default_month:
            month, how = ex.default_month, ex.default_month_how or "month taken from the claim form"
        if month is None and not raw.month_text:
            sm = cp.subject_month(ctx.parsed.subject, received)
            if sm:
                month, how = sm.first, "month taken from the subject"
                raw.month_last = sm.last if not sm.single else None
        if month is None:
            what = f"'{raw.month_text}' is not a month lesbot can read" if raw.month_text else "no month is given"
            rejected.append(error(where, f"{svc.name}: {what}. Say which month the activity was in, "
                                         "e.g. 'Month: September 2026'."))
            continue
        last = raw.month_last or month
        if svc.period == "quarterly":
            month = date(month.year, (month.month - 1) // 3 * 3 + 1, 1)
            last = max(last, add_months(month, 2))
        period = describe(month, last)
        if last > this_month or (last == this_month and raw.month_last):
            rejected.append(error(where, f"{svc.name} for {period}: that month has not happened yet (or is not "
                                         "over). Claim after the activity, once the month has ended."))
            continue
        count_text = raw.count_text.strip().replace(",", "").replace("£", "")
        if count_text.lower() in ("nil", "none", "zero"):
            count_text = "0"
        try:
            count_f = float(count_text)
        except ValueError:
            rejected.append(error(where, f"{svc.name} for {period}: '{_safe(raw.count_text, 40)}' is not a "
                                         "number."))
            continue
        if count_f != int(count_f) or count_f < 0:
            fix = (" To reduce an earlier month, send the corrected total for that month instead: it replaces "
                   "the earlier claim.") if count_f < 0 else ""
            rejected.append(error(where, f"{svc.name} for {period}: {raw.count_text} is not a whole "
                                         f"number of {svc.unit}s of 0 or more.{fix}"))
            continue
        count = int(count_f)
        if count > svc.max_count:
            rejected.append(error(where, f"{svc.name} for {period}: {count} is more than the "
                                         f"{svc.max_count} {svc.unit}s a practice could plausibly provide in a "
                                         f"{'quarter' if svc.period == 'quarterly' else 'month'}. Check the "
                                         "number and send the corrected figure; if it is right, ask the "
                                         "contract team."))
            continue
        span = 3 if svc.period == "quarterly" else 1
        limit_day = month_end(add_months(month, span - 1 + svc.payment_limit_months))
        if today > limit_day:
            rejected.append(error(where, f"{svc.name} for {label_of(month)}: not payable. Activity must be "
                                         f"claimed within {svc.payment_limit_months} months; the last day for "
                                         f"{label_of(month)} was {limit_day:%-d %B %Y}."))
            continue
        rate = svc.rate_on(month)
        if rate is None:
            rejected.append(error(where, f"{svc.name} had no tariff in {label_of(month)}."))
            continue
        if raw.prose and (svc.code, month) in firm:
            continue      # a sentence restating a line read elsewhere in the claim
        line = Line(svc.code, svc.name, svc.unit, month, count, rate, where)
        line.period = period
        line.notes += raw.notes
        for stated, what in ((raw.unit_price_text, "unit price"), (raw.total_text, "line total")):
            value = cp.money(stated)
            want = rate if what == "unit price" else line.amount
            if value is not None and value != want:
                line.notes.append(f"you gave a {what} of £{value}; at the tariff of £{rate} per {svc.unit} "
                                  f"it is £{want}")
        dup = seen.get((svc.code, month))
        if dup:
            if dup[0].count != count:
                rejected.append(error(where, f"{svc.name} for {period} appears twice with different "
                                             f"numbers ({dup[0].count} and {count}). Send one number per service "
                                             "and month."))
                lines.remove(dup[0])
                seen.pop((svc.code, month))
            continue
        seen[(svc.code, month)] = (line, raw)
        lines.append(line)
        read.append(f"{svc.name}, {period}: {count} — from {where} ('{label}'); "
                    f"{how or 'month given on the line'}")

    # Every service named is accounted for: a line above, or a note or problem here.
    claimed_codes = {r.service.code for r in ex.lines if r.service and r.count_text.strip()}
    for code, where, text in ex.mentions:
        if code in claimed_codes or code == "other":
            continue
        svc = cat.get(code)
        if svc is None:
            continue
        claimed_codes.add(code)
        msg = (f"'{_safe(text)}' names {svc.name} but gives no number of {svc.unit}s, so nothing is claimed "
               f"for it. To claim it, send the number for each month, e.g. '{svc.name}: 3'.")
        if ex.lines or lines:
            notes.append(f"{where}: {msg}")
        else:
            rejected.append(error(where, msg))
    notes += ex.notes

    if not ex.lines and not problems and not rejected:
        kept = [a for a in ctx.vetting.kept]
        if ATTACHED_WORDS.search(ctx.parsed.new_text) and not kept:
            problems.append(error("attachment", "your email says a file is attached, but no claim file came with "
                                                "it (only pictures in the signature, if anything). Send it again "
                                                "with the file attached, or write the figures in the email: one "
                                                "line per service and month."))
        else:
            problems.append(error("claim", "lesbot found no claim lines in your email. Write one line per service "
                                           "and month, e.g. 'Denosumab injections: 14' with 'Month: September "
                                           "2026', or use the attached claim form."))
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
            l.where, f"{l.service_name} for {label_of(l.month)} was already claimed ({p['count']}) and paid in run "
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
    form = build_form(org, ctx.settings.catalogue, ctx.settings.inboxes[0], today) \
        if outcome == "rejected" and signed_up and org.kind == "practice" else b""
    run_late = "after the" in run_why
    reply = Reply("claim_result", {
        "outcome": outcome, "lines": [_line_view(l) for l in accepted], "total": f"{computed:.2f}",
        "run": run, "run_label": f"{date.fromisoformat(run + '-01'):%B %Y}", "run_why": run_why,
        "problems": problems, "rejected": rejected, "notes": notes, "claimed_by": ex.claimed_by,
        "read": read, "late": run_late,
    }, attachments=[(f"LES claim form {org.ods_code}.xlsx", XLSX_TYPE, form)] if form else [])

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
                                                    for_the_record(r["problem"]), for_the_record(r["field"])))
    return Decision(outcome, "claim", errors, reply=reply, apply=apply, case_kind="claim")


def _line_view(l: Line) -> dict:
    change = None
    if l.replaces:
        old = l.replaces["count"]
        change = (f"replaces your earlier claim {reference(l.replaces['case_id'])} of {old} "
                  f"(£{Decimal(l.replaces['amount_pence']) / 100:.2f}); "
                  + ("no change" if old == l.count else f"{'+' if l.count > old else ''}{l.count - old}"))
    return {"service": l.service_name, "month": l.period or label_of(l.month), "count": l.count, "unit": l.unit,
            "rate": f"{l.rate:.2f}", "amount": f"{l.amount:.2f}", "change": change, "notes": l.notes}
