"""The outbox dispatcher: carries out the actions that evaluation wrote down.

Internal actions (tasks, stage moves, invoices, new deals) are applied and marked done in one
transaction: exactly once. Messages go to the provider at least once: the row is marked ``sending``
(with a lease) and committed *before* the call, marked done after; a row left ``sending`` by a crash is
reconciled with the provider (``delivered``) before it is resent with the same idempotency key.
Failures retry with exponential backoff and jitter, then end ``dead``; permanent ones end dead at once.
A dead action ends the later actions of its rule firing dead too ("skipped: ..."), since they may
depend on it; ``retry`` on the dead one queues them again behind it.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, object_session

from engine.core.context import Context
from engine.crashpoints import crashpoint
from engine.document.template import render
from engine.errors import ConveyorError, NotFound, PermanentSendError, TransientSendError
from engine.outbox import effects
from engine.outbox.errors import ActionFailed
from engine.outbox.providers import MessageProvider, OutgoingMessage
from engine.text import refusal, storable
from storage import repositories as repo
from storage.db import is_contention
from storage.models import Firing, OutboxAction

__all__ = [
    "MAX_ERROR", "SKIPPED", "Dispatcher", "Executed", "HasDispatcher", "RetryPolicy", "dispatch_internal", "dispatch_messages",
    "error_text", "is_contention", "retry", "run_until_idle",
]

log = logging.getLogger("conveyor.dispatch")

_PHONE = re.compile(r"^\+?[0-9][0-9 ()\-]{5,22}$")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)
    jitter: float = 0.2
    lease: timedelta = timedelta(seconds=120)

    def delay(self, attempts: int, key: str) -> timedelta:
        """Exponential backoff with a jitter that is random across rows but repeatable for one row."""
        raw = min(self.base * (2 ** max(attempts - 1, 0)), self.cap)
        spread = int.from_bytes(hashlib.sha256(f"{key}:{attempts}".encode()).digest()[:4], "big") / 2**32
        return raw * (1 - self.jitter + 2 * self.jitter * spread)


@dataclass
class Executed:
    """One attempt at one outbox row, as the simulator and the service log report it."""

    outbox_id: int
    deal_id: int
    rule_id: str
    action: str
    status: str  # done | failed | dead
    at: datetime
    params: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


#: ``last_error`` of an action not run because an earlier action of its firing is dead.
SKIPPED = "skipped: "
#: Longest ``last_error`` kept (a driver's error may quote a whole SQL statement and its values).
MAX_ERROR = 1_000


def _finish(row: OutboxAction, status: str, now: datetime, *, result: dict | None = None,
            error: str | None = None, policy: RetryPolicy) -> str:
    row.updated_at = now
    row.claimed_by = None
    row.lease_until = None
    if status == "done":
        row.status, row.result, row.done_at, row.last_error = "done", result, now, None
        return "done"
    # Escaped and bounded: an error quoting the bad value must not be refused by the database too.
    row.last_error = error = None if error is None else storable(error, MAX_ERROR)
    if status == "dead" or row.attempts >= policy.max_attempts:
        row.status = "dead"
        # The rule's later actions may depend on this one (an SMS quoting the invoice number): they
        # end dead too, saying why; retrying this one queues them again (``retry``).
        session = object_session(row)
        if session is not None:
            repo.skip_later_actions(session, row.firing_id, row.seq,
                                    f"{SKIPPED}earlier action {row.id} ({row.action}) is dead: {error}", now)
        return "dead"
    row.status = "failed"
    row.next_attempt_at = now + policy.delay(row.attempts, row.idempotency_key)
    return "failed"


class Dispatcher:
    """Carries out one database's outbox through one provider (``Conveyor.dispatcher``)."""

    def __init__(self, context: Context, core: effects.Core, provider: MessageProvider):
        self._context = context
        self._core = core
        self.provider = provider

    def dispatch_internal(self, limit: int = 100, policy: RetryPolicy = RetryPolicy()) -> list[Executed]:
        """Apply up to ``limit`` ready internal actions; each is applied and marked done atomically.

        On PostgreSQL every action gets its own short transaction: several engines then hold row locks
        (a deal, a manager's round-robin counter) for one action only, and a deadlock between engines
        rolls back one action, not a batch. SQLite has one writer, so a batch per transaction is cheaper.
        A deadlock or lock timeout leaves the row as it was (ready, attempt not counted).
        """
        if self._context.dialect != "postgresql":
            return self._internal_batch(limit, policy)
        out: list[Executed] = []
        for _ in range(limit):
            try:
                batch = self._internal_batch(1, policy)
            except DBAPIError as exc:
                if not is_contention(exc):
                    raise
                log.info("internal action rolled back by lock contention; it stays ready: %s",
                         str(getattr(exc, "orig", exc)).splitlines()[0])
                continue
            if not batch:
                break
            out.extend(batch)
        return out

    def _internal_batch(self, limit: int, policy: RetryPolicy) -> list[Executed]:
        now = self._context.clock.now()
        out: list[Executed] = []
        with self._context.transaction() as s:
            for row in repo.claim_ready(s, now, limit, kind="internal"):
                row_id, deal_id, action = row.id, row.deal_id, row.action
                firing = s.get(Firing, row.firing_id)
                rule_id = firing.rule_id
                row.attempts += 1
                # The savepoint flushes the attempt first, so it counts (and commits with the batch)
                # whatever happens below; a failure rolls back this row's work only, never the others'.
                savepoint = s.begin_nested()
                try:
                    result = effects.apply(self._core, s, row, firing, now)
                    crashpoint("during_internal_action")  # applied, not yet committed: must roll back whole
                    _finish(row, "done", now, result=result, policy=policy)
                    s.flush()  # a value the database refuses fails here, inside this row's savepoint
                    savepoint.commit()
                except Exception as exc:  # noqa: BLE001 - every failure must end visible on the row
                    savepoint.rollback()
                    if is_contention(exc):
                        raise  # roll the whole transaction back: the database was busy, the action is fine
                    permanent = isinstance(exc, ActionFailed) and exc.permanent
                    message = error_text(exc)
                    status = _finish(row, "dead" if permanent else "failed", now, error=message, policy=policy)
                    log.warning("action %s (%s) for deal %s %s: %s", row_id, action, deal_id, status, message)
                    out.append(Executed(row_id, deal_id, rule_id, action, status, now, error=row.last_error))
                    continue
                out.append(Executed(row_id, deal_id, rule_id, action, "done", now, params=result))
        return out

    def dispatch_messages(self, limit: int = 20, policy: RetryPolicy = RetryPolicy()) -> list[Executed]:
        """Send up to ``limit`` ready messages. The provider is called outside any transaction.

        Each row is claimed in its own savepoint: a row whose message cannot be prepared (rendered or
        stored) ends failed with its error, its attempt counted, and the other rows are claimed and sent.
        """
        now = self._context.clock.now()
        out: list[Executed] = []
        claimed: list[tuple[int, int, str, OutgoingMessage, bool]] = []
        with self._context.transaction() as s:
            for row in repo.claim_ready(s, now, limit, kind="message"):
                row_id, deal_id, action = row.id, row.deal_id, row.action
                rule_id = s.get(Firing, row.firing_id).rule_id
                # Ask the provider before sending again whenever an earlier attempt may have got through:
                # a crash mid-call (lease ran out) or a timeout/5xx whose effect we could not see.
                was_sending = row.status == "sending"
                row.attempts += 1
                savepoint = s.begin_nested()  # flushes the attempt: it counts whatever happens below
                try:
                    prepared = self._prepare_message(s, row, rule_id, now, policy, was_sending)
                    s.flush()  # a value the database refuses fails here, inside this row's savepoint
                    savepoint.commit()
                except Exception as exc:  # noqa: BLE001 - one bad row must not hold up every other message
                    savepoint.rollback()
                    if is_contention(exc):
                        raise  # the database was busy: nothing is claimed, every row stays ready
                    message = f"could not prepare the message: {error_text(exc)}"
                    status = _finish(row, "failed", now, error=message, policy=policy)
                    log.warning("message %s for deal %s %s: %s", row_id, deal_id, status, row.last_error)
                    out.append(Executed(row_id, deal_id, rule_id, action, status, now, error=row.last_error))
                    continue
                if isinstance(prepared, Executed):
                    out.append(prepared)
                else:
                    claimed.append(prepared)
        for outbox_id, deal_id, rule_id, message, reconcile in claimed:
            try:
                out.append(self._send_one(outbox_id, deal_id, rule_id, message, reconcile, policy))
            except Exception as exc:  # noqa: BLE001 - the next message is still sent
                # The row stays 'sending' under its lease and is reconciled with the provider when the
                # lease runs out, like after a crash; nothing is lost or sent twice.
                log.error("message %s for deal %s: recording the send failed (reconciled after its lease): %s",
                          outbox_id, deal_id, storable(error_text(exc), MAX_ERROR))
        return out

    def _firing_values(self, s: Session, deal: Any, row: OutboxAction) -> dict[str, Any]:
        """Template values as the message's own firing left them.

        The deal may have moved on since the firing (back through Contract, say, with a second
        invoice): an SMS quotes the invoice its own firing generated, not the deal's newest one.
        """
        values = self._core.queries.template_values(s, deal)
        for action, result in repo.earlier_results(s, row.firing_id, row.seq):
            if action == "generate_invoice" and result.get("number"):
                values["invoice_number"] = result["number"]
        return values

    def _prepare_message(self, s: Session, row: OutboxAction, rule_id: str, now: datetime, policy: RetryPolicy,
                         was_sending: bool) -> tuple[int, int, str, OutgoingMessage, bool] | Executed:
        """Address and store one claimed row's message (``sending``), or end it dead for a bad recipient."""
        msg = repo.message_for_outbox(s, row.id)
        reconcile = was_sending or msg is not None
        if msg is not None and msg.status == "failed":
            # Refused for good earlier and queued again by hand (Retry): the owner may have fixed
            # the phone number or address since, so the message is addressed afresh.
            s.delete(msg)
            s.flush()
            msg = None
        if msg is None:
            deal = repo.get_deal(s, row.deal_id)
            params = row.params or {}
            channel = params.get("channel", "sms") if row.action == "send_message" else "sms"
            try:
                to = _recipient(channel, deal)
            except PermanentSendError as exc:
                _finish(row, "dead", now, error=str(exc), policy=policy)
                return Executed(row.id, row.deal_id, rule_id, row.action, "dead", now, error=row.last_error)
            text = render(params.get("text", ""), self._firing_values(s, deal, row))
            reason = refusal(text)
            if reason is not None:
                # Deal input refuses such text; this row holds some from before (or from outside).
                raise ConveyorError(f"the text for deal {storable(deal.key)} {reason}; fix the deal's fields it quotes")
            msg = repo.add_message(s, deal_id=deal.id, outbox_id=row.id, channel=channel, to=to, text=text,
                                   provider=self.provider.name, idempotency_key=row.idempotency_key,
                                   status="sending", created_at=now)
        row.status, row.claimed_by, row.lease_until, row.updated_at = (
            "sending", self._context.engine_id, now + policy.lease, now)
        deal_key = repo.get_deal(s, row.deal_id).key
        return (row.id, row.deal_id, rule_id,
                OutgoingMessage(row.idempotency_key, msg.channel, msg.to, msg.text, deal_key), reconcile)

    def _send_one(self, outbox_id: int, deal_id: int, rule_id: str, message: OutgoingMessage,
                  reconcile: bool, policy: RetryPolicy) -> Executed:
        ref: str | None = None
        error: str | None = None
        status = "done"
        provider = self.provider
        if reconcile and provider.delivered(message.idempotency_key):
            ref = "reconciled"
        else:
            try:
                crashpoint("before_provider_call")
                ref = provider.send(message)
                crashpoint("during_provider_call")  # the provider has it; we have not recorded that yet
            except PermanentSendError as exc:
                status, error = "dead", str(exc)
            except TransientSendError as exc:
                status, error = "failed", str(exc)
            except Exception as exc:  # noqa: BLE001 - a provider bug must not lose the message
                status, error = "failed", f"{type(exc).__name__}: {exc}"
        now = self._context.clock.now()
        result = {"channel": message.channel, "to": message.to, "text": message.text}
        with self._context.transaction() as s:
            # Locked, so that two dispatchers whose leases overlapped cannot both finish the row.
            row = s.get(OutboxAction, outbox_id, with_for_update=True)
            msg = repo.message_for_outbox(s, outbox_id)
            if row.status == "done":  # another dispatcher finished it after our lease ran out
                return Executed(outbox_id, deal_id, rule_id, row.action, "done", now, params=result)
            status = _finish(row, status, now, result=result, error=error, policy=policy)
            msg.status = "sent" if status == "done" else "failed" if status == "dead" else "sending"
            if status == "done":
                msg.sent_at, msg.provider_ref = now, ref
        if error:
            log.warning("message %s for deal %s %s: %s", outbox_id, deal_id, status, error)
        return Executed(outbox_id, deal_id, rule_id, row.action, status, now, params=result, error=error)

    def apply_internal(self, rounds: int = 50) -> list[Executed]:
        """Apply the ready internal actions (tasks, moves, invoices) and those they cascade into, for at
        most ``rounds`` batches; messages are left to the service (a page showing its change's effect)."""
        done: list[Executed] = []
        for _ in range(rounds):
            batch = self.dispatch_internal()
            if not batch:
                break
            done.extend(batch)
        return done

    def run_until_idle(self, max_rounds: int = 10_000) -> list[Executed]:
        """Dispatch until nothing is ready at the clock's current time (cascades included)."""
        done: list[Executed] = []
        for _ in range(max_rounds):
            batch = self.dispatch_internal() + self.dispatch_messages()
            if not batch:
                return done
            done.extend(batch)
        raise ConveyorError(f"dispatcher did not settle after {max_rounds} rounds")

    def retry(self, outbox_id: int) -> None:
        """Put a failed or dead action back in the queue now (the Actions review's Retry button)."""
        now = self._context.clock.now()
        with self._context.transaction() as s:
            row = repo.get_outbox(s, outbox_id)
            if row is None:
                raise NotFound(f"no action {outbox_id}")
            if row.status not in ("failed", "dead"):
                raise ConveyorError(f"action {outbox_id} is {row.status}; only failed or dead actions can be retried")
            row.status, row.attempts, row.next_attempt_at, row.updated_at = "pending", 0, now, now
            # The later actions skipped because this one died run again after it (in order, as before).
            repo.requeue_skipped_actions(s, row.firing_id, row.seq, SKIPPED, now)


