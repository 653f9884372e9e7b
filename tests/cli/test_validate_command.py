"""``conveyor validate`` and ``simulate`` on rule files: funnels already in the database count as known,
validating never creates a database, every file is checked whatever one of them holds, and a missing
funnel or a broken pattern is explained in plain words with the fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_RULES = ROOT / "sample_rules"
TECHFLOW: dict[str, Any] = json.loads((SAMPLE_RULES / "techflow.json").read_text(encoding="utf-8"))
SCRIPT = Path(sys.executable).parent / "conveyor"
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "engine.cli"]


def run(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CONVEYOR_DB", "CONVEYOR_DEBUG", "CONVEYOR_TZ")
    }
    result = subprocess.run(
        [*COMMAND, *map(str, args)],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def test_an_exported_funnel_validates_against_the_database_it_came_from(tmp_path):
    db = tmp_path / "data" / "conveyor.db"
    db.parent.mkdir()
    url = f"sqlite:///{db}"
    assert run("--db", url, "init", "--load", SAMPLE_RULES, cwd=tmp_path).returncode == 0
    work = tmp_path / "work"
    work.mkdir()
    (work / "x.json").write_text(
        run("--db", url, "export", "techflow", cwd=tmp_path).stdout, encoding="utf-8"
    )

    alone = run("validate", "x.json", cwd=work)  # default database: none in this folder
    assert alone.returncode == 1
    assert (
        "unknown funnel 'project_work' (choose one of: techflow) — validate it together with that"
        " funnel's file, or import that funnel first"
    ) in alone.stderr
    assert not (work / "conveyor.db").exists()  # validating never creates a database

    with_db = run("validate", "x.json", cwd=work, env={"CONVEYOR_DB": url})
    assert with_db.returncode == 0, with_db.stderr
    assert "x.json: ok (TechFlow B2B sales" in with_db.stdout
    assert run("--db", url, "validate", "x.json", cwd=work).returncode == 0


def test_validate_with_a_missing_sqlite_database_does_not_create_it(tmp_path):
    (tmp_path / "t.json").write_text(json.dumps(TECHFLOW), encoding="utf-8")
    result = run("--db", f"sqlite:///{tmp_path / 'nothere.db'}", "validate", "t.json", cwd=tmp_path)
    assert result.returncode == 1 and "import that funnel first" in result.stderr
    assert not (tmp_path / "nothere.db").exists()


def test_simulate_without_the_other_funnels_file_says_how_to_fix_it(tmp_path):
    (tmp_path / "t.json").write_text(json.dumps(TECHFLOW), encoding="utf-8")
    (tmp_path / "s.jsonl").write_text(
        '{"at": "2026-03-02T09:00:00Z", "event": "end"}\n', encoding="utf-8"
    )
    result = run("simulate", "--rules", "t.json", "s.jsonl", cwd=tmp_path)
    assert result.returncode == 1
    assert "unknown funnel 'project_work'" in result.stderr
    assert "pass that funnel's file too, with another --rules" in result.stderr


def test_an_invalid_regex_is_reported_in_plain_words_without_re2_log_lines(tmp_path):
    doc = json.loads(json.dumps(TECHFLOW))
    doc["rules"][0]["conditions"] = {
        "all": [{"name": "source", "operator": "matches_regex", "value": "(web[site"}]
    }
    (tmp_path / "r.json").write_text(json.dumps(doc), encoding="utf-8")
    result = run("validate", "r.json", SAMPLE_RULES / "project_work.json", cwd=tmp_path)
    assert result.returncode == 1
    assert (
        "pattern '(web[site' is not a valid regular expression: missing ]: [site" in result.stderr
    )
    assert (
        "b'" not in result.stderr
        and "re2.cc" not in result.stderr
        and "Error parsing" not in result.stderr
    )


def test_validate_reports_every_file_even_after_a_syntax_error(tmp_path: Path) -> None:
    broken = tmp_path / "a_broken.json"
    broken.write_text('{"funnel": "x",\n  "name": }', encoding="utf-8")
    bad = tmp_path / "b_bad.json"
    doc = json.loads(json.dumps(TECHFLOW))
    doc["rules"][0]["enabled"] = "yes"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    good = tmp_path / "c_good.json"
    good.write_text(json.dumps(TECHFLOW), encoding="utf-8")
    # The sample's start_process names project_work: a funnel beside the files is a known funnel.
    (tmp_path / "project_work.json").write_bytes((SAMPLE_RULES / "project_work.json").read_bytes())
    result = run("validate", broken, tmp_path / "missing.json", bad, good, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert f"error: {broken} is not valid JSON: Expecting value at line 2, column 11" in lines
    assert f"error: no such file: {tmp_path / 'missing.json'}" in lines
    assert f"{bad}: 1 problem(s)" in result.stderr and "rules[0].enabled" in result.stderr
    assert f"{good}: ok (TechFlow B2B sales" in result.stdout
