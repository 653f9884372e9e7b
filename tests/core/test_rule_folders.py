"""Rule folders load through one strict helper: chains of started processes in any file order, clear
errors for a bad file with nothing saved, and keys of chained processes that fit the key column."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.core.conveyor import Conveyor
from engine.errors import RuleSetInvalid
from engine.outbox.dispatcher import run_until_idle
from engine.simulate.simulator import run_scenario
from storage import repositories as repo
from tests.conftest import SAMPLE_RULES
from tests.support.funnels import funnel, rule
from tests.support.sessions import db_session

CHAIN_A = funnel(
    "chain_a",
    [rule("start_b", "start", [{"name": "start_process", "params": {"funnel": "chain_b"}}])],
)
CHAIN_B = funnel(
    "chain_b",
    [rule("start_c", "start", [{"name": "start_process", "params": {"funnel": "chain_c"}}])],
)
CHAIN_C = funnel(
    "chain_c",
    [rule("note", "start", [{"name": "notify_manager", "params": {"text": "{title} started"}}])],
)


@pytest.fixture
def chain_folder(tmp_path: Path) -> Path:
    """a.json starts b's funnel, b starts c's: name order is the wrong order to save them in."""
    folder = tmp_path / "rules"
    folder.mkdir()
    for name, doc in (("a.json", CHAIN_A), ("b.json", CHAIN_B), ("c.json", CHAIN_C)):
        (folder / name).write_text(json.dumps(doc), encoding="utf-8")
    return folder


def test_keys_of_chained_processes_stay_within_the_key_column(backend, clock, chain_folder):
    c = Conveyor(backend, clock=clock)
    try:
        c.load_rules_dir(chain_folder)
        c.add_manager("Olena")
        long_key = "K" * 100
        c.create_deal("chain_a", key=long_key)
        c.create_deal("chain_a", key="K" * 99 + "L")  # same start, different end
        run_until_idle(c)
        with db_session(c) as s:
            keys = [d.key for d in repo.list_deals(s)]
        assert len(keys) == 6 and len(set(keys)) == 6
        assert all(len(k) <= 100 for k in keys), keys
        assert sum(k.endswith("/chain_c") for k in keys) == 2
    finally:
        c.close()


def test_a_chain_of_started_processes_loads_whatever_the_file_names(
    backend, fresh_database, clock, chain_folder
):
    c = Conveyor(backend, clock=clock)
    try:
        saved = c.load_rules_dir(chain_folder)
        assert [v.funnel for v in saved] == ["chain_c", "chain_b", "chain_a"]
    finally:
        c.close()
    lines = [
        '{"event": "manager", "at": "2026-03-02T09:00:00Z", "name": "Olena"}',
        '{"event": "create", "at": "2026-03-02T09:05:00Z", "deal": "A", "funnel": "chain_a"}',
    ]
    out = run_scenario(lines, sorted(chain_folder.glob("*.json")), db=fresh_database())
    assert [line["action"] for line in out] == ["start_process", "start_process", "notify_manager"]


def test_processes_that_start_each_other_load_too(backend, clock, tmp_path):
    ping = funnel(
        "ping", [rule("to_pong", "next", [{"name": "start_process", "params": {"funnel": "pong"}}])]
    )
    pong = funnel(
        "pong", [rule("to_ping", "next", [{"name": "start_process", "params": {"funnel": "ping"}}])]
    )
    for name, doc in (("ping.json", ping), ("pong.json", pong)):
        (tmp_path / name).write_text(json.dumps(doc), encoding="utf-8")
    c = Conveyor(backend, clock=clock)
    try:
        assert sorted(v.funnel for v in c.load_rules_dir(tmp_path)) == ["ping", "pong"]
    finally:
        c.close()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"funnel": "x", "funnel": "y"}', "key 'funnel' appears twice"),
        ("[1, 2]", "broken.json: a rule set must be a JSON object, not list"),
        ('{"funnel": NaN}', "NaN is not a JSON value"),
        ('{"funnel": ', "is not valid JSON"),
    ],
    ids=["duplicate-key", "not-an-object", "nan", "syntax"],
)
def test_a_bad_file_in_a_rule_folder_is_a_clear_error_and_nothing_is_saved(
    backend, fresh_database, clock, tmp_path, text, message
):
    (tmp_path / "a_good.json").write_text(
        (SAMPLE_RULES / "project_work.json").read_text("utf-8"), "utf-8"
    )
    (tmp_path / "broken.json").write_text(text, encoding="utf-8")
    c = Conveyor(backend, clock=clock)
    try:
        with pytest.raises(RuleSetInvalid, match=message):
            c.load_rules_dir(tmp_path)
        assert c.funnels() == []
    finally:
        c.close()
    with pytest.raises(RuleSetInvalid, match=message):
        run_scenario(
            ['{"event": "end", "at": "2026-03-02T09:00:00Z"}'],
            sorted(tmp_path.glob("*.json")),
            db=fresh_database(),
        )
