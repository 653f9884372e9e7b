"""Findings of a new user's first try of the product, each pinned by a test.

Validation across the database, every kind of problem reported at once, plain regex and guard
messages, display-zone times in ``actions``/``status``, a busy builder port, failed deals in status.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from engine.cli import main as cli
from engine.core.conveyor import Conveyor
from engine.document.validate import validate_document
from engine.errors import GuardFailed, RuleSetInvalid
from engine.service.runner import EngineService
from engine.service.status import Health, render
from storage import repositories as repo

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_RULES = ROOT / "sample_rules"
TECHFLOW: dict[str, Any] = json.loads((SAMPLE_RULES / "techflow.json").read_text(encoding="utf-8"))
SCRIPT = Path(sys.executable).parent / "conveyor"
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "engine.cli"]


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("CONVEYOR_DB", "CONVEYOR_DEBUG", "CONVEYOR_TZ")}
    result = subprocess.run([*COMMAND, *map(str, args)], cwd=cwd, env={**base, **(env or {})},
                            capture_output=True, text=True, timeout=120)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def problems_of(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(RuleSetInvalid) as info:
        validate_document(doc, known_funnels={"project_work"})
    return [str(p) for p in info.value.problems]


# -- 1. validate knows the funnels already in the database -------------------------------------
def test_an_exported_funnel_validates_against_the_database_it_came_from(tmp_path):
    db = tmp_path / "data" / "conveyor.db"
    db.parent.mkdir()
    url = f"sqlite:///{db}"
    assert run("--db", url, "init", "--load", SAMPLE_RULES, cwd=tmp_path).returncode == 0
    work = tmp_path / "work"
    work.mkdir()
    (work / "x.json").write_text(run("--db", url, "export", "techflow", cwd=tmp_path).stdout, encoding="utf-8")

    alone = run("validate", "x.json", cwd=work)  # default database: none in this folder
    assert alone.returncode == 1
    assert ("unknown funnel 'project_work' (choose one of: techflow) — validate it together with that"
            " funnel's file, or import that funnel first") in alone.stderr
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
    (tmp_path / "s.jsonl").write_text('{"at": "2026-03-02T09:00:00Z", "event": "end"}\n', encoding="utf-8")
    result = run("simulate", "--rules", "t.json", "s.jsonl", cwd=tmp_path)
    assert result.returncode == 1
    assert "unknown funnel 'project_work'" in result.stderr
    assert "pass that funnel's file too, with another --rules" in result.stderr


# -- 2. every kind of problem at once ------------------------------------------------------------
def test_shape_and_semantic_problems_are_reported_together_shape_first():
    doc = json.loads(json.dumps(TECHFLOW))
    del doc["stages"][0]["name"]
    doc["rules"][0]["conditions"] = {"all": [{"name": "amount", "operator": "bigger_than", "value": 1}]}
    doc["rules"][1]["actions"][0]["name"] = "send_fax"
    found = problems_of(doc)
    assert found[0] == "stages[0].name: required key 'name' is missing"
    assert any(p.startswith("rules[0].conditions.all[0].operator: 'bigger_than' is not an operator") for p in found)
    assert "rules[1].actions[0].name: 'send_fax' is not an action" in "\n".join(found)
    assert len(found) == 3, found


@pytest.mark.parametrize("mutate", [
    lambda d: d.update(stages="nope"),
    lambda d: d.update(rules=[1, None, "x"]),
    lambda d: d.update(fields=[{"name": 3}]),
    lambda d: d["rules"][0].update(actions=[{"name": 5, "params": []}]),
    lambda d: d.update(transitions=[{"from": 1}]),
    lambda d: d.pop("funnel"),
])
def test_odd_documents_still_report_problems_not_exceptions(mutate):
    doc = json.loads(json.dumps(TECHFLOW))
    mutate(doc)
    assert problems_of(doc)  # RuleSetInvalid with at least one problem, nothing else escapes


def test_malformed_items_do_not_shift_the_paths_of_problems_after_them():
    doc = json.loads(json.dumps(TECHFLOW))
    doc["rules"][0] = "not a rule"
    doc["rules"][3]["actions"][0]["name"] = "send_fax"
    found = problems_of(doc)
    assert found[0].startswith("rules[0]: ")
    assert found[1:] == ["rules[3].actions[0].name: 'send_fax' is not an action; did you mean 'send_sms'?"]


def test_a_bad_stage_still_lets_rules_that_name_it_be_checked_without_false_alarms():
    doc = json.loads(json.dumps(TECHFLOW))
    doc["stages"][1]["kind"] = "weird"  # the stage is malformed, but its id exists
    found = problems_of(doc)
    assert found == [f"stages[1].kind: {found[0].split(': ', 1)[1]}"]
    assert not any("unknown stage" in p for p in found)


# -- 3. plain regex messages, no RE2 log noise ---------------------------------------------------
def test_an_invalid_regex_is_reported_in_plain_words_without_re2_log_lines(tmp_path):
    doc = json.loads(json.dumps(TECHFLOW))
    doc["rules"][0]["conditions"] = {"all": [{"name": "source", "operator": "matches_regex", "value": "(web[site"}]}
    (tmp_path / "r.json").write_text(json.dumps(doc), encoding="utf-8")
    result = run("validate", "r.json", SAMPLE_RULES / "project_work.json", cwd=tmp_path)
    assert result.returncode == 1
    assert "pattern '(web[site' is not a valid regular expression: missing ]: [site" in result.stderr
    assert "b'" not in result.stderr and "re2.cc" not in result.stderr and "Error parsing" not in result.stderr


# -- 4. guard refusals in the owner's words ------------------------------------------------------
def test_guard_refusal_names_the_stage_and_the_field_labels_and_keeps_ids_for_programs(conveyor):
    deal = conveyor.create_deal("techflow", title="Acme", fields={"phone": "+380501234567", "amount": 10})
    for stage in ("qualification", "proposal"):
        conveyor.move_deal(deal, stage)
    with pytest.raises(GuardFailed) as info:
        conveyor.move_deal(deal, "contract")
    assert str(info.value) == ("Cannot move into stage 'Contract': fill in Counterparty: company name,"
                               " Counterparty: tax id (ЄДРПОУ), Counterparty: billing address first.")
    assert info.value.missing == ["company_name", "tax_id", "billing_address"]
    assert info.value.stage == "contract"


# -- 5 and 9. display zone and failed deals in actions/status ------------------------------------
def test_actions_and_status_show_times_in_the_display_zone_and_the_last_ticks_failed_deals(db_url, clock):
    c = Conveyor(db_url, clock=clock)
    try:
        c.load_rules_dir(SAMPLE_RULES)
        c.create_deal("techflow", title="Acme", fields={"phone": "+380501234567"})
        service = EngineService(c, tick_seconds=60)
        clock.advance(timedelta(hours=30))
        service.tick_job()
        with c.session() as s:
            [beat] = repo.list_heartbeats(s)
            assert beat.last_tick_summary["deals_failed"] == 0
    finally:
        c.close()
    env = {"CONVEYOR_TZ": "Europe/Kyiv"}
    status = CliRunner().invoke(cli, ["--db", db_url, "status"], env=env)
    assert status.exit_code == 0, status.output
    assert "(times in Europe/Kyiv)" in status.output
    # The virtual clock ticked at 2026-03-03 15:00 UTC: 17:00 in Kyiv (EET, UTC+2).
    assert "last tick:      2026-03-03 17:00:00" in status.output and "0 deal(s) failed" in status.output
    assert " UTC" not in status.output

    listed = CliRunner().invoke(cli, ["--db", db_url, "actions", "--status", "pending", "--status", "done"], env=env)
    assert listed.exit_code == 0, listed.output
    assert "times in Europe/Kyiv" in listed.output.splitlines()[0]
    assert "Z\n" not in listed.output and "2026-03-0" in listed.output


def test_status_flags_deals_the_last_tick_could_not_evaluate(clock):
    now = clock.now()
    text = render(Health(now=now, counts={}, oldest_pending_at=None, oldest_ready_at=None, last_tick_at=now,
                         last_tick_seconds=0.2, last_tick_failed=2))
    assert "2 deal(s) failed" in text and "ATTENTION" in text
    assert "could not evaluate 2 deal(s): see the engine log" in text


# -- 7. a busy builder port fails early, with the fix ---------------------------------------------
@pytest.mark.parametrize("command", ["demo", "builder"])
def test_a_busy_port_is_refused_before_anything_starts(tmp_path, command):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("--db", f"sqlite:///{tmp_path / 'c.db'}", command, "--port", str(port), cwd=tmp_path)
    assert result.returncode == 1
    assert (f"port {port} is already in use — run `conveyor {command} --port {port + 1}`"
            " (or stop what uses it)") in result.stderr
    assert "builder: http://" not in result.stdout
    assert not (tmp_path / "c.db").exists()  # nothing was started or loaded


# -- 6. the README says how to reach the `conveyor` command ----------------------------------------
def test_readme_starts_with_the_set_up_commands_and_says_to_activate_the_venv_before_the_command_table():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert lines[2:6] == ["```sh", lines[3], lines[4], "```"]
    assert lines[3].startswith("make demo ") and lines[4].startswith("make test ")
    after_heading = "\n".join(lines[lines.index("## The command line") + 1:][:4])
    assert "source .venv/bin/activate" in after_heading and ".venv/bin/conveyor" in after_heading


# -- 8. today's behaviour is documented -------------------------------------------------------------
def test_the_docs_describe_reserved_keys_number_limits_stage_removal_skipped_actions_and_isolated_deals():
    text = (ROOT / "docs" / "guarantees.md").read_text(encoding="utf-8")
    for phrase in ("`D-<number>` are reserved", "within ±10^15", "must not be negative",
                   "removes a stage", "skipped: earlier action", "queues the skipped",
                   "`evaluation_failed` event", "**one hour later**"):
        assert phrase in text, phrase
