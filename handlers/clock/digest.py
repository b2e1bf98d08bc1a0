"""The contract team's digest: what came in, the payment run, who has not claimed,
reconciliation flags, overdue outcomes and recalls, late untoward events, and what
needs a human. Counts, money and references only: no patient identifiers.
"""
from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from handlers.returns import activity
from handlers.contract import dates
from handlers.contract import workdays
from handlers.clock import held
from bot.mail import outbox
from handlers.clock.chart import claims_chart, data_uri
from handlers.clock.chart import size as chart_size
from handlers.contract.periods import LONDON, add_months, label, month_start
from handlers.clock.reminders import at_time, not_claimed
from bot.mail.compose import build, render
from handlers.contract.references import reference
from store import reports
from store.db import audit, reserve_case_ids, transaction

log = logging.getLogger("lesbot.digest")

KIND_NAMES = {
    "claim": "Claims", "referral": "Referrals", "referral_outcome": "Referral outcomes",
    "referral_update": "Referral updates", "denosumab_transfer": "Denosumab transfers",
    "denosumab_dose": "Denosumab doses", "register_update": "Register updates", "untoward_event": "Untoward events",
    "monitoring_return": "Monitoring returns", "audit_return": "Audit returns", "enquiry": "Other mail",
    "template_request": "Claim form requests",
}
FLAGS_SHOWN = 15
STATES = ["accepted", "partially_accepted", "rejected", "quarantined", "failed"]


@dataclass
class Digest:
    period: str                # day or month
    key: str                   # 2026-11-24 or 2026-11
    since: datetime
    now: datetime
    data: dict = field(default_factory=dict)
    chart: bytes | None = None


def _iso(d: datetime) -> str:
    return d.astimezone(timezone.utc).isoformat()


def window(conn, settings, now: datetime, period: str) -> tuple[str, datetime]:
    today = now.astimezone(LONDON).date()
    if period == "month":
        return f"{today:%Y-%m}", at_time(add_months(month_start(today), -1).replace(
            day=settings.digest.monthly_day), settings.digest.time)
    last = reports.last_daily_digest(conn, _iso(now))
    return today.isoformat(), datetime.fromisoformat(last) if last else now - timedelta(days=1)


def gather(conn, settings, now: datetime, period: str) -> Digest:
    key, since = window(conn, settings, now, period)
    d = Digest(period, key, since, now)
    today = now.astimezone(LONDON).date()
    s, n = _iso(since), _iso(now)
    names = reports.org_names(conn)
    d.data.update(_came_in(conn, s, n))
    d.data.update(_payment_run(conn, settings, names, today, period, s, n))
    # who has not claimed last month yet
    last_month = add_months(month_start(today), -1)
    d.data["not_claimed_month"] = label(last_month)
    d.data["not_claimed"] = [{"practice": names.get(c, c), "ods_code": c, "services": ", ".join(v)}
                             for c, v in sorted(not_claimed(conn, settings, last_month).items())]
    d.data.update(_reconciliation(conn, names, today))
    d.data.update(_overdue(conn, settings, names, today, s, n))
    d.data.update(_imsk(conn, names, s, n))
    d.data.update(_training(conn, names, today))
    d.data.update(_needs_a_human(conn, settings, s, n))
    d.data["since"] = since.astimezone(LONDON).strftime("%-d %B %Y %H:%M")
    d.data["now"] = now.astimezone(LONDON).strftime("%-d %B %Y %H:%M")
    d.data["period"] = period
    return d


def _came_in(conn, s: str, n: str) -> dict:
    """Messages processed in the window, per kind and state."""
    came: dict[str, dict] = {}
    other = 0
    for kind, state, count in reports.messages_by_kind(conn, s, n):
        if kind in KIND_NAMES:
            came.setdefault(KIND_NAMES[kind], dict.fromkeys(STATES, 0))
            came[KIND_NAMES[kind]][state] = came[KIND_NAMES[kind]].get(state, 0) + count
        else:
            other += count          # duplicates, auto-replies, bounces, loops
    return {"came_in": [{"what": k, **v, "total": sum(v.values())} for k, v in sorted(came.items())],
            "machine_mail": other}


def _payment_run(conn, settings, names: dict, today: date, period: str, s: str, n: str) -> dict:
    """The next payment run's lines, claims rejected and claims that came too late for their month's run."""
    run = f"{today:%Y-%m}" if period == "month" or today.day <= 10 else f"{add_months(month_start(today), 1):%Y-%m}"
    lines = [dict(r) for r in reports.run_lines(conn, run)]
    cat = settings.catalogue
    for r in lines:
        r["practice"] = names.get(r["org_code"], r["org_code"])
        svc = cat.get(r["service"])
        r["service_name"] = svc.name if svc else r["service"]
        r["amount"] = f"{r['pence'] / 100:,.2f}"
    rejected = [dict(r) | {"practice": names.get(r["org_code"], r["org_code"])}
                for r in reports.rejected_claims(conn, s, n)]
    late = {}
    for r in reports.accepted_claims(conn, s, n):
        received = datetime.fromisoformat(r["created_at"]).astimezone(LONDON).date()
        if r["run"] > f"{received:%Y-%m}":
            late[r["org_code"]] = late.get(r["org_code"], 0) + 1
    return {"run": label(date.fromisoformat(run + "-01")), "run_lines": lines,
            "run_total": f"{sum(r['pence'] for r in lines) / 100:,.2f}", "rejected": rejected,
            "late_claims": [{"practice": names.get(c, c), "ods_code": c, "lines": k} for c, k in sorted(late.items())]}


