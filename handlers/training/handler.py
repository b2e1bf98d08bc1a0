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


from handlers import casework
from handlers.contract import dates
from handlers.contract.reading import forms
from handlers.base import Context, Decision, Notice, Reply, error
from store import training as training_store
from store.db import audit, utcnow

name = "training"
LEX = forms.load_lexicon("training")
ITEMS = sorted(LEX["items"].items(), key=lambda kv: kv[1]["number"])
HEADINGS = {key: item["headings"] for key, item in ITEMS}
MONEY = re.compile(r"£\s?\d|\d\s?(?:pounds|gbp)\b|\bgbp\s?\d", re.I)
NUMBER = re.compile(r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|twenty|thirty|forty|fifty|hundred|"
                    r"thousand|half|double|twice)\b", re.I)
PROMISE = re.compile(r"(?<![a-z])(?:" + "|".join(re.escape(w) for w in LEX["promise"]) + r")(?![a-z])", re.I)
SUPPORT = re.compile(r"(?<![a-z])(?:" + "|".join(re.escape(w) for w in LEX["support"]) + r")(?![a-z])", re.I)


def _sentences(text: str) -> list[str]:
    return [x.strip() for x in re.split(r"(?<=[.!?])\s+|\n\s*\n", text or "") if x.strip()]


def _answers(key: str, body: str) -> bool:
    """Does a section's answer hold what item `key` needs? A promise ('will follow') is not the item."""
    need = LEX["items"][key].get("needs", "words")
    kept = " ".join(x for x in _sentences(body) if not PROMISE.search(x))
    if len(re.findall(r"[A-Za-z]{2,}", kept)) < (1 if need in ("money", "number") else 2):
        return False
    if need == "money":
        return bool(MONEY.search(kept))
    if need == "number":
        return bool(NUMBER.search(kept))
    if need == "sentence":
        return len(re.findall(r"[A-Za-z]{2,}", kept)) >= 6
    return True


def _paras(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def _support_letter(text: str) -> bool:
    """The clinical lead's written support anywhere: a sentence of support (not a promise of one)
    in a paragraph naming the clinical lead, or under a 'Letter of support' heading."""
    for para in _paras(text):
        if not re.search(r"clinical lead|letter of support|support(?:ing)? letter", para, re.I):
            continue
        if any(SUPPORT.search(x) and not PROMISE.search(x) for x in _sentences(para)):
            return True
    return False


def found_items(text: str) -> dict[str, str]:
    """Each of the nine items present, with how it was found (heading or prose)."""
    secs = forms.sections(text, HEADINGS)
    numbered = {s_.number for s_ in secs if s_.number and 1 <= s_.number <= 9}
    by_number = {item["number"]: key for key, item in ITEMS}
    headed = {s_.key for s_ in secs if s_.key}
    out: dict[str, str] = {}
    for s_ in secs:
        key = s_.key
        if key is None and s_.number in by_number and len(numbered) >= 4 and by_number[s_.number] not in headed:
            key = by_number[s_.number]       # "7." in an application numbered as the LES is
        if key and key not in out and _answers(key, s_.body):
            out[key] = f"under '{s_.heading[:60]}'"
    # prose evidence is looked for outside the headings: a heading copied from the LES names every
    # item ("The written support ...", "... the Financial Recovery Plans") without answering it
    heads = {s_.line for s_ in secs}
    plain = "\n".join(ln for n, ln in enumerate(forms.normalise(text).splitlines()) if n not in heads)
    if "support" not in out and _support_letter(plain):
        out["support"] = "a letter of support"
    for key, item in ITEMS:
        if key in out or not item.get("mention"):
            continue
        if key == "support":
            continue
        rx = re.compile("|".join(re.escape(w) for w in item["mention"]), re.I)
        for para in _paras(plain):
            if rx.search(para) and _answers(key, para):
                out[key] = "in the text"
                break
    return out


def missing_items(text: str) -> list[dict]:
    have = found_items(text)
    return [error(item["field"], f"is missing. {item['fix']}") for key, item in ITEMS if key not in have]


def _gpwsi(text: str) -> str:
    """The GPwSI/PwSI's name as the application gives it (first line of item 1)."""
    for s_ in forms.sections(text, HEADINGS):
        if (s_.key == "name" or (s_.key is None and s_.number == 1)) and s_.body.strip():
            return s_.body.strip().splitlines()[0][:120]
    return ""


def _text(ctx: Context) -> str:
    """What the applicant wrote this time and the text of attached Word/PDF documents (Word in
    reading order, so a costs table stays under its heading); confidentiality footers dropped."""
    parts = [ctx.parsed.new_text, *casework.form_texts(ctx)]
    return "\n\n".join(forms.strip_disclaimer(p) for p in parts if p)


def financial_year_end(d: date, years_after: int) -> date:
    """31 March ending the Nth whole financial year after the one D falls in."""
    start_year = d.year if d.month >= 4 else d.year - 1
    return date(start_year + 1 + years_after, 3, 31)


def match(ctx: Context) -> bool:
    return ctx.service == "training" and ctx.org is not None


def _is_panel(ctx: Context) -> bool:
    panel = ctx.settings.training.panel.lower()
    return bool(panel) and ctx.parsed.from_addr == panel


def handle(ctx: Context, _found: bool = True) -> Decision:
    conn = ctx.conn
    app = training_store.application(conn, ctx.case_id) if ctx.case_id else None
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
    text = _text(ctx)
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
        training_store.save_application(
            wconn, case_id or cid, message=ctx.message_row, org_code=ctx.org.ods_code,
            applicant_email=ctx.parsed.from_addr, received_at=ctx.received_at.isoformat(), state=state, text=text,
            missing=json.dumps(missing), gpwsi=_gpwsi(text))
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
        training_store.record_decision(wconn, app["id"], state=state, decided_at=utcnow(), reasons=reasons,
                                       commitment_years=years)
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
        training_store.record_completion(wconn, app["id"], completed_on=done.isoformat(),
                                         commitment_ends=ends.isoformat())
    return Decision("accepted", "training_update", apply=apply,
                    reply=Reply("training_result", {"state": "completed", "held": "", "completed": dates.uk(done),
                                                    "ends": dates.uk(ends), "years": app["commitment_years"]}))
