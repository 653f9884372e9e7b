"""The kill loop: ``conveyor engine`` processes SIGKILLed at random moments, 20 times, while a driver
keeps changing deals and a real gateway fails 5 % of its calls — some of them after it accepted the
message. Afterwards every firing happened once, every internal action once, and every message was
accepted by the gateway exactly once: nothing lost, nothing doubled (docs/guarantees.md).

Seeded: ``CONVEYOR_KILL_SEED=<n>`` replays another run; the seed is printed with every failure.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.core.conveyor import Conveyor
from engine.outbox.dispatcher import is_contention
from storage.models import Deal, DealEvent, Firing, Invoice, Message, OutboxAction, Task
from tests.support.engine_world import (
    COUNTERPARTY,
    GOOD_PHONE,
    SAMPLE_RULES,
    start_engine,
    stop,
    wait_for,
    wait_started,
)
from tests.support.sessions import db_session
from tests.support.webhook import Gateway

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("CONVEYOR_KILL_SEED", "8"))
KILLS = 20
KILL_AFTER = (0.3, 2.0)  # seconds an engine runs (once started) before it is killed
#: Short everything so the run converges: a killed engine's message is taken over after LEASE s.
ENGINE = dict(tick=0.5, workers=3, lease=4, retry_base=0.2, max_attempts=10, timeout=1.0)
STALL = 1.5  # an accept_then_stall answer never comes within the engine's 1 s provider timeout
FAILURE_KINDS = ("error500", "drop", "accept_then_500", "accept_then_drop", "accept_then_stall")
ACCEPTED_FIRST = {k for k in FAILURE_KINDS if k.startswith("accept_then_")}


class FivePercentFailures:
    """One POST in every 20 fails, at a random place in its block; the failure kinds take turns."""

    def __init__(self, rnd: random.Random, block: int = 20):
        self.rnd, self.block = rnd, block
        self.lock = threading.Lock()
        self.calls = 0
        self.fail_at = rnd.randrange(block)
        self.kinds = list(FAILURE_KINDS)
        rnd.shuffle(self.kinds)
        self.injected: list[tuple[str, str]] = []  # (kind, idempotency key)

    def __call__(self, msg: dict) -> str:
        with self.lock:
            place = self.calls % self.block
            self.calls += 1
            if place != self.fail_at:
                if place == self.block - 1:
                    self.fail_at = self.rnd.randrange(self.block)
                return "ok"
            kind = self.kinds[len(self.injected) % len(self.kinds)]
            self.injected.append((kind, msg["header_key"]))
            if place == self.block - 1:
                self.fail_at = self.rnd.randrange(self.block)
            return kind


# -- the driver: real changes through the core, all the time ----------------------------------------
YES = {"budget": "yes", "authority": "yes", "need": "yes"}
CONTRACT_FIELDS = {"phone": GOOD_PHONE, "amount": 250, **COUNTERPARTY}
PAID = ("payment_to_paid", "paid_start_project")  # the deal moves to paid and starts a project


@dataclass(frozen=True)
class Step:
    """One change; ``fires``: the rules it makes fire on the deal, the engine's cascades included."""

    do: Callable[[Conveyor, int | None, str], int | None]
    fires: tuple[str, ...] = ()


def _create(stage: str | None = None, **fields: object) -> Step:
    def do(c: Conveyor, _deal: int | None, title: str) -> int:
        return c.create_deal(
            "techflow", title=title, stage=stage, fields={"phone": GOOD_PHONE, **fields}
        )

    return Step(do, ("contract_invoice_sms",) if stage == "contract" else ("assign_new_lead",))


def _move(stage: str, *fires: str) -> Step:
    return Step(lambda c, d, _t: c.move_deal(d, stage), fires)


def _update(fields: dict, *fires: str) -> Step:
    return Step(lambda c, d, _t: c.update_deal(d, fields), fires)


ACTIVITY = Step(lambda c, d, _t: c.record_activity(d, "call"))
PROPOSAL = Step(lambda c, d, _t: c.record_event(d, "proposal_attached"), ("proposal_attached",))
PAYMENT = Step(lambda c, d, _t: c.record_event(d, "payment_received", data={"amount": 250}), PAID)


