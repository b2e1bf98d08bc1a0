"""Denosumab transfer-of-care letters from hospital teams: checked, then the patient
joins the register of their registered practice, which is told when the next
injection is due (6 months after the last dose given in hospital).

A letter may be in the body (typed, pasted, Outlook HTML, forwarded by a secretary or a
mailbox rule) or in PDF/DOCX attachments; two letters as two attachments are two patients.

The practice is matched from the letter and the directory (ODS code, name exact or with a
typo, postcode) and the practices copied in; when it cannot be matched with certainty (no
practice, two practices, a letter that names one practice and a copy to another, a practice
the directory does not know) the letter is held for a person: a wrong practice would send
patient details to the wrong place and lose the patient's recall.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from handlers import casework
from handlers.contract import dates
from handlers.contract import nhs
from handlers.transfers import reader as tp
from bot.mail.attachments import text_of
from handlers.contract.periods import london
from handlers.contract.reading import clinicletter as cl
from handlers.base import Context, Decision, Notice, Reply, error
from store import register
from store.db import audit, directory_version, utcnow
from store.directory import orgs_of_kinds

name = "transfers"
SERVICE = "denosumab"
LETTER = re.compile(r"\b(transfer of care|transfer|discharge|letter|register|clinic)\b", re.I)


def _drug(text: str) -> bool:
    return bool(cl.lexicon().rx("updates", "drug").search(text))


def match(ctx: Context) -> str | None:
    """The letter's text, when it is a denosumab letter from a hospital, else None."""
    if ctx.org is None or ctx.org.kind != "hospital":
        return None
    text = casework.letter_text(ctx)
    head = ctx.parsed.subject + "\n" + text
    if not (_drug(head) and LETTER.search(head)):
        return None
    return text


# -- the documents a message holds --------------------------------------------------------------
@dataclass
class Doc:
    text: str
    attachment: object = None          # the PDF/DOCX it came from, if any


def documents(ctx: Context) -> tuple[list[Doc], str]:
    """(letters, covering text): each attachment holding a letter is one; the body is one when it
    holds a patient (else it is the covering note). lesbot's own quoted mail is cut out."""
    own = {a.lower() for a in getattr(ctx.settings, "own_addresses", set()) if a}
    body = cl.strip_quoted_from(ctx.parsed.text, own)
    docs = []
    for att in ctx.vetting.kept:
        if att.kind not in ("pdf", "docx"):
            continue
        try:
            t = text_of(att)
        except Exception:           # a damaged file: the reply will say what is missing
            continue
        if cl.looks_like_letter(t):
            docs.append(Doc(t, att))
    if cl.looks_like_letter(body) or not docs:
        docs.insert(0, Doc(body))
        cover = ""
    else:
        cover = body
    return docs, cover


# -- the practice ---------------------------------------------------------------------------------
def _practices(conn) -> tuple[tuple[str, str, frozenset], ...]:
    """(code, name, postcodes) of every practice: read again only when the directory changes
    (every letter is matched against all of them)."""
    key = directory_version(conn)
    hit = _DIRECTORY[0]
    if hit is None or hit[0] != key:
        hit = (key, tuple(
            (r["ods_code"], r["name"], frozenset(p for p in (r["postcodes"] or "").split(";") if p))
            for r in orgs_of_kinds(conn, ("practice",))))
        _DIRECTORY[0] = hit             # one assignment: a reader in another thread sees old or new
    return hit[1]


_DIRECTORY: list = [None]


def find_practice(conn, lt: tp.Letter, text: str, copied) -> tuple[str | None, str]:
    """(ODS code, '') or (None, why not). What the letter names (ODS code, name, postcode) and
    the practices copied in must agree; two practices named, or none and no single copy, is no
    answer."""
    directory = _practices(conn)
    named = cl.practices_in(text, directory)
    cc = [o.ods_code for o in copied if o.kind == "practice"]
    names = {c: n for c, n, _ in directory}
    known = {cl.norm_name(n) for n in names.values()}
    unknown = [m for m in lt.mentions if not cl.practices_in(m, directory) and cl.norm_name(m) not in known]
    if len(named) == 1:
        if cc and named[0] not in cc:
            return None, (f"the letter names {casework.name_of(conn, named[0])} as the patient's practice but was "
                          f"copied to {', '.join(casework.name_of(conn, c) for c in cc)}, so lesbot cannot be sure "
                          "which practice the patient is registered with")
        return named[0], ""
    if len(named) > 1:
        return None, ("the letter names more than one practice (" +
                      ", ".join(casework.name_of(conn, c) for c in named) +
                      "), so lesbot cannot tell which one the patient is registered with")
    if unknown:
        return None, ("no practice in the letter matches the directory ('" + "', '".join(unknown[:2]) + "')" +
                      (f", and it was copied to {', '.join(casework.name_of(conn, c) for c in cc)}" if cc else ""))
    if len(cc) == 1:
        return cc[0], ""
    if len(cc) > 1:
        return None, ("the letter names no practice and was copied to more than one (" +
                      ", ".join(casework.name_of(conn, c) for c in cc) + ")")
    return None, "no practice in the letter matches the directory, and no practice was copied in"


