"""``conveyor bench``: the naive business-rules baseline and Conveyor's paths, measured in one process.

Builds a seeded, reproducible TechFlow data set itself: ``run_all`` per deal vs compiled closures vs
vectorised masks; a tick over N open deals in a temporary SQLite file (bulk-inserted with sqlite3,
not N API calls) of which ~N/1000 became due, then an idle tick; change throughput and latency
through the public API on that same database; peak RSS. Figures, not assertions.
"""

from __future__ import annotations

import json
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.concurrent import bench_concurrent
from benchmarks.imports import bench_import, import_rows_of
from benchmarks.ticks import pages_on_copy
from engine.paths import SAMPLE_RULES

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SEED = 20260302
#: run_all and the compiled path are timed on at most this many deals (rates, not totals).
PER_DEAL_SAMPLE = 20_000
_US_HOUR = 3_600_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
OPEN_STAGES = ["incoming", "qualification", "proposal", "contract"]

KEYS = (
    "deals",
    "run_all_deals_per_s",
    "compiled_deals_per_s",
    "vectorised_deals_per_s",
    "tick_due_s",
    "tick_open_deals",
    "tick_due_deals",
    "tick_idle_s",
    "tick_pages_written",
    "changes_per_s",
    "change_p50_ms",
    "change_p95_ms",
    "change_p99_ms",
    "changes_concurrent_per_s",
    "changes_concurrent_p99_ms",
    "peak_rss_mb",
    "import_deals_per_s",
)


def _us(dt: datetime) -> int:
    return (dt - _EPOCH) // timedelta(microseconds=1)


@dataclass
class DealColumns:
    """The synthetic funnel as numpy columns (µs timestamps, -1 for "never")."""

    stage: np.ndarray
    created: np.ndarray
    entered: np.ndarray
    activity: np.ndarray
    attached: np.ndarray
    opened: np.ndarray
    replied: np.ndarray
    paid: np.ndarray
    manager: np.ndarray
    amount: np.ndarray
    budget: np.ndarray
    authority: np.ndarray
    need: np.ndarray

    def __len__(self) -> int:
        return len(self.stage)


def synthetic_deals(n: int, seed: int = SEED) -> DealColumns:
    """A mixed funnel for the evaluation benchmarks: every stage, every signal, ages up to 10 days."""
    rng = np.random.default_rng(seed)
    now = _us(NOW)

    def ago(max_hours: float, p_never: float = 0.0) -> np.ndarray:
        values = now - (rng.random(n) * max_hours * _US_HOUR).astype(np.int64)
        if p_never:
            values[rng.random(n) < p_never] = -1
        return values

    created = ago(240)
    yes_no = np.array(["yes", "no", None], dtype=object)
    return DealColumns(
        stage=np.array(OPEN_STAGES + ["paid"], dtype=object)[rng.integers(0, 5, n)],
        created=created,
        entered=np.maximum(created, ago(120)),
        activity=ago(72, 0.3),
        attached=ago(96, 0.5),
        opened=ago(48, 0.6),
        replied=ago(24, 0.8),
        paid=ago(24, 0.9),
        manager=np.where(rng.random(n) < 0.7, 1, -1),
        amount=np.round(rng.random(n) * 20_000, 2),
        budget=yes_no[rng.integers(0, 3, n)],
        authority=yes_no[rng.integers(0, 3, n)],
        need=yes_no[rng.integers(0, 3, n)],
    )


def _at(us: int) -> datetime:
    """An instant of a column every synthetic deal has (created, entered its stage)."""
    return _EPOCH + timedelta(microseconds=int(us))


def _dt(us: int) -> datetime | None:
    """An instant of a column a deal may lack (negative: never happened)."""
    return None if us < 0 else _at(us)


#: The sample funnel's declared events and the synthetic column each one is read from.
EVENT_COLUMNS = {
    "proposal_attached": "attached",
    "proposal_opened": "opened",
    "client_replied": "replied",
    "payment_received": "paid",
}


