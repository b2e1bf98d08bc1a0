"""Denosumab transfer-of-care letters from hospital teams: checked, then the patient
joins the register of their registered practice, which is told when the next
injection is due (6 months after the last dose).

The practice is matched from the letter and the directory; when it cannot be
matched with certainty the letter is held for a person: a wrong practice would
send patient details to the wrong place and lose the patient's recall.
"""
from __future__ import annotations

import json
import re

from bot import casework, dates, letters, nhs
from bot import transferparse as tp
from bot.periods import london
from handlers.base import Context, Decision, Notice, Reply, error
from store.db import audit, utcnow

name = "transfers"
SERVICE = "denosumab"
WORDS = re.compile(r"\b(denosumab|prolia)\b", re.I)
LETTER = re.compile(r"\b(transfer of care|discharge|transfer|letter|register)\b", re.I)


def match(ctx: Context) -> bool:
    if ctx.org is None or ctx.org.kind != "hospital":
        return False
    text = casework.letter_text(ctx)
    if not (WORDS.search(ctx.parsed.subject + "\n" + text) and LETTER.search(ctx.parsed.subject + "\n" + text)):
        return False
    ctx.extracted = text
    return True


def find_practice(conn, lt: tp.Letter, text: str, copied) -> tuple[str | None, str]:
    """(ODS code, '') or (None, why not). The labelled practice first, then the one practice
    the letter names, then the one practice copied in; two candidates is no answer."""
    labelled = letters.practices_named(conn, lt.get("practice")) if lt.get("practice") else []
    if len(labelled) == 1:
        return labelled[0], ""
    named = letters.practices_named(conn, text)
    cc = [o.ods_code for o in copied if o.kind == "practice"]
    if len(named) == 1 and (not cc or cc == named):
        return named[0], ""
    if not named and len(cc) == 1:
        return cc[0], ""
    if len(named) > 1 or (named and cc and set(cc) != set(named)):
        return None, ("the letter names more than one practice ("
                      + ", ".join(casework.name_of(conn, c) for c in dict.fromkeys(named + cc)) +
                      "), so lesbot cannot tell which one the patient is registered with")
    return None, ("no practice in the letter matches the directory" +
                  (f" ('{lt.get('practice')}')" if lt.get("practice") else ""))


def handle(ctx: Context) -> Decision:
    conn = ctx.conn
    text = ctx.extracted
    on = london(ctx.received_at).date()
    lt = tp.read(text)
    problems = [error(f, p) for f, p in tp.problems(lt, on)]
    keys = {f"nhs:{lt.nhs_number}"} if lt.nhs_number else set()
    if problems:
        return Decision("rejected", "denosumab_transfer", problems, case_kind="transfer", keys=keys,
                        reply=Reply("transfer_result", {"state": "incomplete"}))
    practice, why = find_practice(conn, lt, text, casework.copied_orgs(conn, ctx.parsed))
    held = None
    if practice is None:
        held = why + ". The contract team will match the practice and the patient will then join its register."
    else:
        org = casework.org(conn, practice)
        if SERVICE not in org.services:
            held = (f"{org.name} ({org.ods_code}) has not signed up to the denosumab LES. The contract team "
                    "will arrange who gives the injections.")
    existing = conn.execute("SELECT * FROM register WHERE nhs_number=?", (lt.nhs_number,)).fetchone()
    if existing and not held:
        if existing["status"] == "active" and existing["practice_code"] == practice:
            return Decision("accepted", "denosumab_transfer", [error("register", "already on the register")],
                            case_kind="transfer", keys=keys,
                            reply=Reply("transfer_result", {"state": "already", "practice": casework.name_of(
                                conn, practice), "since": dates.uk(existing["created_at"][:10]),
                                "next_due": dates.uk(existing["next_due"])}))
        held = ("this patient is already on the register" +
                (f" of another practice ({casework.name_of(conn, existing['practice_code'])})"
                 if existing["practice_code"] != practice else f" with the status '{existing['status']}'") +
                "; the contract team will decide whether to move or restart the entry")
    if held:
        return Decision("quarantined", "denosumab_transfer", [error("practice", held)], case_kind="transfer",
                        keys=keys, reply=Reply("transfer_result", {"state": "held", "why": held}))

    next_due = dates.months_after(lt.first_dose, 6)
    patient = {"name": lt.get("patient_name"), "dob": lt.get("dob"), "address": lt.get("address")}
    pdfs = [a for a in ctx.vetting.kept if a.kind in ("pdf", "docx")]

    def apply(wconn, case_id):
        now = utcnow()
        cur = wconn.execute(
            "INSERT INTO register (nhs_number, practice_code, hospital_code, patient, diagnosis, plan, initiated_on, "
            "first_dose_on, last_dose_on, next_due, status, case_id, letter_message, created_at, updated_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?, 'active', ?,?,?,?) ON CONFLICT(nhs_number) DO NOTHING",
            (lt.nhs_number, practice, ctx.org.ods_code, json.dumps(patient), lt.diagnosis, lt.plan,
             lt.initiated.isoformat(), lt.first_dose.isoformat(), lt.first_dose.isoformat(), next_due.isoformat(),
             case_id, ctx.message_row, now, now))
        if cur.rowcount == 0:     # another letter for this patient got there first
            raise RuntimeError("patient joined the register while this letter was being read")
        wconn.execute("INSERT INTO doses (register_id, given_on, source, message, recorded_at) VALUES (?,?,?,?,?)",
                      (cur.lastrowid, lt.first_dose.isoformat(), "hospital", ctx.message_row, now))
        wconn.execute("INSERT OR IGNORE INTO case_orgs (case_id, ods_code) VALUES (?,?)", (case_id, practice))
        audit(wconn, "register", cur.lastrowid, "added", "pipeline",
              {"practice": practice, "hospital": ctx.org.ods_code, "message": ctx.message_row})

    to = casework.address_of(conn, practice)
    attachments = [(f"transfer-letter.{a.kind}", "application/pdf" if a.kind == "pdf" else
                    "application/vnd.openxmlformats-officedocument.wordprocessingml.document", a.data) for a in pdfs]
    notice = Notice(to, "transfer_to_practice", {
        "hospital": ctx.org.name, "practice": casework.name_of(conn, practice),
        "patient": patient | {"nhs_number": nhs.display(lt.nhs_number)},
        "diagnosis": lt.diagnosis, "initiated": dates.uk(lt.initiated), "first_dose": dates.uk(lt.first_dose),
        "next_due": dates.uk(next_due), "plan": lt.plan, "threshold": lt.threshold, "deviation": lt.deviation,
        "information": lt.information, "stated_next_due": dates.uk(lt.stated_next_due)
        if lt.stated_next_due and lt.stated_next_due != next_due else "",
        "attached": bool(attachments)}, attachments=attachments) if to else None
    return Decision("accepted", "denosumab_transfer", case_kind="transfer", apply=apply, keys=keys,
                    notices=[notice] if notice else [],
                    reply=Reply("transfer_result", {"state": "accepted", "practice": casework.name_of(conn, practice),
                                                    "next_due": dates.uk(next_due),
                                                    "patient": f"NHS number ending {lt.nhs_number[-4:]}"}))