# -- one letter -------------------------------------------------------------------------------------
@dataclass
class Result:
    doc: Doc
    lt: tp.Letter
    state: str                                  # accepted, already, held, rejected
    problems: list[dict] = field(default_factory=list)
    practice: str | None = None
    why: str = ""
    existing: object = None
    candidates: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        n = self.lt.nhs_number
        return f"NHS number ending {n[-4:]}" if n and nhs.is_valid(n) else "the patient"


def _one(ctx: Context, doc: Doc, cover: str, on) -> Result:
    conn = ctx.conn
    lt = tp.read(doc.text, on)
    problems = [error(f, p) for f, p in tp.problems(lt, on)]
    if problems:
        return Result(doc, lt, "rejected", problems)
    evidence = "\n\n\n".join((ctx.parsed.subject, cover, doc.text))      # parts read apart (cl.practice_mentions)
    copied = casework.copied_orgs(conn, ctx.parsed)
    hinted = ctx.hints.get("practice")
    practice, why = (hinted, "") if hinted else find_practice(conn, lt, evidence, copied)
    if practice is None:
        # what a person needs to settle it: every practice the letter or its copies point to
        candidates = [f"{casework.name_of(conn, c)} (named in the letter)" for c in cl.practices_in(
            evidence, _practices(conn))] + [f"{casework.name_of(conn, o.ods_code)} (copied in)"
                                            for o in copied if o.kind == "practice"]
        return Result(doc, lt, "held", why=why + ". The contract team will match the practice and the patient "
                                                 "will then join its register.", candidates=candidates)
    org = casework.org(conn, practice)
    if SERVICE not in org.services:
        return Result(doc, lt, "held", practice=practice, why=(
            f"{org.name} ({org.ods_code}) has not signed up to the denosumab LES. The contract team will arrange "
            "who gives the injections."))
    existing = register.entry_for_patient(conn, lt.nhs_number)
    if existing:
        if existing["status"] == "active" and existing["practice_code"] == practice:
            return Result(doc, lt, "already", practice=practice, existing=existing)
        return Result(doc, lt, "held", practice=practice, why=(
            "this patient is already on the register" +
            (f" of another practice ({casework.name_of(conn, existing['practice_code'])})"
             if existing["practice_code"] != practice else f" with the status '{existing['status']}'") +
            "; the contract team will decide whether to move or restart the entry"))
    return Result(doc, lt, "accepted", practice=practice)


def handle(ctx: Context, text: str) -> Decision:
    on = london(ctx.received_at).date()
    docs, cover = documents(ctx)
    results, seen = [], set()
    for doc in docs:
        r = _one(ctx, doc, cover, on)
        n = r.lt.nhs_number
        if n and n in seen:
            continue                            # the same letter in the body and attached
        seen.add(n)
        results.append(r)
    keys = {f"nhs:{r.lt.nhs_number}" for r in results if r.lt.nhs_number}
    if len(results) == 1:
        return _single(ctx, results[0], keys)
    return _several(ctx, results, keys)


def _single(ctx: Context, r: Result, keys: set) -> Decision:
    conn = ctx.conn
    if r.state == "rejected":
        return Decision("rejected", "denosumab_transfer", r.problems, case_kind="transfer", keys=keys,
                        reply=Reply("transfer_result", {"state": "incomplete"}))
    if r.state == "held":
        return Decision("quarantined", "denosumab_transfer", [error("practice", r.why)], case_kind="transfer",
                        keys=keys, reply=Reply("transfer_result", {"state": "held", "why": r.why}),
                        reading=_reading(r))
    if r.state == "already":
        return Decision("accepted", "denosumab_transfer", [error("register", "already on the register")],
                        case_kind="transfer", keys=keys, reply=Reply("transfer_result", {
                            "state": "already", "practice": casework.name_of(conn, r.practice),
                            "since": dates.uk(r.existing["created_at"][:10]),
                            "next_due": dates.uk(r.existing["next_due"])}))
    apply, notice, next_due = _accept(ctx, r)
    return Decision("accepted", "denosumab_transfer", case_kind="transfer", apply=apply, keys=keys,
                    notices=[notice] if notice else [],
                    reply=Reply("transfer_result", {"state": "accepted", "practice": casework.name_of(conn, r.practice),
                                                    "next_due": dates.uk(next_due), "patient": r.label}))


