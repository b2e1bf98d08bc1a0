"""Checking a claim read from a message: the claim as a whole, then each line, against the
catalogue and the directory. Every problem is collected (with its fix), none stops the others."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from handlers.base import Context, error
from handlers.claims import reader
from handlers.claims.extracted import Extracted, RawLine
from handlers.claims.wording import money
from handlers.contract.periods import add_months, london, month_end, month_start
from handlers.contract.periods import label as label_of
from handlers.contract.reading.months import describe
from store.directory import org_by_code

NHS_LIKE = re.compile(r"(?<!\d)\d{3}[ -]?\d{3}[ -]?\d{4}(?!\d)")


@dataclass
class Line:
    service: str
    service_name: str
    unit: str
    month: date
    count: int
    rate: Decimal
    where: str
    run: str = ""
    replaces: dict | None = None      # the earlier accepted line this one replaces
    notes: list[str] = field(default_factory=list)
    period: str = ""                  # "November 2026", "October to December 2026"

    @property
    def amount(self) -> Decimal:
        return self.rate * self.count


def safe(text: str, limit: int = 90) -> str:
    """Text of the claim echoed back: no NHS numbers, never a spreadsheet formula, kept short."""
    t = NHS_LIKE.sub("[number removed]", " ".join(str(text).split()))
    if t[:1] in ("=", "+", "@"):
        t = "'" + t
    return t if len(t) <= limit else t[:limit - 1] + "…"


def typo_of(conn, code: str, own: str) -> bool:
    """An ODS code that names no organisation and is one slip (a swap or a wrong digit) from the
    sender's own code. A code that names another practice is never a typo."""
    from rapidfuzz.distance import DamerauLevenshtein
    if org_by_code(conn, code) is not None:
        return False
    return DamerauLevenshtein.distance(code, own) <= 1 or sorted(code) == sorted(own) and \
        DamerauLevenshtein.distance(code, own) <= 2


