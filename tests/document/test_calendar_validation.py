"""A funnel's calendar is validated like the rest of the document: each mistake at its JSON path,
and the working-time variables and delays refused where no valid calendar stands behind them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from engine.document.validate import validate_document
from engine.errors import RuleSetInvalid

OFFICE = {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}


def doc(calendar: Any = None, condition: str = "working_hours_in_stage", **params: Any) -> dict:
    out: dict[str, Any] = {
        "funnel": "calls",
        "name": "Calls",
        "stages": [{"id": "incoming", "name": "Incoming"}],
        "events": [{"name": "proposal_opened"}],
        "rules": [
            {
                "id": "escalate",
                "conditions": {
                    "all": [{"name": condition, "operator": "greater_than_or_equal_to", "value": 8}]
                },
                "actions": [
                    {
                        "name": "create_task",
                        "params": params or {"title": "Call", "due_in_working_hours": 2},
                    }
                ],
            }
        ],
    }
    if calendar is not None:
        out["calendar"] = calendar
    return out


GOOD = {
    "zone": "Europe/Kyiv",
    "week": OFFICE,
    "holidays": {"country": "UA", "dates": ["2026-12-31"]},
}


def problems(document: dict) -> list[tuple[str, str]]:
    with pytest.raises(RuleSetInvalid) as caught:
        validate_document(document)
    return [(p.path, p.message) for p in caught.value.problems]


def test_a_good_calendar_gives_the_working_time_variables_and_round_trips() -> None:
    for condition in ("working_hours_in_stage", "working_hours_since_proposal_opened"):
        ruleset = validate_document(doc(GOOD, condition))
        assert ruleset.to_document()["calendar"] == GOOD
    # A funnel without a calendar is exported without one (its fingerprint is what it was).
    plain = doc(condition="hours_in_stage", title="Call", due_in_hours=2)
    assert "calendar" not in validate_document(plain).to_document()


def _with(**changes: Any) -> dict:
    calendar = copy.deepcopy(GOOD)
    for key, value in changes.items():
        if key in ("country", "dates"):
            calendar["holidays"][key] = value
        elif key.startswith("week_"):
            calendar["week"] = {**calendar["week"], key[5:]: value}
        else:
            calendar[key] = value
    return calendar


@pytest.mark.parametrize(
    ("calendar", "path", "fragment"),
    [
        pytest.param(_with(zone="Europe/Kiev2"), "calendar.zone", "is not a time zone", id="zone"),
        pytest.param(_with(zone="UTC+3"), "calendar.zone", "IANA", id="offset-zone"),
        pytest.param(
            _with(week_mon=[["9:00", "18:00"]]),
            "calendar.week.mon[0][0]",
            "'9:00' is not a time of day",
            id="bad-time",
        ),
        pytest.param(
            _with(week_tue=[["18:00", "09:00"]]),
            "calendar.week.tue[0]",
            "ends before it starts",
            id="reversed",
        ),
        pytest.param(
            _with(week_wed=[["09:00", "13:00"], ["12:00", "18:00"]]),
            "calendar.week.wed[1]",
            "overlaps 09:00–13:00",
            id="overlap",
        ),
        pytest.param(
            _with(week_thu=[["09:00"]]), "calendar.week.thu[0]", "a start and an end", id="one-time"
        ),
        pytest.param(
            _with(week_fri=[["09:00", "24:30"]]),
            "calendar.week.fri[0][1]",
            "is not a time of day",
            id="past-midnight",
        ),
        pytest.param(
            _with(week_sunday=[["09:00", "12:00"]]),
            "calendar.week.sunday",
            "did you mean 'sun'?",
            id="unknown-weekday",
        ),
        pytest.param(
            {"zone": "Europe/Kyiv", "week": {"sat": []}},
            "calendar.week",
            "at least one day",
            id="no-hours",
        ),
        pytest.param(
            _with(country="ua"), "calendar.holidays.country", "did you mean 'UA'?", id="case"
        ),
        pytest.param(
            _with(country="XX"), "calendar.holidays.country", "not a country", id="country"
        ),
        pytest.param(
            _with(dates=["2026-02-30"]), "calendar.holidays.dates[0]", "is not a date", id="date"
        ),
        pytest.param(
            _with(dates=["2026-12-31", "2026-12-31"]),
            "calendar.holidays.dates[1]",
            "listed twice",
            id="twice",
        ),
        pytest.param(_with(weeks={}), "calendar.weeks", "unknown key", id="unknown-key"),
    ],
)
def test_a_malformed_calendar_is_refused_at_its_json_path(
    calendar: dict, path: str, fragment: str
) -> None:
    found = problems(doc(calendar))
    assert any(p == path and fragment in m for p, m in found), found


def test_working_time_needs_a_calendar_and_a_task_takes_one_delay() -> None:
    found = problems(doc(None))
    assert (
        "rules[0].conditions.all[0].name",
        "'working_hours_in_stage' counts working time: the funnel needs a valid \"calendar\""
        " (working hours and days off)",
    ) in found
    assert any(p == "rules[0].actions[0].params.due_in_working_hours" for p, _m in found)
    both = problems(doc(GOOD, title="Call", due_in_hours=1, due_in_working_hours=2))
    assert any("not both" in m for _p, m in both)
    far = problems(doc(GOOD, title="Call", due_in_working_hours=200_000))
    assert any("at most 100,000" in m for _p, m in far)
    big = doc(GOOD)
    big["rules"][0]["conditions"]["all"][0]["value"] = 200_000
    assert any("out of range" in m for _p, m in problems(big))


def test_no_field_or_event_takes_a_working_time_name() -> None:
    document = doc(GOOD)
    document["fields"] = [{"name": "working_hours_in_stage", "type": "numeric"}]
    assert any(p == "fields[0].name" and "reserved" in m for p, m in problems(document))
