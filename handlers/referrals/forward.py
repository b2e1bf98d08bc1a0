"""Passing a complete referral on: the full details to the receiving practice, a short copy to the
referrer when somebody else sent it. Patient details go only to directory addresses."""
from __future__ import annotations

from handlers import casework
from handlers.base import Context, Notice
from handlers.contract import letters, nhs
from handlers.referrals.assess import Assessed
from handlers.referrals.reader import CLINICAL_KEYS, PATIENT_KEYS
from store.directory import org_for


def referrer_email(conn, ctx: Context, a: Assessed) -> str:
    """Where the referrer is written to: the sender, the quoted sender of a forwarded chain, else the
    referring practice's directory address."""
    quoted = letters.forwarded(casework.letter_text(ctx)).from_addr
    if a.referrer == ctx.org.ods_code:
        return ctx.parsed.from_addr
    o = org_for(conn, quoted) if quoted else None
    return quoted if o and o.ods_code == a.referrer else (casework.address_of(conn, a.referrer) or "")


def tail(number: str | None) -> str:
    return f"NHS number ending {number[-4:]}" if number else "no NHS number"


def _details(conn, a: Assessed) -> dict:
    r = a.referral
    return {"patient": {k: r.get(k) for k in PATIENT_KEYS} | {
                "nhs_number": nhs.display(r.nhs_number) if r.nhs_number else ""},
            "clinical": {k: r.get(k) for k in CLINICAL_KEYS} | r.extras(),
            "referrer": casework.name_of(conn, a.referrer), "receiving": casework.name_of(conn, a.receiving),
            "registered": casework.name_of(conn, a.registered) or a.registered or ""}


def pass_on(ctx: Context, a: Assessed, case_id: int) -> list[Notice]:
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
            out.append(Notice(to, "referral_copy", {"patient": tail(a.referral.nhs_number),
                                                    "joint": a.referral.get("joint"),
                                                    "receiving": details["receiving"]}, case_id=case_id))
    return out
