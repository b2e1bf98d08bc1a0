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

from handlers import casework
from handlers.contract import dates
from handlers.contract import letters
from handlers.contract import nhs
from handlers.referrals import reader as referralparse
from store.directory import org_for
from handlers.contract.periods import london
from handlers.contract.reading import patient, practices
from handlers.referrals.reader import CLINICAL_KEYS, Referral, extract, read_outcome, read_outcomes
from handlers.contract.references import reference
from handlers.base import Context, Decision, Notice, Reply, error
from store.db import audit, reserve_case_ids, utcnow

name = "referrals"
SERVICE = "msk-injection"
REFERRAL = re.compile(r"\b(?:refer\w*|re-refer\w*|(?:could|can|would|please)\b.{0,60}\bsee\b)", re.I)
INJECTION = re.compile(r"\b(inject|steroid|joint)", re.I)
OTHER_SERVICE = re.compile(r"\b(denosumab|prolia|xgeva|d-?mab|complex injections?)\b", re.I)
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
    conflict: str = ""                 # evidence that disagrees: held for a person
    assumed: list[str] = field(default_factory=list)   # what lesbot inferred, echoed to the sender

    @property
    def state(self) -> str:
        if self.duplicate_of:
            return "duplicate"
        if self.not_eligible:
            return "not_eligible"
        return "incomplete" if self.problems else "forwarded"


# -- matching ---------------------------------------------------------------------
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
    if OTHER_SERVICE.search(head) or not INJECTION.search(head):
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


def _reported_outcomes(ctx: Context) -> list:
    """Forwarded referrals to the sender's practice whose NHS numbers the new text gives, when it
    reads as outcomes (seen / injection given / consultation only / did not attend)."""
    text = ctx.parsed.new_text
    if not referralparse.outcome_kind(text):
        return []
    numbers = patient.valid_nhs_numbers(text)
    if not numbers:
        return []
    rows = ctx.conn.execute(
        f"SELECT * FROM referrals WHERE receiving_code=? AND state IN ('forwarded','seen') AND nhs_number IN "
        f"({','.join('?' * len(numbers))}) ORDER BY id", (ctx.org.ods_code, *numbers)).fetchall()
    return rows


def _people(rows) -> list[tuple]:
    return [(r["id"], casework.loads(r["patient"]).get("patient_name", ""), r["nhs_number"]) for r in rows]


def _linked(ctx: Context) -> list:
    """Referrals the message answers: its case, or others opened by the same email (those the text
    names, by LES reference, NHS number or name; else the case itself)."""
    conn = ctx.conn
    rows = conn.execute(
        "SELECT * FROM referrals WHERE id=? OR message=(SELECT message FROM referrals WHERE id=?) ORDER BY id",
        (ctx.case_id, ctx.case_id)).fetchall()
    named = {int(n) for n in re.findall(r"LES-(\d{6,})", ctx.parsed.new_text)}
    if named & {r["id"] for r in rows}:
        rows = [r for r in rows if r["id"] in named]
    elif len(rows) > 1:
        mentioned = referralparse.read_outcomes(ctx.parsed.new_text, _people(rows))
        rows = [r for r in rows if r["id"] in mentioned] or [r for r in rows if r["id"] == ctx.case_id] or rows
    code = ctx.org.ods_code
    return [r for r in rows if code in (r["referrer_code"], r["receiving_code"], r["registered_code"])
            or conn.execute("SELECT 1 FROM cases WHERE id=? AND org_code=?", (r["id"], code)).fetchone()]


def handle(ctx: Context, found: tuple) -> Decision:
    what, *rest = found
    if what == "new":
        return _new(ctx, *rest)
    return _followup(ctx, rest[0])


# -- checks -------------------------------------------------------------------------
def _resolve(conn, directory, written: str, kinds=("practice",)) -> tuple[str | None, list[str]]:
    """A practice as written in a field -> (the one directory code, or None; the candidates)."""
    if not written:
        return None, []
    code = letters.practice_from(conn, written)
    if code:
        return code, [code]
    hits = practices.match_name(written, directory, kinds)
    if not hits:
        return None, []
    best = [c for c, score in hits if score >= hits[0][1] - 3]
    return (best[0] if len(best) == 1 else None), [c for c, _ in hits]


def _own_patient(text: str) -> bool:
    return bool(referralparse._lexicon()["own"].search(text or ""))


