"""Load run: many deals changing as fast as the engine takes them, with real engine processes.

``run_load`` seeds deals, starts ``engines`` ``conveyor engine`` processes, drives changes through
the public API from ``changers`` threads for ``seconds``, lets the engines drain the outbox, stops
them with SIGTERM, and checks that nothing was lost or doubled. It returns the achieved rates (what
``conveyor bench`` and ``make load`` report). ``python -m benchmarks.load --db URL`` runs it from a shell.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from engine.core.conveyor import Conveyor
from engine.document.ruleset import RuleSet
from engine.errors import ConveyorError
from engine.rules.registry import with_event
from storage import repositories as repo
from storage.db import read_transaction, sqlite_path
from storage.models import (
    Deal,
    DealEvent,
    Firing,
    Invoice,
    Message,
    OutboxAction,
    RuleSetVersion,
    Task,
)

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_RULES = ROOT / "sample_rules"
COUNTERPARTY = {"company_name": "Acme LLC", "tax_id": "12345678", "billing_address": "Kyiv"}
#: The change mix, as (kind, weight): what managers and clients do to deals all day.
MIX = [
    ("activity", 35),
    ("update", 25),
    ("proposal_attached", 20),
    ("proposal_opened", 10),
    ("to_contract", 10),
]
#: The change kinds that are declared events of the sample funnel, recorded with ``record_event``.
EVENTS = ("proposal_attached", "proposal_opened")


@dataclass
class LoadResult:
    backend: str
    engines: int
    deals: int
    seconds: float
    changes: int = 0
    changes_per_second: float = 0.0
    refused_changes: int = (
        0  # e.g. a second move into contract: refused by the engine, as it should be
    )
    firings: int = 0
    firings_per_second: float = 0.0
    actions_done_during_run: int = 0
    actions_per_second: float = 0.0
    actions_total: int = 0
    drain_seconds: float = 0.0
    backlog_at_end_of_run: int = 0
    timer_firings: int = 0
    last_tick_seconds: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _engine_cmd(url: str, tick_seconds: float) -> list[str]:
    return [
        sys.executable,
        "-m",
        "engine.cli",
        "--db",
        url,
        "engine",
        "--tick-seconds",
        str(tick_seconds),
        "--retry-base-seconds",
        "1",
    ]


def seed(c: Conveyor, deals: int, seconds: float, rng: random.Random) -> list[int]:
    """``deals`` open deals in *proposal*, bulk-inserted (an import: nothing evaluated yet; the first
    tick catches them up). One in ten had its proposal attached just under 48 h ago, so their
    "stale proposal" timer comes due during the run."""
    if not c.funnels():
        c.load_rules_dir(SAMPLE_RULES, author="load")
        c.add_manager("Load A", "+380501110001")
        c.add_manager("Load B", "+380501110002")
    now = datetime.now(UTC)
    created = now - timedelta(hours=72)
    first = c.queries.next_deal_number()
    rows: list[dict[str, Any]] = []
    for i in range(deals):
        attached = (
            now - timedelta(hours=48) + timedelta(seconds=rng.uniform(0, seconds))
            if i % 10 == 0
            else None
        )
        row = dict(
            key=f"L-{first + i}",
            funnel_id="techflow",
            title=f"Load deal {first + i}",
            phone="+380501234567",
            email="",
            amount=float(100 + i % 900),
            stage="proposal",
            closed=False,
            stage_visit=1,
            stage_entered_at=created,
            activity_seq=0,
            fields=dict(COUNTERPARTY),
            created_at=created,
            updated_at=created,
            signals=with_event({}, EVENTS[0], attached, 1) if attached else {},
        )
        if hasattr(Deal, "next_due_at"):
            row["next_due_at"] = created  # evaluate at the next tick, as for any imported deal
        rows.append(row)
    return c.deals.import_rows(rows)


def _change(c: Conveyor, kind: str, deal_id: int, rng: random.Random) -> None:
    if kind == "activity":
        c.record_activity(deal_id, "call", "load")
    elif kind == "update":
        c.update_deal(deal_id, {"amount": float(rng.randint(100, 5000))})
    elif kind in EVENTS:
        c.record_event(deal_id, kind)
    else:
        c.move_deal(deal_id, "contract")


def _changer(
    url: str,
    ids: list[int],
    deadline: float,
    seed_: int,
    counts: Counter[str],
    lock: threading.Lock,
) -> None:
    rng = random.Random(seed_)
    kinds = [k for k, w in MIX for _ in range(w)]
    c = Conveyor(url, migrate=False)
    local: Counter[str] = Counter()
    try:
        while time.monotonic() < deadline:
            try:
                _change(c, rng.choice(kinds), rng.choice(ids), rng)
                local["ok"] += 1
            except ConveyorError:
                local["refused"] += 1
    finally:
        c.close()
        with lock:
            counts.update(local)


def _outbox_open(c: Conveyor) -> int:
    counts = c.engines.snapshot(c.clock.now()).counts
    return sum(n for status, n in counts.items() if status not in ("done", "dead"))


def _done(c: Conveyor) -> int:
    return c.engines.snapshot(c.clock.now()).counts.get("done", 0)


def check(
    c: Conveyor, ids: list[int], started: datetime, ended: datetime, changes: int
) -> list[str]:
    """Nothing lost, nothing doubled. Returns the problems found (none when all is well).

    The oracle reads the tables itself, in a read-only transaction of its own on the Conveyor's
    engine: it checks what the engine wrote, so it does not ask the engine.
    """
    problems = []
    with read_transaction(c.engine) as s:
        if n := repo.duplicate_firings(s):
            problems.append(f"{n} (rule, deal, occurrence) keys fired more than once")
        actions_of = {}
        for v in s.scalars(select(RuleSetVersion)):
            rs = RuleSet.model_validate_json(v.document)
            actions_of.update({(v.id, r.id): len(r.actions) for r in rs.rules})
        per_firing = dict(
            s.execute(
                select(OutboxAction.firing_id, func.count()).group_by(OutboxAction.firing_id)
            ).all()
        )
        missing = [
            f.id
            for f in s.scalars(select(Firing))
            if per_firing.get(f.id, 0) != actions_of.get((f.ruleset_version_id, f.rule_id), -1)
        ]
        if missing:
            problems.append(
                f"{len(missing)} firing(s) without exactly their actions in the outbox, e.g. {missing[:5]}"
            )
        statuses = dict(
            s.execute(select(OutboxAction.status, func.count()).group_by(OutboxAction.status)).all()
        )
        if set(statuses) - {"done"}:
            problems.append(f"outbox not all done after draining: {statuses}")
        tasks = Counter(s.scalars(select(Task.outbox_id)))
        if tasks and max(tasks.values()) > 1:
            problems.append("a task was created twice for one action")
        task_actions = (
            s.scalar(
                select(func.count())
                .select_from(OutboxAction)
                .where(
                    OutboxAction.action.in_(("create_task", "notify_manager")),
                    OutboxAction.status == "done",
                )
            )
            or 0
        )
        if sum(tasks.values()) != task_actions:
            problems.append(f"{sum(tasks.values())} tasks for {task_actions} done task actions")
        invoice_actions = (
            s.scalar(
                select(func.count())
                .select_from(OutboxAction)
                .where(OutboxAction.action == "generate_invoice", OutboxAction.status == "done")
            )
            or 0
        )
        invoices = s.scalar(select(func.count(func.distinct(Invoice.outbox_id)))) or 0
        if (
            invoices != invoice_actions
            or (s.scalar(select(func.count()).select_from(Invoice)) or 0) != invoices
        ):
            problems.append(f"{invoices} invoices for {invoice_actions} done invoice actions")
        message_actions = (
            s.scalar(
                select(func.count())
                .select_from(OutboxAction)
                .where(OutboxAction.kind == "message", OutboxAction.status == "done")
            )
            or 0
        )
        # Without a provider configured (the load run's case) a message is "recorded", not "sent".
        messages = (
            s.scalar(
                select(func.count())
                .select_from(Message)
                .where(Message.status.in_(("recorded", "sent", "delivered")))
            )
            or 0
        )
        if messages != message_actions:
            problems.append(
                f"{messages} recorded or sent messages for {message_actions} done message actions"
            )
        events = (
            s.scalar(
                select(func.count())
                .select_from(DealEvent)
                .where(DealEvent.at >= started, DealEvent.actor.in_(("manager", "client")))
            )
            or 0
        )
        if events != changes:
            problems.append(
                f"{changes} changes were committed but {events} are in the deals' history"
            )
        # Timers: every deal still in its first proposal visit whose 48 h came due fired once.
        due_by = ended - timedelta(hours=48)
        first_visit = list(
            s.scalars(
                select(Deal.id).where(
                    Deal.id.in_(ids),
                    Deal.stage == "proposal",
                    Deal.stage_visit == 1,
                    Deal.stage_entered_at <= due_by,
                )
            )
        )
        # The latest attachment counts (the rule reads the hours since it).
        latest = repo.latest_signal_at(s, first_visit, EVENTS[0])
        stale_due = {deal_id for deal_id, at in latest.items() if at <= due_by}
        fired = set(s.scalars(select(Firing.deal_id).where(Firing.rule_id == "proposal_stale_48h")))
        if stale_due - fired:
            problems.append(f"{len(stale_due - fired)} due 48 h reminders never fired")
    return problems


def run_load(
    url: str,
    *,
    deals: int = 10_000,
    seconds: float = 60,
    engines: int = 1,
    changers: int | None = None,
    tick_seconds: float = 1.0,
    drain_timeout: float = 600,
    log_dir: str | Path | None = None,
    output: str | Path | None = None,
    rng_seed: int = 7,
) -> LoadResult:
    """Seed ``deals``, run ``engines`` engine processes while changing deals for ``seconds``, drain, check."""
    backend = "sqlite" if sqlite_path(url) or url.startswith("sqlite") else "postgresql"
    if backend == "sqlite" and engines != 1:
        raise ValueError("SQLite runs one engine process; use PostgreSQL for several")
    changers = changers or (1 if backend == "sqlite" else 2)
    rng = random.Random(rng_seed)
    result = LoadResult(backend=backend, engines=engines, deals=deals, seconds=seconds)
    c = Conveyor(url)
    ids = seed(c, deals, seconds, rng)
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix="conveyor-load-"))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("CONVEYOR_CRASH_AT", None)
    env.pop("CONVEYOR_PROVIDER", None)  # messages are recorded, not sent anywhere
    procs = []
    for i in range(engines):
        with open(log_dir / f"engine{i}.log", "ab") as fh:
            procs.append(
                subprocess.Popen(
                    _engine_cmd(url, tick_seconds),
                    cwd=ROOT,
                    env=env,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                )
            )
    counts: Counter[str] = Counter()
    try:
        started = datetime.now(UTC)
        done_before = _done(c)
        t0 = time.monotonic()
        lock = threading.Lock()
        threads = [
            threading.Thread(
                target=_changer, args=(url, ids, t0 + seconds, rng_seed + i, counts, lock)
            )
            for i in range(changers)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
        ended = datetime.now(UTC)
        result.backlog_at_end_of_run = _outbox_open(c)
        done_in_run = _done(c) - done_before
        fired = c.queries.firing_count(since=started)
        t1 = time.monotonic()
        while _outbox_open(c) and time.monotonic() - t1 < drain_timeout:
            if any(p.poll() is not None for p in procs):
                raise RuntimeError(
                    "an engine process exited during the load run; see " + str(log_dir)
                )
            time.sleep(0.5)
        result.drain_seconds = round(time.monotonic() - t1, 2)
        # one more tick after the last change so every timer due by `ended` has been looked at
        time.sleep(tick_seconds * 2 + 1)
        while _outbox_open(c) and time.monotonic() - t1 < drain_timeout:
            time.sleep(0.5)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        codes = [p.wait(timeout=120) for p in procs]
    result.changes = counts["ok"]
    result.refused_changes = counts["refused"]
    result.changes_per_second = round(counts["ok"] / elapsed, 1)
    result.firings = fired
    result.firings_per_second = round(fired / elapsed, 1)
    result.actions_done_during_run = done_in_run
    result.actions_per_second = round(done_in_run / elapsed, 1)
    snapshot = c.engines.snapshot(c.clock.now())
    result.actions_total = sum(snapshot.counts.values())
    result.timer_firings = c.queries.firing_count(rule_id="proposal_stale_48h")
    result.last_tick_seconds = sorted(
        round(b.last_tick_seconds or 0, 3) for b in snapshot.heartbeats
    )
    result.problems = check(c, ids, started, ended, counts["ok"])
    if any(code != 0 for code in codes):
        result.problems.append(f"engine exit codes {codes} (0 is a clean stop); logs in {log_dir}")
    c.close()
    if output:
        _append_json(Path(output), result)
    return result


def _append_json(path: Path, result: LoadResult) -> None:
    """test-output/load.json keeps the latest run per backend, engine count and duration."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        runs = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        runs = {}
    runs[f"{result.backend}-{result.engines}-engine(s)-{result.seconds:g}s"] = {
        **asdict(result),
        "ok": result.ok,
        "at": datetime.now(UTC).isoformat(),
    }
    path.write_text(json.dumps(runs, indent=2) + "\n")


