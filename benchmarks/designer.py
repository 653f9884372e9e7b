"""How long the Designer takes to render a large funnel (AppTest run), for the benchmark output.

``measure_designer()`` builds a synthetic funnel (30 stages, 300 rules by default) in a scratch SQLite
file and times a cold and a warm AppTest run of the Designer page. It is a measurement, not a test.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def big_funnel(stages: int = 30, rules: int = 300) -> dict[str, Any]:
    return {
        "funnel": "bench_big",
        "name": "Benchmark funnel",
        "stages": [
            {"id": f"s{i}", "name": f"Stage {i}", "kind": "won" if i == stages - 1 else "open"}
            for i in range(stages)
        ],
        "transitions": [{"from": f"s{i}", "to": f"s{i + 1}"} for i in range(stages - 1)],
        "rules": [
            {
                "id": f"r{j}",
                "name": f"Rule {j}",
                "conditions": {
                    "all": [
                        {"name": "stage", "operator": "equal_to", "value": f"s{j % stages}"},
                        {
                            "name": "hours_in_stage",
                            "operator": "greater_than_or_equal_to",
                            "value": j,
                        },
                    ]
                },
                "actions": [
                    {
                        "name": "notify_manager",
                        "params": {"text": "Deal {title} waits", "priority": "normal"},
                    }
                ],
            }
            for j in range(rules)
        ],
    }


def _script(root: str) -> None:
    import sys

    if root not in sys.path:
        sys.path.insert(0, root)
    from builder.views import designer

    designer.render()


def measure_designer(stages: int = 30, rules: int = 300) -> dict[str, Any]:
    """Seconds for the first (cold: imports, draft, positions) and a second (warm) Designer run."""
    from streamlit.testing.v1 import AppTest

    from engine.core.conveyor import Conveyor

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        c = Conveyor(url)
        c.save_ruleset(big_funnel(stages, rules), comment="benchmark")
        c.close()
        old = os.environ.get("CONVEYOR_DB")
        os.environ["CONVEYOR_DB"] = url
        try:
            at = AppTest.from_function(_script, args=(str(ROOT),), default_timeout=120)
            t0 = time.perf_counter()
            at.run()
            cold = time.perf_counter() - t0
            t0 = time.perf_counter()
            at.run()
            warm = time.perf_counter() - t0
            # Pages turn their errors into red boxes (state.page_boundary): count those as failures too.
            failed = [str(e.value) for e in at.exception] + [str(e.value) for e in at.error]
        finally:
            if old is None:
                os.environ.pop("CONVEYOR_DB", None)
            else:
                os.environ["CONVEYOR_DB"] = old
    return {
        "stages": stages,
        "rules": rules,
        "designer_first_run_s": round(cold, 3),
        "designer_rerun_s": round(warm, 3),
        "errors": failed,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(measure_designer()))
