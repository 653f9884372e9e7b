"""Bulk import throughput: a generated lead list (CSV) into the TechFlow funnel on a SQLite file.

``conveyor import-deals``' own path (``Conveyor.imports.import_csv``) end to end: the CSV read,
every row checked, rules evaluated in bulk, deals, history, firings and outbox rows written in
chunks of 5,000 (synchronous=FULL, as the engine opens SQLite). Beside it, the same kind of deals
created one by one through ``Conveyor.create_deal``, for the ratio. Reported by ``conveyor bench``
(``import_deals_per_s``), never asserted. Run alone: ``python -m benchmarks.imports [ROWS]``.
"""

from __future__ import annotations

import csv
import io
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SEED = 20261201
STAGES = ["incoming"] * 6 + ["qualification"] * 3 + ["proposal"]
YES_NO = ["yes", "no", ""]


def lead_list(rows: int, seed: int = SEED) -> bytes:
    """A fair's lead list as a spreadsheet exports it: UTF-8 with a BOM, ``;`` cells, Ukrainian headers."""
    rnd = random.Random(seed)
    out = io.StringIO()
    w = csv.writer(out, delimiter=";")
    w.writerow(
        [
            "Код",
            "Назва",
            "Телефон",
            "Email",
            "Сума",
            "Етап",
            "budget",
            "authority",
            "need",
            "source",
        ]
    )
    for i in range(rows):
        w.writerow(
            [
                f"FAIR-{i}",
                f"ТОВ Лід {i}",
                f"+38050{i % 10_000_000:07d}",
                f"lead{i}@example.com" if i % 3 else "",
                f"{rnd.randint(100, 99_999)},{rnd.randint(0, 99):02d}",
                rnd.choice(STAGES),
                rnd.choice(YES_NO),
                rnd.choice(YES_NO),
                rnd.choice(YES_NO),
                "fair",
            ]
        )
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


MAPPING = "Код=key,Назва=title,Телефон=phone,Email=email,Сума=amount,Етап=stage"


def bench_import(
    rows: int = 100_000, log: Callable[[str], None] = lambda _m: None
) -> dict[str, Any]:
    from engine.core.conveyor import Conveyor
    from engine.paths import SAMPLE_RULES

    data = lead_list(rows)
    with tempfile.TemporaryDirectory(prefix="conveyor-import-bench-") as tmp:
        c = Conveyor(f"sqlite:///{Path(tmp) / 'import.db'}")
        try:
            c.load_rules_dir(SAMPLE_RULES)
            log(f"import: {rows:,} CSV rows into techflow (SQLite file, synchronous=FULL)")
            t = time.perf_counter()
            report = c.imports.import_csv(data, "techflow", mapping=MAPPING, source="bench.csv")
            elapsed = time.perf_counter() - t
            if report.imported != rows or report.problems:
                raise RuntimeError(
                    f"bench import wrote {report.imported} of {rows} rows; problems:"
                    f" {report.problems[:3]}"
                )
            single = min(200, rows)
            log(f"import: {single:,} deals created one by one, for the ratio")
            t = time.perf_counter()
            for i in range(single):
                c.create_deal(
                    "techflow",
                    key=f"ONE-{i}",
                    title=f"Lead {i}",
                    stage=STAGES[i % len(STAGES)],
                    fields={"phone": "+380500000000", "source": "fair"},
                )
            one_by_one = single / (time.perf_counter() - t)
        finally:
            c.close()
    return {
        "import_rows": rows,
        "import_deals_per_s": rows / elapsed,
        "import_s": elapsed,
        "import_fired": report.fired,
        "import_one_by_one_per_s": one_by_one,
    }


def import_rows_of(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The import's line of ``conveyor bench``'s table."""
    if "import_deals_per_s" not in r:
        return []
    return [
        (
            f"import-deals: {r['import_rows']:,} CSV rows (SQLite, synchronous=FULL)",
            f"{r['import_deals_per_s']:,.0f} deals/s",
            f"one by one {r['import_one_by_one_per_s']:,.0f}/s",
        )
    ]


if __name__ == "__main__":
    import json

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    print(json.dumps(bench_import(count, log=lambda m: print(m, file=sys.stderr)), indent=2))
