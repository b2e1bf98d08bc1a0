"""A practice's own quarterly monitoring return or yearly audit return for the MSK
joint-injection LES: recorded, compared with what lesbot recorded, acknowledged.
Never paid from: payment follows claims and recorded outcomes.
"""
from __future__ import annotations

import json
import re
from datetime import date

from handlers.returns import activity
from handlers import casework
from handlers.contract import dates
from handlers.base import Context, Decision, Reply, could_say, error
from store.db import audit
from store.register import record_return

name = "returns"
KIND = re.compile(r"\b(?:(monitoring|quarterly) return|(audit) return|(?:yearly|annual) (audit))\b", re.I)
QUARTER = re.compile(r"\b(?:(20\d\d)\s*-?\s*Q([1-4])|Q([1-4])\s*-?\s*(20\d\d))\b", re.I)
YEAR = re.compile(r"\b(20\d\d)\b")
CLAIM_SUBJECT = re.compile(r"\bclaim", re.I)
FIGURES = {
    "referrals_received": r"referrals? received|referrals?",
    "attended": r"patients attending|attended|consultations?",
    "injection_given": r"injections? given|injected",
    "no_injection": r"no injections?(?: given)?|consultations? only|not injected",
    "did_not_attend": r"did not attend|DNA",
}
LINE = re.compile(r"^\s*(?:[-•*]\s*)?(" + "|".join(FIGURES.values()) + r")\s*[:=\-–]?\s*(\d{1,5})\s*$", re.I | re.M)


def match(ctx: Context) -> str | None:
    """'monitoring' or 'audit' for a return, else None."""
    if ctx.org is None or ctx.org.kind != "practice":
        return None
    # Evidence, not a passing mention: a claim letter saying activity "will be reported on our
    # quarterly return" is a claim. The subject names the return, or the text gives its figures.
    m = KIND.search(ctx.parsed.subject)
    if not m:
        text = ctx.parsed.new_text
        m = KIND.search(text) if could_say(text, "return", "audit") else None
        if not m or CLAIM_SUBJECT.search(ctx.parsed.subject) or (
                len(read_figures(ctx.parsed.new_text)) < 2 and not any(
                    a.kind in ("csv", "xlsx") for a in ctx.vetting.kept)):
            return None
    return "audit" if (m.group(2) or m.group(3)) else "monitoring"


def read_figures(text: str) -> dict[str, int]:
    out = {}
    for m in LINE.finditer(text):
        label = m.group(1)
        key = next(k for k, rx in FIGURES.items() if re.fullmatch(rx, label, re.I))
        out.setdefault(key, int(m.group(2)))
    return out


def handle(ctx: Context, kind: str) -> Decision:
    text = ctx.parsed.subject + "\n" + casework.letter_text(ctx, whole=False)
    code = ctx.org.ods_code
    if kind == "monitoring":
        q = QUARTER.search(text)
        period = f"{q.group(1) or q.group(4)}Q{q.group(2) or q.group(3)}" if q else None
        span = dates.parse_quarter(period) if period else None
        what = "the quarter, e.g. 'Q3 2026' (calendar quarters: Q3 is July to September)"
    else:
        y = YEAR.search(text)
        period = y.group(1) if y else None
        span = (date(int(period), 1, 1), date(int(period), 12, 31)) if period else None
        what = "the year, e.g. 'Yearly audit return 2026'"
    stated = read_figures(text)
    problems = []
    if span is None:
        problems.append(error("period", f"lesbot could not find {what}."))
    if not stated:
        problems.append(error("figures", "no figures found. Write one per line, e.g. 'Referrals received: 5', "
                                         "'Attended: 4', 'Injection given: 2', 'No injection: 2', "
                                         "'Did not attend: 1'."))
    if problems:
        return Decision("rejected", f"{kind}_return", problems, case_kind="return",
                        reply=Reply("return_result", {"kind": kind, "rows": [], "period": period or ""}))
    recorded = activity.msk_counts(ctx.conn, code, *span)
    rows = [{"figure": k.replace("_", " "), "stated": v, "recorded": recorded.get(k),
             "differs": recorded.get(k) is not None and recorded.get(k) != v} for k, v in stated.items()]
    differences = {r["figure"]: {"stated": r["stated"], "recorded": r["recorded"]} for r in rows if r["differs"]}

    def apply(wconn, case_id):
        rid = record_return(wconn, message=ctx.message_row, case_id=case_id, received_at=ctx.received_at.isoformat(),
                            org_code=code, service=activity.MSK, kind=kind, period=period, stated=json.dumps(stated),
                            recorded=json.dumps(recorded), differences=json.dumps(differences))
        audit(wconn, "return", rid, "recorded", "pipeline", {"differences": len(differences)})

    return Decision("accepted", f"{kind}_return", case_kind="return", apply=apply,
                    reply=Reply("return_result", {"kind": kind, "rows": rows, "period": period,
                                                  "differences": bool(differences)}))
