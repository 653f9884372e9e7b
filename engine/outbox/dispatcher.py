"""The outbox dispatcher: carries out the actions that evaluation wrote down.

Internal actions (tasks, stage moves, invoices, new deals) are applied and marked done in one
transaction: exactly once. Messages go to the provider at least once: the row is marked ``sending``
(with a lease) and committed *before* the call, marked done after; a row left ``sending`` by a crash is
reconciled with the provider (``delivered``) before it is resent with the same idempotency key.
Failures retry with exponential backoff and jitter, then end ``dead``; permanent ones end dead at once.
A dead action ends the later actions of its rule firing dead too ("skipped: ..."), since they may
depend on it; ``retry`` on the dead one queues them again behind it.

Each message goes through the provider of its channel (``engine.outbox.channels``) and its row in
``messages`` says honestly where it is: ``recorded`` (no provider for the channel), ``sending``,
``sent`` (accepted, with the gateway's id), ``delivered`` (the gateway says so: Telegram's answer, a
Twilio status callback through ``record_delivery``), ``failed`` (the gateway's answer is kept) or ``dead``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from engine.core.access import Actor, actor_of
from engine.core.audit import record
from engine.core.context import Context
from engine.crashpoints import crashpoint
from engine.document.template import render
from engine.errors import (
    ConveyorError,
    Forbidden,
    NotFound,
    PermanentSendError,
    TransientSendError,
)
from engine.outbox import effects, manager_messages
from engine.outbox.addressing import (
    MESSAGE_STATES,
    delivery_state,
    message_channel,
    recipient,
    split_subject,
    with_subject,
)
from engine.outbox.effects.base import message_language
from engine.outbox.errors import ActionFailed, RateLimited
from engine.outbox.outcomes import (
    DEFAULT_POLICY,
    MAX_ERROR,
    SKIPPED,
    Executed,
    RetryPolicy,
    defer,
    error_text,
    finish,
)
from engine.outbox.providers import MessageProvider, OutgoingMessage, Receipt, receipt
from engine.text import refusal, storable
from storage import deliveries
from storage import repositories as repo
from storage.db import is_contention
from storage.models import Firing, OutboxAction

__all__ = [
    "MAX_ERROR",
    "MESSAGE_STATES",
    "SKIPPED",
    "Dispatcher",
    "Executed",
    "HasDispatcher",
    "RetryPolicy",
    "dispatch_internal",
    "dispatch_messages",
    "error_text",
    "is_contention",
    "message_channel",
    "record_delivery",
    "retry",
    "run_until_idle",
]

log = logging.getLogger("conveyor.dispatch")


class Dispatcher:
    """Carries out one database's outbox through one provider (``Conveyor.dispatcher``)."""

    def __init__(self, context: Context, core: effects.Core, provider: MessageProvider):
        self._context = context
        self._core = core
        self.provider = provider

    def dispatch_internal(
        self, limit: int = 100, policy: RetryPolicy = DEFAULT_POLICY
    ) -> list[Executed]:
        """Apply up to ``limit`` ready internal actions; each is applied and marked done atomically.

        On PostgreSQL every action gets its own short transaction: several engines then hold row locks
        (a deal, a manager's round-robin counter) for one action only, and a deadlock between engines
        rolls back one action, not a batch. SQLite has one writer, so a batch per transaction is cheaper.
        A deadlock or lock timeout leaves the row as it was (ready, attempt not counted).
        """
        if self._context.dialect != "postgresql":
            # Most changes queue nothing internal: look first without the single writer's lock, which
            # every API request and page would otherwise queue for after its change just to find nothing.
            with self._context.read_transaction() as s:
                if not repo.claim_ready(s, self._context.clock.now(), 1, kind="internal"):
                    return []
            return self._internal_batch(limit, policy)
        out: list[Executed] = []
        for _ in range(limit):
            try:
                batch = self._internal_batch(1, policy)
            except DBAPIError as exc:
                if not is_contention(exc):
                    raise
                log.info(
                    "internal action rolled back by lock contention; it stays ready: %s",
                    str(getattr(exc, "orig", exc)).splitlines()[0],
                )
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
                firing = _firing_of(s, row)
                rule_id = firing.rule_id
                row.attempts += 1
                # The savepoint flushes the attempt first, so it counts (and commits with the batch)
                # whatever happens below; a failure rolls back this row's work only, never the others'.
                savepoint = s.begin_nested()
                try:
                    result = effects.apply(self._core, s, row, firing, now)
                    crashpoint(
                        "during_internal_action"
                    )  # applied, not yet committed: must roll back whole
                    finish(row, "done", now, result=result, policy=policy)
                    s.flush()  # a value the database refuses fails here, inside this row's savepoint
                    savepoint.commit()
                except Exception as exc:
                    savepoint.rollback()
                    if is_contention(exc):
                        raise  # roll the whole transaction back: the database was busy, the action is fine
                    permanent = isinstance(exc, ActionFailed) and exc.permanent
                    message = error_text(exc)
                    status = finish(
                        row, "dead" if permanent else "failed", now, error=message, policy=policy
                    )
                    log.warning(
                        "action %s (%s) for deal %s %s: %s",
                        row_id,
                        action,
                        deal_id,
                        status,
                        message,
                    )
                    out.append(
                        Executed(
                            row_id, deal_id, rule_id, action, status, now, error=row.last_error
                        )
                    )
                    continue
                out.append(Executed(row_id, deal_id, rule_id, action, "done", now, params=result))
        return out

    def dispatch_messages(
        self, limit: int = 20, policy: RetryPolicy = DEFAULT_POLICY
    ) -> list[Executed]:
        """Send up to ``limit`` ready messages. The provider is called outside any transaction.

        Each row is claimed in its own savepoint: a row whose message cannot be prepared (rendered or
        stored) ends failed with its error, its attempt counted, and the other rows are claimed and sent.
        """
        now = self._context.clock.now()
        out: list[Executed] = []
        claimed: list[tuple[int, int | None, str, OutgoingMessage, bool]] = []
        with self._context.transaction() as s:
            for row in repo.claim_ready(s, now, limit, kind="message"):
                row_id, deal_id, action = row.id, row.deal_id, row.action
                if row.firing_id is not None and repo.earlier_unfinished(s, row.firing_id, row.seq):
                    # Checked again where it matters (an SMS once went out without its invoice: a
                    # claim condition compiled wrong, docs/guarantees.md): it waits, attempt not counted.
                    log.warning("message %s claimed before its rule's earlier actions", row_id)
                    continue
                rule_id = _rule_of(s, row)
                # Ask the provider before sending again whenever an earlier attempt may have got through:
                # a crash mid-call (lease ran out) or a timeout/5xx whose effect we could not see.
                was_sending = row.status == "sending"
                row.attempts += 1
                savepoint = (
                    s.begin_nested()
                )  # flushes the attempt: it counts whatever happens below
                try:
                    prepared = self._prepare_message(s, row, rule_id, now, policy, was_sending)
                    s.flush()  # a value the database refuses fails here, inside this row's savepoint
                    savepoint.commit()
                except Exception as exc:
                    savepoint.rollback()
                    if is_contention(exc):
                        raise  # the database was busy: nothing is claimed, every row stays ready
                    message = f"could not prepare the message: {error_text(exc)}"
                    status = finish(row, "failed", now, error=message, policy=policy)
                    log.warning(
                        "message %s for deal %s %s: %s", row_id, deal_id, status, row.last_error
                    )
                    out.append(
                        Executed(
                            row_id, deal_id, rule_id, action, status, now, error=row.last_error
                        )
                    )
                    continue
                if isinstance(prepared, Executed):
                    out.append(prepared)
                else:
                    claimed.append(prepared)
        for outbox_id, deal_id, rule_id, outgoing, reconcile in claimed:
            try:
                out.append(self._send_one(outbox_id, deal_id, rule_id, outgoing, reconcile, policy))
            except Exception as exc:  # noqa: BLE001 - the next message is still sent
                # The row stays 'sending' under its lease and is reconciled with the provider when the
                # lease runs out, like after a crash; nothing is lost or sent twice.
                log.error(
                    "message %s for deal %s: recording the send failed (reconciled after its lease): %s",
                    outbox_id,
                    deal_id,
                    storable(error_text(exc), MAX_ERROR),
                )
        return out

    def _firing_values(self, s: Session, deal: Any, row: OutboxAction) -> dict[str, Any]:
        """Template values as the message's own firing left them.

        The deal may have moved on since the firing (back through Contract, say, with a second
        invoice): an SMS quotes the invoice its own firing generated, not the deal's newest one.
        """
        values = self._core.queries.template_values(s, deal)
        if row.firing_id is None:
            return values
        for action, result in repo.earlier_results(s, row.firing_id, row.seq):
            if action == "generate_invoice" and result.get("number"):
                values["invoice_number"] = result["number"]
        return values

    def _prepare_message(
        self,
        s: Session,
        row: OutboxAction,
        rule_id: str,
        now: datetime,
        policy: RetryPolicy,
        was_sending: bool,
    ) -> tuple[int, int | None, str, OutgoingMessage, bool] | Executed:
        """Address and store one claimed row's message (``sending``), or end it dead for a bad recipient."""
        msg = repo.message_for_outbox(s, row.id)
        reconcile = was_sending or msg is not None
        deal = repo.get_deal(s, row.deal_id) if row.deal_id is not None else None
        if deal is None and row.manager_id is None:  # only a manager's digest is about no deal
            raise NotFound(f"action {row.id}: no deal {row.deal_id}")
        params = row.params or {}
        channel = message_channel(row.action, params)
        readdress = msg is None or (msg.status in ("dead", "failed") and row.attempts == 1)
        # ``attempts == 1`` with a message already recorded: queued again by hand (Retry) after it
        # failed or died. The owner may have fixed the phone number or address since, so the message
        # is addressed afresh; its row (and when it was first recorded) stays, for reconciliation.
        held = manager_messages.hold(s, row) if readdress and row.manager_id is not None else None
        if held is not None:  # its task was closed meanwhile, or its manager deactivated
            status = finish(
                row, held[0], now, result={"skipped": held[1]}, error=held[1], policy=policy
            )
            if msg is not None and status == "dead":
                msg.status = "dead"
            return Executed(row.id, row.deal_id, rule_id, row.action, status, now, error=held[1])
        if readdress and row.manager_id is not None:  # to a manager: their channel as it stands now
            channel, to, subject, text = manager_messages.address(s, row)
        elif readdress:
            assert deal is not None  # checked above: a message to a client has its deal
            try:
                to = recipient(channel, deal, params)
            except PermanentSendError as exc:
                finish(row, "dead", now, error=str(exc), policy=policy)
                if msg is not None:
                    msg.status = "dead"
                return Executed(
                    row.id, row.deal_id, rule_id, row.action, "dead", now, error=row.last_error
                )
            values = self._firing_values(s, deal, row)
            language = message_language(self._core, s, deal)
            text = render(params.get("text", ""), values, language)
            subject = (
                render(params.get("subject", ""), values, language) if channel == "email" else ""
            )
            for what in (subject, text):
                reason = refusal(what)
                if reason is not None:
                    # Deal input refuses such text; this row holds some from before (or from outside).
                    raise ConveyorError(
                        f"the text for deal {storable(deal.key)} {reason}; fix the deal's fields it quotes"
                    )
        if readdress:
            provider = (
                "record"
                if channel == manager_messages.BUILDER_ONLY
                else _provider_name(self.provider, channel)
            )
            body = with_subject(subject, text) if channel == "email" else text
            if msg is None:
                msg = repo.add_message(
                    s,
                    # A manager's message is not one of the deal's messages to its client.
                    deal_id=row.deal_id if row.manager_id is None else None,
                    outbox_id=row.id,
                    channel=channel,
                    to=to,
                    text=body,
                    provider=provider,
                    idempotency_key=row.idempotency_key,
                    status="sending",
                    created_at=now,
                )
            else:
                msg.channel, msg.to, msg.text, msg.provider = channel, to, body, provider
        assert msg is not None  # recorded before, or just now when it was addressed
        msg.status = "sending"
        row.status, row.claimed_by, row.lease_until, row.updated_at = (
            "sending",
            self._context.engine_id,
            now + policy.lease,
            now,
        )
        subject, text = split_subject(msg.text) if msg.channel == "email" else ("", msg.text)
        return (
            row.id,
            row.deal_id,
            rule_id,
            OutgoingMessage(
                row.idempotency_key,
                msg.channel,
                msg.to,
                text,
                deal.key if deal is not None else f"manager:{row.manager_id}",
                subject=subject,
                created_at=msg.created_at,
            ),
            reconcile,
        )

    def _send_one(
        self,
        outbox_id: int,
        deal_id: int | None,
        rule_id: str,
        message: OutgoingMessage,
        reconcile: bool,
        policy: RetryPolicy,
    ) -> Executed:
        answer: Receipt | None = None
        error: str | None = None
        status = "done"
        wait: float | None = None
        provider = self.provider
        recorded_only = (
            message.channel == manager_messages.BUILDER_ONLY
            or _provider_name(provider, message.channel) == "record"
        )
        found = _reconcile(provider, message) if reconcile and not recorded_only else None
        if found is True or isinstance(found, Receipt):
            answer = found if isinstance(found, Receipt) else Receipt("reconciled")
            if answer.gateway_id is None:
                answer = Receipt("reconciled", answer.delivered)
        else:
            try:
                crashpoint("before_provider_call")
                answer = receipt(provider.send(message))
                crashpoint(
                    "during_provider_call"
                )  # the provider has it; we have not recorded that yet
            except RateLimited as exc:
                status, error, wait = "failed", str(exc), exc.retry_after
            except PermanentSendError as exc:
                status, error = "dead", str(exc)
            except TransientSendError as exc:
                status, error = "failed", str(exc)
            except Exception as exc:  # noqa: BLE001 - a provider bug must not lose the message
                status, error = "failed", f"{type(exc).__name__}: {exc}"
        now = self._context.clock.now()
        result: dict[str, Any] = {
            "channel": message.channel,
            "to": message.to,
            "text": message.text,
        }
        if message.subject:
            result["subject"] = message.subject
        with self._context.transaction() as s:
            # Locked, so that two dispatchers whose leases overlapped cannot both finish the row.
            row = s.get(OutboxAction, outbox_id, with_for_update=True)
            msg = repo.message_for_outbox(s, outbox_id)
            if row is None or msg is None:
                raise NotFound(f"message action {outbox_id} or its message is gone")
            if row.status == "done":  # another dispatcher finished it after our lease ran out
                return Executed(outbox_id, deal_id, rule_id, row.action, "done", now, params=result)
            if wait is not None:
                status = defer(row, now, wait, error or "rate limited")
            else:
                status = finish(row, status, now, result=result, error=error, policy=policy)
            if status == "done" and answer is not None:
                msg.status = (
                    "recorded" if recorded_only else "delivered" if answer.delivered else "sent"
                )
                msg.sent_at, msg.provider_ref = now, None if recorded_only else answer.gateway_id
                if answer.gateway_id:
                    result["gateway_id"] = answer.gateway_id
                    row.result = dict(result)
            else:
                msg.status = "sending" if status == "pending" else status  # failed | dead
        if error:
            log.warning("message %s for deal %s %s: %s", outbox_id, deal_id, status, error)
        return Executed(
            outbox_id, deal_id, rule_id, row.action, status, now, params=result, error=error
        )

    def record_delivery(
        self, provider: str, gateway_id: str, status: str, detail: str | None = None
    ) -> bool:
        """A gateway's later word on a message it accepted (a Twilio status callback, say).

        ``status`` is ``delivered`` or ``failed`` (or the provider's own word: Twilio's ``undelivered``
        means failed); ``detail`` is the gateway's answer for a failure (its error code), kept as the
        action's error. News that would move a message backwards (``sent`` after ``delivered``) is
        ignored, as gateways may report out of order. False when no message has that id.
        """
        state = delivery_state(provider, status)
        now = self._context.clock.now()
        with self._context.transaction() as s:
            msg = deliveries.message_by_provider_ref(s, provider, gateway_id)
            if msg is None:
                return False
            if (
                state is None
                or msg.status in ("delivered", "failed", "dead")
                and state != "delivered"
                or msg.status == "delivered"
            ):
                return True
            msg.status = state
            if state == "failed":
                row = s.get(OutboxAction, msg.outbox_id)
                if row is not None:
                    text = f"{provider} reported the message {gateway_id} {status}" + (
                        f": {detail}" if detail else ""
                    )
                    row.last_error, row.updated_at = storable(text, MAX_ERROR), now
                log.warning(
                    "message %s for deal %s failed after the gateway accepted it: %s",
                    msg.outbox_id,
                    msg.deal_id,
                    detail or status,
                )
        return True

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

    def retry(self, outbox_id: int, *, actor: Actor | str = "system") -> None:
        """Put a failed or dead action back in the queue now (the Actions review's Retry button).

        A manager who sees only their own deals retries only their deals' actions."""
        who = actor_of(actor)
        now = self._context.clock.now()
        with self._context.transaction() as s:
            row = repo.get_outbox(s, outbox_id)
            if row is None:
                raise NotFound(f"no action {outbox_id}")
            deal = repo.get_deal(s, row.deal_id) if row.deal_id is not None else None
            # A message to a manager is that manager's to retry (and the owner's, or a team lead's).
            if who.own_deals_only and row.manager_id is not None and row.firing_id is None:
                if row.manager_id != who.manager_id:
                    raise Forbidden("this message is to another manager")
            elif who.own_deals_only and (deal is None or deal.manager_id != who.manager_id):
                raise Forbidden("this action is on a deal assigned to another manager")
            msg = repo.message_for_outbox(s, outbox_id) if row.kind == "message" else None
            undelivered = row.status == "done" and msg is not None and msg.status == "failed"
            if row.status not in ("failed", "dead") and not undelivered:
                raise ConveyorError(
                    f"action {outbox_id} is {row.status}; only failed or dead actions (or a message"
                    " the gateway reported undelivered) can be retried"
                )
            row.status, row.attempts, row.next_attempt_at, row.updated_at = "pending", 0, now, now
            record(
                s,
                who,
                "action_retried",
                now,
                deal_id=row.deal_id,
                subject=f"{deal.key if deal else ''} {row.kind}".strip(),
                detail={"action": outbox_id, "what": row.action}
                | ({"manager": row.manager_id} if row.manager_id is not None else {}),
            )
            # The later actions skipped because this one died run again after it (in order, as before).
            if row.firing_id is not None:
                repo.requeue_skipped_actions(s, row.firing_id, row.seq, SKIPPED, now)