def _reading(r: Result) -> dict:
    """What lesbot read of a held letter, for `lesbot quarantine show` (never mailed)."""
    return {"patient": r.label, "practice candidates": r.candidates or ["none found"],
            "first dose": dates.uk(r.lt.latest_dose) if getattr(r.lt, "latest_dose", None) else "not read",
            "to settle it": "lesbot quarantine release ID --set practice=ODS"}


def _several(ctx: Context, results: list[Result], keys: set) -> Decision:
    conn = ctx.conn
    applies, notices, lines, errors = [], [], [], []
    for r in results:
        line = {"patient": r.label, "state": r.state, "practice": casework.name_of(conn, r.practice)}
        if r.state == "accepted":
            apply, notice, next_due = _accept(ctx, r)
            applies.append(apply)
            if notice:
                notices.append(notice)
            line["next_due"] = dates.uk(next_due)
        elif r.state == "already":
            line |= {"since": dates.uk(r.existing["created_at"][:10]), "next_due": dates.uk(r.existing["next_due"])}
            errors.append(error(r.label, "already on the register"))
        elif r.state == "held":
            line["why"] = r.why
            errors.append(error(r.label, "held: " + r.why))
        else:
            line["errors"] = r.problems
            errors += [error(f"{r.label}: {e['field']}", e["problem"]) for e in r.problems]
        lines.append(line)
    states = {r.state for r in results}
    if states <= {"accepted", "already"}:
        outcome = "accepted"
    elif states & {"accepted", "already"}:
        outcome = "partially_accepted"
    elif "held" in states:
        outcome = "quarantined"
    else:
        outcome = "rejected"

    def apply_all(wconn, case_id):
        for a in applies:
            a(wconn, case_id)
    held = [r for r in results if r.state == "held"]
    return Decision(outcome, "denosumab_transfer", errors, case_kind="transfer", keys=keys,
                    reading={r.label: _reading(r) for r in held},
                    apply=apply_all if applies else None, notices=notices,
                    reply=Reply("denosumab_transfers", {"letters": lines, "all_accepted": outcome == "accepted"}))


def _accept(ctx: Context, r: Result):
    """The register entry (applied at commit), the notice to the practice, the next due date."""
    conn, lt, practice = ctx.conn, r.lt, r.practice
    last = lt.latest_dose
    first = lt.first_dose or last
    next_due = dates.months_after(last, 6)
    patient = {"name": lt.get("patient_name"), "dob": dates.uk(lt.dob) or lt.get("dob"), "address": lt.get("address")}
    hospital_doses = sorted({d for d in [lt.first_dose, *(lt.dose_dates.doses if lt.dose_dates else []),
                                         lt.last_dose] if d})

    def apply(wconn, case_id):
        now = utcnow()
        rid = register.add_entry(
            wconn, nhs_number=lt.nhs_number, practice=practice, hospital=ctx.org.ods_code,
            patient=json.dumps(patient), diagnosis=lt.diagnosis, plan=lt.plan,
            initiated_on=(lt.initiated or first).isoformat(), first_dose_on=first.isoformat(),
            last_dose_on=last.isoformat(), next_due=next_due.isoformat(), case_id=case_id,
            message=ctx.message_row, now=now)
        if rid is None:     # another letter for this patient got there first
            raise RuntimeError("patient joined the register while this letter was being read")
        for given in hospital_doses or [last]:
            register.add_hospital_dose(wconn, rid, given.isoformat(), ctx.message_row, now)
        register.link_case_org(wconn, case_id, practice)
        audit(wconn, "register", rid, "added", "pipeline",
              {"practice": practice, "hospital": ctx.org.ods_code, "message": ctx.message_row})

    to = casework.address_of(conn, practice)
    att = r.doc.attachment
    attachments = [(f"transfer-letter.{att.kind}", "application/pdf" if att.kind == "pdf" else
                    "application/vnd.openxmlformats-officedocument.wordprocessingml.document", att.data)] \
        if att is not None else []
    on = london(ctx.received_at).date()
    established = bool(lt.first_dose is None or last != lt.first_dose)
    notice = Notice(to, "denosumab_to_practice", {
        "hospital": ctx.org.name, "practice": casework.name_of(conn, practice),
        "patient": patient | {"nhs_number": nhs.display(lt.nhs_number)},
        "diagnosis": lt.diagnosis, "initiated": dates.uk(lt.initiated), "initiated_inferred":
            bool(lt.dose_dates and lt.dose_dates.initiated_inferred),
        "first_dose": dates.uk(lt.first_dose), "last_dose": dates.uk(last), "established": established,
        "next_due": dates.uk(next_due), "overdue": next_due < on, "plan": lt.plan, "threshold": lt.threshold,
        "deviation": lt.deviation if lt.deviates else "", "information": lt.information or lt.told,
        "stated_next_due": dates.uk(lt.stated_next_due)
        if lt.stated_next_due and lt.stated_next_due != next_due else "",
        "attached": bool(attachments)}, attachments=attachments) if to else None
    return apply, notice, next_due
