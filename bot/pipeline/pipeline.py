"""classify -> handle -> reply via the outbox -> record, for one stored message.

Two phases. *Decide* reads only (its own connection, under a time limit, so a
handler that hangs cannot hold a lock or stop the inbox). *Commit* is one
transaction: the message's final state, the handler's writes, the reply in the
outbox and the audit row land together or not at all. A crash before COMMIT
leaves the message 'received' and it is decided again; after COMMIT it is done.
"""
from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import threading
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import handlers as handler_registry
from bot.mail import outbox
from bot.pipeline import rules
from bot.mail.attachments import Vetter
from store.directory import org_for
from bot.settings.logs import for_the_record, scrub
from bot.mail.parse import body_digest, identity, parse
from handlers.contract.reading.courtesy import is_courtesy
from bot.mail.compose import build, render
from handlers.contract.references import reference
from handlers.base import Context, Decision, Reply, error
from store.db import audit, connect, utcnow

log = logging.getLogger("lesbot.pipeline")
LONDON = ZoneInfo("Europe/London")
QUICK_ANSWERS = 2        # earlier answers within a minute, in an hour, before an address is held


@dataclass
class Facts:
    """What decide learned about the message, recorded beside the outcome."""
    message_id: str = ""
    from_addr: str = ""
    org_code: str | None = None
    org_name: str = ""
    content_hash: str = ""                          # the message's identity (mailparse.identity)
    body_hash: str = ""
    duplicate_of: int | None = None
    case_id: int | None = None
    no_reply_reason: str = ""
    references: list[str] = field(default_factory=list)
    bounce: rules.BounceInfo | None = None
    new_case: bool = False
    reply: tuple[str, str, bytes] | None = None    # (subject, Message-ID, raw), rendered
    notices: list = field(default_factory=list)     # [(to, subject, Message-ID, raw)], rendered
    quick_answer: bool = False                      # answered our mail within a minute
    service: str = "les"                            # which inbox it came to (routes)
    inbox: str = ""


