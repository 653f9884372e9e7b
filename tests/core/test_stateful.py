"""A Hypothesis state machine over deal changes, clock jumps, ticks, dispatch by two engines
interleaved on one SQLite file, restarts (a new Conveyor on the same file) and an engine dying in
the middle of a provider call after the gateway acknowledged.

After every step: at most one firing per (rule, deal, occurrence); every firing has all its actions
in the outbox; no action was carried out twice (tasks, invoices, messages, provider calls). After
every dispatch-until-idle: every outbox row is done, dead, or failed with its error visible.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import func, select

from engine.clock import VirtualClock
from engine.core.conveyor import Conveyor
from engine.document.ruleset import RuleSet
from engine.errors import ConveyorError, TransientSendError
from engine.outbox.dispatcher import RetryPolicy, dispatch_internal, dispatch_messages
from engine.outbox.providers import OutgoingMessage
from storage import repositories as repo
from storage.models import Firing, Invoice, Message, OutboxAction, RuleSetVersion, Task
from tests.support.sessions import db_session

ROOT = Path(__file__).resolve().parents[2]
START_TIME = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
COUNTERPARTY = {"company_name": "Acme LLC", "tax_id": "12345678", "billing_address": "Kyiv"}
POLICY = RetryPolicy(max_attempts=3, base=timedelta(minutes=5))


class EngineDied(BaseException):
    """Stands for SIGKILL in the middle of a provider call: nothing after it runs."""


class FlakyGateway:
    """An in-process provider that fails every third call (transient) and remembers acknowledgements.

    With ``die_after_ack`` set, the next call is acknowledged and then the calling engine "dies"
    before it can record that: the state a crash during a provider call leaves behind.
    """

    name = "flaky"

    def __init__(self) -> None:
        self.calls = 0
        self.acked: Counter[str] = Counter()
        self.die_after_ack = False

    def send(self, message: OutgoingMessage) -> str:
        self.calls += 1
        if self.calls % 3 == 0 and not self.die_after_ack:
            raise TransientSendError("gateway busy")
        self.acked[message.idempotency_key] += 1
        if self.die_after_ack:
            self.die_after_ack = False
            raise EngineDied()
        return f"ok-{self.calls}"

    def delivered(self, key: str) -> bool:
        return self.acked[key] > 0


class EngineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="conveyor-stateful-")
        self.url = f"sqlite:///{self.dir}/c.db"
        self.clock = VirtualClock(START_TIME)
        self.gateway = FlakyGateway()
        self.a = self._open("engine-a")
        self.a.load_rules_dir(ROOT / "sample_rules")
        self.a.add_manager("Olena")
        self.b = self._open("engine-b")  # a second engine, interleaved with the first
        self.deals: list[int] = []
        self.actions_of: dict[tuple[int, str], int] = {}

    def _open(self, engine_id: str) -> Conveyor:
        return Conveyor(self.url, clock=self.clock, provider=self.gateway, engine_id=engine_id)

    def _engine(self, second: bool) -> Conveyor:
        return self.b if second else self.a

    def teardown(self) -> None:
        self.a.close()
        self.b.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- steps -------------------------------------------------------------------------------------
    @rule(
        stage=st.sampled_from(["incoming", "qualification", "proposal", "contract"]),
        bad_phone=st.booleans(),
    )
    def create_deal(self, stage: str, bad_phone: bool) -> None:
        fields = {"phone": "12" if bad_phone else "+380501234567", "amount": 500, **COUNTERPARTY}
        self.deals.append(self.a.create_deal("techflow", title="Deal", stage=stage, fields=fields))

    @precondition(lambda self: self.deals)
    @rule(
        data=st.data(),
        kind=st.sampled_from(
            [
                "activity",
                "attach",
                "opened",
                "replied",
                "budget_no",
                "to_qualification",
                "to_proposal",
                "to_contract",
                "pay",
            ]
        ),
        second=st.booleans(),
    )
    def change(self, data: st.DataObject, kind: str, second: bool) -> None:
        c = self._engine(second)
        deal = data.draw(st.sampled_from(self.deals))
        try:
            if kind == "activity":
                c.record_activity(deal)
            elif kind == "attach":
                c.record_event(deal, "proposal_attached")
            elif kind == "opened":
                c.record_event(deal, "proposal_opened")
            elif kind == "replied":
                c.record_event(deal, "client_replied")
            elif kind == "budget_no":
                c.update_deal(deal, {"budget": "no"})
            elif kind == "pay":
                c.record_event(deal, "payment_received", data={"amount": 500})
            else:
                c.move_deal(deal, kind.removeprefix("to_"))
        except ConveyorError:
            pass  # a refused change (transition, guard, closed deal) changes nothing

    @rule(hours=st.sampled_from([0.5, 3, 25, 49, 73]))
    def advance_clock(self, hours: float) -> None:
        self.clock.advance(timedelta(hours=hours))

    @rule(second=st.booleans())
    def tick(self, second: bool) -> None:
        self._engine(second).tick()

    @rule(second=st.booleans(), what=st.sampled_from(["internal", "messages"]))
    def dispatch_once(self, second: bool, what: str) -> None:
        c = self._engine(second)
        if what == "internal":
            dispatch_internal(c, limit=3, policy=POLICY)
        else:
            dispatch_messages(c, limit=2, policy=POLICY)

    @rule(first_internal=st.booleans())
    def both_engines_dispatch_until_idle(self, first_internal: bool) -> None:
        for _ in range(500):
            moved = 0
            for c in (self.a, self.b) if first_internal else (self.b, self.a):
                moved += len(dispatch_internal(c, limit=2, policy=POLICY))
                moved += len(dispatch_messages(c, limit=1, policy=POLICY))
            if not moved:
                break
        self._check_settled()

    @rule(second=st.booleans())
    def engine_dies_during_a_provider_call(self, second: bool) -> None:
        c = self._engine(second)
        self.gateway.die_after_ack = True
        try:
            dispatch_messages(c, limit=1, policy=POLICY)
        except EngineDied:
            pass
        self.gateway.die_after_ack = False  # (when no message was ready)
        self.restart(second)  # the dead engine's row stays 'sending' until its lease runs out

    @rule(second=st.booleans())
    def restart(self, second: bool) -> None:
        old = self._engine(second)
        old.close()
        new = self._open(old.engine_id + "'")
        if second:
            self.b = new
        else:
            self.a = new

    # -- what must always hold ------------------------------------------------------------------------
    def _actions_per_rule(self, s) -> dict[tuple[int, str], int]:
        for v in s.scalars(select(RuleSetVersion)):
            if (v.id, "_seen") not in self.actions_of:
                rs = RuleSet.model_validate_json(v.document)
                self.actions_of.update({(v.id, r.id): len(r.actions) for r in rs.rules})
                self.actions_of[(v.id, "_seen")] = 0
        return self.actions_of

    @invariant()
    def one_firing_per_occurrence_and_all_its_actions_queued(self) -> None:
        with db_session(self.a) as s:
            assert repo.duplicate_firings(s) == 0
            per_firing = dict(
                s.execute(
                    select(OutboxAction.firing_id, func.count()).group_by(OutboxAction.firing_id)
                ).all()
            )
            actions_of = self._actions_per_rule(s)
            for f in s.scalars(select(Firing)):
                assert per_firing.get(f.id, 0) == actions_of[(f.ruleset_version_id, f.rule_id)], (
                    f.rule_id
                )

    @invariant()
    def no_action_carried_out_twice(self) -> None:
        with db_session(self.a) as s:
            tasks = Counter(s.scalars(select(Task.outbox_id)))
            assert max(tasks.values(), default=1) == 1
            done = Counter(
                s.scalars(select(OutboxAction.action).where(OutboxAction.status == "done"))
            )
            assert sum(tasks.values()) == done["create_task"] + done["notify_manager"]
            assert (s.scalar(select(func.count()).select_from(Invoice)) or 0) == done[
                "generate_invoice"
            ]
            sent = (
                s.scalar(select(func.count()).select_from(Message).where(Message.status == "sent"))
                or 0
            )
            assert sent == done["send_sms"] + done["send_message"]
        assert max(self.gateway.acked.values(), default=1) == 1  # no acknowledged message resent

    def _check_settled(self) -> None:
        now = self.clock.now()
        with db_session(self.a) as s:
            rows = list(s.scalars(select(OutboxAction)))
        by_firing: dict[int, list[OutboxAction]] = {}
        for r in rows:
            by_firing.setdefault(r.firing_id, []).append(r)
        for r in rows:
            if r.status in ("done", "dead"):
                continue
            if r.status == "failed":
                assert r.last_error and r.next_attempt_at > now, (r.id, r.action, r.last_error)
                continue
            if r.status == "sending":  # left by an engine that died mid-call: its lease still runs
                assert r.lease_until > now, (r.id, r.lease_until)
                continue
            # pending only behind an earlier action of the same rule that failed (order is kept)
            assert r.status == "pending", (r.id, r.status)
            earlier = [x for x in by_firing[r.firing_id] if x.seq < r.seq]
            assert (
                any(x.status in ("failed", "sending") for x in earlier) or r.next_attempt_at > now
            ), (r.id, r.action)


TestEngineStateMachine = EngineMachine.TestCase
TestEngineStateMachine.settings = settings(
    max_examples=25,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