def error_text(exc: BaseException) -> str:
    """One line saying what went wrong, for ``last_error`` and logs (a driver's own words, not its SQL)."""
    if isinstance(exc, ConveyorError):
        return str(exc)
    cause = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's error with SQL and values
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0]}" if lines else type(cause).__name__


def _recipient(channel: str, deal: Any) -> str:
    if channel == "email":
        if "@" not in (deal.email or ""):
            raise PermanentSendError(f"deal {deal.key} has no valid e-mail address ({deal.email!r})")
        return deal.email
    phone = (deal.phone or "").strip()
    digits = re.sub(r"\D", "", phone)
    if not _PHONE.match(phone) or not 7 <= len(digits) <= 15:
        raise PermanentSendError(f"bad phone number {phone!r} on deal {deal.key}")
    return phone


# -- the same, for a Conveyor (the service, the simulator, tests) -----------------------------------
class HasDispatcher(Protocol):
    dispatcher: Dispatcher


def dispatch_internal(conveyor: HasDispatcher, limit: int = 100,
                      policy: RetryPolicy = RetryPolicy()) -> list[Executed]:
    """``Dispatcher.dispatch_internal`` of ``conveyor``'s outbox."""
    return conveyor.dispatcher.dispatch_internal(limit, policy)


def dispatch_messages(conveyor: HasDispatcher, limit: int = 20,
                      policy: RetryPolicy = RetryPolicy()) -> list[Executed]:
    """``Dispatcher.dispatch_messages`` of ``conveyor``'s outbox."""
    return conveyor.dispatcher.dispatch_messages(limit, policy)


def run_until_idle(conveyor: HasDispatcher, max_rounds: int = 10_000) -> list[Executed]:
    """``Dispatcher.run_until_idle`` of ``conveyor``'s outbox."""
    return conveyor.dispatcher.run_until_idle(max_rounds)


def retry(conveyor: HasDispatcher, outbox_id: int) -> None:
    """``Dispatcher.retry`` of ``conveyor``'s outbox."""
    conveyor.dispatcher.retry(outbox_id)