def _script(rnd: random.Random) -> tuple[str, list[Step]]:
    """A deal's life; once a step leaves a stage move to the engine, the driver leaves the deal alone."""
    kind = rnd.choices(["lead", "lost", "won", "contract", "again"], weights=[15, 15, 20, 35, 15])[
        0
    ]
    if kind == "lead":  # assigned; the manager calls a few times
        return kind, [_create(), *[ACTIVITY] * rnd.randint(1, 3)]
    if kind == "lost":  # a "no" in qualification: the engine moves it to cold call
        return kind, [
            _create(),
            _move("qualification"),
            _update({"budget": "no"}, "qualification_no", "cold_call_again"),
        ]
    if kind == "won":  # the whole funnel: proposal, contract (invoice + SMS), payment, project
        return kind, [
            _create(),
            _move("qualification"),
            _update(YES),
            _move("proposal"),
            PROPOSAL,
            _update(CONTRACT_FIELDS),
            _move("contract", "contract_invoice_sms"),
            PAYMENT,
        ]
    if kind == "contract":  # created in contract (an import): invoice + SMS, sometimes paid at once
        return kind, [
            _create("contract", amount=250, **COUNTERPARTY),
            *([PAYMENT] if rnd.random() < 0.4 else []),
        ]
    # contract twice: out to cold call and back through the funnel, a second invoice and SMS
    return kind, [
        _create("contract", amount=250, **COUNTERPARTY),
        _update(YES),
        _move("cold_call", "cold_call_again"),
        _move("qualification"),
        _move("proposal"),
        _move("contract", "contract_invoice_sms"),
    ]


@dataclass
class Driver:
    """Keeps up to ``parallel`` deal lives going, one random step at a time, until stopped."""

    url: str
    rnd: random.Random
    parallel: int = 8
    pause: float = 0.03
    fires: Counter = field(default_factory=Counter)  # (deal id, rule id) -> expected firings
    paid: set[int] = field(default_factory=set)
    deals: list[int] = field(default_factory=list)
    steps: int = 0
    retried: int = 0
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="driver", daemon=True)

    def start(self) -> Driver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(120)
        assert not self.thread.is_alive(), "the driver did not stop"
        if self.error is not None:
            raise AssertionError(f"the driver failed after {self.steps} changes") from self.error

    def _run(self) -> None:
        c = Conveyor(self.url)
        live: list[list] = []  # [deal id, title, remaining steps]
        n = 0
        try:
            while not self.stopping.is_set():
                if len(live) < self.parallel:
                    n += 1
                    kind, steps = _script(self.rnd)
                    live.append([None, f"{kind} {n}", steps])
                life = self.rnd.choice(live)
                step = life[2].pop(0)
                created = self._apply(c, step, life[0], life[1])
                if life[0] is None:
                    life[0] = created
                    self.deals.append(created)
                self.fires.update((life[0], rule) for rule in step.fires)
                if step is PAYMENT:
                    self.paid.add(life[0])
                self.steps += 1
                if not life[2]:
                    live.remove(life)
                time.sleep(self.rnd.uniform(0, self.pause))
        except BaseException as exc:  # noqa: BLE001 - reported by stop()
            self.error = exc
        finally:
            c.close()

    def _apply(self, c: Conveyor, step: Step, deal: int | None, title: str) -> int | None:
        for attempt in range(10):
            try:
                return step.do(c, deal, title)
            except (
                Exception
            ) as exc:  # a deadlock with an engine rolled the change back: a user retries
                if not is_contention(exc) or attempt == 9:
                    raise
                self.retried += 1
                time.sleep(0.05)
        raise AssertionError("unreachable")


# -- the loop ---------------------------------------------------------------------------------------
class Engines:
    """``count`` engine processes on one database, each slot restarted after it is killed."""

    def __init__(self, url: str, tmp_path: Path, gateway: Gateway, count: int):
        self.url, self.gateway = url, gateway
        self.logs = [tmp_path / f"engine{i}.log" for i in range(count)]
        self.procs = [self._start(i) for i in range(count)]
        self.kills: list[dict] = []

    def _start(self, slot: int) -> subprocess.Popen:
        return start_engine(self.url, self.logs[slot], provider=self.gateway.url, **ENGINE)

    def check_alive(self) -> None:
        for p, log in zip(self.procs, self.logs, strict=True):
            assert p.poll() is None, (
                f"an engine exited by itself ({p.returncode}):\n{log.read_text()[-3000:]}"
            )

    def kill_and_restart(self, slot: int, c: Conveyor) -> None:
        proc = self.procs[slot]
        assert wait_started(proc), (
            f"engine {slot} did not start:\n{self.logs[slot].read_text()[-3000:]}"
        )
        with db_session(
            c
        ) as s:  # what it had in hand (engine ids are host:pid:suffix), for the report
            sending = (
                s.scalar(
                    select(func.count())
                    .select_from(OutboxAction)
                    .where(
                        OutboxAction.status == "sending",
                        OutboxAction.claimed_by.like(f"%:{proc.pid}:%"),
                    )
                )
                or 0
            )
        in_flight = self.gateway.in_flight
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL, self.logs[slot].read_text()[-3000:]
        self.kills.append({"slot": slot, "sending": sending, "gateway_in_flight": in_flight})
        self.procs[slot] = self._start(slot)

    def stop_all(self) -> list[int]:
        return [stop(p) for p in self.procs]

    def tails(self) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}" for log in self.logs
        )