def deal_states(cols: DealColumns, limit: int) -> list[Any]:
    from engine.rules.deal import DealState
    from engine.rules.registry import with_event

    out = []
    for i in range(min(limit, len(cols))):
        fields = {
            k: v
            for k, v in (
                ("budget", cols.budget[i]),
                ("authority", cols.authority[i]),
                ("need", cols.need[i]),
            )
            if v is not None
        }
        signals: dict[str, Any] = {}
        for name, column in EVENT_COLUMNS.items():
            at = _dt(getattr(cols, column)[i])
            if at is not None:  # every synthetic deal is in its first stage visit
                signals = with_event(signals, name, at, 1)
        out.append(
            DealState(
                id=i + 1,
                key=f"D-{i + 1}",
                funnel="techflow",
                stage=cols.stage[i],
                created_at=_at(cols.created[i]),
                stage_entered_at=_at(cols.entered[i]),
                last_activity_at=_dt(cols.activity[i]),
                signals=signals,
                manager_id=1 if cols.manager[i] > 0 else None,
                amount=float(cols.amount[i]),
                fields=fields,
            )
        )
    return out


def deals_frame(cols: DealColumns) -> pd.DataFrame:
    from engine.rules.evaluators.vectorized import event_at_column, event_visit_column

    def ts(values: np.ndarray) -> pd.Series:
        arr = values.astype("datetime64[us]")
        arr[values < 0] = np.datetime64("NaT")
        return pd.Series(arr).dt.tz_localize("UTC")

    frame = {
        "stage": pd.Categorical(cols.stage),
        "stage_visit": np.ones(len(cols), dtype=np.int64),
        "manager_id": np.where(cols.manager > 0, 1.0, np.nan),
        "amount": cols.amount,
        "created_at": ts(cols.created),
        "stage_entered_at": ts(cols.entered),
        "last_activity_at": ts(cols.activity),
        "budget": pd.Categorical(cols.budget),
        "authority": pd.Categorical(cols.authority),
        "need": pd.Categorical(cols.need),
    }
    for name, column in EVENT_COLUMNS.items():
        values = getattr(cols, column)
        frame[event_at_column(name)] = ts(values)
        frame[event_visit_column(name)] = np.where(values < 0, 0, 1)
    return pd.DataFrame(frame)


def load_rulesets() -> dict[str, Any]:
    from engine.document.validate import validate_document

    docs = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in SAMPLE_RULES.glob("*.json")}
    return {
        "techflow": validate_document(docs["techflow"], known_funnels=["project_work", "techflow"])
    }


def _rate(n: int, run: Callable[[], Any], repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t)
    return n / best


def bench_evaluation(n: int, log: Callable[[str], None]) -> dict[str, float]:
    from business_rules.engine import run_all

    from engine.rules.actions import DealActions
    from engine.rules.evaluators.compiled import compile_ruleset
    from engine.rules.evaluators.vectorized import rule_masks
    from engine.rules.variables import variables_class

    rs = load_rulesets()["techflow"]
    cols = synthetic_deals(n)
    sample = deal_states(cols, PER_DEAL_SAMPLE)
    rules, variables = rs.business_rules(), variables_class(rs)
    compiled = compile_ruleset(rs)
    log(f"evaluation: run_all on {len(sample):,} deals")

    def naive() -> None:
        for d in sample:
            run_all(rules, variables(d, NOW), DealActions())

    def fast() -> None:
        for d in sample:
            [a for r in compiled.matching(d, NOW) for a in r.actions]

    # Both per-deal paths: best of three passes over the same deals (the machine may be shared).
    out = {"run_all_deals_per_s": _rate(len(sample), naive, repeat=3)}
    log(f"evaluation: compiled on {len(sample):,} deals")
    out["compiled_deals_per_s"] = _rate(len(sample), fast, repeat=3)
    sample.clear()
    frame = deals_frame(cols)
    del cols
    log(f"evaluation: vectorised on {n:,} deals")
    out["vectorised_deals_per_s"] = _rate(n, lambda: rule_masks(compiled, frame, NOW), repeat=3)
    return out