def _provider_name(provider: Any, channel: str) -> str:
    """Who carries ``channel``: the router's provider for it, or the one provider for every channel."""
    name_for = getattr(provider, "provider_name", None)
    return str(name_for(channel)) if callable(name_for) else str(provider.name)


def _reconcile(provider: Any, message: OutgoingMessage) -> Receipt | bool | None:
    ask = getattr(provider, "reconcile", None)
    try:
        answer: Receipt | bool | None = (
            ask(message) if callable(ask) else provider.delivered(message.idempotency_key)
        )
        return answer
    except Exception as exc:  # noqa: BLE001 - a failed question is "cannot tell": the message is sent again
        log.info(
            "reconciling message %s failed (sending again with the same key): %s",
            message.idempotency_key,
            error_text(exc),
        )
        return None


def _rule_of(s: Session, row: OutboxAction) -> str:
    """The rule whose firing queued ``row``; a manager's message belongs to no firing: the rule it
    tells of (kept in its params), else its action (a digest)."""
    if row.firing_id is None:
        return str((row.params or {}).get("rule") or row.action)
    return _firing_of(s, row).rule_id


def _firing_of(s: Session, row: OutboxAction) -> Firing:
    firing = s.get(Firing, row.firing_id)
    if firing is None:  # the foreign key makes this impossible short of a hand-edited database
        raise ConveyorError(f"action {row.id}: its firing {row.firing_id} is gone")
    return firing


