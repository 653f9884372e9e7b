"""What the simulator refuses in a scenario: NaN or Infinity stop the run as a scenario error; an event
with bad fields prints an error line and the run goes on."""

from __future__ import annotations

import pytest

from engine.simulate.simulator import ScenarioInvalid, run_scenario
from tests.conftest import SAMPLE_RULES


def test_a_scenario_with_nan_or_infinity_is_a_scenario_error(fresh_database):
    lines = [
        '{"event": "manager", "at": "2026-03-02T09:00:00Z", "name": "Olena"}',
        '{"event": "create", "at": "2026-03-02T09:05:00Z", "deal": "A", "fields": {"amount": NaN}}',
        '{"event": "payment", "at": "2026-03-02T09:06:00Z", "deal": "A", "amount": -Infinity}',
    ]
    with pytest.raises(ScenarioInvalid) as info:
        run_scenario(lines, sorted(SAMPLE_RULES.glob("*.json")), db=fresh_database())
    assert "scenario:2: NaN is not a JSON value" in str(info.value)
    assert "scenario:3: -Infinity is not a JSON value" in str(info.value)


def test_a_scenario_event_with_non_object_fields_prints_an_error_and_the_run_goes_on(
    fresh_database,
):
    lines = [
        '{"event": "manager", "at": "2026-03-02T09:00:00Z", "name": "Olena"}',
        '{"event": "create", "at": "2026-03-02T09:05:00Z", "deal": "A", "fields": ["amount", 5]}',
        '{"event": "create", "at": "2026-03-02T09:06:00Z", "deal": "B", "fields": {"amount": 1e400}}',
        '{"event": "create", "at": "2026-03-02T09:07:00Z", "deal": "C", "fields": {"amount": 5}}',
    ]
    out = run_scenario(lines, sorted(SAMPLE_RULES.glob("*.json")), db=fresh_database())
    errors = [line for line in out if "error" in line and "action" not in line]
    assert [e["deal"] for e in errors] == ["A", "B"]
    assert "'fields' must be a JSON object" in errors[0]["error"]
    assert "finite number" in errors[1]["error"]
    assert {line["deal"] for line in out if line.get("action") == "assign_manager"} == {"C"}