def _open_rows(c: Conveyor) -> int:
    with db_session(c) as s:
        return (
            s.scalar(
                select(func.count())
                .select_from(OutboxAction)
                .where(OutboxAction.status.not_in(("done", "dead")))
            )
            or 0
        )


def _kill_loop(url: str, tmp_path: Path, engines: int) -> None:
    print(f"kill-loop seed: {SEED} (CONVEYOR_KILL_SEED={SEED} replays it)")
    boot = Conveyor(url)
    boot.load_rules_dir(SAMPLE_RULES)
    boot.add_manager("Olena", "+380501110001")
    boot.add_manager("Petro", "+380501110002")
    boot.close()
    kill_rnd = random.Random(f"{SEED}:kills")
    failures = FivePercentFailures(random.Random(f"{SEED}:gateway"))
    c = Conveyor(url)
    try:
        with Gateway(failures, delay=STALL) as gw:
            group = Engines(url, tmp_path, gw, engines)
            driver = Driver(url, random.Random(f"{SEED}:driver")).start()
            try:
                for _ in range(KILLS):
                    slot = kill_rnd.randrange(engines)
                    assert wait_started(group.procs[slot]), group.tails()
                    deadline = time.monotonic() + kill_rnd.uniform(*KILL_AFTER)
                    while time.monotonic() < deadline:
                        group.check_alive()
                        assert driver.thread.is_alive(), f"the driver stopped: {driver.error!r}"
                        time.sleep(0.05)
                    group.kill_and_restart(slot, c)
                driver.stop()
                wait_for(
                    lambda: _open_rows(c) == 0,
                    120,
                    "the engines to drain the outbox",
                    group.procs,
                    group.logs,
                    every=0.5,
                )
            finally:
                driver.stopping.set()
                codes = group.stop_all()
            assert codes == [0] * engines, group.tails()
            accepted, posts = Counter(gw.accepted), gw.keys()
        print(
            f"{driver.steps} changes on {len(driver.deals)} deals ({driver.retried} retried after contention), "
            f"{sum(posts.values())} gateway POSTs, failures injected: {Counter(k for k, _ in failures.injected)}, "
            f"kills: {group.kills}"
        )
        _assert_once_and_nothing_lost(c, driver, failures, accepted)
    finally:
        c.close()