def assess(conn, r: Referral, on: date, sender, text: str, copied=(), known: dict | None = None,
           parsed=None) -> Assessed:
    """Every check the specification asks for, each problem with its fix. Infers before asking: the
    registered practice is the sender's when it writes about its own patient; the receiving practice is
    the one named or ticked, else the one directory practice copied in. Conflicting evidence is kept in
    a.conflict for a person to settle."""
    known = known or {}
    a = Assessed(r)
    a.problems = [error(f, p) for f, p in r.problems(on) + r.contact_problems()]
    directory = practices.Directory.of(conn)
    quoted = letters.forwarded(text)
    q_from = org_for(conn, quoted.from_addr) if quoted.from_addr else None
    q_to = org_for(conn, quoted.to_addr) if quoted.to_addr else None
    a.referrer = known.get("referrer") or _resolve(conn, directory, r.get("referring_practice"))[0] or \
        (q_from.ods_code if q_from and q_from.kind == "practice" else sender.ods_code)
    mentions = practices.find_in_text(text, directory) if text else []

    # -- receiving practice
    if known.get("receiving"):
        a.receiving = known["receiving"]
    elif r.get("receiving_practice"):
        a.receiving, cands = _resolve(conn, directory, r.get("receiving_practice"))
        if a.receiving is None and len(cands) > 1:
            a.conflict = ("the receiving practice '" + r.get("receiving_practice") + "' could be " +
                          " or ".join(casework.name_of(conn, c) for c in cands))
    else:
        ticked = list(dict.fromkeys(m.ods_code for m in mentions if m.how == "ticked"))
        named = list(dict.fromkeys(m.ods_code for m in mentions if m.role == "receiving" and m.how != "ticked"
                                   and m.ods_code != a.referrer))
        headers = [o.ods_code for o in copied if o.kind == "practice" and o.ods_code != a.referrer]
        if len(ticked) == 1:
            a.receiving = ticked[0]
            a.assumed.append(f"receiving practice: the ticked box ({casework.name_of(conn, a.receiving)})")
        elif len(ticked) > 1:
            a.conflict = "more than one receiving practice is ticked: " + ", ".join(
                casework.name_of(conn, c) for c in ticked)
        else:
            evidence = list(dict.fromkeys(named + headers))
            if q_to and q_to.kind == "practice" and q_to.ods_code != a.referrer and not evidence:
                evidence = [q_to.ods_code]
            if not evidence and sender.ods_code != a.referrer:
                evidence = [sender.ods_code]
            if len(evidence) == 1:
                a.receiving = evidence[0]
                how = "named in the letter" if evidence[0] in named else "the practice copied in"
                a.assumed.append(f"receiving practice: {casework.name_of(conn, a.receiving)} ({how})")
            elif len(evidence) > 1:
                in_both = [c for c in named if c in headers]
                if len(in_both) == 1:
                    a.receiving = in_both[0]
                elif len(named) == 1 and not headers:
                    a.receiving = named[0]
                else:
                    a.conflict = "more than one practice could be the receiving practice: " + ", ".join(
                        casework.name_of(conn, c) for c in evidence)

    # -- registered practice
    if known.get("registered"):
        a.registered = known["registered"]
    else:
        written = r.get("registered_practice")
        code, cands = _resolve(conn, directory, written)
        if code:
            a.registered = code
        elif written and re.search(r"\b(?:us|here|this practice|ourselves)\b", written, re.I):
            a.registered = a.referrer
        elif written and cands:
            a.conflict = a.conflict or ("the registered practice '" + written + "' could be " +
                                        " or ".join(casework.name_of(conn, c) for c in cands))
        elif written and practices.unknown_ods_codes(written, directory):
            a.registered = None
            a.problems.append(error("registered practice", (
                f"'{written}' is not a practice lesbot knows. Give the practice the patient is registered "
                "with by name and ODS code.")))
        else:
            roles = [m.ods_code for m in mentions if m.role == "registered"]
            if _own_patient(text) or not roles:
                a.registered = a.referrer
                if not _own_patient(text):
                    a.assumed.append(f"registered practice: {casework.name_of(conn, a.referrer)} (the referring "
                                     "practice, as no other was named)")
            elif len(set(roles)) == 1:
                a.registered = roles[0]
            else:
                a.registered = a.referrer

    receiving = casework.org(conn, a.receiving)
    if receiving is None and not a.conflict:
        unknown = practices.unknown_ods_codes(r.get("receiving_practice"), directory)
        a.problems.append(error("receiving practice", (
            f"'{r.get('receiving_practice')}' is not a practice lesbot knows"
            + (f" (no practice has the ODS code {', '.join(unknown)}). " if unknown else ". ")
            if r.get("receiving_practice") else "is missing. ") +
            "Say which participating practice should see the patient, with its ODS code, "
            "e.g. 'Receiving practice: Meresfield Medical Centre (Z98101)'." + _offering_hint(conn)))
    elif receiving is not None and SERVICE not in receiving.services:
        a.problems.append(error("receiving practice", (
            f"{receiving.name} ({receiving.ods_code}) has not signed up to the MSK joint injection LES, "
            f"so it cannot be paid for this consultation." + _offering_hint(conn))))
    if a.receiving and a.registered == a.receiving:
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