def _reconciliation(conn, names: dict, today: date) -> dict:
    flags = _one_per_practice(activity.reconcile(conn, today), "no_register")
    shown, per_kind = [], {}
    for f in flags:            # the first few of each kind; `lesbot reconcile` lists them all
        per_kind[f["kind"]] = per_kind.get(f["kind"], 0) + 1
        if per_kind[f["kind"]] <= FLAGS_SHOWN:
            shown.append(f | {"practice": names.get(f["ods_code"], f["ods_code"])})
    return {"flags": shown,
            "flags_more": {k.replace("_", " "): n - FLAGS_SHOWN for k, n in per_kind.items() if n > FLAGS_SHOWN}}


def _overdue(conn, settings, names: dict, today: date, s: str, n: str) -> dict:
    """Overdue outcomes and recalls (counts per practice), and untoward events reported late."""
    last_chase = settings.reminders.outcome_chase_days[-1]
    overdue = {}
    for r in reports.overdue_referrals(conn, today.isoformat()):
        o = overdue.setdefault(r["receiving_code"], {"n": 0, "chased_out": []})
        o["n"] += 1
        passed = datetime.fromisoformat(r["forwarded_at"]).astimezone(LONDON).date()
        if (today - passed).days >= last_chase:
            o["chased_out"].append(reference(r["id"]))
    return {
        "overdue_outcomes": [{"practice": names.get(c, c), "ods_code": c, "n": v["n"],
                              "chased_out": ", ".join(v["chased_out"])} for c, v in sorted(overdue.items())],
        "overdue_recalls": [{"practice": names.get(r[0], r[0]), "ods_code": r[0], "n": r[1], "oldest": dates.uk(r[2])}
                            for r in reports.overdue_recalls(conn, today.isoformat())],
        "late_events": [{"practice": names.get(r["org_code"], r["org_code"]), "kind": r["kind"],
                         "hours": f"{r['hours']:.0f}" if r["hours"] is not None else "?",
                         "reference": reference(r["case_id"]) if r["case_id"] else ""}
                        for r in reports.late_events(conn, s, n)]}


def _imsk(conn, names: dict, s: str, n: str) -> dict:
    """IMSK: referral variation per referring practice (seed 002), and the standards."""
    imsk = []
    for r in reports.imsk_by_referrer(conn, s, n):
        imsk.append({"ods_code": r["referrer_code"], "practice": names.get(r["referrer_code"], r["referrer_code"]),
                     "n": r["n"], "returned": r["returned"], "triaged_pct": _pct(r["triaged_ok"], r["triaged"]),
                     "appt_pct": _pct(r["appts_ok"], r["appts"])})
    returned = [{"reason": "under 18" if "under 18" in (r[0] or "") else
                 "practice not covered" if "covers" in (r[0] or "") else (r[0] or "")[:80],
                 "n": r[1]} for r in reports.imsk_returned(conn, s, n)]
    return {"imsk": imsk, "imsk_returned": returned, "imsk_waiting": reports.imsk_awaiting_triage(conn)}


def _training(conn, names: dict, today: date) -> dict:
    training = [dict(r) | {"practice": names.get(r["org_code"], r["org_code"]),
                           "ends": dates.uk(r["commitment_ends"]), "done": dates.uk(r["training_completed_on"]),
                           "status": ("in training" if not r["commitment_ends"] else
                                      "commitment ended" if r["commitment_ends"] < today.isoformat() else
                                      "in commitment")}
                for r in reports.approved_training(conn)]
    return {"training": training, "training_pending": reports.training_pending(conn)}


def _needs_a_human(conn, settings, s: str, n: str) -> dict:
    """Each message a person should answer or act on (held.py), and what did not go out."""
    return {
        "human": held.needs_a_human(conn, s, n)["groups"],
        "quarantined_n": reports.messages_in_state(conn, "quarantined"),
        "failed_n": reports.messages_in_state(conn, "failed"),
        "failed_outbox_n": reports.outbox_not_delivered(conn),
        "capped": held.held_replies(conn, s, n),
        "cap": settings.limits.replies_per_sender_per_day,
        "bounces": [dict(r) for r in reports.bounces(conn, s, n)],
        "refused_reminders": [dict(r) for r in reports.refused_reminders(conn, s, n)]}


def daily(settings, conn, now: datetime) -> dict | None:
    """The daily digest, on working days only (closures in settings.calendar)."""
    if not workdays.is_working_day(now.astimezone(LONDON).date(), tuple(settings.calendar.closures)):
        return None
    return run(settings, conn, now, "day")