def _assert_once_and_nothing_lost(
    c: Conveyor, driver: Driver, failures: FivePercentFailures, accepted: Counter
) -> None:
    with db_session(c) as s:
        firings = s.execute(
            select(Firing.id, Firing.deal_id, Firing.rule_id, Firing.occurrence)
        ).all()
        rows = s.execute(
            select(
                OutboxAction.id,
                OutboxAction.firing_id,
                OutboxAction.manager_id,
                OutboxAction.kind,
                OutboxAction.action,
                OutboxAction.status,
                OutboxAction.idempotency_key,
                OutboxAction.result,
                OutboxAction.last_error,
            )
        ).all()
        deals = {d.id: d for d in s.scalars(select(Deal))}
        children = Counter(d.parent_deal_id for d in deals.values() if d.parent_deal_id is not None)
        tasks = Counter(s.scalars(select(Task.outbox_id)))
        invoices = s.execute(select(Invoice.deal_id, Invoice.outbox_id, Invoice.number)).all()
        messages = {
            m.outbox_id: (m.status, m.provider_ref, m.text) for m in s.scalars(select(Message))
        }

    # every firing once per occurrence, and exactly the ones the changes called for
    assert max(Counter((f.deal_id, f.rule_id, f.occurrence) for f in firings).values()) == 1
    mine = set(driver.deals)
    fired = Counter((f.deal_id, f.rule_id) for f in firings if f.deal_id in mine)
    assert fired == driver.fires, (
        f"missing: {driver.fires - fired}, unexpected: {fired - driver.fires}"
    )
    # each paid deal started its project exactly once, and the project's kick-off rule fired there
    assert children == {d: 1 for d in driver.paid}
    projects = {d for d, deal in deals.items() if deal.parent_deal_id is not None}
    assert set(deals) == set(driver.deals) | projects, (
        "a deal the driver did not create nor a payment started"
    )
    assert Counter(
        f.deal_id for f in firings if f.deal_id in projects and f.rule_id == "kickoff_meeting"
    ) == {d: 1 for d in projects}
    for deal_id in driver.paid:
        assert deals[deal_id].stage == "paid"
    for deal_id, rule in driver.fires:
        if rule == "qualification_no":
            assert deals[deal_id].stage == "cold_call"

    # every action carried out: internal ones exactly once
    bad = [r for r in rows if r.status != "done"]
    assert not bad, f"{len(bad)} action(s) not done, e.g. {bad[:5]}"
    task_rows = {r.id for r in rows if r.action in ("create_task", "notify_manager")}
    assert tasks == {oid: 1 for oid in task_rows}, "a task action without its task, or with two"
    invoice_rows = {r.id for r in rows if r.action == "generate_invoice"}
    assert Counter(i.outbox_id for i in invoices) == {oid: 1 for oid in invoice_rows}
    expected_invoices = Counter(
        {d: n for (d, rule), n in driver.fires.items() if rule == "contract_invoice_sms"}
    )
    assert Counter(i.deal_id for i in invoices) == expected_invoices

    # every message accepted by the gateway exactly once under its key: nothing lost, nothing doubled
    # (messages to managers — notify_manager, urgent tasks — are rows of their own: these managers
    # have no channel, so theirs are recorded for the builder and never reach the client's gateway)
    message_rows = [r for r in rows if r.kind == "message" and r.manager_id is None]
    to_managers = {r.idempotency_key for r in rows if r.kind == "message" and r.manager_id}
    assert not to_managers & set(accepted)
    assert len(message_rows) == sum(expected_invoices.values())
    keys = {r.idempotency_key for r in message_rows}
    assert accepted == {k: 1 for k in keys}, (
        f"doubled: {sorted(k for k, n in accepted.items() if n > 1)}, lost: {sorted(keys - set(accepted))}"
    )
    assert all(messages[r.id][0] == "sent" for r in message_rows)
    # Each SMS quotes an invoice of its deal. Not necessarily its own firing's: the text is rendered
    # from the deal when first sent, so a deal back in contract before that quotes its newer invoice.
    by_deal: dict[int, set[str]] = {}
    for i in invoices:
        by_deal.setdefault(i.deal_id, set()).add(i.number)
    firing_deal = {f.id: f.deal_id for f in firings}
    for r in message_rows:
        assert any(n in messages[r.id][2] for n in by_deal[firing_deal[r.firing_id]]), (
            f"{messages[r.id]}\n{_story(c, firing_deal[r.firing_id])}"
        )
    # a message the gateway took before failing was confirmed with it, never sent again
    kinds = Counter(kind for kind, _key in failures.injected)
    assert set(kinds) == set(FAILURE_KINDS), (
        f"too few gateway calls to inject every kind of failure: {kinds}"
    )
    refs = {r.idempotency_key: messages[r.id][1] for r in message_rows}
    assert all(
        refs[key] == "reconciled" for kind, key in failures.injected if kind in ACCEPTED_FIRST
    )


def _story(c: Conveyor, deal_id: int) -> str:
    """A deal's outbox rows, invoices, messages and history, for a failure's message."""
    with db_session(c) as s:
        lines = [
            f"outbox {r.id} firing {r.firing_id} seq {r.seq} {r.action} {r.status} "
            f"attempts {r.attempts} result {r.result} created {r.created_at} done {r.done_at}"
            for r in s.scalars(
                select(OutboxAction)
                .where(OutboxAction.deal_id == deal_id)
                .order_by(OutboxAction.id)
            )
        ]
        lines += [
            f"invoice {i.number} outbox {i.outbox_id} at {i.created_at}"
            for i in s.scalars(select(Invoice).where(Invoice.deal_id == deal_id))
        ]
        lines += [
            f"message outbox {m.outbox_id} {m.status} at {m.created_at}: {m.text[:60]}"
            for m in s.scalars(select(Message).where(Message.deal_id == deal_id))
        ]
        lines += [
            f"event {e.at} {e.kind} {e.actor} {e.data}"
            for e in s.scalars(
                select(DealEvent).where(DealEvent.deal_id == deal_id).order_by(DealEvent.id)
            )
        ]
    return "\n".join(lines)


def test_an_sqlite_engine_killed_20_times_under_changes_loses_nothing_and_doubles_nothing(
    db_url, tmp_path
):
    _kill_loop(db_url, tmp_path, engines=1)


@pytest.mark.postgres
def test_three_postgresql_engines_killed_20_times_under_changes_lose_nothing_and_double_nothing(
    pg_url, tmp_path
):
    _kill_loop(pg_url, tmp_path, engines=3)