def _offering_hint(conn) -> str:
    offering = [row["name"] for row in conn.execute(
        "SELECT name FROM orgs WHERE kind='practice' AND (';'||services||';') LIKE ? ORDER BY name",
        (f"%;{SERVICE};%",))]
    return f" Practices that take part: {', '.join(offering)}." if offering else ""


# -- a new referral ---------------------------------------------------------------------
def _new(ctx: Context, refs: list[Referral], text: str) -> Decision:
    conn = ctx.conn
    on = london(ctx.received_at).date()
    copied = casework.copied_orgs(conn, ctx.parsed)
    items = [assess(conn, r, on, ctx.org, text, copied) for r in refs]
    held = [a for a in items if a.conflict]
    if held:
        # conflicting evidence: a person decides, the sender is not asked
        return Decision("quarantined", "referral_unclear", [error("practice", a.conflict) for a in held])
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
            "not_eligible": a.not_eligible, "sender_is_receiving": a.receiving == sender_code,
            "assumed": a.assumed}


def _details(conn, a: Assessed) -> dict:
    r = a.referral
    return {"patient": {k: r.get(k) for k in PATIENT_KEYS} | {
                "nhs_number": nhs.display(r.nhs_number) if r.nhs_number else ""},
            "clinical": {k: r.get(k) for k in CLINICAL_KEYS} | r.extras(),
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
    if len(rows) > 1:
        outcomes = read_outcomes(text, _people(rows), on)
    else:
        outcomes = {r["id"]: read_outcome(text, on) for r in rows}
    own = _registered_here(text)
    for row in rows:
        ref = reference(row["id"])
        outcome_info = outcomes.get(row["id"]) or referralparse.Outcome(None, None)
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
            registered_here = row["registered_code"] == code or (own and len(rows) == 1)
            payable = outcome_info.kind == "no_injection" and not registered_here
            changes.append(("outcome", row, (outcome_info.kind, outcome_info.seen_on, payable)))
            lines.append(f"{ref}: {OUTCOME_NAMES[outcome_info.kind]} on {dates.uk(outcome_info.seen_on)}"
                         + (" - payable under this LES (£43.47)." if payable else
                            " - not payable under this LES: the patient is registered with your practice, and the "
                            "LES pays only for patients registered elsewhere." if outcome_info.kind == "no_injection"
                            else " - not payable under this LES (no consultation took place)."
                            if outcome_info.kind == "did_not_attend" else
                            " - nothing is payable under this LES; claim it under the Minor Surgery DES."))
            to = row["referrer_email"] or casework.address_of(conn, row["referrer_code"])
            if to and row["referrer_code"] != code:
                notices.append(Notice(to, "referral_outcome_referrer", {
                    "outcome_name": OUTCOME_NAMES[outcome_info.kind], "seen_on": dates.uk(outcome_info.seen_on),
                    "receiving": casework.name_of(conn, code), "joint": row["joint"] or "",
                    "patient": _named(row)}, case_id=row["id"]))
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
                    case_id=rows[0]["id"] if ctx.case_id is None and rows else None,
                    keys={f"nhs:{r['nhs_number']}" for r in rows if r["nhs_number"]},
                    reply=Reply("referral_outcome", {"lines": lines, "held": False}))


def _named(row) -> str:
    """The patient as the referrer knows them (this goes only to the referrer's directory address)."""
    name = casework.loads(row["patient"]).get("patient_name") or ""
    number = f"NHS number {nhs.display(row['nhs_number'])}" if row["nhs_number"] else "no NHS number"
    return f"{name}, {number}" if name else number


def _registered_here(text: str) -> bool:
    """The receiving practice says the patient is its own registered patient."""
    t = text or ""
    if re.search(r"\bnot\s+(?:\w+\s+)?registered\s+with\s+us\b|\bnot\s+our\s+(?:own\s+)?patient", t, re.I):
        return False
    return bool(re.search(r"\b(?:registered\s+with\s+us|our\s+own\s+(?:registered\s+)?patient|"
                          r"registered\s+here|joined\s+our\s+list|registered\s+at\s+this\s+practice)\b", t, re.I))


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
