"""Helpers for the engine-service tests: seed a database, run real ``conveyor engine`` processes,
wait for the outbox to settle, and check the exactly-once / at-least-once invariants in SQL.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from engine.clock import VirtualClock
from engine.core.conveyor import Conveyor
from storage import repositories as repo
from storage.models import Deal, Firing, Invoice, Message, OutboxAction, Task
from tests.support.sessions import db_session

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_RULES = ROOT / "sample_rules"
GOOD_PHONE = "+380501234567"
COUNTERPARTY = {"company_name": "Acme LLC", "tax_id": "12345678", "billing_address": "Kyiv"}


@dataclass
class World:
    """What was seeded, so the checks know what must exist afterwards."""

    incoming: list[int] = field(default_factory=list)  # idle since 2 days: reminder due
    contract: list[int] = field(default_factory=list)  # invoice + SMS pending
    bad_phone: list[int] = field(default_factory=list)  # SMS must end dead, never sent
    quiet: list[int] = field(default_factory=list)  # open, examined by every tick, nothing due


def seed(
    url: str,
    *,
    incoming: int,
    contract: int,
    bad_phone: int = 0,
    quiet: int = 0,
    hours_ago: float = 48,
    managers: int = 2,
    threads: int = 1,
) -> World:
    """Deals created ``hours_ago`` (virtual clock), nothing dispatched: the engine finds it all to do.

    ``threads`` > 1 creates deals concurrently (worth it on PostgreSQL, where each change waits on
    round trips; SQLite serialises writers anyway).
    """
    c = Conveyor(url, clock=VirtualClock(datetime.now(UTC) - timedelta(hours=hours_ago)))
    try:
        c.load_rules_dir(SAMPLE_RULES)
        for i in range(managers):
            c.add_manager(f"Manager {i}", f"+38050111{i:04d}")
        jobs = (
            [
                ("incoming", dict(title=f"Lead {i}", fields={"phone": GOOD_PHONE}))
                for i in range(incoming)
            ]
            + [
                (
                    "contract",
                    dict(
                        title=f"Contract {i}",
                        stage="contract",
                        fields={"phone": GOOD_PHONE, "amount": 100 + i, **COUNTERPARTY},
                    ),
                )
                for i in range(contract)
            ]
            + [
                (
                    "bad_phone",
                    dict(
                        title=f"Bad phone {i}",
                        stage="contract",
                        fields={"phone": "12", "amount": 5, **COUNTERPARTY},
                    ),
                )
                for i in range(bad_phone)
            ]
        )
        with ThreadPoolExecutor(max(1, threads)) as pool:
            ids = list(pool.map(lambda job: c.create_deal("techflow", **job[1]), jobs))
        w = World()
        for (kind, _kw), deal_id in zip(jobs, ids, strict=True):
            getattr(w, kind).append(deal_id)
        w.quiet = _bulk_quiet(c, quiet, datetime.now(UTC) - timedelta(hours=hours_ago))
        return w
    finally:
        c.close()


def _bulk_quiet(c: Conveyor, n: int, created: datetime) -> list[int]:
    """``n`` deals in *proposal* with nothing due, inserted in bulk (an import; the tick looks at them)."""
    if not n:
        return []
    rows = []
    for i in range(n):
        row = dict(
            key=f"Q-{i}",
            funnel_id="techflow",
            title=f"Quiet {i}",
            phone=GOOD_PHONE,
            email="",
            stage="proposal",
            closed=False,
            stage_visit=1,
            stage_entered_at=created,
            activity_seq=0,
            fields={},
            created_at=created,
            updated_at=created,
        )
        if hasattr(Deal, "next_due_at"):
            row["next_due_at"] = created
        rows.append(row)
    with db_session(c) as s:
        repo.add_deals_bulk(s, rows)
    with db_session(c) as s:
        return list(s.scalars(select(Deal.id).where(Deal.key.like("Q-%"))))


def engine_cmd(
    url: str,
    *,
    tick: float = 0.5,
    workers: int = 4,
    lease: float = 5,
    retry_base: float = 0.2,
    max_attempts: int = 6,
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "engine.cli",
        "--db",
        url,
        "engine",
        "--tick-seconds",
        str(tick),
        "--workers",
        str(workers),
        "--lease-seconds",
        str(lease),
        "--retry-base-seconds",
        str(retry_base),
        "--max-attempts",
        str(max_attempts),
    ]


def start_engine(
    url: str,
    log: Path,
    *,
    provider: str | None = None,
    crash_at: str | None = None,
    timeout: float = 2.0,
    config: Path | None = None,
    env_extra: dict[str, str] | None = None,
    **opts: float,
) -> subprocess.Popen:
    """``conveyor engine`` on ``url``: messages to the ``provider`` webhook (``CONVEYOR_PROVIDER``), or
    through the channels of ``config`` (``CONVEYOR_CONFIG``; its secrets in ``env_extra``)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CONVEYOR_CRASH_AT", "CONVEYOR_DB", "CONVEYOR_CONFIG")
    }
    env["PYTHONUNBUFFERED"] = "1"
    env["CONVEYOR_PROVIDER_TIMEOUT"] = str(timeout)
    env.update(env_extra or {})
    if provider:
        env["CONVEYOR_PROVIDER"] = provider
    if config:
        env["CONVEYOR_CONFIG"] = str(config)
    if crash_at:
        env["CONVEYOR_CRASH_AT"] = crash_at
    with open(log, "ab") as fh:  # the child keeps its own descriptor
        start = fh.tell()
        proc = subprocess.Popen(
            engine_cmd(url, **opts),
            cwd=ROOT,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    proc.log, proc.log_start = log, start  # type: ignore[attr-defined]
    return proc


def _die_with_parent() -> None:
    """In the child: get SIGKILL if the test process dies, so no engine outlives an aborted run."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def wait_started(proc: subprocess.Popen, timeout: float = 60) -> bool:
    """Wait until the engine says it started (True), or exited, or ``timeout`` passed (False)."""
    log = getattr(proc, "log", None)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if (
            log is None
            or " started: tick every" in log.read_text(errors="replace")[proc.log_start :]
        ):
            return True
        time.sleep(0.1)
    return False


def stop(proc: subprocess.Popen, timeout: float = 60) -> int:
    """SIGTERM once the engine is up, and wait: a clean stop exits 0."""
    wait_started(proc)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=timeout)


def wait_for(
    predicate,
    timeout: float,
    what: str,
    procs: list[subprocess.Popen] | None = None,
    logs: list[Path] | None = None,
    every: float = 0.3,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        for p in procs or []:
            if p.poll() is not None and p.returncode != -signal.SIGKILL:
                raise AssertionError(
                    f"engine exited with {p.returncode} while waiting for {what}:\n"
                    + "\n".join(x.read_text(errors="replace")[-3000:] for x in logs or [])
                )
        time.sleep(every)
    tails = "\n".join(x.read_text(errors="replace")[-3000:] for x in logs or [])
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{tails}")


def settled(c: Conveyor, world: World) -> bool:
    """Every expected firing exists and every outbox row is done or dead (nothing left to do)."""
    with db_session(c) as s:
        open_rows = (
            s.scalar(
                select(func.count())
                .select_from(OutboxAction)
                .where(OutboxAction.status.not_in(("done", "dead")))
            )
            or 0
        )
        reminders = (
            s.scalar(
                select(func.count())
                .select_from(Firing)
                .where(Firing.rule_id == "incoming_idle_24h")
            )
            or 0
        )
    return open_rows == 0 and reminders >= len(world.incoming)


@dataclass
class Outcome:
    firings: Counter
    tasks_per_outbox: Counter
    internal_done: int
    task_rows_expected: int
    tasks: int
    invoices_per_deal: Counter
    message_keys: dict[str, str]  # outbox idempotency key -> outbox status, for client messages
    manager_message_keys: dict[
        str, str
    ]  # the same for messages to managers (notify_manager, urgent tasks)
    statuses: Counter


def outcome(c: Conveyor) -> Outcome:
    with db_session(c) as s:
        firings = Counter(
            s.execute(select(Firing.rule_id, Firing.deal_id, Firing.occurrence)).all()
        )
        tasks_per_outbox = Counter(s.scalars(select(Task.outbox_id)).all())
        rows = s.execute(
            select(
                OutboxAction.kind,
                OutboxAction.action,
                OutboxAction.status,
                OutboxAction.idempotency_key,
                OutboxAction.manager_id,
            )
        ).all()
        invoices = Counter(s.scalars(select(Invoice.deal_id)).all())
        tasks = s.scalar(select(func.count()).select_from(Task)) or 0
        msgs = s.scalar(select(func.count()).select_from(Message)) or 0
        outbox_msgs = sum(1 for r in rows if r.kind == "message" and r.status == "done")
        assert msgs >= outbox_msgs
    return Outcome(
        firings=firings,
        tasks_per_outbox=tasks_per_outbox,
        internal_done=sum(1 for r in rows if r.kind == "internal" and r.status == "done"),
        task_rows_expected=sum(
            1 for r in rows if r.action in ("create_task", "notify_manager") and r.status == "done"
        ),
        tasks=tasks,
        invoices_per_deal=invoices,
        message_keys={
            r.idempotency_key: r.status
            for r in rows
            if r.kind == "message" and r.manager_id is None
        },
        manager_message_keys={
            r.idempotency_key: r.status for r in rows if r.kind == "message" and r.manager_id
        },
        statuses=Counter(r.status for r in rows),
    )


def assert_exactly_once(c: Conveyor, world: World) -> Outcome:
    """The promises: one firing per (rule, deal, occurrence); internal actions applied exactly once."""
    o = outcome(c)
    assert max(o.firings.values(), default=1) == 1
    by_rule = Counter(rule for rule, _deal, _occ in o.firings)
    assert by_rule["incoming_idle_24h"] == len(world.incoming)
    assert by_rule["assign_new_lead"] == len(world.incoming)
    assert by_rule["contract_invoice_sms"] == len(world.contract) + len(world.bad_phone)
    assert max(o.tasks_per_outbox.values(), default=1) == 1, (
        "a task was created twice for one action"
    )
    assert o.tasks == o.task_rows_expected, "a done task action without its task (or a stray task)"
    # create_task for each new lead, notify_manager for each idle reminder
    assert o.tasks == 2 * len(world.incoming)
    assert dict(o.invoices_per_deal) == {d: 1 for d in world.contract + world.bad_phone}
    assert o.statuses["dead"] == len(world.bad_phone)
    assert set(o.statuses) <= {"done", "dead"}
    return o
