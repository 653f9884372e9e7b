"""Concurrent changes (issue 14, group commit): 16 threads changing deals through the public API at once.

A file SQLite database (WAL, synchronous=FULL) with the sample funnels and ``deals`` TechFlow deals
imported in bulk (as ``bench.populate`` builds them: leads assigned, nothing due); then ``threads`` threads share ``changes`` everyday changes (a manager's call on a
lead, a qualification answer: a quarter of those fire a rule) as fast as each call returns.
Throughput is changes over wall time; the latency of a change is its call, queueing included.

``python -m benchmarks.concurrent [--changes N] [--threads T] [--no-group]`` prints the figures as
JSON (``--no-group``: every change its own commit, as before group commit, for an A/B run).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from engine.paths import SAMPLE_RULES

__all__ = ["bench_concurrent"]

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SEED = 20261201


_FIRED = text(
    "INSERT INTO firings (deal_id, funnel_id, rule_id, rule_name, occurrence, ruleset_version_id,"
    " \"trigger\", \"values\", due_at, fired_at, chain) SELECT id, 'techflow', 'assign_new_lead',"
    " 'New lead: assign a manager', 'visit:1', :version, 'create', '{}', created_at, created_at,"
    " '[\"assign_new_lead\"]' FROM deals WHERE stage = 'incoming'"
)


def _seed_rows(n: int, manager_id: int) -> list[dict[str, Any]]:
    """Open TechFlow deals: even ones idle leads with a manager, odd ones in qualification."""
    rows = []
    for i in range(n):
        created = NOW - timedelta(hours=2 + i % 20)
        lead = i % 2 == 0
        rows.append(
            dict(
                key=f"C-{i}",
                funnel_id="techflow",
                title=f"Concurrent deal {i}",
                phone="+380500000000",
                email="",
                amount=float(1000 + i % 9000),
                stage="incoming" if lead else "qualification",
                closed=False,
                stage_visit=1,
                stage_entered_at=created,
                activity_seq=1 if lead else 0,
                last_activity_at=created if lead else None,
                manager_id=manager_id if lead else None,
                fields={"source": "bench"}
                if lead
                else {"budget": "yes", "authority": "yes", "source": "bench"},
                created_at=created,
                updated_at=created,
                next_due_at=created + timedelta(hours=24),  # the time rules' next instant
            )
        )
    return rows


def bench_concurrent(
    changes: int = 4000,
    threads: int = 16,
    *,
    deals: int = 2000,
    group_commit: bool | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """``changes_concurrent_per_s`` and ``changes_concurrent_p99_ms`` (plus p50, the mean and largest
    group, CPU and context switches per change)."""
    from engine.clock import VirtualClock
    from engine.core.conveyor import Conveyor

    with tempfile.TemporaryDirectory(prefix="conveyor-bench-concurrent-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'concurrent.db'}"
        c = Conveyor(url, clock=VirtualClock(NOW), group_commit=group_commit)
        try:
            c.load_rules_dir(SAMPLE_RULES)
            manager = c.add_manager("Bench manager", "+380500000001")
            ids = c.deals.import_rows(_seed_rows(deals, manager))
            version = next(v.id for v in c.versions("techflow") if v.active)
            with (
                c.engine.begin() as conn
            ):  # the leads' assignment fired already, as in bench.populate
                conn.execute(_FIRED, {"version": version})
            leads, answers = ids[0::2], ids[1::2]
            log(f"concurrent: {changes:,} changes from {threads} threads on {deals:,} deals")
            start_figures = c.group_commit.figures()
            latencies: list[float] = []
            errors: list[BaseException] = []
            lock = threading.Lock()
            per_thread = [changes // threads + (t < changes % threads) for t in range(threads)]
            go = threading.Barrier(threads + 1)

            def work(t: int) -> None:
                rnd = random.Random(SEED + t)
                mine: list[float] = []
                go.wait()
                for k in range(per_thread[t]):
                    begin = time.perf_counter()
                    try:
                        if k % 2 == 0:
                            c.record_activity(rnd.choice(leads), "call", "bench")
                        else:
                            c.update_deal(
                                rnd.choice(answers),
                                {"need": rnd.choice(["yes", "yes", "yes", "no"])},
                            )
                    except BaseException as exc:  # noqa: BLE001 - counted and reported
                        with lock:
                            errors.append(exc)
                        continue
                    mine.append(time.perf_counter() - begin)
                with lock:
                    latencies.extend(mine)

            workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
            for w in workers:
                w.start()
            go.wait()
            t0, cpu0 = time.perf_counter(), time.process_time()
            ru0 = resource.getrusage(resource.RUSAGE_SELF)  # every thread of the process
            for w in workers:
                w.join()
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            ru1 = resource.getrusage(resource.RUSAGE_SELF)
            out: dict[str, Any] = {
                "changes_concurrent_threads": threads,
                "changes_concurrent_per_s": len(latencies) / wall,
                "changes_concurrent_p50_ms": statistics.median(latencies) * 1000,
                "changes_concurrent_p99_ms": statistics.quantiles(
                    latencies, n=100, method="inclusive"
                )[98]
                * 1000,
                # CPU of the whole process per change (all threads): what bounds the rate once
                # commits are shared, since the changes of a group run one after another
                "changes_concurrent_cpu_ms": cpu / max(1, len(latencies)) * 1000,
                # threads put to sleep (a wait for the turn, the commit, the GIL, the disk) and
                # preempted, per change: the price of handing the write turn between threads
                "changes_concurrent_voluntary_switches": (ru1.ru_nvcsw - ru0.ru_nvcsw)
                / max(1, len(latencies)),
                "changes_concurrent_involuntary_switches": (ru1.ru_nivcsw - ru0.ru_nivcsw)
                / max(1, len(latencies)),
            }
            if errors:
                out["changes_concurrent_errors"] = len(errors)
                out["changes_concurrent_error"] = str(errors[0]).splitlines()[0]
            end = c.group_commit.figures()
            commits = end.commits - start_figures.commits
            # (without group commit the committer counts nothing: one change per commit)
            out["changes_concurrent_per_commit"] = (
                (end.units - start_figures.units) / commits if commits else 1.0
            )
            out["changes_concurrent_largest_group"] = end.largest if commits else 1
            return out
        finally:
            c.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--changes", type=int, default=4000)
    p.add_argument("--threads", type=int, default=16)
    p.add_argument("--deals", type=int, default=2000)
    p.add_argument("--no-group", action="store_true", help="every change its own commit")
    a = p.parse_args()
    r = bench_concurrent(
        a.changes, a.threads, deals=a.deals, group_commit=False if a.no_group else None
    )
    print(json.dumps(r))


if __name__ == "__main__":
    main()
