"""Cost of one change on PostgreSQL (issue 14, item 6): statements, round trips and CPU per change.

The benchmark's change mix (``change_mix``, the SQLite figure's mix) runs through the public API on a scratch
database of the server in ``CONVEYOR_TEST_PG``. Statements are counted with a SQLAlchemy
``before_cursor_execute`` listener; round trips add each transaction's ``BEGIN`` and ``COMMIT``. CPU is
the benchmark process's own (``os.times``) plus that of the server backends serving its connections
(``/proc/<pid>/stat`` of each ``pg_backend_pid()``; the server runs on this machine), over the changes.
Without a reachable server the figures are replaced by ``pg_error``.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

#: Keys this module adds to ``conveyor bench --json``.
KEYS = (
    "pg_changes",
    "pg_statements_per_change",
    "pg_round_trips_per_change",
    "pg_cpu_ms_per_change",
    "pg_engine_cpu_ms_per_change",
    "pg_server_cpu_ms_per_change",
    "pg_changes_per_s",
)


def change_mix(c: Any, kinds: dict[str, list[int]], count: int) -> list[float]:
    """The SQLite figure's mix of everyday changes: a manager's call on a lead, then a qualification
    answer (one in four a "no", which fires ``qualification_no``: a firing and its outbox row)."""
    rnd = random.Random(20260302)
    latencies = []
    for k in range(count):
        t = time.perf_counter()
        if k % 2 == 0:
            c.record_activity(rnd.choice(kinds["incoming"]), "call", "bench")
        else:
            answer = rnd.choice(("yes", "yes", "yes", "no"))
            c.update_deal(rnd.choice(kinds["qualification"]), {"need": answer})
        latencies.append(time.perf_counter() - t)
    return latencies


def _backend_cpu_s(pid: int) -> float:
    """utime + stime of a local process, in seconds (fields 14 and 15 of /proc/<pid>/stat)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def bench_postgres(
    changes: int = 1000, deals: int = 400, log: Callable[[str], None] = lambda _m: None
) -> dict[str, Any]:
    """The ``pg_*`` figures, or ``{"pg_error": why}`` when there is no server to measure against."""
    from benchmarks.load import scratch_postgres

    admin = os.environ.get("CONVEYOR_TEST_PG", PG_DEFAULT)
    try:
        url, drop = scratch_postgres(admin)
    except Exception as exc:  # noqa: BLE001 - no server: say so in the figures instead of failing
        return {"pg_error": f"no PostgreSQL at {admin}: {(str(exc).splitlines() or ['?'])[0]}"}
    try:
        return _measure(url, changes, deals, log)
    except Exception as exc:  # noqa: BLE001 - a figure that could not be measured is reported
        return {"pg_error": f"{type(exc).__name__}: {(str(exc).splitlines() or ['?'])[0]}"}
    finally:
        drop()


def _measure(url: str, changes: int, deals: int, log: Callable[[str], None]) -> dict[str, Any]:
    from engine.clock import VirtualClock
    from engine.core.conveyor import Conveyor
    from engine.paths import SAMPLE_RULES

    c = Conveyor(url, clock=VirtualClock(NOW))
    try:
        log(f"postgresql: {deals:,} deals, then {changes:,} changes through the public API")
        c.load_rules_dir(SAMPLE_RULES)
        manager = "PG bench manager"
        c.add_manager(manager, "+380500000001")
        kinds: dict[str, list[int]] = {"incoming": [], "qualification": []}
        for i in range(deals):
            if i % 2:
                kinds["incoming"].append(
                    c.create_deal("techflow", title=f"PG deal {i}", manager=manager)
                )
            else:
                kinds["qualification"].append(
                    c.create_deal(
                        "techflow",
                        title=f"PG deal {i}",
                        stage="qualification",
                        fields={"budget": "yes", "authority": "yes", "source": "bench"},
                    )
                )
        statements, transactions, backends = [0], [0], set()

        @event.listens_for(c.engine, "before_cursor_execute")
        def _statement(*_args: Any) -> None:
            statements[0] += 1

        @event.listens_for(c.engine, "commit")
        def _commit(_conn: Any) -> None:
            transactions[0] += 1

        @event.listens_for(c.engine, "connect")
        def _connected(dbapi_connection: Any, _record: Any) -> None:
            backends.add(dbapi_connection.info.backend_pid)

        c.engine.dispose()  # every connection from here on is a new one, its backend known
        change_mix(c, kinds, 20)  # warm: statement caches, the compiled rule set, one connection
        statements[0] = transactions[0] = 0
        pids = sorted(backends)
        server0 = {pid: _backend_cpu_s(pid) for pid in pids}
        own0, t0 = _own_cpu_s(), time.perf_counter()
        latencies = change_mix(c, kinds, changes)
        wall = time.perf_counter() - t0
        own = _own_cpu_s() - own0
        new = sorted(backends - set(pids))  # a connection opened during the run counts whole
        server = sum(_backend_cpu_s(p) - server0.get(p, 0.0) for p in [*pids, *new])
    finally:
        c.close()
    n = len(latencies)
    return {
        "pg_changes": n,
        "pg_statements_per_change": statements[0] / n,
        "pg_round_trips_per_change": (statements[0] + 2 * transactions[0]) / n,
        "pg_cpu_ms_per_change": (own + server) * 1000 / n,
        "pg_engine_cpu_ms_per_change": own * 1000 / n,
        "pg_server_cpu_ms_per_change": server * 1000 / n,
        "pg_changes_per_s": n / wall,
    }


def table_rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The ``pg_*`` figures as rows of ``benchmarks.bench.table``."""
    if "pg_cpu_ms_per_change" in r:
        what = "change on PostgreSQL: statements, round trips / CPU (engine + server)"
        return [
            (
                what,
                f"{r['pg_statements_per_change']:.2f}, {r['pg_round_trips_per_change']:.2f} / "
                f"{r['pg_cpu_ms_per_change']:.2f} ms",
                f"{r['pg_changes_per_s']:,.0f} changes/s",
            )
        ]
    return [("change on PostgreSQL", f"skipped: {r['pg_error']}", "")] if "pg_error" in r else []


def main() -> None:
    import json

    random.seed(0)
    print(json.dumps(bench_postgres(log=print), indent=2))


if __name__ == "__main__":
    main()
