"""Inter-practice referrals for MSK steroid joint injections, and what follows them.

A new referral (body, forwarded chain, DOCX/PDF form; one or several patients)
gets one reference per patient. Complete ones are passed to the receiving
practice; incomplete ones wait for a reply that supplies what is missing. The
receiving practice's outcome makes a no-injection consultation payable activity.
Patient details go only to directory addresses, never into a subject.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, timedelta

from bot import casework, dates, letters, nhs
from bot.directory import org_for
from bot.periods import london
from bot.referralparse import LABELS, Referral, extract, read_outcome
from bot.replies import reference
from handlers.base import Context, Decision, Notice, Reply, error
from store.db import audit, reserve_case_ids, utcnow

name = "referrals"
SERVICE = "msk-injection"
REFERRAL = re.compile(r"\brefer(?:ral|ring|red|s)?\b", re.I)
INJECTION = re.compile(r"\b(inject|steroid|joint)", re.I)
OTHER_SERVICE = re.compile(r"\b(denosumab|prolia)\b", re.I)
WHY_NOT_REGISTERED = re.compile(
    r"\b(on behalf of|temporary resident|not (?:yet )?registered with us|registered elsewhere|"
    r"visiting the area|reason not registered)\b", re.I)
PATIENT_KEYS = ("patient_name", "dob", "nhs_number", "address", "telephone")
OUTCOME_NAMES = {"injection": "injection given (paid under the Minor Surgery DES, not this LES)",
                 "no_injection": "consultation only, no injection",
                 "did_not_attend": "did not attend"}


@dataclass
class Assessed:
    referral: Referral
    referrer: str | None = None
    receiving: str | None = None
    registered: str | None = None
    problems: list[dict] = field(default_factory=list)
    not_eligible: str = ""
    duplicate_of: int | None = None
    replaces: int | None = None       # an incomplete referral for the same patient, now sent again
    referrer_email: str = ""
    id: int | None = None

    @property
    def state(self) -> str:
        if self.duplicate_of:
            return "duplicate"
        if self.not_eligible:
            return "not_eligible"
        return "incomplete" if self.problems else "forwarded"


# -- matching ---------------------------------------------------------------------
def match(ctx: Context) -> bool:
    if ctx.org is None or ctx.org.kind != "practice":
        return False
    if ctx.case_id is not None:
        linked = _linked(ctx)
        if linked:
            ctx.extracted = ("followup", linked)
            return True
    text = casework.letter_text(ctx)
    head = ctx.parsed.subject + "\n" + text
    if OTHER_SERVICE.search(head) or not (REFERRAL.search(head) and INJECTION.search(head)):
        return False
    refs = extract(text)
    if refs:
        ctx.extracted = ("new", refs, text)
    return bool(refs)


def _linked(ctx: Context) -> list:
    """Referrals the message answers: its case, or others opened by the same email."""
    conn = ctx.conn
    rows = conn.execute(
        "SELECT * FROM referrals WHERE id=? OR message=(SELECT message FROM referrals WHERE id=?) ORDER BY id",
        (ctx.case_id, ctx.case_id)).fetchall()
    named = {int(n) for n in re.findall(r"LES-(\d{6,})", ctx.parsed.new_text)}
    if named & {r["id"] for r in rows}:
        rows = [r for r in rows if r["id"] in named]
    elif len(rows) > 1:
        rows = [r for r in rows if r["id"] == ctx.case_id] or rows
    code = ctx.org.ods_code
    return [r for r in rows if code in (r["referrer_code"], r["receiving_code"], r["registered_code"])
            or conn.execute("SELECT 1 FROM cases WHERE id=? AND org_code=?", (r["id"], code)).fetchone()]


def handle(ctx: Context) -> Decision:
    what, *rest = ctx.extracted
    if what == "new":
        return _new(ctx, *rest)
    return _followup(ctx, rest[0])


# -- checks -------------------------------------------------------------------------
def assess(conn, r: Referral, on: date, sender, text: str, copied=(), known: dict | None = None) -> Assessed:
    """Every check the specification asks for, each problem with its fix."""
    known = known or {}
    a = Assessed(r)
    a.problems = [error(f, p) for f, p in r.problems(on)]
    quoted = letters.forwarded(text)
    q_from = org_for(conn, quoted.from_addr) if quoted.from_addr else None
    q_to = org_for(conn, quoted.to_addr) if quoted.to_addr else None
    a.referrer = known.get("referrer") or letters.practice_from(conn, r.get("referring_practice")) or \
        (q_from.ods_code if q_from and q_from.kind == "practice" else sender.ods_code)
    a.receiving = known.get("receiving") or letters.practice_from(conn, r.get("receiving_practice"))
    if not a.receiving and not r.get("receiving_practice"):
        # Not written down: the practice it was sent to.
        offers = [o for o in copied if o.kind == "practice" and SERVICE in o.services and o.ods_code != a.referrer]
        if q_to and q_to.kind == "practice" and q_to.ods_code != a.referrer:
            a.receiving = q_to.ods_code
        elif sender.ods_code != a.referrer:
            a.receiving = sender.ods_code
        elif len(offers) == 1:
            a.receiving = offers[0].ods_code
    a.registered = known.get("registered") or letters.practice_from(conn, r.get("registered_practice")) \
        or r.ods("registered_practice")
    receiving = casework.org(conn, a.receiving)
    if receiving is None:
        a.problems.append(error("receiving practice", (
            f"'{r.get('receiving_practice')}' is not a practice lesbot knows. " if r.get("receiving_practice")
            else "is missing. ") + "Name the practice that will see the patient with its ODS code, "
            "e.g. 'Receiving practice: Meresfield Medical Centre (Z98101)'."))
    elif SERVICE not in receiving.services:
        offering = [row["name"] for row in conn.execute(
            "SELECT name FROM orgs WHERE kind='practice' AND (';'||services||';') LIKE ? ORDER BY name",
            (f"%;{SERVICE};%",))]
        a.problems.append(error("receiving practice", (
            f"{receiving.name} ({receiving.ods_code}) has not signed up to the MSK joint injection LES, "
            f"so it cannot be paid for this consultation. Practices that have: {', '.join(offering) or 'none'}.")))
    if not a.registered:
        a.problems.append(error("registered practice", "is missing. Add the practice the patient is registered "
                                                       "with, e.g. 'Registered practice: Ashdown Vale Surgery (Z98102)'."))
    elif a.receiving and a.registered == a.receiving:
        a.not_eligible = (f"the patient is registered with {casework.name_of(conn, a.receiving)}, the receiving "
                          "practice. This LES pays only for patients from another practice; see your own "
                          "patient under the Minor Surgery DES instead.")
    if a.registered and a.referrer and a.registered != a.referrer and not known.get("why") and \
            not r.get("why_not_registered") and not WHY_NOT_REGISTERED.search(text):
        a.problems.append(error("referring practice", (
            f"{casework.name_of(conn, a.referrer)} is not the practice the patient is registered with "
            f"({casework.name_of(conn, a.registered) or a.registered}). Say why you are referring, "
            "e.g. 'Reason not registered: referring on behalf of the registered practice'.")))
    return a


# -- a new referral ---------------------------------------------------------------------
def _new(ctx: Context, refs: list[Referral], text: str) -> Decision:
    conn = ctx.conn
    on = london(ctx.received_at).date()
    copied = casework.copied_orgs(conn, ctx.parsed)
    items = [assess(conn, r, on, ctx.org, text, copied) for r in refs]
    for a in items:
        number = a.referral.nhs_number
        if number and nhs.is_valid(number) and a.receiving:
            hit = conn.execute("SELECT id, state FROM referrals WHERE nhs_number=? AND receiving_code=? "
                               "AND state IN ('incomplete','forwarded') ORDER BY id LIMIT 1",
                               (number, a.receiving)).fetchone()
            if hit and hit["state"] == "incomplete":
                a.replaces = a.id = hit["id"]     # sent again, corrected: the same referral
            elif hit:
                a.duplicate_of = hit["id"]
    fresh = [a for a in items if not a.duplicate_of and not a.replaces]
    earlier = [a.replaces or a.duplicate_of for a in items if a.replaces or a.duplicate_of]
    ids = [ctx.message_row] if ctx.case_id is None and fresh else []
    ids += reserve_case_ids(ctx.settings.db_path, len(fresh) - len(ids))
    for a, i in zip(fresh, ids):
        a.id = i
    fresh += [a for a in items if a.replaces]
    for a in fresh:
        a.referrer_email = _referrer_email(conn, ctx, a)
    notices = []
    for a in fresh:
        if a.state == "forwarded":
            notices += _pass_on(ctx, a, a.id)
    accepted = [a for a in items if a.state == "forwarded"]
    outcome = "accepted" if len(accepted) == len(items) else "partially_accepted" if accepted else "rejected"
    errors = [dict(e, field=f"{_ref(a)} {e['field']}") for a in items for e in a.problems] + \
        [error(_ref(a), a.not_eligible) for a in items if a.not_eligible]
    chase = ctx.settings.reminders.outcome_chase_days[0]

    def apply(wconn, case_id):
        now = utcnow()
        for a in fresh:
            if a.id != case_id and not a.replaces:
                wconn.execute("INSERT OR IGNORE INTO cases (id, created_at, org_code, kind, state, first_message) "
                              "VALUES (?,?,?,?,?,?)", (a.id, now, ctx.org.ods_code, "referral", a.state,
                                                       ctx.message_row))
            r = a.referral
            if a.replaces:
                wconn.execute("DELETE FROM referrals WHERE id=? AND state='incomplete'", (a.id,))
                wconn.execute("UPDATE cases SET state=? WHERE id=?", (a.state, a.id))
            wconn.execute(
                "INSERT INTO referrals (id, message, created_at, updated_at, referred_on, state, problems, "
                "referrer_code, referrer_email, receiving_code, registered_code, nhs_number, patient, clinical, "
                "joint, forwarded_at, outcome_due, payable) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,0)",
                (a.id, ctx.message_row, now, now, on.isoformat(), a.state,
                 json.dumps(a.problems + ([error("eligibility", a.not_eligible)] if a.not_eligible else [])),
                 a.referrer, a.referrer_email, a.receiving, a.registered, r.nhs_number,
                 json.dumps({k: r.get(k) for k in PATIENT_KEYS}),
                 json.dumps({k: v for k, v in r.fields.items() if k not in PATIENT_KEYS}),
                 r.get("joint"), ctx.received_at.isoformat() if a.state == "forwarded" else None,
                 (on + timedelta(days=chase)).isoformat() if a.state == "forwarded" else None))
            _parties(wconn, a.id, a.receiving, a.referrer, a.registered)
            audit(wconn, "referral", a.id, a.state, "pipeline", {"message": ctx.message_row,
                                                                 "problems": len(a.problems)})

    return Decision(outcome, "referral", errors, case_kind="referral", apply=apply, notices=notices,
                    case_id=earlier[0] if earlier and not ids else None,
                    keys={f"nhs:{a.referral.nhs_number}" for a in items if a.referral.nhs_number},
                    reply=Reply("referral_result", {"items": [_summary(conn, a, ctx.org.ods_code) for a in items],
                                                     "outcome": outcome}))


def _ref(a: Assessed) -> str:
    return reference(a.id) if a.id else "Referral"


def _parties(wconn, case_id, *codes):
    for code in {c for c in codes if c}:
        wconn.execute("INSERT OR IGNORE INTO case_orgs (case_id, ods_code) VALUES (?,?)", (case_id, code))


def _referrer_email(conn, ctx, a: Assessed) -> str:
    quoted = letters.forwarded(casework.letter_text(ctx)).from_addr
    if a.referrer == ctx.org.ods_code:
        return ctx.parsed.from_addr
    o = org_for(conn, quoted) if quoted else None
    return quoted if o and o.ods_code == a.referrer else (casework.address_of(conn, a.referrer) or "")


def _tail(number: str | None) -> str:
    return f"NHS number ending {number[-4:]}" if number else "no NHS number"


def _summary(conn, a: Assessed, sender_code: str) -> dict:
    return {"reference": reference(a.id) if a.id else "", "state": a.state,
            "duplicate_of": reference(a.duplicate_of) if a.duplicate_of else "",
            "patient": _tail(a.referral.nhs_number), "joint": a.referral.get("joint") or "joint not given",
            "receiving": casework.name_of(conn, a.receiving), "problems": a.problems,
            "not_eligible": a.not_eligible, "sender_is_receiving": a.receiving == sender_code}


def _details(conn, a: Assessed) -> dict:
    r = a.referral
    return {"patient": {k: r.get(k) for k in PATIENT_KEYS} | {
                "nhs_number": nhs.display(r.nhs_number) if r.nhs_number else ""},
            "clinical": {k: r.get(k) for k in LABELS if k not in PATIENT_KEYS},
            "referrer": casework.name_of(conn, a.referrer), "receiving": casework.name_of(conn, a.receiving),
            "registered": casework.name_of(conn, a.registered) or a.registered or ""}


def _pass_on(ctx: Context, a: Assessed, case_id: int) -> list[Notice]:
    """The referral to the receiving practice (unless it sent it) and a copy to the referrer
    (when somebody else sent it on)."""
    conn = ctx.conn
    out = []
    details = _details(conn, a)
    if a.receiving != ctx.org.ods_code:
        to = casework.address_of(conn, a.receiving)
        if to:
            out.append(Notice(to, "referral_forward", details, case_id=case_id))
    if a.referrer != ctx.org.ods_code:
        to = a.referrer_email
        if to:
            out.append(Notice(to, "referral_copy", {"patient": _tail(a.referral.nhs_number),
                                                    "joint": a.referral.get("joint"),
                                                    "receiving": details["receiving"]}, case_id=case_id))
    return out


# -- replies about a referral: what was missing, and the outcome ------------------------
def _followup(ctx: Context, rows: list) -> Decision:
    conn = ctx.conn
    on = london(ctx.received_at).date()
    text = ctx.parsed.new_text
    code = ctx.org.ods_code
    errors, notices, changes, lines = [], [], [], []
    outcome_info = read_outcome(text)
    for row in rows:
        ref = reference(row["id"])
        fields = casework.loads(row["patient"]) | casework.loads(row["clinical"])
        if row["state"] == "incomplete":
            r = Referral(dict(fields))
            _supply(r, text)
            a = assess(conn, r, on, ctx.org, text, known={
                "referrer": row["referrer_code"], "receiving": row["receiving_code"] if row["receiving_code"] else None,
                "registered": row["registered_code"]})
            a.id = row["id"]
            if a.state == "forwarded":
                changes.append(("complete", row, a))
                notices += _pass_on(ctx, a, row["id"])
                lines.append(f"{ref}: now complete and passed to {casework.name_of(conn, a.receiving)}.")
                row = dict(row, state="forwarded", receiving_code=a.receiving)
            else:
                changes.append(("still", row, a))
                errors += [dict(e, field=f"{ref} {e['field']}") for e in a.problems]
                if a.not_eligible:
                    errors.append(error(ref, a.not_eligible))
                continue
        if outcome_info.kind and code == row["receiving_code"]:
            problems = _outcome_problems(row, outcome_info, on)
            if problems:
                errors += [dict(e, field=f"{ref} {e['field']}") for e in problems]
                continue
            if row["outcome"]:
                if (row["outcome"], row["seen_on"]) == (outcome_info.kind, outcome_info.seen_on.isoformat()):
                    lines.append(f"{ref}: this outcome was already recorded; nothing changed.")
                    continue
                return Decision("quarantined", "referral_outcome", [error(ref, (
                    f"an outcome ({OUTCOME_NAMES[row['outcome']]}, {dates.uk(row['seen_on'])}) is already "
                    "recorded; a change needs the contract team, who have been told."))],
                    reply=Reply("referral_outcome", {"lines": [], "held": True}))
            payable = outcome_info.kind == "no_injection" and row["registered_code"] != code
            changes.append(("outcome", row, (outcome_info.kind, outcome_info.seen_on, payable)))
            lines.append(f"{ref}: {OUTCOME_NAMES[outcome_info.kind]} on {dates.uk(outcome_info.seen_on)}"
                         + (" - payable under this LES (£43.47)." if payable else
                            " - not payable under this LES." if outcome_info.kind == "no_injection" else "."))
            to = row["referrer_email"] or casework.address_of(conn, row["referrer_code"])
            if to and row["referrer_code"] != code:
                notices.append(Notice(to, "referral_outcome_referrer", {
                    "outcome_name": OUTCOME_NAMES[outcome_info.kind], "seen_on": dates.uk(outcome_info.seen_on),
                    "receiving": casework.name_of(conn, code), "joint": row["joint"] or "",
                    "patient": _tail(row["nhs_number"])}, case_id=row["id"]))
        elif outcome_info.kind is None and code == row["receiving_code"] and row["state"] == "forwarded" \
                and not any(c[1]["id"] == row["id"] for c in changes):
            errors.append(error(ref, "lesbot could not find the outcome. Say 'injection given', "
                                     "'consultation only - no injection' or 'did not attend', and the date seen."))
    if not changes and not lines:
        if not errors:
            return Decision("rejected", "referral_update", [error("message", (
                "lesbot could not tell what this changes. To complete a referral, give the missing item "
                "(e.g. 'NHS number: 999 123 4567'); to report an outcome, give the date seen and the outcome."))],
                reply=Reply("referral_outcome", {"lines": [], "held": False}))
        return Decision("rejected", "referral_update", errors,
                        reply=Reply("referral_outcome", {"lines": [], "held": False}))
    chase = ctx.settings.reminders.outcome_chase_days[0]

    def apply(wconn, case_id):
        now = utcnow()
        for what, row, info in changes:
            if what in ("complete", "still"):
                a = info
                r = a.referral
                wconn.execute(
                    "UPDATE referrals SET state=?, problems=?, nhs_number=?, patient=?, clinical=?, receiving_code=?, "
                    "joint=?, updated_at=?, forwarded_at=?, outcome_due=? WHERE id=?",
                    (a.state, json.dumps(a.problems), r.nhs_number, json.dumps({k: r.get(k) for k in PATIENT_KEYS}),
                     json.dumps({k: v for k, v in r.fields.items() if k not in PATIENT_KEYS}), a.receiving,
                     r.get("joint"), now, ctx.received_at.isoformat() if a.state == "forwarded" else None,
                     (on + timedelta(days=chase)).isoformat() if a.state == "forwarded" else None, row["id"]))
                wconn.execute("UPDATE cases SET state=? WHERE id=?", (a.state, row["id"]))
                _parties(wconn, row["id"], a.receiving)
                audit(wconn, "referral", row["id"], a.state, "pipeline", {"message": ctx.message_row})
            else:
                kind, seen, payable = info
                wconn.execute(
                    "UPDATE referrals SET state='seen', outcome=?, seen_on=?, outcome_message=?, outcome_at=?, "
                    "payable=?, quarter=?, updated_at=? WHERE id=? AND outcome IS NULL",
                    (kind, seen.isoformat(), ctx.message_row, now, int(payable), dates.quarter_of(seen), now,
                     row["id"]))
                audit(wconn, "referral", row["id"], "outcome", "pipeline",
                      {"outcome": kind, "payable": payable, "message": ctx.message_row})

    progress = lines or any(c[0] in ("complete", "outcome") for c in changes)
    outcome = "accepted" if not errors else "partially_accepted" if progress else "rejected"
    kind = "referral_outcome" if any(c[0] == "outcome" for c in changes) else "referral_update"
    return Decision(outcome, kind, errors, apply=apply, notices=notices,
                    keys={f"nhs:{r['nhs_number']}" for r in rows if r["nhs_number"]},
                    reply=Reply("referral_outcome", {"lines": lines, "held": False}))


def _supply(r: Referral, text: str) -> None:
    """Fill a stored referral from a reply: labelled fields, or a lone valid NHS number."""
    more = extract(text)
    given = more[0].fields if len(more) == 1 else {}
    for k, v in given.items():
        if v and (k not in r.fields or not r.fields[k] or k in ("nhs_number", "dob")):
            r.fields[k] = v
    if "nhs_number" not in given:
        valid = {"".join(m.groups()) for m in nhs.SEPARATED.finditer(text) if nhs.is_valid("".join(m.groups()))}
        if len(valid) == 1:
            r.fields["nhs_number"] = valid.pop()


def _outcome_problems(row, o, on: date) -> list[dict]:
    if o.seen_on is None:
        return [error("date seen", "is missing or not a real date. Give the consultation date as DD/MM/YYYY.")]
    if o.seen_on > on:
        return [error("date seen", f"{dates.uk(o.seen_on)} is in the future. Report the outcome after the "
                                   "consultation.")]
    if o.seen_on < date.fromisoformat(row["referred_on"]):
        return [error("date seen", f"{dates.uk(o.seen_on)} is before the referral was made "
                                   f"({dates.uk(row['referred_on'])}). Check the date.")]
    return []
