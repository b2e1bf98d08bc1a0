"""classify -> handle -> reply via the outbox -> record, for one stored message.

Two phases. *Decide* reads only (its own connection, under a time limit, so a
handler that hangs cannot hold a lock or stop the inbox): the rule chain
(bot.pipeline.rules), then the service's handlers. *Commit* (bot.pipeline.commit)
is one transaction: the message's final state, the handler's writes, the reply in
the outbox and the audit row land together or not at all. A crash before COMMIT
leaves the message 'received' and it is decided again; after COMMIT it is done.
"""
from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import threading
import time

import handlers as handler_registry
from bot.mail.attachments import Vetter
from bot.pipeline.commit import commit_group, describe
from bot.pipeline.facts import Facts, Incoming
from bot.pipeline.reply import open_case, prepare_reply
from bot.pipeline.rules import RULES
from handlers.base import Context, Decision
from store import messages
from store.db import connect

log = logging.getLogger("lesbot.pipeline")


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
        """The first rule that decides, else the first of the service's handlers that finds
        the message its own."""
        m = Incoming(self.settings, conn, row, self.vetter)
        for rule in RULES:
            decision = rule.check(m)
            if decision is not None:
                return decision, m.facts
        ctx = Context(settings=self.settings, conn=conn, message_row=row["id"], parsed=m.parsed,
                      vetting=m.vetting, org=m.org, received_at=m.received_at, case_id=m.facts.case_id,
                      service=m.facts.service, hints=json.loads(row["hints"] or "{}"))
        for h in self.handlers or handler_registry.for_service(m.facts.service):
            found = h.match(ctx)
            if found is not None and found is not False:
                return h.handle(ctx, found), m.facts
        raise RuntimeError("no handler matched (the registry must end with a fallback)")

    def decide_and_reply(self, row, conn) -> tuple[Decision, Facts]:
        decision, facts = self.decide(row, conn)
        open_case(row, decision, facts)
        prepare_reply(self.settings, row, decision, facts)
        return decision, facts

    def _decide_timed(self, row) -> tuple[Decision, Facts | None, str]:
        fut = self._executor.submit(lambda: self.decide_safely(row, self._local.conn))
        try:
            return fut.result(timeout=self.settings.limits.handler_timeout_seconds)
        except cf.TimeoutError:
            # The stuck thread keeps its own connection and is abandoned; a thread cannot be
            # stopped, so `overran` tells the worker to end its process once this is recorded.
            self.overran = True
            self._executor.shutdown(wait=False)
            self._executor = self._new_executor()
            return Decision("failed", "error"), None, self._overrun_text()

    def decide_safely(self, row, conn) -> tuple[Decision, Facts | None, str]:
        try:
            return *self.decide_and_reply(row, conn), ""
        except Exception as e:
            log.exception("message %s failed", row["id"])
            return Decision("failed", "error"), None, describe(e)

    # -- commit ------------------------------------------------------------
    def process(self, msg_id: int) -> dict | None:
        row = messages.for_processing(self.conn, msg_id)
        if row is None or row["state"] != "received":
            return None
        return self._commit_group([(row, *self._decide_timed(row))])[0]

    def _commit_group(self, items) -> list[dict | None]:
        results = commit_group(self.conn, self.settings, items)
        if self.on_reply and any(r and r["reply"] for r in results):
            self.on_reply()
        return results

    # -- loop ---------------------------------------------------------------
    def pending(self) -> list[int]:
        return messages.pending(self.conn)

    def process_pending(self, group_size: int = 32) -> list[dict]:
        """Decide pending messages in arrival order and commit them in groups.

        A group never holds two messages from one sender, nor two decisions sharing
        a key (one patient), so a message is always decided after everything earlier
        it depends on is committed (a duplicate has the sender of its original).
        A group is handed to the decide thread once, not message by message: the
        hand-off costs about as much as deciding a short message.
        """
        out: list[dict] = []
        ids = self.pending()
        while ids and not self.overran:
            group, taken = self._decide_group(ids[:group_size])
            out += self._commit_group(group)
            ids = ids[taken:]
        return [r for r in out if r]

    def _decide_group(self, ids: list[int]) -> tuple[list[tuple], int]:
        """Decide messages in order until one conflicts with the group (it is decided again,
        after the group is committed) or a decision overruns the time limit. Returns the group
        and how many ids it used up."""
        limit = self.settings.limits.handler_timeout_seconds
        job = _GroupJob(self, ids)
        fut = self._executor.submit(job.run)
        while True:
            try:
                fut.result(timeout=max(0.01, job.started + limit - time.monotonic()))
                return job.group, job.taken
            except cf.TimeoutError:
                with job.lock:
                    if job.finished or time.monotonic() - job.started < limit:
                        continue
                    job.abandoned = True
                    group, taken = list(job.group), job.taken
                self.overran = True
                self._executor.shutdown(wait=False)
                self._executor = self._new_executor()
                stuck = messages.for_processing(self.conn, ids[taken])
                if stuck is not None and stuck["state"] == "received":
                    group.append((stuck, Decision("failed", "error"), None, self._overrun_text()))
                return group, taken + 1
            except Exception:
                log.exception("deciding a group failed")
                raise

    def _overrun_text(self) -> str:
        return f"handling took longer than {self.settings.limits.handler_timeout_seconds:g} s"

    def close(self):
        self._executor.shutdown(wait=False)


class _GroupJob:
    """One group's decisions, run in the decide thread. The processor thread watches the
    time each message has taken; `lock` keeps its view and this thread's progress in step."""

    def __init__(self, pipeline: Pipeline, ids: list[int]):
        self.pipeline, self.ids = pipeline, ids
        self.lock = threading.Lock()
        self.group: list[tuple] = []
        self.taken = 0                 # ids used up: decided into the group, or skipped
        self.started = time.monotonic()
        self.finished = self.abandoned = False

    def run(self) -> None:
        p, conn = self.pipeline, self.pipeline._local.conn
        senders: set = set()
        try:
            for mid in self.ids:
                with self.lock:
                    if self.abandoned:
                        return
                    self.started = time.monotonic()      # ids[taken] is the one being decided
                row = messages.for_processing(conn, mid)
                if row is None or row["state"] != "received":
                    with self.lock:
                        self.taken += 1
                    continue
                decision, facts, err = p.decide_safely(row, conn)
                claims = {facts.from_addr if facts else None} | decision.keys
                with self.lock:
                    if self.abandoned:
                        return
                    if claims & senders:
                        return     # depends on something in this group: decided again after it commits
                    self.group.append((row, decision, facts, err))
                    self.taken += 1
                senders |= claims
        finally:
            with self.lock:
                self.finished = True