# -- the same, for a Conveyor (the service, the simulator, tests) -----------------------------------
class HasDispatcher(Protocol):
    dispatcher: Dispatcher


def dispatch_internal(
    conveyor: HasDispatcher, limit: int = 100, policy: RetryPolicy = DEFAULT_POLICY
) -> list[Executed]:
    """``Dispatcher.dispatch_internal`` of ``conveyor``'s outbox."""
    return conveyor.dispatcher.dispatch_internal(limit, policy)


def dispatch_messages(
    conveyor: HasDispatcher, limit: int = 20, policy: RetryPolicy = DEFAULT_POLICY
) -> list[Executed]:
    """``Dispatcher.dispatch_messages`` of ``conveyor``'s outbox."""
    return conveyor.dispatcher.dispatch_messages(limit, policy)


def run_until_idle(conveyor: HasDispatcher, max_rounds: int = 10_000) -> list[Executed]:
    """``Dispatcher.run_until_idle`` of ``conveyor``'s outbox."""
    return conveyor.dispatcher.run_until_idle(max_rounds)


def retry(conveyor: HasDispatcher, outbox_id: int) -> None:
    """``Dispatcher.retry`` of ``conveyor``'s outbox."""
    conveyor.dispatcher.retry(outbox_id)


def record_delivery(
    conveyor: HasDispatcher, provider: str, gateway_id: str, status: str, detail: str | None = None
) -> bool:
    """``Dispatcher.record_delivery`` of ``conveyor``'s outbox (the HTTP API's status-callback route)."""
    return conveyor.dispatcher.record_delivery(provider, gateway_id, status, detail)
