"""The ``conveyor`` console script run as a real subprocess on temporary SQLite files.

Each run checks exit code and output, and that no Python traceback ever reaches the user.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from engine.core.conveyor import Conveyor
from engine.document.validate import validate_document

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_RULES = ROOT / "sample_rules"
TECHFLOW: dict[str, Any] = json.loads((SAMPLE_RULES / "techflow.json").read_text(encoding="utf-8"))
SCRIPT = Path(sys.executable).parent / "conveyor"
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "engine.cli"]
REQUIRED_COMMANDS = {
    "init",
    "demo",
    "engine",
    "builder",
    "validate",
    "import",
    "export",
    "simulate",
    "versions",
    "activate",
}


def _env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CONVEYOR_DB", "CONVEYOR_DEBUG", "CONVEYOR_PROVIDER")
    }
    env["PYTHONWARNINGS"] = "error"  # a warning printed at a user is a bug too
    return env


def _check_no_traceback(
    result: subprocess.CompletedProcess[str],
) -> subprocess.CompletedProcess[str]:
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def conveyor(*args: str | Path, cwd: Path, code: int = 0) -> subprocess.CompletedProcess[str]:
    """Run ``conveyor ARGS``; assert the exit code and that no traceback was printed."""
    result = subprocess.run(
        [*COMMAND, *map(str, args)],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == code, (
        f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    )
    return _check_no_traceback(result)


def conveyor_together(
    *runs: tuple[list[str | Path], int], cwd: Path
) -> list[subprocess.CompletedProcess[str]]:
    """Run independent ``conveyor`` calls at the same time (saves start-up time); check each like ``conveyor``."""
    procs = [
        (
            subprocess.Popen(
                [*COMMAND, *map(str, args)],
                cwd=cwd,
                env=_env(),
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            ),
            args,
            code,
        )
        for args, code in runs
    ]
    results = []
    for proc, args, code in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == code, (
            f"{args}: exit {proc.returncode}\nstdout: {out}\nstderr: {err}"
        )
        results.append(
            _check_no_traceback(subprocess.CompletedProcess(args, proc.returncode, out, err))
        )
    return results


def write_json(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def techflow() -> dict[str, Any]:
    return copy.deepcopy(TECHFLOW)


def test_help_works_on_every_command(tmp_path: Path) -> None:
    top = conveyor("--help", cwd=tmp_path)
    listed = {
        line.split()[0] for line in top.stdout.split("Commands:")[1].splitlines() if line.strip()
    }
    assert REQUIRED_COMMANDS <= listed
    # Every command's --help in one interpreter (one start-up instead of a dozen), exactly as click runs it.
    probe = (
        "import contextlib, io, json, sys\n"
        "from engine.cli import main\n"
        "out = {}\n"
        "for cmd in sys.argv[1:]:\n"
        "    buf = io.StringIO()\n"
        "    with contextlib.redirect_stdout(buf):\n"
        "        code = main([cmd, '--help'], prog_name='conveyor', standalone_mode=False)\n"
        "    out[cmd] = [code, buf.getvalue()]\n"
        "print(json.dumps(out))\n"
    )
    result = _check_no_traceback(
        subprocess.run(
            [sys.executable, "-c", probe, *sorted(listed)],
            cwd=ROOT,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
    )
    assert result.returncode == 0, result.stderr
    helps = json.loads(result.stdout)
    assert set(helps) == listed
    for cmd, (code, text) in helps.items():
        assert code in (0, None), cmd
        assert text.startswith(f"Usage: conveyor {cmd}"), text
        assert "--help" in text


def test_validate_reports_ok_files_and_problems_with_json_paths(tmp_path: Path) -> None:
    shutil.copy(SAMPLE_RULES / "project_work.json", tmp_path / "project_work.json")
    good = write_json(tmp_path / "techflow.json", techflow())
    doc = techflow()
    doc["funnel"] = "techflow_bad"
    doc["rules"][1]["conditions"]["all"][1]["operator"] = "greater_then"
    doc["rules"][0]["actions"][0]["name"] = "__init__"
    bad = write_json(tmp_path / "bad.json", doc)

    result = conveyor("validate", good, bad, cwd=tmp_path, code=1)
    assert f"{good}: ok (TechFlow B2B sales: 6 stages, 11 rules)" in result.stdout
    assert f"{bad}: 2 problem(s)" in result.stderr
    assert (
        "rules[1].conditions.all[1].operator: 'greater_then' is not an operator for numeric variables; "
        "did you mean 'greater_than'?"
    ) in result.stderr
    assert "rules[0].actions[0].name: '__init__' is not an action" in result.stderr
    assert "ok" not in result.stderr.split(str(bad))[1].split("\n")[0]

    assert "ok" in conveyor("validate", good, cwd=tmp_path).stdout


def test_validate_reports_json_syntax_with_line_and_column(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "funnel": "x",\n  "name": \n}\n', encoding="utf-8")
    result = conveyor("validate", broken, cwd=tmp_path, code=1)
    assert result.stderr.startswith("error: ")
    assert "not valid JSON" in result.stderr and "line 4, column 1" in result.stderr


def _versions(db: str) -> list[int]:
    # Read straight from the database file (in-process): cheaper than another subprocess.
    c = Conveyor(db)
    try:
        return sorted(v.version for v in c.versions("techflow"))
    finally:
        c.close()


def test_import_export_activate_round_trip(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    init = conveyor("--db", db, "init", "--load", SAMPLE_RULES, cwd=tmp_path)
    assert (
        "saved techflow version 1" in init.stdout and "saved project_work version 1" in init.stdout
    )
    original = validate_document(techflow(), known_funnels={"project_work"}).to_document()

    # Calls that do not depend on each other run together (each process start costs most of the time).
    bad_doc = techflow()
    bad_doc["rules"][2]["actions"][0]["params"]["to_stage"] = "cold"
    bad, v1, missing_version, unknown = conveyor_together(
        (["--db", db, "import", write_json(tmp_path / "bad.json", bad_doc)], 1),
        (["--db", db, "export", "techflow"], 0),
        (["--db", db, "activate", "techflow", "9"], 1),
        (["--db", db, "export", "techflwo"], 1),
        cwd=tmp_path,
    )
    # An invalid file: exit 1, the problem with its path, and nothing saved.
    assert "rules[2].actions[0].params.to_stage: unknown stage 'cold'" in bad.stderr
    assert "saved" not in bad.stdout
    assert _versions(db) == [1]
    assert json.loads(v1.stdout) == original
    assert missing_version.stderr.strip() == "error: funnel 'techflow' has no version 9"
    assert unknown.stderr.strip() == "error: no funnel 'techflwo'; did you mean 'techflow'?"
    assert unknown.stdout == ""

    # A valid change becomes version 2 and is exported exactly as saved.
    changed = techflow()
    changed["description"] = "Second version: reminders after 12 hours."
    changed["rules"][1]["conditions"]["all"][1]["value"] = 12
    imported = conveyor(
        "--db", db, "import", write_json(tmp_path / "v2.json", changed), cwd=tmp_path
    )
    assert "saved techflow version 2 (active)" in imported.stdout
    exported = tmp_path / "export.json"
    _, br = conveyor_together(
        (["--db", db, "export", "techflow", "--format", "conveyor", "-o", exported], 0),
        (["--db", db, "export", "techflow", "--format", "business-rules"], 0),
        cwd=tmp_path,
    )
    saved = validate_document(changed, known_funnels={"project_work"}).to_document()
    assert json.loads(exported.read_text(encoding="utf-8")) == saved
    rules = json.loads(br.stdout)
    assert isinstance(rules, list) and len(rules) == len(changed["rules"])
    assert all(set(r) == {"conditions", "actions"} for r in rules)
    assert rules[1]["conditions"]["all"][1]["value"] == 12

    # save → export → import gives the same document; then roll back to version 1.
    assert (
        "saved techflow version 3 (active)"
        in conveyor("--db", db, "import", exported, cwd=tmp_path).stdout
    )
    again, rollback = conveyor_together(
        (["--db", db, "export", "techflow", "--version", "3"], 0),
        (["--db", db, "activate", "techflow", "1"], 0),
        cwd=tmp_path,
    )
    assert again.stdout == exported.read_text(encoding="utf-8")
    assert "techflow version 1 is active" in rollback.stdout
    c = Conveyor(db)
    try:
        assert sorted((v.version, v.active) for v in c.versions("techflow")) == [
            (1, True),
            (2, False),
            (3, False),
        ]
        assert c.ruleset("techflow").to_document() == original
    finally:
        c.close()


def test_simulate_prints_one_json_line_per_action(tmp_path: Path) -> None:
    scenario = tmp_path / "s.jsonl"
    scenario.write_text(
        "\n".join(
            json.dumps(e)
            for e in [
                {"at": "2026-03-02T09:00:00Z", "event": "manager", "name": "Olena"},
                {
                    "at": "2026-03-02T09:00:00Z",
                    "deal": "d1",
                    "event": "create",
                    "fields": {"title": "Acme"},
                },
                {
                    "at": "2026-03-02T10:00:00Z",
                    "deal": "d1",
                    "event": "move",
                    "stage": "qualification",
                },
                {"at": "2026-03-02T10:30:00Z", "deal": "d1", "event": "move", "stage": "paid"},
                {
                    "at": "2026-03-02T11:00:00Z",
                    "deal": "d1",
                    "event": "update",
                    "fields": {"budget": "no"},
                },
                {"at": "2026-03-02T12:00:00Z", "event": "end"},
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    result = conveyor("simulate", scenario, "--tick-minutes", "30", cwd=tmp_path)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines, result.stderr
    actions = [(x.get("deal"), x.get("rule"), x.get("action")) for x in lines if "action" in x]
    assert actions[:2] == [
        ("d1", "assign_new_lead", "assign_manager"),
        ("d1", "assign_new_lead", "create_task"),
    ]
    assert ("d1", "qualification_no", "move_to_stage") in actions
    move = next(x for x in lines if x.get("rule") == "qualification_no")
    assert move["params"]["to_stage"] == "cold_call" and move["at"] == "2026-03-02T11:00:00Z"
    task = next(x for x in lines if x.get("action") == "create_task")
    assert (
        task["params"]["due_at"] == "2026-03-02T11:00:00Z"
        and task["params"]["priority"] == "normal"
    )
    # The move straight to "paid" is not an allowed transition: reported as a line, and the run goes on.
    errors = [x for x in lines if "error" in x]
    assert errors and errors[0]["deal"] == "d1" and errors[0]["at"] == "2026-03-02T10:30:00Z"


def test_simulate_with_an_invalid_rule_file_fails_cleanly(tmp_path: Path) -> None:
    doc = techflow()
    doc["rules"][0]["conditions"] = {"all": []}
    scenario = tmp_path / "s.jsonl"
    scenario.write_text('{"at": "2026-03-02T09:00:00Z", "event": "end"}\n', encoding="utf-8")
    result = conveyor(
        "simulate", scenario, "--rules", write_json(tmp_path / "t.json", doc), cwd=tmp_path, code=1
    )
    assert "rules[0].conditions.all: 'all' is empty" in result.stderr
    assert result.stdout == ""


def test_usage_errors_are_click_messages(tmp_path: Path) -> None:
    result = conveyor("activate", "techflow", "one", cwd=tmp_path, code=2)
    assert (
        "Usage: conveyor activate" in result.stderr
        and "'one' is not a valid integer" in result.stderr
    )


def test_init_starts_a_funnel_from_a_template(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'templates.db'}"
    out = conveyor(
        "--db",
        db,
        "init",
        "--template",
        "ecommerce",
        "--funnel",
        "shop",
        "--name",
        "Мій магазин",
        cwd=tmp_path,
    )
    assert "saved shop version 1 (from the template ecommerce)" in out.stdout
    exported = json.loads(conveyor("--db", db, "export", "shop", cwd=tmp_path).stdout)
    assert exported["name"] == "Мій магазин" and exported["stages"][0]["id"] == "order_placed"
    taken = conveyor(
        "--db", db, "init", "--template", "empty", "--funnel", "shop", cwd=tmp_path, code=1
    )
    assert "funnel 'shop' exists already" in taken.stderr
    unknown = conveyor("--db", db, "init", "--template", "crm", cwd=tmp_path, code=2)
    assert "'crm' is not one of 'techflow', 'ecommerce', 'empty'" in unknown.stderr