class Pipeline:
    def __init__(self, settings, conn, handlers=None, on_reply=None):
        self.settings = settings
        self.conn = conn                      # the writer's connection (commit phase)
        self.handlers = handlers              # None: chosen per message by the inbox's service
        self.on_reply = on_reply              # wake the mailer
        self.vetter = Vetter(settings.limits)
        self.overran = False                  # a decision ran past the time limit (its thread still runs)
        self._executor = self._new_executor()

    # -- decide (read-only, time-limited) ---------------------------------
    def _new_executor(self):
        local = threading.local()
        path = self.settings.db_path

        def init():
            local.conn = connect(path)
        self._local = local
        return cf.ThreadPoolExecutor(max_workers=1, initializer=init,
                                     thread_name_prefix="lesbot-decide")

    def decide(self, row, conn) -> tuple[Decision, Facts]:
        s = self.settings
        facts = Facts()
        p = parse(row["raw"])
        facts.message_id, facts.from_addr = p.message_id, p.from_addr
        facts.content_hash = identity(p, row["raw"])
        facts.references = rules.references_of(p)
        env_from = row["envelope_from"]
        facts.service, facts.inbox = s.route(
            (row["envelope_to"] or "").split(",") +
            p.addresses("delivered-to", "x-original-to", "to", "cc"))
        facts.body_hash = f"{facts.service}:{body_digest(p)}"      # the same words to another service are new

        first = conn.execute(
            "SELECT id, case_id FROM messages WHERE content_hash=? AND id<? AND state!='received' "
            "ORDER BY id LIMIT 1", (facts.content_hash, row["id"])).fetchone()
        if first:
            facts.duplicate_of, facts.case_id = first["id"], first["case_id"]
            return Decision("duplicate", "duplicate"), facts
        resent = self._resent(conn, row, facts)
        if resent:
            org = org_for(conn, p.from_addr)
            facts.org_code, facts.org_name = (org.ods_code, org.name) if org else (None, "")
            facts.no_reply_reason = rules.machine_reason(p, env_from)
            return resent, facts

        if "x-lesbot-truncated" in p.headers:
            size = p.header("x-lesbot-truncated")
            return Decision("quarantined", "oversize", [error(
                "message", f"{size} bytes, over the {s.limits.max_message_bytes} byte limit; not downloaded")]), facts
        why = rules.loop_reason(p, s)
        if why:
            return Decision("ignored", "loop", [error("message", why)]), facts
        why = rules.bounce_reason(p, env_from)
        if why:
            facts.bounce = rules.bounce_details(p)
            facts.case_id = self._case_by_outbox(conn, facts.bounce.references)
            return Decision("ignored", "bounce", [error("message", why)]), facts
        answers_us = self._answers_us(conn, facts.references)
        for kind, check in (("read_receipt", rules.receipt_reason),
                            ("auto_reply", lambda p: rules.auto_reply_reason(p, answers_us))):
            why = check(p)
            if why:
                facts.case_id = self._case_by_outbox(conn, facts.references)
                return Decision("ignored", kind, [error("message", why)]), facts
        facts.quick_answer = self._quick_answer(conn, row, facts.references)
        if facts.quick_answer and conn.execute(
                "SELECT count(*) FROM messages WHERE from_addr=? AND quick_answer=1 AND id<? AND received_at>=?",
                (p.from_addr, row["id"], (_utc(row["received_at"]) - timedelta(hours=1)).isoformat())
                ).fetchone()[0] >= QUICK_ANSWERS:
            # a program answering every reply at once: stop the ping-pong before it spends the
            # practice's daily replies; a person looks at the address
            return Decision("quarantined", "auto_responder", [error(
                "from", f"answered lesbot's mail within a minute {QUICK_ANSWERS + 1} times in an hour: an "
                        "automatic responder? Held, not answered")]), facts

        org = org_for(conn, p.from_addr)
        if org:
            facts.org_code, facts.org_name = org.ods_code, org.name
        if not row["released"]:
            why = rules.list_reason(p) if org is None else ""
            if why:
                # a bulletin from outside the directory: nothing to hold, nothing to answer
                return Decision("ignored", "list", [error("message", why)]), facts
            if org is None:
                return Decision("quarantined", "unknown_sender",
                                [error("from", f"{p.from_addr or 'no sender'} is not in the directory")]), facts
            why = rules.spoof_reason(p, env_from, s, org_of=lambda a: getattr(org_for(conn, a), "ods_code", None))
            if why:
                return Decision("quarantined", "spoofed", [error("from", why)]), facts
        deep = [d for d in p.defects if d.startswith("MIME parts nested")]
        if deep and not row["released"]:
            return Decision("quarantined", "malformed", [error("message", deep[0])]), facts
        vetting = self.vetter.vet(p.attachments)
        if vetting.dangerous and not row["released"]:
            return Decision("quarantined", "suspicious_attachment",
                            [error(n, r) for n, r in vetting.dangerous]), facts

        facts.no_reply_reason = rules.machine_reason(p, env_from)
        facts.case_id = self._thread(conn, p, facts.references, org)
        if vetting.refused:
            return Decision("rejected", "attachments", [error(n, r) for n, r in vetting.refused],
                            reply=Reply("attachments_refused"), case_kind="attachments"), facts

        if facts.case_id is not None and not vetting.kept and is_courtesy(p.new_text):
            # "thank you" in a case's thread: recorded against the case, never answered
            return Decision("ignored", "thanks", [error("message", "a courtesy reply with nothing to act on")],
                            case_id=facts.case_id), facts

        ctx = Context(settings=s, conn=conn, message_row=row["id"], parsed=p, vetting=vetting,
                      org=org, received_at=_utc(row["received_at"]), case_id=facts.case_id,
                      service=facts.service, hints=json.loads(row["hints"] or "{}"))
        for h in self.handlers or handler_registry.for_service(facts.service):
            found = h.match(ctx)
            if found is not None and found is not False:
                return h.handle(ctx, found), facts
        raise RuntimeError("no handler matched (the registry must end with a fallback)")

    @staticmethod
    def _resent(conn, row, facts: Facts) -> Decision | None:
        """The same content from the same sender under a new Message-ID within a day, already
        acted on: nothing is done twice, and the sender is told where the first one went."""
        since = (_utc(row["received_at"]) - timedelta(days=1)).isoformat()
        first = conn.execute(
            "SELECT id, case_id FROM messages WHERE body_hash=? AND from_addr=? AND id<? AND received_at>=? "
            "AND state IN ('accepted','partially_accepted') AND case_id IS NOT NULL ORDER BY id LIMIT 1",
            (facts.body_hash, facts.from_addr, row["id"], since)).fetchone()
        if not first:
            return None
        facts.duplicate_of, facts.case_id = first["id"], first["case_id"]
        return Decision("duplicate", "duplicate", reply=Reply("already_received", {
            "first_reference": reference(first["case_id"])}))

    def _thread(self, conn, p, refs: list[str], org) -> int | None:
        """The case this message belongs to, found before it is classified (issue 10, principle 1):
        In-Reply-To or any References entry naming a message lesbot sent or stored, else an
        [LES-nnnnnn] in the subject or the quoted text of a case the sender's organisation is in."""
        case = self._case_by_outbox(conn, refs)
        if case is None:
            case = self._case_by_stored(conn, refs)
        if case is None and org:
            for ref in rules.text_references(p):
                if conn.execute("SELECT 1 FROM cases WHERE id=? AND org_code=? UNION ALL "
                                "SELECT 1 FROM case_orgs WHERE case_id=? AND ods_code=?",
                                (ref, org.ods_code, ref, org.ods_code)).fetchone():
                    return ref
        return case

    @staticmethod
    def _quick_answer(conn, row, refs: list[str]) -> bool:
        at = _utc(row["received_at"])
        for r in refs[:20]:
            out = conn.execute("SELECT created_at FROM outbox WHERE msgid=?", (r,)).fetchone()
            if out and timedelta(0) <= at - _utc(out["created_at"]) <= timedelta(seconds=60):
                return True
        return False

    @staticmethod
    def _answers_us(conn, refs: list[str]) -> bool:
        return any(conn.execute("SELECT 1 FROM outbox WHERE msgid=?", (r,)).fetchone() for r in refs[:20])

    @staticmethod
    def _case_by_stored(conn, refs: list[str]) -> int | None:
        for r in refs:
            hit = conn.execute("SELECT case_id FROM messages WHERE message_id=? AND case_id IS NOT NULL "
                               "ORDER BY id LIMIT 1", (r,)).fetchone()
            if hit:
                return hit["case_id"]
        return None

    @staticmethod
    def _case_by_outbox(conn, refs: list[str]) -> int | None:
        for r in refs:
            hit = conn.execute("SELECT case_id FROM outbox WHERE msgid=?", (r,)).fetchone()
            if hit:
                return hit["case_id"]
        return None

    def _decide_timed(self, row) -> tuple[Decision, Facts | None, str]:
        local = self._local
        def work():
            decision, facts = self.decide(row, local.conn)
            self._open_case(row, decision, facts)
            self._prepare_reply(row, decision, facts)
            return decision, facts
        fut = self._executor.submit(work)
        try:
            decision, facts = fut.result(timeout=self.settings.limits.handler_timeout_seconds)
            return decision, facts, ""
        except cf.TimeoutError:
            # The stuck thread keeps its own connection and is abandoned; a thread cannot be
            # stopped, so `overran` tells the worker to end its process once this is recorded.
            self.overran = True
            self._executor.shutdown(wait=False)
            self._executor = self._new_executor()
            return (Decision("failed", "error"), None,
                    f"handling took longer than {self.settings.limits.handler_timeout_seconds:g} s")
        except Exception as e:
            log.exception("message %s failed", row["id"])
            return Decision("failed", "error"), None, _describe(e)

    # -- the case and the reply, settled while deciding (no lock held) ----------
    @staticmethod
    def _open_case(row, decision: Decision, facts: Facts):
        if decision.case_id and facts.case_id is None:
            facts.case_id = decision.case_id
            return
        if decision.outcome not in ("ignored", "duplicate", "failed") and facts.case_id is None \
                and decision.case_kind:
            facts.new_case = True
            facts.case_id = row["id"]      # a case is numbered after the message that opened it

    def _prepare_reply(self, row, decision: Decision, facts: Facts):
        """Render the reply and any notices now; whether each may be sent is settled at commit."""
        if decision.outcome in ("failed", "ignored") or facts.case_id is None:
            return
        if decision.outcome == "duplicate" and not decision.reply:
            return
        if decision.outcome == "quarantined" and not (decision.reply or decision.notices):
            return
        s = self.settings
        ref = reference(facts.case_id)
        received = _utc(row["received_at"]).astimezone(LONDON)
        base = {"reference": ref, "org_name": facts.org_name, "inbox": facts.inbox or s.inboxes[0],
                "received": received.strftime("%-d %B %Y at %H:%M"), "errors": decision.errors}
        if decision.reply and not facts.no_reply_reason and facts.org_code:
            subject, text, html = render(decision.reply.template, **{**base, **decision.reply.context})
            msgid, raw = build(s, to=facts.from_addr, subject=subject, text=text, html=html, ref=ref,
                               in_reply_to=facts.message_id or None, references=facts.references,
                               attachments=decision.reply.attachments, from_address=facts.inbox)
            facts.reply = (f"[{ref}] {subject}", msgid, raw)
        for n in decision.notices:
            nref = reference(n.case_id or facts.case_id)
            subject, text, html = render(n.template, **{**base, "reference": nref, **n.context})
            msgid, raw = build(s, to=n.to, subject=subject, text=text, html=html, ref=nref,
                               attachments=n.attachments, auto_submitted="auto-generated", from_address=facts.inbox)
            facts.notices.append((n.to.lower(), f"[{nref}] {subject}", msgid, raw, n.case_id or facts.case_id))

    # -- commit ------------------------------------------------------------
    def _load(self, msg_id: int):
        return self.conn.execute(
            "SELECT id, raw, received_at, envelope_from, envelope_to, state, released, hints FROM messages WHERE id=?",
            (msg_id,)).fetchone()

    def process(self, msg_id: int) -> dict | None:
        row = self._load(msg_id)
        if row is None or row["state"] != "received":
            return None
        return self._commit_group([(row, *self._decide_timed(row))])[0]

    def _commit_group(self, items) -> list[dict | None]:
        """One transaction for several decided messages; each in its own savepoint,
        so one whose writes fail is recorded as failed without undoing the others."""
        conn = self.conn
        results = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for row, decision, facts, err in items:
                conn.execute("SAVEPOINT one")
                try:
                    results.append(self._apply(row, decision, facts or Facts(), err))
                except Exception as e:
                    conn.execute("ROLLBACK TO one")
                    log.exception("message %s failed while recording its result", row["id"])
                    err = _describe(e)
                    facts = facts or Facts()
                    facts.reply, facts.new_case = None, False
                    if facts.case_id == row["id"]:
                        facts.case_id = None
                    results.append(self._apply(row, Decision("failed", decision.kind or "error"), facts, err))
                conn.execute("RELEASE one")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if self.on_reply and any(r and r["reply"] for r in results):
            self.on_reply()
        return results

    def _apply(self, row, decision: Decision, facts: Facts, err: str) -> dict | None:
        conn = self.conn
        state = conn.execute("SELECT state FROM messages WHERE id=?", (row["id"],)).fetchone()
        if state is None or state[0] != "received":
            return None      # someone else finished it first
        final = decision.outcome not in ("ignored", "duplicate", "failed")
        case_id = facts.case_id
        if final and facts.new_case:
            # ON CONFLICT: a message released from quarantine reopens the case it opened.
            conn.execute("INSERT INTO cases (id, created_at, org_code, kind, state, first_message) "
                         "VALUES (?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET state=excluded.state, "
                         "kind=excluded.kind",
                         (case_id, utcnow(), facts.org_code, decision.case_kind, decision.outcome, row["id"]))
        elif final and case_id is not None:
            conn.execute("UPDATE cases SET state=? WHERE id=?", (decision.outcome, case_id))
        if decision.apply and decision.outcome != "failed":
            decision.apply(conn, case_id)
        if facts.bounce:
            self._record_bounce(conn, row["id"], facts.bounce)
        reply_info, no_reply = None, facts.no_reply_reason
        if facts.reply and decision.outcome != "failed":
            reply_info, no_reply = self._queue_reply(conn, row, facts, case_id)
        if decision.outcome != "failed":
            for to, subject, msgid, raw, notice_case in facts.notices:
                _, refused = self._queue(conn, row, to, subject, msgid, raw, notice_case)
                if refused:
                    audit(conn, "message", row["id"], "notice not sent", "pipeline", {"reason": refused})
        conn.execute(
            "UPDATE messages SET state=?, kind=?, message_id=?, from_addr=?, org_code=?, content_hash=?, "
            "body_hash=?, duplicate_of=?, case_id=?, no_reply_reason=?, errors=?, error=?, attempts=attempts+1, "
            "processed_at=?, reading=?, quick_answer=? WHERE id=?",
            (decision.outcome, decision.kind, facts.message_id, facts.from_addr, facts.org_code,
             facts.content_hash, facts.body_hash, facts.duplicate_of, case_id, no_reply or None,
             json.dumps([{k: for_the_record(str(v)) for k, v in e.items()} for e in decision.errors]),
             scrub(err) if err else None, utcnow(),       # a traceback: names kept, numbers masked
             json.dumps(decision.reading, default=str) if decision.reading else None,
             int(facts.quick_answer), row["id"]))
        audit(conn, "message", row["id"], decision.outcome, "pipeline",
              {"kind": decision.kind, "case": case_id, "duplicate_of": facts.duplicate_of,
               "no_reply": no_reply or None, "error": (err.splitlines() or [None])[0]})
        return {"message_id": facts.message_id or None, "kind": decision.kind, "outcome": decision.outcome,
                "reference": reference(case_id) if case_id else None, "errors": decision.errors,
                "reply": reply_info, "id": row["id"]}

    def _queue_reply(self, conn, row, facts: Facts, case_id: int):
        return self._queue(conn, row, facts.from_addr, *facts.reply, case_id)

    def _queue(self, conn, row, to: str, subject_line: str, msgid: str, raw: bytes, case_id: int):
        return outbox.queue(conn, self.settings, to, subject_line, msgid, raw, case_id, message=row["id"])

    def _record_bounce(self, conn, msg_row: int, info: rules.BounceInfo):
        for ref in info.references:
            out = conn.execute("SELECT id, case_id, to_addr FROM outbox WHERE msgid=?", (ref,)).fetchone()
            if not out:
                continue
            recipients = info.recipients or [(out["to_addr"], "")]
            for addr, status in recipients:
                # 5.x.x is permanent, except a full mailbox (x.2.2), which may clear.
                hard = status.startswith("5") and not status.startswith("5.2.2")
                conn.execute("INSERT INTO bounces (at, message, outbox, case_id, recipient, status, hard) "
                             "VALUES (?,?,?,?,?,?,?)", (utcnow(), msg_row, out["id"], out["case_id"],
                                                        addr, status, int(hard)))
                conn.execute("UPDATE outbox SET last_error=? WHERE id=?", (f"bounced {status}".strip(), out["id"]))
                if hard and addr:
                    conn.execute("INSERT OR IGNORE INTO suppressed (email, since, reason, bounce_message) "
                                 "VALUES (?,?,?,?)", (addr, utcnow(), f"hard bounce {status}", msg_row))
                    audit(conn, "address", addr, "suppressed", "pipeline", {"status": status})
            return

    # -- loop ---------------------------------------------------------------
    def pending(self) -> list[int]:
        return [r[0] for r in self.conn.execute(
            "SELECT id FROM messages WHERE state='received' ORDER BY id")]

    def process_pending(self, group_size: int = 32) -> list[dict]:
        """Decide pending messages in arrival order and commit them in groups.

        A group never holds two messages from one sender, nor two decisions sharing
        a key (one patient), so a message is always decided after everything earlier
        it depends on is committed (a duplicate has the sender of its original).
        """
        out: list[dict] = []
        group, senders = [], set()
        for mid in self.pending():
            row = self._load(mid)
            if row is None or row["state"] != "received":
                continue
            item = (row, *self._decide_timed(row))
            claims = {item[2].from_addr if item[2] else None} | item[1].keys
            conflict = bool(claims & senders)
            if conflict or len(group) >= group_size:
                out += self._commit_group(group)
                group, senders = [], set()
                if conflict:     # decided before an earlier message it depends on was committed
                    item = (row, *self._decide_timed(row))
                    claims = {item[2].from_addr if item[2] else None} | item[1].keys
            group.append(item)
            senders |= claims
        if group:
            out += self._commit_group(group)
        return [r for r in out if r]

    def close(self):
        self._executor.shutdown(wait=False)


def _describe(e: Exception) -> str:
    """The error in one line, then the traceback, as recorded on a failed message."""
    return "".join(traceback.format_exception_only(type(e), e)).strip() + "\n" + traceback.format_exc()


def _utc(value: str) -> datetime:
    d = datetime.fromisoformat(value)
    return d if d.tzinfo else d.replace(tzinfo=timezone.utc)
