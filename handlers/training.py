"""Training of practitioners LES: applications checked for the nine minimum items of
the specification (section 3), in the body or an attached DOCX/PDF; complete ones go
to the commissioner's panel; the panel's decision is recorded and passed on, and an
approved applicant's commitment period (2 or 3 financial years after completing the
training; financial years run April to March) is tracked.
"""
from __future__ import annotations

import json
import re
from datetime import date

from bot import casework, dates
from handlers.base import Context, Decision, Notice, Reply, error
from store.db import audit, utcnow

name = "training"
MONEY = re.compile(r"£\s?\d")
NUMBER = re.compile(r"\d")


def _paras(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def _para_with(text: str, rx: str) -> str:
    hits = [p for p in _paras(text) if re.search(rx, p, re.I)]
    return "\n".join(hits)


# (item, how to find it, what else it must hold, what to write)
ITEMS = [
    ("name of the GPwSI / PwSI", r"\b(?:GPwSI|PwSI)\b[^\n]{0,40}?(?:name)?\s*[:\-–]\s*\S|name of (?:the )?(?:GPwSI|PwSI)\s*[:\-–]\s*\S",
     None, "Add 'Name of GPwSI/PwSI: Dr ...'."),
    ("practice / PbC locality / provider organisation",
     r"^\s*(?:name of )?(?:the )?(?:practice|PbC locality|locality|provider organisation|organisation)\s*[:\-–]\s*\S",
     None, "Add 'Practice / PbC locality / provider organisation: ...'."),
    ("written support of the clinical lead", r"clinical lead", r"support|endorse|letter",
     "Attach or include the clinical lead's written support of the proposal."),
    ("service redesign (Investing In Your Health), with costs", r"service redesign|investing in your health|\bIIYH\b",
     MONEY, "Say how the proposal supports service redesign under Investing In Your Health, with the costs (£)."),
    ("practice based commissioning and the secondary-to-primary shift, with costs",
     r"practice[- ]based commissioning|\bPbC\b.*commissioning|secondary[- ]to[- ]primary",
     MONEY, "Say how it supports practice based commissioning and the shift of activity from secondary to "
            "primary care, with the costs (£)."),
    ("support for the Local Delivery Plan", r"local delivery plan|\bLDP\b", r"\w+(?:\W+\w+){7}",
     "Show how the proposal supports the Local Delivery Plan."),
    ("support for the Financial Recovery Plan", r"financial recovery", r"\w+(?:\W+\w+){7}",
     "Show how the proposal supports the Financial Recovery Plan."),
    ("quantified benefits", r"benefit", NUMBER,
     "Quantify the benefits to patients, the practice / PbC locality and the commissioner (numbers, e.g. "
     "referrals avoided a year)."),
    ("detailed training costs", r"(?:training|course)\s+(?:costs?|fees?)|cost of (?:the )?training", MONEY,
     "Give the detailed costs of the training and any other associated costs (£)."),
]


def missing_items(text: str) -> list[dict]:
    out = []
    for item, find, also, fix in ITEMS:
        found = bool(re.search(find, text, re.I | re.M))
        if found and also is not None:
            para = _para_with(text, find)
            found = bool(re.search(also, para, re.I) if isinstance(also, str) else also.search(para))
        if not found:
            out.append(error(item, f"is missing. {fix}"))
    return out


def _gpwsi(text: str) -> str:
    m = re.search(r"(?:GPwSI|PwSI)[^\n:]{0,30}[:\-–]\s*(.+)", text, re.I)
    return m.group(1).strip()[:120] if m else ""


def financial_year_end(d: date, years_after: int) -> date:
    """31 March ending the Nth whole financial year after the one D falls in."""
    start_year = d.year if d.month >= 4 else d.year - 1
    return date(start_year + 1 + years_after, 3, 31)


def match(ctx: Context) -> bool:
    return ctx.service == "training" and ctx.org is not None


def _is_panel(ctx: Context) -> bool:
    panel = ctx.settings.training.panel.lower()
    return bool(panel) and ctx.parsed.from_addr == panel


def handle(ctx: Context) -> Decision:
    conn = ctx.conn
    app = conn.execute("SELECT * FROM training_applications WHERE id=?", (ctx.case_id,)).fetchone() \
        if ctx.case_id else None
    if _is_panel(ctx):
        return _panel(ctx, app)
    if app is not None and app["state"] == "approved":
        return _completed(ctx, app)
    if app is not None and app["state"] != "incomplete":
        # about an application already with the panel or decided: never overwrite it
        return Decision("rejected", "training_update", [error("application", (
            "is with the commissioner's panel; you will be told their decision." if app["state"] == "with_panel"
            else "was declined; send a new application in a new email (not a reply)."))],
            reply=Reply("training_result", {"state": "status", "held": ""}))
    return _application(ctx, app)


def _application(ctx: Context, earlier) -> Decision:
    text = casework.letter_text(ctx, whole=False)
    if earlier is not None:          # a reply adding what was missing: judged with what came before
        text = earlier["text"] + "\n\n" + text
    missing = missing_items(text)
    panel = ctx.settings.training.panel
    state = "incomplete" if missing else "with_panel"
    held = ""
    if not missing and not panel:
        held = "no panel address is set (training.panel): the contract team will pass it on"
    case_id = earlier["id"] if earlier is not None else None
    notices = []
    if state == "with_panel" and panel:
        notices.append(Notice(panel, "training_to_panel", {
            "applicant": casework.name_of(ctx.conn, ctx.org.ods_code), "gpwsi": _gpwsi(text), "text": text[:20000]},
            attachments=[(f"application-{i + 1}.{a.kind}", "application/pdf" if a.kind == "pdf" else
                          "application/vnd.openxmlformats-officedocument.wordprocessingml.document", a.data)
                         for i, a in enumerate(a for a in ctx.vetting.kept if a.kind in ("pdf", "docx"))],
            case_id=case_id))

    def apply(wconn, cid):
        wconn.execute("INSERT OR REPLACE INTO training_applications (id, message, org_code, applicant_email, "
                      "received_at, state, text, missing, gpwsi) VALUES (?,?,?,?,?,?,?,?,?)",
                      (case_id or cid, ctx.message_row, ctx.org.ods_code, ctx.parsed.from_addr,
                       ctx.received_at.isoformat(), state, text, json.dumps(missing), _gpwsi(text)))
        audit(wconn, "training_application", case_id or cid, state, "pipeline", {"missing": len(missing)})
    return Decision("rejected" if missing else "accepted", "training_application", missing,
                    case_kind="training_application", case_id=case_id, apply=apply, notices=notices,
                    reply=Reply("training_result", {"state": state, "held": held}))


def _panel(ctx: Context, app) -> Decision:
    text = ctx.parsed.new_text
    if app is None or app["state"] not in ("with_panel",):
        return Decision("rejected", "training_decision", [error("application", (
            "lesbot could not tell which application this decides, or it was already decided. Reply to the "
            "email that brought the application."))], reply=Reply("training_panel_result", {"lines": []}))
    declined = re.search(r"\b(declined|not approved|rejected|refused|unsuccessful)\b", text, re.I)
    approved = re.search(r"\bapproved?\b", text, re.I) and not declined
    if not (approved or declined):
        return Decision("rejected", "training_decision", [error("decision", "say 'approved' or 'declined', with "
                                                                            "the reasons.")],
                        reply=Reply("training_panel_result", {"lines": []}))
    years = None
    m = re.search(r"\b(two|three|2|3)\s+(?:financial\s+)?years?\b", text, re.I)
    if m:
        years = {"two": 2, "three": 3}.get(m.group(1).lower(), None) or int(m.group(1))
    if approved and years is None:
        return Decision("rejected", "training_decision", [error("commitment", (
            "an approval must give the commitment period: two or three financial years after completing the "
            "training."))], reply=Reply("training_panel_result", {"lines": []}))
    state = "approved" if approved else "declined"
    rm = re.search(r"reasons?\s*[:\-–]?\s*(.+)", text, re.I | re.S)
    reasons = (rm.group(1) if rm else text).strip()[:2000]
    notices = [Notice(app["applicant_email"], "training_decision_to_applicant", {
        "state": state, "reasons": reasons, "years": years})]

    def apply(wconn, cid):
        wconn.execute("UPDATE training_applications SET state=?, decided_at=?, reasons=?, commitment_years=? "
                      "WHERE id=?", (state, utcnow(), reasons, years, app["id"]))
        audit(wconn, "training_application", app["id"], state, "pipeline", {"years": years})
    return Decision("accepted", "training_decision", apply=apply, notices=notices,
                    reply=Reply("training_panel_result", {"lines": [f"{state}, passed on to the applicant"
                                                                    + (f"; commitment {years} financial years after "
                                                                       "the training" if years else "")]}))


def _completed(ctx: Context, app) -> Decision:
    """The applicant reports the training completed: the commitment period starts."""
    text = ctx.parsed.new_text
    done = dates.parse(text) if re.search(r"\bcomplet", text, re.I) else None
    if done is None:
        return Decision("rejected", "training_update", [error("completion date", (
            "to start the commitment period, write 'Training completed on DD/MM/YYYY'."))],
                        reply=Reply("training_result", {"state": "approved", "held": ""}))
    ends = financial_year_end(done, app["commitment_years"])

    def apply(wconn, cid):
        wconn.execute("UPDATE training_applications SET training_completed_on=?, commitment_ends=? WHERE id=?",
                      (done.isoformat(), ends.isoformat(), app["id"]))
    return Decision("accepted", "training_update", apply=apply,
                    reply=Reply("training_result", {"state": "completed", "held": "", "completed": dates.uk(done),
                                                    "ends": dates.uk(ends), "years": app["commitment_years"]}))