# -- the database part --------------------------------------------------------------------------------
def _sql_time(us: np.ndarray) -> np.ndarray:
    # SQLAlchemy's SQLite DateTime text format: "YYYY-MM-DD HH:MM:SS.ffffff" (naive UTC).
    text = np.datetime_as_string(us.astype("datetime64[us]"), unit="us")
    return np.char.replace(text.astype(str), "T", " ")


def populate(
    path: str, n: int, due: int, manager_id: int, version_id: int, seed: int = SEED
) -> dict[str, list[int]]:
    """Bulk-insert ``n`` open TechFlow deals of which ``due`` have a time rule due at ``NOW``.

    Half wait in qualification (budget and authority decided, need open: ``qualification_timeout``
    due 24 h after stage entry), half in incoming with a manager and ``assign_new_lead`` already
    fired (``incoming_idle_24h`` due 24 h after the last activity). ``next_due_at`` is what
    ``_evaluate`` would have stored. Returns deal ids by kind.
    """
    rng = np.random.default_rng(seed)
    now = _us(NOW)
    ids = np.arange(1, n + 1)
    incoming = ids % 2 == 0
    is_due = np.zeros(n, dtype=bool)
    is_due[rng.choice(n, size=due, replace=False)] = True
    # Hours since the clock anchor: due deals 24-30 h ago, the others 0-23 h ago.
    age = np.where(is_due, 24 + rng.random(n) * 6, rng.random(n) * 23)
    anchor = now - (age * _US_HOUR).astype(np.int64)
    created = anchor - (rng.random(n) * 48 * _US_HOUR).astype(np.int64)
    entered = np.where(incoming, created, anchor)
    activity = np.where(incoming, anchor, created)
    # First microsecond at which ">= 24 h" holds (24 h minus business-rules' 1e-6 h epsilon).
    next_due = anchor + 24 * _US_HOUR - 3600
    t_created, t_entered, t_activity, t_due = (
        _sql_time(a) for a in (created, entered, activity, next_due)
    )
    fields_q = json.dumps({"budget": "yes", "authority": "yes", "source": "bench"})
    fields_i = json.dumps({"source": "bench"})
    con = sqlite3.connect(path)
    con.execute("PRAGMA synchronous=OFF")
    with con:
        con.executemany(
            "INSERT INTO deals (id, key, funnel_id, title, phone, email, amount, stage, closed, stage_visit,"
            " stage_entered_at, activity_seq, last_activity_at, manager_id, fields, created_at, updated_at,"
            " next_due_at) VALUES (?, ?, 'techflow', ?, '+380500000000', '', ?, ?, 0, 1, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    int(i),
                    f"B-{i}",
                    f"Bench deal {i}",
                    float(i % 9000 + 1000),
                    "incoming" if inc else "qualification",
                    te,
                    1 if inc else 0,
                    ta if inc else None,
                    manager_id if inc else None,
                    fields_i if inc else fields_q,
                    tc,
                    tc,
                    td,
                )
                for i, inc, tc, te, ta, td in zip(
                    ids.tolist(),
                    incoming.tolist(),
                    t_created.tolist(),
                    t_entered.tolist(),
                    t_activity.tolist(),
                    t_due.tolist(),
                    strict=True,
                )
            ),
        )
        con.executemany(
            "INSERT INTO firings (deal_id, funnel_id, rule_id, rule_name, occurrence, ruleset_version_id,"
            " \"trigger\", \"values\", due_at, fired_at, chain) VALUES (?, 'techflow', 'assign_new_lead',"
            " 'New lead: assign a manager', 'visit:1', ?, 'create', '{}', ?, ?, '[\"assign_new_lead\"]')",
            (
                (int(i), version_id, tc, tc)
                for i, tc in zip(ids[incoming].tolist(), t_created[incoming].tolist(), strict=True)
            ),
        )
    con.execute("ANALYZE")
    # Fold the bulk insert's write-ahead log into the database now, not during the timed tick.
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return {
        "incoming": ids[incoming & ~is_due].tolist(),
        "qualification": ids[~incoming & ~is_due].tolist(),
    }