def monthly(settings, conn, now: datetime) -> dict:
    return run(settings, conn, now, "month")


def _one_per_practice(flags: list[dict], kind: str) -> list[dict]:
    """A practice with no register yet would have a no_register flag for every month it claimed
    (`lesbot reconcile` lists them); the digest says it once per practice."""
    out, merged = [], {}
    for f in flags:
        if f["kind"] != kind:
            out.append(f)
            continue
        m = merged.get(f["ods_code"])
        if m is None:
            merged[f["ods_code"]] = m = dict(f, months=[])
            out.append(m)
        else:
            m["claimed"] += f["claimed"]
        m["months"].append(f["period"])
    for m in merged.values():
        months = sorted(m.pop("months"))
        m["period"] = months[0] if len(months) == 1 else f"{months[0]} to {months[-1]}"
        m["detail"] = (f"{m['claimed']} injections claimed for {len(months)} month{'s' if len(months) != 1 else ''}; "
                       "lesbot has no denosumab register entries for this practice yet (no transfer letter "
                       "recorded), so the claims could not be checked against the register")
    return out


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def chart(conn, now: datetime, catalogue) -> bytes:
    """Accepted claims (£) by activity month and service, last 12 months, as a PNG (bot/chart.py)."""
    return claims_chart(conn, now, catalogue)


def render_digest(settings, d: Digest, ref: str, preview: str = "", inline: bool | None = None
                  ) -> tuple[str, str, str]:
    """(subject, text, html). `preview`: '' for the email itself, else the footer of a copy that is
    only printed (a dry run, or one already sent), in place of "keep the reference". The chart is a
    cid: part of the email; wherever the HTML is only looked at (inline, the default for a preview)
    it is a data: URI, as nothing is attached there."""
    src = width = height = None
    if d.chart:
        src = data_uri(d.chart) if (bool(preview) if inline is None else inline) else "cid:chart"
        width, height = chart_size(d.chart)
    return render("digest", reference=ref, org_name="Contract team", inbox=settings.inboxes[0],
                  chart=bool(d.chart), chart_src=src, chart_width=width, chart_height=height,
                  preview=preview, **d.data)


def _copy_note(done) -> str:
    ref = reference(done["case_id"]) if done["case_id"] else ""
    if done["state"] == "sent":
        return f"A copy, not sent again: this digest went to the contract team{' as ' + ref if ref else ''}."
    return (f"A copy: this digest was not sent ({done['why'] or done['state']})"
            f"{'; it is recorded as ' + ref if ref else ''}.")


def run(settings, conn, now: datetime, period: str = "day", dry_run: bool = False,
        with_chart: bool | None = None) -> dict:
    """Build the digest for NOW and, unless dry_run, send it once (a second run for the same
    day or month sends nothing)."""
    d = gather(conn, settings, now, period)
    if with_chart if with_chart is not None else (period == "month" and settings.digest.chart):
        d.chart = chart(conn, now, settings.catalogue)
    done = reports.digest_record(conn, period, d.key)
    result = {"period": period, "key": d.key, "digest": d, "sent": False, "why": ""}
    if dry_run:
        # nothing is sent or recorded, so there is no reference to give
        result["text"], result["html"] = render_digest(settings, d, "", preview=(
            f"Preview (dry run) from the Local Enhanced Services inbox ({settings.inboxes[0]}): "
            "not sent and not recorded, so it has no reference."))[1:]
        return result
    if done:
        result["why"] = f"the {period} digest for {d.key} was already {done['state']}"
        result["text"], result["html"] = render_digest(settings, d, "", preview=_copy_note(done))[1:]
        return result
    case_id = reserve_case_ids(settings.db_path, 1)[0]
    ref = reference(case_id)
    subject, text, html = render_digest(settings, d, ref)
    # what is printed is read on screen, where no cid: part is attached
    result["text"], result["html"] = text, render_digest(settings, d, ref, inline=True)[2] if d.chart else html
    to = settings.contract_team
    try:
        with transaction(conn):
            reports.add_digest_case(conn, case_id)
            refused, msgid = "no contract_team address is set", None
            if to:
                msgid, raw = build(settings, to=to, subject=subject, text=text, html=html, ref=ref,
                                   auto_submitted="auto-generated",
                                   images=[("chart", d.chart)] if d.chart else None)
                _, refused = outbox.queue(conn, settings, to, f"[{ref}] {subject}", msgid, raw, case_id,
                                          actor="scheduler", cap=False)
            reports.record_digest(conn, period, d.key, _iso(d.since), _iso(now), case_id, msgid, refused)
            audit(conn, "digest", case_id, "refused" if refused else "sent", "scheduler",
                  {"period": period, "key": d.key, "why": refused or None})
    except sqlite3.IntegrityError:      # rolled back
        result["why"] = f"the {period} digest for {d.key} was sent by another run"
        return result
    result.update(sent=not refused, why=refused or "", reference=ref)
    log.info("%s digest %s: %s", period, d.key, refused or "queued")
    return result