class Review:
    """One claim being checked: what is wrong with the claim as a whole (problems), the lines that
    cannot be paid (rejected), notes, and what lesbot read (echoed so a person can catch a misread)."""

    def __init__(self, ctx: Context, ex: Extracted):
        self.ctx, self.ex = ctx, ex
        self.cat = ctx.settings.catalogue
        self.org = ctx.org
        self.today = london(ctx.received_at).date()
        self.this_month = month_start(self.today)
        self.signed_up = [c for c in self.org.services if self.cat.get(c)]
        self.services_named = "; ".join(self.cat.get(c).name for c in self.signed_up) or "none (not signed up)"
        self.problems: list[dict] = []
        self.rejected: list[dict] = []
        self.notes: list[str] = []
        self.read: list[str] = []

    # the claim as a whole ---------------------------------------------------------------------
    def check_sender(self) -> None:
        """Who sent it, whether they can claim, and the practice codes the claim names."""
        org, ex = self.org, self.ex
        if org.kind != "practice":
            self.problems.append(error("sender", f"{org.name} is a {org.kind}, and only practices claim LES "
                                                 "payments. Ask the practice to send its own claim."))
        if org.kind == "practice" and not self.signed_up:
            self.problems.append(error("practice", f"{org.name} is not signed up for any Local Enhanced Service, "
                                                   "so nothing can be paid. To sign up, ask the contract team "
                                                   f"({self.ctx.settings.inboxes[0]} can pass it on); once the "
                                                   "directory shows your services, send the claim again."))
        others = sorted(c for c in ex.practice_codes if c != org.ods_code)
        for c in list(others):
            if typo_of(self.ctx.conn, c, org.ods_code):
                others.remove(c)
                self.notes.append(f"The ODS code {c} in your claim matches no practice; lesbot took it as a typing "
                                  f"slip for your own code, {org.ods_code} (the claim came from {org.name}'s "
                                  "address).")
        if others:
            self.problems.append(error("practice code", f"the claim names {', '.join(others)}, but it was sent "
                                                        f"from an address of {org.name} ({org.ods_code}). Each "
                                                        "practice sends its own claim from its own address."))
        for where, problem in ex.problems:
            self.problems.append(error(where, problem))
        if ex.patient_identifiers:
            self.notes.append("Your claim contained patient details (NHS numbers or a patient column). Claims must "
                              "hold counts only: lesbot did not record them. Please leave them out next time.")

    def account_for_mentions(self, lines: list[Line]) -> None:
        """Every service named is accounted for: a line, or a note or problem here."""
        ex = self.ex
        claimed_codes = {r.service.code for r in ex.lines if r.service and r.count_text.strip()}
        for code, where, text in ex.mentions:
            if code in claimed_codes or code == "other":
                continue
            svc = self.cat.get(code)
            if svc is None:
                continue
            claimed_codes.add(code)
            msg = (f"'{safe(text)}' names {svc.name} but gives no number of {svc.unit}s, so nothing is claimed "
                   f"for it. To claim it, send the number for each month, e.g. '{svc.name}: 3'.")
            if ex.lines or lines:
                self.notes.append(f"{where}: {msg}")
            else:
                self.rejected.append(error(where, msg))

    # each line ----------------------------------------------------------------------------------
    def check_lines(self) -> list[Line]:
        """The lines that can be paid; the others are rejected with the reason."""
        # Body sentences that repeat a line of the attached form or a labelled line are the same claim.
        firm = {(r.service.code, r.month) for r in self.ex.lines if r.service and not r.prose and r.count_text.strip()}
        lines: list[Line] = []
        seen: dict[tuple[str, date], tuple[Line, RawLine]] = {}
        for raw in self.ex.lines:
            checked = self.check_line(raw, firm)
            if checked is None:
                continue
            line, how = checked
            svc, month, count, where = raw.service, line.month, line.count, raw.where
            dup = seen.get((svc.code, month))
            if dup:
                if dup[0].count != count:
                    self.rejected.append(error(where, f"{svc.name} for {line.period} appears twice with different "
                                                      f"numbers ({dup[0].count} and {count}). Send one number per "
                                                      "service and month."))
                    lines.remove(dup[0])
                    seen.pop((svc.code, month))
                continue
            seen[(svc.code, month)] = (line, raw)
            lines.append(line)
            self.read.append(f"{svc.name}, {line.period}: {count} — from {where} ('{safe(raw.label)}'); "
                             f"{how or 'month given on the line'}")
        return lines

    def check_line(self, raw: RawLine, firm: set) -> tuple[Line, str] | None:
        """(the line, how its month was found), or None: rejected (with the reason) or nothing claimed."""
        if not self._service_ok(raw):
            return None
        svc, where = raw.service, raw.where
        found = self._month_of(raw)
        if found is None:
            return None
        month, how, period = found
        count = self._count_of(raw, period)
        if count is None:
            return None
        span = 3 if svc.period == "quarterly" else 1
        limit_day = month_end(add_months(month, span - 1 + svc.payment_limit_months))
        if self.today > limit_day:
            self.rejected.append(error(where, f"{svc.name} for {label_of(month)}: not payable. Activity must be "
                                              f"claimed within {svc.payment_limit_months} months; the last day "
                                              f"for {label_of(month)} was {limit_day:%-d %B %Y}."))
            return None
        rate = svc.rate_on(month)
        if rate is None:
            self.rejected.append(error(where, f"{svc.name} had no tariff in {label_of(month)}."))
            return None
        if raw.prose and (svc.code, month) in firm:
            return None      # a sentence restating a line read elsewhere in the claim
        line = Line(svc.code, svc.name, svc.unit, month, count, rate, where)
        line.period = period
        line.notes += raw.notes
        for stated, what in ((raw.unit_price_text, "unit price"), (raw.total_text, "line total")):
            value = money(stated)
            want = rate if what == "unit price" else line.amount
            if value is not None and value != want:
                line.notes.append(f"you gave a {what} of £{value}; at the tariff of £{rate} per {svc.unit} "
                                  f"it is £{want}")
        return line, how

    def _service_ok(self, raw: RawLine) -> bool:
        """The line names a service this practice can claim, once, with something claimed."""
        where, svc, label = raw.where, raw.service, safe(raw.label)
        if raw.other:
            self.rejected.append(error(where, f"'{label}' is not a service lesbot knows: it is not a Local "
                                              "Enhanced Service in this ICB's catalogue, so it cannot be paid "
                                              f"here. Services you can claim: {self.services_named}."))
            return False
        if svc is None:
            if raw.count_text.strip() != "":
                self.rejected.append(error(where, f"'{label}' is not a service lesbot knows. Name one of: "
                                                  f"{self.services_named}."))
            return False
        if raw.problem:
            self.rejected.append(error(where, f"{svc.name}: '{label}': {raw.problem}"))
            return False
        if raw.count_text.strip() == "":
            return False      # a blank row on the form: nothing claimed
        if raw.times > 1:
            self.rejected.append(error(where, f"the same row ({label}, {raw.month_text}, {raw.count_text}) "
                                              f"appears {raw.times} times. Send one row per service and month "
                                              "with the total for that month."))
            return False
        reason = svc.not_payable_reason(raw.label)
        if reason:
            self.rejected.append(error(where, f"'{label}': not payable under this LES: {reason}"))
            return False
        if svc.code not in self.org.services:
            if self.signed_up:
                self.rejected.append(error(where, f"'{label}': {self.org.name} is not signed up for {svc.name}, "
                                                  "so it cannot be paid. If you have signed up recently, ask the "
                                                  "contract team to update the directory."))
            return False
        return True

    def _month_of(self, raw: RawLine) -> tuple[date, str, str] | None:
        """(first month, how it was found, the period as the reply names it), or None: rejected."""
        svc, where, ex = raw.service, raw.where, self.ex
        month, how = raw.month, raw.month_how
        if month is None and not raw.month_text and ex.default_month:
            month, how = ex.default_month, ex.default_month_how or "month taken from the claim form"
        if month is None and not raw.month_text:
            sm = reader.subject_month(self.ctx.parsed.subject, self.ctx.received_at)
            if sm:
                month, how = sm.first, "month taken from the subject"
                raw.month_last = sm.last if not sm.single else None
        if month is None:
            what = f"'{raw.month_text}' is not a month lesbot can read" if raw.month_text else "no month is given"
            self.rejected.append(error(where, f"{svc.name}: {what}. Say which month the activity was in, "
                                              "e.g. 'Month: September 2026'."))
            return None
        last = raw.month_last or month
        if svc.period == "quarterly":
            month = date(month.year, (month.month - 1) // 3 * 3 + 1, 1)
            last = max(last, add_months(month, 2))
        period = describe(month, last)
        if last > self.this_month or (last == self.this_month and raw.month_last):
            self.rejected.append(error(where, f"{svc.name} for {period}: that month has not happened yet (or is "
                                              "not over). Claim after the activity, once the month has ended."))
            return None
        return month, how, period

    def _count_of(self, raw: RawLine, period: str) -> int | None:
        """The whole number claimed, or None: rejected."""
        svc, where = raw.service, raw.where
        count_text = raw.count_text.strip().replace(",", "").replace("£", "")
        if count_text.lower() in ("nil", "none", "zero"):
            count_text = "0"
        try:
            count_f = float(count_text)
        except ValueError:
            self.rejected.append(error(where, f"{svc.name} for {period}: '{safe(raw.count_text, 40)}' is not a "
                                              "number."))
            return None
        if count_f != int(count_f) or count_f < 0:
            fix = (" To reduce an earlier month, send the corrected total for that month instead: it replaces "
                   "the earlier claim.") if count_f < 0 else ""
            self.rejected.append(error(where, f"{svc.name} for {period}: {raw.count_text} is not a whole "
                                              f"number of {svc.unit}s of 0 or more.{fix}"))
            return None
        count = int(count_f)
        if count > svc.max_count:
            self.rejected.append(error(where, f"{svc.name} for {period}: {count} is more than the "
                                              f"{svc.max_count} {svc.unit}s a practice could plausibly provide "
                                              f"in a {'quarter' if svc.period == 'quarterly' else 'month'}. Check "
                                              "the number and send the corrected figure; if it is right, ask the "
                                              "contract team."))
            return None
        return count