def bench_database(n: int, changes: int, log: Callable[[str], None]) -> dict[str, float]:
    from engine.clock import VirtualClock
    from engine.core.conveyor import Conveyor

    due = max(1, min(1000, n // 1000)) if n >= 1000 else max(1, n // 10)
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as tmp:
        path = str(Path(tmp) / "bench.db")
        clock = VirtualClock(NOW - timedelta(days=30))
        c = Conveyor(f"sqlite:///{path}", clock=clock)
        try:
            c.load_rules_dir(SAMPLE_RULES)
            manager = c.add_manager("Bench manager", "+380500000001")
            version = next(v.id for v in c.versions("techflow") if v.active)
            log(f"database: inserting {n:,} open deals ({due:,} due) into {path}")
            kinds = populate(path, n, due, manager, version)
            log("database: pages a tick writes, on a copy (benchmarks.ticks)")
            pages = pages_on_copy(path, NOW)
            clock.set(NOW)
            log("database: tick with deals due")
            t = time.perf_counter()
            report = c.tick()
            tick_due = time.perf_counter() - t
            if report.deals_examined != due:
                raise RuntimeError(
                    f"bench tick examined {report.deals_examined} deals, expected {due}"
                )
            idle = []
            for _ in range(5):
                t = time.perf_counter()
                c.tick()
                idle.append(time.perf_counter() - t)
            log(f"database: {changes:,} changes through the public API")
            latencies = _changes(c, kinds, changes)
        finally:
            c.close()
        bare = bare_commits_per_s(str(Path(tmp) / "bare.db"))
    total = sum(latencies)
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "tick_due_s": tick_due,
        "tick_open_deals": n,
        "tick_due_deals": due,
        "tick_fired": report.rules_fired,
        "tick_idle_s": statistics.median(idle),
        **pages,
        "changes_per_s": len(latencies) / total,
        "change_p50_ms": q[49] * 1000,
        "change_p95_ms": q[94] * 1000,
        "change_p99_ms": q[98] * 1000,
        "sqlite_bare_commits_per_s": bare,
    }


def bare_commits_per_s(path: str, count: int = 500) -> float:
    """The floor under the change figures: one-row commits, WAL, synchronous=FULL, on the same disk."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE t (a INTEGER)")
    t = time.perf_counter()
    for i in range(count):
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT INTO t VALUES (?)", (i,))
        con.execute("COMMIT")
    elapsed = time.perf_counter() - t
    con.close()
    return count / elapsed


def _changes(c: Any, kinds: dict[str, list[int]], count: int) -> list[float]:
    """A mix of everyday changes: a manager's call on a lead, a qualification answer (some fire rules)."""
    rnd = random.Random(SEED)
    incoming, qualification = kinds["incoming"], kinds["qualification"]
    answers = ["yes", "yes", "yes", "no"]  # "no" fires qualification_no: a firing + an outbox row
    latencies = []
    for k in range(count):
        if k % 2 == 0 and incoming:
            deal = rnd.choice(incoming)
            t = time.perf_counter()
            c.record_activity(deal, "call", "bench")
        else:
            deal = rnd.choice(qualification)
            t = time.perf_counter()
            c.update_deal(deal, {"need": rnd.choice(answers)})
        latencies.append(time.perf_counter() - t)
    return latencies


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def bench_designer(log: Callable[[str], None]) -> dict[str, Any]:
    """The Designer page with a 30-stage, 300-rule funnel (an AppTest run), in its own process.

    The engine does not import Streamlit, so the builder's own measurement runs as ``python -m benchmarks.designer``.
    """
    log("designer: rendering a 30-stage, 300-rule funnel (AppTest)")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.designer"],
        cwd=SAMPLE_RULES.parent,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    try:
        data = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"designer_error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
    return {
        "designer_stages": data["stages"],
        "designer_rules": data["rules"],
        "designer_render_s": data["designer_first_run_s"],
        "designer_rerun_s": data["designer_rerun_s"],
        **({"designer_error": "; ".join(data["errors"])} if data["errors"] else {}),
    }


def bench_load(seconds: float, deals: int, log: Callable[[str], None]) -> dict[str, Any]:
    """The service under load (issue 4): 10,000 deals changing for ``seconds`` on SQLite with one engine,
    then on a scratch PostgreSQL database (``CONVEYOR_TEST_PG``) with two; nothing lost, nothing doubled."""
    from benchmarks.load import run_load, scratch_postgres

    out: dict[str, Any] = {"load_seconds": seconds, "load_deals": deals}
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-load-") as tmp:
        log(f"load: {deals:,} deals changing for {seconds:g} s on SQLite, one engine")
        r = run_load(f"sqlite:///{Path(tmp) / 'load.db'}", deals=deals, seconds=seconds, engines=1)
        out.update(
            load_sqlite_changes_per_s=r.changes_per_second,
            load_sqlite_firings_per_s=r.firings_per_second,
            load_sqlite_actions_per_s=r.actions_per_second,
            load_sqlite_ok=r.ok,
        )
    admin = os.environ.get("CONVEYOR_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    try:
        url, drop = scratch_postgres(admin)
    except Exception as exc:  # noqa: BLE001 - no server: say so in the figures instead of failing the bench
        out["load_postgresql_skipped"] = f"no PostgreSQL at {admin}: {str(exc).splitlines()[0]}"
        return out
    try:
        log(f"load: {deals:,} deals changing for {seconds:g} s on PostgreSQL, two engines")
        r = run_load(url, deals=deals, seconds=seconds, engines=2)
        out.update(
            load_postgresql_changes_per_s=r.changes_per_second,
            load_postgresql_firings_per_s=r.firings_per_second,
            load_postgresql_actions_per_s=r.actions_per_second,
            load_postgresql_ok=r.ok,
        )
    finally:
        drop()
    return out


def run(
    n: int,
    *,
    changes: int | None = None,
    designer: bool = True,
    load_seconds: float = 0,
    load_deals: int = 10_000,
    api_seconds: float = 5,
    import_rows: int | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """Every figure of issue 5 as one dict (see ``KEYS``), plus the Designer's render time (issue 3)
    and, with ``load_seconds``, the load rates of issue 4."""
    if n < 10:
        raise ValueError(f"--deals must be at least 10, got {n}")
    out: dict[str, Any] = {"deals": n}
    out.update(bench_evaluation(n, log))
    out.update(bench_database(n, changes or min(3000, max(100, n // 10)), log))
    from benchmarks.postgres import bench_postgres  # issue 14 item 6: statements, CPU per change

    pg_changes = min(1000, changes or 1000)
    out.update(bench_postgres(pg_changes, max(20, min(400, pg_changes)), log))
    out.update(bench_concurrent(changes or min(4000, max(200, n // 10)), log=log))
    out["peak_rss_mb"] = peak_rss_mb()
    out.update(bench_import(import_rows or min(100_000, max(1000, n // 10)), log))  # issue 14
    if designer:
        out.update(bench_designer(log))
    if load_seconds > 0:
        out.update(bench_load(load_seconds, load_deals, log))
    if api_seconds > 0:
        from benchmarks.api import bench_api

        try:
            out.update(bench_api(api_seconds, log))
        except Exception as exc:  # noqa: BLE001 - a figure that could not be measured is reported, not fatal
            out["api_error"] = str(exc)
    return out


def table(r: dict[str, Any]) -> str:
    base = r["run_all_deals_per_s"]
    rows = [
        ("run_all (business-rules, per deal)", f"{base:,.0f} deals/s", "1.0×"),
        (
            "compiled (closures, per deal)",
            f"{r['compiled_deals_per_s']:,.0f} deals/s",
            f"{r['compiled_deals_per_s'] / base:.1f}×",
        ),
        (
            f"vectorised (masks, {r['deals']:,} deals)",
            f"{r['vectorised_deals_per_s']:,.0f} deals/s",
            f"{r['vectorised_deals_per_s'] / base:.0f}×",
        ),
        (
            f"tick: {r['tick_open_deals']:,} open, {r['tick_due_deals']:,} due",
            f"{r['tick_due_s'] * 1000:,.1f} ms",
            "",
        ),
        (
            "tick: pages written (WAL frames), checkpoint",
            f"{r['tick_pages_written']:,} pages",
            f"{r['tick_checkpoint_s'] * 1000:,.0f} ms",
        ),
        ("tick: idle (nothing due)", f"{r['tick_idle_s'] * 1000:,.2f} ms", ""),
        ("changes through the API (SQLite)", f"{r['changes_per_s']:,.0f} changes/s", ""),
        (
            "bare SQLite commits (WAL, synchronous=FULL)",
            f"{r['sqlite_bare_commits_per_s']:,.0f} commits/s",
            "",
        ),
        (
            "change latency p50 / p95 / p99",
            f"{r['change_p50_ms']:.2f} / {r['change_p95_ms']:.2f} / {r['change_p99_ms']:.2f} ms",
            "",
        ),
        (
            f"changes, {r['changes_concurrent_threads']} concurrent writers (SQLite, group commit)",
            f"{r['changes_concurrent_per_s']:,.0f} changes/s",
            f"p99 {r['changes_concurrent_p99_ms']:.1f} ms",
        ),
        ("peak RSS", f"{r['peak_rss_mb']:,.0f} MB", ""),
        *import_rows_of(r),
    ]
    if "designer_render_s" in r:
        rows.append(
            (
                f"Designer render, {r['designer_stages']} stages / {r['designer_rules']} rules (AppTest)",
                f"{r['designer_render_s']:.2f} s (rerun {r['designer_rerun_s']:.2f} s)",
                "",
            )
        )
    elif "designer_error" in r:
        rows.append(("Designer render", f"failed: {r['designer_error']}", ""))
    for backend, engines in (("sqlite", 1), ("postgresql", 2)):
        if f"load_{backend}_changes_per_s" in r:
            rows.append(
                (
                    f"load, {backend}, {engines} engine(s), {r['load_seconds']:g} s",
                    f"{r[f'load_{backend}_changes_per_s']:,.0f} changes/s, "
                    f"{r[f'load_{backend}_actions_per_s']:,.0f} actions/s",
                    "ok" if r[f"load_{backend}_ok"] else "LOST OR DOUBLED",
                )
            )
    if "api_events_per_s" in r:
        rows.append(
            (
                f"HTTP API: events, {r.get('api_clients', 1)} keep-alive clients (uvicorn, SQLite,"
                f" load from {r.get('api_generator', 'python')})",
                f"{r['api_events_per_s']:,.0f} events/s",
                f"p99 {r['api_p99_ms']:.1f} ms",
            )
        )
        if "api_hooks_per_s" in r:
            rows.append(
                (
                    f"HTTP API: signed hooks, {r['api_clients']} clients",
                    f"{r['api_hooks_per_s']:,.0f} events/s",
                    f"p99 {r['api_hooks_p99_ms']:.1f} ms",
                )
            )
        if "api_floor_async_per_s" in r:
            rows.append(
                (
                    "HTTP door's ceiling: a trivial endpoint, same app and key (async / thread pool)",
                    f"{r['api_floor_async_per_s']:,.0f} / {r['api_floor_sync_per_s']:,.0f} req/s",
                    f"{r['api_floor_async_server_cpu_ms']:.2f} / "
                    f"{r['api_floor_sync_server_cpu_ms']:.2f} ms CPU",
                )
            )
        if "api_events_server_cpu_ms" in r:
            rows.append(
                (
                    "HTTP API: server CPU per event / per hook call",
                    f"{r['api_events_server_cpu_ms']:.2f} / "
                    f"{r.get('api_hooks_server_cpu_ms', 0):.2f} ms",
                    "",
                )
            )
    elif "api_error" in r:
        rows.append(("HTTP API", f"failed: {r['api_error']}", ""))
    from benchmarks.postgres import table_rows as postgres_rows

    rows += postgres_rows(r)
    if "load_postgresql_skipped" in r:
        rows.append(("load, postgresql", r["load_postgresql_skipped"], ""))
    w0, w1 = max(len(a) for a, _, _ in rows), max(len(b) for _, b, _ in rows)
    lines = [f"{'measure':<{w0}}  {'value':>{w1}}  vs run_all", "-" * (w0 + w1 + 14)]
    lines += [f"{a:<{w0}}  {b:>{w1}}  {c}" for a, b, c in rows]
    return "\n".join(lines)
