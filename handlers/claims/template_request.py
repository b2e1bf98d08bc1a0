"""An email whose subject is TEMPLATE: reply with the practice's claim form."""
import re

from handlers.claims.form import build_form
from handlers.contract.periods import london
from handlers.base import Context, Decision, Reply, error

name = "template_request"
SUBJECT = re.compile(r"^\s*((re|fw|fwd)\s*:\s*)*template\s*$", re.I)
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def match(ctx: Context) -> bool:
    return ctx.org is not None and bool(SUBJECT.match(ctx.parsed.subject))


def handle(ctx: Context, _found: bool = True) -> Decision:
    org = ctx.org
    if org.kind != "practice":
        return Decision("rejected", "template_request", [error("sender", "claim forms are for practices")],
                        reply=Reply("help"), case_kind="enquiry")
    form = build_form(org, ctx.settings.catalogue, ctx.settings.inboxes[0], london(ctx.received_at).date())
    return Decision("accepted", "template_request", case_kind="template_request",
                    reply=Reply("template_sent", {"services": [ctx.settings.catalogue.get(c).name
                                                               for c in org.services
                                                               if ctx.settings.catalogue.get(c)]},
                                attachments=[(f"LES claim form {org.ods_code}.xlsx", XLSX_TYPE, form)]))
