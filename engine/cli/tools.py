"""Commands that build a database of their own: ``simulate`` (a scenario) and ``bench`` (the benchmark)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from engine.cli.app import main
from engine.cli.errors import friendly
from engine.errors import RuleSetInvalid
from engine.paths import SAMPLE_RULES


@main.command()
@click.argument("scenario", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--rules",
    "rules",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Rule-set documents (default: every sample_rules/*.json).",
)
@click.option("--tick-minutes", type=float, default=15, show_default=True)
@friendly
def simulate(scenario: Path, rules: tuple[Path, ...], tick_minutes: float) -> None:
    """Run a JSON-lines scenario on a fresh in-memory database; print each executed action as JSON."""
    from engine.errors import Problem
    from engine.simulate.simulator import run_scenario

    paths = list(rules) or sorted(SAMPLE_RULES.glob("*.json"))
    try:
        with scenario.open(encoding="utf-8") as fh:
            run_scenario(
                fh,
                paths,
                tick_minutes,
                emit=lambda line: click.echo(json.dumps(line, ensure_ascii=False)),
            )
    except RuleSetInvalid as exc:
        # A simulation knows only the files given to it: the fix is another --rules, not an import.
        hint = "validate it together with that funnel's file, or import that funnel first"
        raise RuleSetInvalid(
            [
                Problem(
                    p.path,
                    p.message.replace(hint, "pass that funnel's file too, with another --rules"),
                )
                for p in exc.problems
            ]
        ) from None


@main.command()
@click.option(
    "--deals",
    type=click.IntRange(min=10),
    default=1_000_000,
    show_default=True,
    help="Open deals in the data set (the tick runs over all of them, ~1 in 1000 due).",
)
@click.option(
    "--changes",
    type=click.IntRange(min=10),
    default=None,
    help="Changes through the API for the throughput figure (default: min(3000, deals/10)).",
)
@click.option(
    "--designer/--no-designer",
    default=True,
    show_default=True,
    help="Also time the Designer page with a 30-stage, 300-rule funnel.",
)
@click.option(
    "--load-seconds",
    type=click.FloatRange(min=0),
    default=60,
    show_default=True,
    help="Run the service load test this long on SQLite (1 engine) and PostgreSQL (2 engines); 0 skips it.",
)
@click.option(
    "--api-seconds",
    type=click.FloatRange(min=0),
    default=5,
    show_default=True,
    help="Record events through the HTTP API (uvicorn on 127.0.0.1) for this long with 32 keep-alive"
    " clients, again through a signed hook, and once more with one client; 0 skips it.",
)
@click.option(
    "--import-rows",
    type=click.IntRange(min=10),
    default=None,
    help="CSV rows for the import-deals figure (default: min(100000, deals/10)).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
@friendly
def bench(
    deals: int,
    changes: int | None,
    designer: bool,
    load_seconds: float,
    api_seconds: float,
    import_rows: int | None,
    as_json: bool,
) -> None:
    """Benchmark: business-rules run_all vs compiled vs vectorised, ticks, changes, peak RSS.

    Builds its own seeded data set in a temporary SQLite file (--db is not used).
    """
    from benchmarks import bench as bench_module

    def log(message: str) -> None:
        click.echo(f"[{time.strftime('%H:%M:%S')}] {message}", err=True)

    figures = bench_module.run(
        deals,
        changes=changes,
        designer=designer,
        load_seconds=load_seconds,
        api_seconds=api_seconds,
        import_rows=import_rows,
        log=log,
    )
    click.echo(json.dumps(figures, indent=2) if as_json else bench_module.table(figures))