def describe(r: LoadResult) -> str:
    return (
        f"{r.backend}, {r.engines} engine(s), {r.deals} deals, {r.seconds:g} s: {r.changes} changes "
        f"({r.changes_per_second}/s, {r.refused_changes} refused), {r.firings} firings ({r.firings_per_second}/s), "
        f"{r.actions_done_during_run} actions done during the run ({r.actions_per_second}/s), backlog at end "
        f"{r.backlog_at_end_of_run}, drained in {r.drain_seconds} s, {r.timer_firings} timer firings; "
        + ("nothing lost, nothing doubled" if r.ok else "PROBLEMS: " + "; ".join(r.problems))
    )


def scratch_postgres(admin_url: str) -> tuple[str, Any]:
    """A new, empty database on the server of ``admin_url``; returns (url, drop function)."""
    import uuid

    import sqlalchemy as sa

    name = f"conveyor_load_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return sa.engine.make_url(admin_url).set(database=name).render_as_string(
        hide_password=False
    ), drop


def main(argv: list[str] | None = None) -> int:
    """``make load``: the full minute on a fresh SQLite file (one engine), then on a scratch
    PostgreSQL database (two engines, server from ``CONVEYOR_TEST_PG``)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--db", default=None, help="run once on this (fresh) database instead of both backends"
    )
    p.add_argument("--deals", type=int, default=10_000)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument(
        "--engines",
        type=int,
        default=None,
        help="with --db: engine processes (default 1 on SQLite, 2 on PostgreSQL)",
    )
    p.add_argument("--output", default="test-output/load.json")
    a = p.parse_args(argv)
    if a.db:
        plan = [(a.db, a.engines or (1 if a.db.startswith("sqlite") else 2))]
    else:
        admin = os.environ.get(
            "CONVEYOR_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        )
        plan = [(f"sqlite:///{tempfile.mkdtemp(prefix='conveyor-load-')}/load.db", 1), (admin, 2)]
    failed = False
    for url, engines in plan:
        drop = None
        if not a.db and url.startswith("postgresql"):
            url, drop = scratch_postgres(url)
        try:
            r = run_load(url, deals=a.deals, seconds=a.seconds, engines=engines, output=a.output)
        finally:
            if drop:
                drop()
        print(describe(r), flush=True)
        failed |= not r.ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
