"""Times are shown in the display zone (``CONVEYOR_TZ``, Europe/Kyiv by default): an unknown zone falls back
to Kyiv with one warning; ``status``, ``actions`` and ``versions`` say which zone their times are in."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import main as cli
from engine.clock import display_zone
from engine.core.conveyor import Conveyor
from engine.service.runner import EngineService
from storage import repositories as repo
from tests.support.sessions import db_session

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_RULES = ROOT / "sample_rules"


def _cli_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CONVEYOR_DB", "CONVEYOR_DEBUG", "CONVEYOR_TZ")
    }
    env["PYTHONWARNINGS"] = "error"
    return env


def test_an_unknown_display_zone_falls_back_to_kyiv_with_a_warning(monkeypatch, caplog) -> None:
    monkeypatch.setenv("CONVEYOR_TZ", "Mars/Olympus_Mons")
    with caplog.at_level(logging.WARNING, logger="engine.clock"):
        assert display_zone().key == "Europe/Kyiv"
        assert display_zone().key == "Europe/Kyiv"
    warnings = [r.getMessage() for r in caplog.records if "Mars/Olympus_Mons" in r.getMessage()]
    assert len(warnings) == 1  # once per name, not once per shown time
    with pytest.raises(ValueError, match="'Mars/Olympus_Mons' is not a known time zone"):
        display_zone(strict=True)


def test_the_first_unknown_zone_warning_names_the_fallback(monkeypatch, caplog) -> None:
    monkeypatch.setenv("CONVEYOR_TZ", "Nowhere/At_All")
    with caplog.at_level(logging.WARNING, logger="engine.clock"):
        display_zone()
    assert any(
        "Nowhere/At_All" in r.getMessage() and "Europe/Kyiv" in r.getMessage()
        for r in caplog.records
    )


def test_a_known_display_zone_is_used(monkeypatch) -> None:
    monkeypatch.setenv("CONVEYOR_TZ", "UTC")
    assert display_zone(strict=True).key == "UTC"
    monkeypatch.delenv("CONVEYOR_TZ")
    assert display_zone().key == "Europe/Kyiv"


def test_versions_listing_shows_the_fallback_zone_and_the_warning(tmp_path: Path) -> None:
    env = {**_cli_env(), "CONVEYOR_TZ": "Bad/Zone", "CONVEYOR_DB": f"sqlite:///{tmp_path / 'c.db'}"}
    run = [sys.executable, "-m", "engine.cli"]
    subprocess.run(
        [*run, "init", "--load", ROOT / "sample_rules"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = subprocess.run(
        [*run, "versions", "techflow"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "times in Europe/Kyiv" in result.stdout
    assert (
        "'Bad/Zone' is not a known time zone" in result.stderr and "Traceback" not in result.stderr
    )


def test_actions_and_status_show_times_in_the_display_zone_and_the_last_ticks_failed_deals(
    db_url, clock
):
    c = Conveyor(db_url, clock=clock)
    try:
        c.load_rules_dir(SAMPLE_RULES)
        c.create_deal("techflow", title="Acme", fields={"phone": "+380501234567"})
        service = EngineService(c, tick_seconds=60)
        clock.advance(timedelta(hours=30))
        service.tick_job()
        with db_session(c) as s:
            [beat] = repo.list_heartbeats(s)
            assert beat.last_tick_summary["deals_failed"] == 0
    finally:
        c.close()
    env = {"CONVEYOR_TZ": "Europe/Kyiv"}
    status = CliRunner().invoke(cli, ["--db", db_url, "status"], env=env)
    assert status.exit_code == 0, status.output
    assert "(times in Europe/Kyiv)" in status.output
    # The virtual clock ticked at 2026-03-03 15:00 UTC: 17:00 in Kyiv (EET, UTC+2).
    assert (
        "last tick:      2026-03-03 17:00:00" in status.output
        and "0 deal(s) failed" in status.output
    )
    assert " UTC" not in status.output

    listed = CliRunner().invoke(
        cli, ["--db", db_url, "actions", "--status", "pending", "--status", "done"], env=env
    )
    assert listed.exit_code == 0, listed.output
    assert "times in Europe/Kyiv" in listed.output.splitlines()[0]
    assert "Z\n" not in listed.output and "2026-03-0" in listed.output
