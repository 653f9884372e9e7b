"""Ticks of ``conveyor bench``'s 1,000-due database, repeated on one kept copy: time and pages written.

``python -m benchmarks.tick_runs --deals 1000000 --keep /tmp/ticks.db --runs 3`` builds the database
once (``benchmarks.bench.populate``; later runs reuse it, each ticking a fresh copy) and prints one
JSON line a run: the tick as the service runs it (``tick_due_s``, CPU seconds) and the pages it
writes (``benchmarks.ticks``). Meant for A/B runs of two commits on the same data.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from benchmarks.bench import NOW, populate
from benchmarks.ticks import pages_on_copy


def build(path: str, n: int) -> None:
    """The bench's database of ``n`` open deals (``benchmarks.bench.populate``), checkpointed."""
    from engine.clock import VirtualClock
    from engine.core.conveyor import Conveyor
    from engine.paths import SAMPLE_RULES

    due = max(1, min(1000, n // 1000)) if n >= 1000 else max(1, n // 10)
    c = Conveyor(f"sqlite:///{path}", clock=VirtualClock(NOW - timedelta(days=30)))
    try:
        c.load_rules_dir(SAMPLE_RULES)
        manager = c.add_manager("Bench manager", "+380500000001")
        version = next(v.id for v in c.versions("techflow") if v.active)
    finally:
        c.close()
    populate(path, n, due, manager, version)


def main(argv: list[str] | None = None) -> int:
    from engine.clock import VirtualClock
    from engine.core.conveyor import Conveyor

    p = argparse.ArgumentParser(prog="python -m benchmarks.tick_runs", description=__doc__)
    p.add_argument("--deals", type=int, default=1_000_000)
    p.add_argument("--keep", help="the built database: reused when it exists, else built there")
    p.add_argument("--runs", type=int, default=1, help="ticks, each on a fresh copy")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="conveyor-ticks-") as tmp:
        template = Path(args.keep or Path(tmp) / "template.db")
        if not template.exists():
            print(f"building {args.deals:,} deals into {template}", file=sys.stderr)
            build(str(template), args.deals)
        for _ in range(args.runs):
            out: dict[str, Any] = {}
            work = Path(tmp) / "tick.db"
            shutil.copyfile(template, work)
            os.sync()
            c = Conveyor(f"sqlite:///{work}", clock=VirtualClock(NOW))
            try:  # as the bench and the service run it: automatic checkpoints on
                t, cpu = time.perf_counter(), time.process_time()
                report = c.tick()
                out["tick_due_s"] = time.perf_counter() - t
                out["tick_due_cpu_s"] = time.process_time() - cpu
            finally:
                c.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{work}{suffix}").unlink(missing_ok=True)
            out.update(pages_on_copy(template, NOW), examined=report.deals_examined)
            print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
