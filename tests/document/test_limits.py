"""Rule-set documents at the edges: every refusal has a JSON path and reads the same on both backends.

Huge integers, lone surrogates and NUL, invisible-only names and bidirectional overrides, regexes too
large for RE2's DFA (and RE2 keeping stderr clean while evaluating), and ``conveyor validate`` checking
every file it is given while reading no neighbour beyond the document size limit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.core.conveyor import Conveyor
from engine.document.validate import validate_document, validate_text
from engine.errors import RuleSetInvalid
from storage import repositories as repo
from tests.conftest import ROOT
from tests.support.sessions import db_session

PHONE = "+380501234567"


def funnel(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format": "conveyor.ruleset/1",
        "funnel": "shop",
        "name": "Shop",
        "fields": [
            {"name": "notes", "label": "Notes", "type": "text"},
            {"name": "size", "label": "Size", "type": "select", "options": ["S", "M"]},
        ],
        "stages": [{"id": "start", "name": "Start"}, {"id": "done", "name": "Done", "kind": "won"}],
        "rules": [
            {
                "id": "hello",
                "name": "Hello",
                "conditions": {
                    "all": [
                        {"name": "stage", "operator": "equal_to", "value": "start"},
                        {"name": "amount", "operator": "greater_than", "value": 10},
                    ]
                },
                "actions": [{"name": "send_sms", "params": {"text": "Hi {title}"}}],
            }
        ],
    }
    for path, value in changes.items():
        target: Any = doc
        *parts, last = path.split(".")
        for part in parts:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(last) if last.isdigit() else last] = value
    return doc


def problems(doc: Any) -> list[tuple[str, str]]:
    with pytest.raises(RuleSetInvalid) as info:
        validate_text(doc) if isinstance(doc, str) else validate_document(doc)
    return [(p.path, p.message) for p in info.value.problems]


# -- item 8: numbers, text, NUL ----------------------------------------------------------------------
def test_a_5000_digit_integer_is_refused_with_its_json_path():
    text = json.dumps(funnel()).replace('"value": 10', '"value": 1' + "0" * 4999)
    assert problems(text) == [
        (
            "rules[0].conditions.all[1].value",
            "a number with 5000 digits is too large (at most 100 digits)",
        )
    ]
    # Handed over as a Python object (the API, the builder), not as JSON text:
    assert problems(funnel(**{"rules.0.conditions.all.1.value": 10**5000})) == [
        (
            "rules[0].conditions.all[1].value",
            "a number with more than 100 digits is too large (at most 100 digits)",
        )
    ]
    validate_document(
        funnel(**{"rules.0.conditions.all.1.value": 10**20})
    )  # large but readable: fine


def test_a_lone_surrogate_in_a_document_is_refused_with_its_json_path():
    text = json.dumps(funnel(**{"stages.1.name": "Do\udfffne"}))  # written as the escape \udfff
    expected = [
        (
            "stages[1].name",
            "text is not valid Unicode text: a lone surrogate (U+DFFF at character 3)",
        )
    ]
    assert problems(text) == expected
    assert problems(funnel(**{"stages.1.name": "Do\udfffne"})) == expected
    doc = funnel()
    doc["rules"][0]["actions"][0]["params"]["te\ud800xt"] = "x"
    assert problems(doc) == [
        (
            "rules[0].actions[0].params.te\\ud800xt",
            "key is not valid Unicode text: a lone surrogate (U+D800 at character 3)",
        )
    ]


@pytest.mark.parametrize(
    "where",
    [
        "name",
        "stages.0.name",
        "rules.0.name",
        "fields.0.label",
        "description",
        "rules.0.actions.0.params.text",
    ],
)
def test_nul_and_control_characters_in_a_document_are_refused_with_their_json_path(where):
    path = where.replace(".0.", "[0].").replace(".0", "[0]")
    assert problems(funnel(**{where: "Bad\x00name"})) == [
        (
            path,
            "text contains the control character NUL (U+0000 at character 4); only tab and line breaks are allowed",
        )
    ]
    assert problems(funnel(**{where: "Bad\x1bname"}))[0][1].startswith(
        "text contains the control character (U+001B"
    )


@pytest.fixture
def empty_conveyor(backend: str) -> Iterator[Conveyor]:
    c = Conveyor(backend)
    yield c
    c.close()


def test_nul_in_a_name_is_refused_identically_on_sqlite_and_postgresql(empty_conveyor):
    with pytest.raises(
        RuleSetInvalid,
        match=r"\n  - stages\[1\]\.name: text contains the control character NUL \(U\+0000 at character 3\)",
    ):
        empty_conveyor.save_ruleset(funnel(**{"stages.1.name": "Do\x00ne"}))
    with pytest.raises(
        RuleSetInvalid,
        match=r"\n  - rules\[0\]\.conditions\.all\[1\]\.value: a number with 5000 digits",
    ):
        empty_conveyor.save_ruleset(
            json.dumps(funnel()).replace('"value": 10', '"value": 1' + "0" * 4999)
        )
    with db_session(empty_conveyor) as s:
        assert repo.list_funnels(s) == []
    empty_conveyor.save_ruleset(funnel(**{"description": "Tabs\tand\nlines are fine"}))


# -- item 9: names people read -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("where", "value", "path", "message"),
    [
        (
            "stages.1.name",
            "\u200b",
            "stages[1].name",
            "stage name has no visible character (only U+200B)",
        ),
        (
            "stages.1.name",
            " \u200d\u2060 ",
            "stages[1].name",
            "stage name has no visible character (only U+0020 U+200D",
        ),
        (
            "name",
            "Shop\u202eevil",
            "name",
            "funnel name contains the bidirectional control U+202E at character 5",
        ),
        (
            "rules.0.name",
            "\u2066Hello",
            "rules[0].name",
            "rule name contains the bidirectional control U+2066 at character 1",
        ),
        (
            "fields.0.label",
            "\u200b\u200c",
            "fields[0].label",
            "field label has no visible character",
        ),
        (
            "fields.1.options.1",
            "M\u202a",
            "fields[1].options[1]",
            "option contains the bidirectional control U+202A",
        ),
        (
            "stages.1.id",
            "done\u202e",
            "stages[1].id",
            "stage id contains the bidirectional control U+202E at character 5",
        ),
        (
            "rules.0.id",
            "\u2069",
            "rules[0].id",
            "rule id contains the bidirectional control U+2069",
        ),
    ],
    ids=[
        "zero-width-space-stage",
        "joiners-stage",
        "rlo-funnel-name",
        "lri-rule-name",
        "invisible-label",
        "lre-option",
        "rlo-stage-id",
        "pdi-rule-id",
    ],
)
def test_invisible_only_names_and_bidi_overrides_are_refused_with_their_json_path(
    where, value, path, message
):
    found = problems(funnel(**{where: value}))
    assert any(p == path and m.startswith(message) for p, m in found), found


def test_names_in_any_script_with_emoji_and_marks_are_accepted():
    validate_document(
        funnel(
            **{
                "name": "Угода «Схід»",
                "stages.1.name": "صفقة مغلقة",
                "rules.0.name": "🚀 Launch",
                "fields.0.label": "Zoë\u0301 — notes",
            }
        )
    )


# -- item 9: RE2 -------------------------------------------------------------------------------------
def _regex_funnel(pattern: str) -> dict[str, Any]:
    doc = funnel()
    doc["rules"][0]["conditions"] = {
        "all": [{"name": "notes", "operator": "matches_regex", "value": pattern}]
    }
    return doc


def test_a_pattern_too_large_for_re2s_dfa_is_refused_with_its_path():
    found = problems(_regex_funnel(r"\p{L}{2,50}"))
    assert found == [
        (
            "rules[0].conditions.all[0].value",
            "pattern '\\\\p{L}{2,50}' is too large for RE2 to match quickly (60,152 instructions; the limit is"
            " 40,000): use a smaller count in {m,n} repetitions, or + and *",
        )
    ]
    for fine in (r"[\p{L}\p{Nd}_]{2,30}", r".{0,1000}x", r"(a|b|c)*[a-c]{1000}x", r"\p{L}{2,}"):
        validate_document(_regex_funnel(fine))


def test_evaluating_large_counted_patterns_keeps_stderr_clean(tmp_path):
    # Valid patterns that made RE2 write "DFA out of memory" to stderr on every evaluation: the first's
    # DFA could not start in RE2's default 8 MB, the second's ran out of room on Cyrillic text.
    doc = funnel()
    doc["rules"] = [
        {
            "id": f"rx_{i}",
            "name": f"rx {i}",
            "conditions": {
                "all": [{"name": "notes", "operator": "matches_regex", "value": pattern}]
            },
            "actions": [
                {"name": "create_task", "params": {"title": f"matched {i}", "due_in_hours": 1}}
            ],
        }
        for i, pattern in enumerate([r"[\p{L}\p{Nd}_]{2,30}x", r".{0,1000}x"])
    ]
    rules = tmp_path / "shop.json"
    rules.write_text(json.dumps(doc), encoding="utf-8")
    notes = ("Олена дзвонила " * 600)[:9_000] + "Оленаx"
    events = [
        {
            "at": "2026-03-02T09:00:00Z",
            "event": "create",
            "funnel": "shop",
            "deal": f"D{n}",
            "fields": {"phone": PHONE, "notes": notes if n % 2 else notes.replace("x", "")},
        }
        for n in range(4)
    ]
    events.append({"at": "2026-03-02T11:00:00Z", "event": "end"})
    scenario = tmp_path / "scenario.jsonl"
    scenario.write_text("\n".join(json.dumps(e) for e in events) + "\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "engine.cli", "simulate", str(scenario), "--rules", str(rules)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    fired = sorted(
        (line["deal"], line["params"]["title"])
        for line in map(json.loads, result.stdout.splitlines())
    )
    assert fired == [
        ("D1", "matched 0"),
        ("D1", "matched 1"),
        ("D3", "matched 0"),
        ("D3", "matched 1"),
    ]


# -- item 8: conveyor validate -----------------------------------------------------------------------
def _validate(
    *args: str | Path, cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CONVEYOR_DB", "CONVEYOR_DEBUG")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "--db",
            f"sqlite:///{cwd / 'none.db'}",
            "validate",
            *map(str, args),
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def test_cli_validate_checks_every_file_whatever_one_of_them_holds(tmp_path):
    (tmp_path / "a.json").write_text(
        json.dumps(funnel(funnel="a")).replace('"value": 10', '"value": 1' + "0" * 4999)
    )
    (tmp_path / "b.json").write_text(json.dumps(funnel(funnel="b", **{"stages.1.name": "\udfff"})))
    (tmp_path / "c.json").write_text(json.dumps(funnel(funnel="c", **{"name": "C\x00"})))
    (tmp_path / "d.json").write_text(json.dumps(funnel(funnel="d")))
    result = _validate("a.json", "b.json", "c.json", "d.json", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == "d.json: ok (Shop: 2 stages, 1 rules)\n"
    assert result.stderr.splitlines() == [
        "a.json: 1 problem(s)",
        "  rules[0].conditions.all[1].value: a number with 5000 digits is too large (at most 100 digits)",
        "b.json: 1 problem(s)",
        "  stages[1].name: text is not valid Unicode text: a lone surrogate (U+DFFF at character 1)",
        "c.json: 1 problem(s)",
        "  name: text contains the control character NUL (U+0000 at character 2); only tab and line breaks are allowed",
    ]


def test_cli_validate_does_not_read_neighbour_files_beyond_the_size_limit(tmp_path):
    starter = funnel(funnel="starter")
    starter["rules"][0]["actions"] = [
        {"name": "start_process", "params": {"funnel": "big", "title": "Go"}}
    ]
    (tmp_path / "starter.json").write_text(json.dumps(starter))
    (tmp_path / "small.json").write_text(json.dumps(funnel(funnel="small")))
    # A neighbour over the 2 MB document limit names the funnel start_process wants: it must not be
    # read (so that funnel stays unknown), however valid it would be.
    big = json.dumps(funnel(funnel="big"))
    (tmp_path / "big.json").write_text(big[:-1] + " " * 3_000_000 + "}")
    os.mkfifo(tmp_path / "pipe.json")  # reading it would block for ever
    result = _validate("starter.json", cwd=tmp_path, timeout=60)
    assert result.returncode == 1
    assert "rules[0].actions[0].params.funnel: unknown funnel 'big'" in result.stderr
    assert "choose one of: small, starter" in result.stderr
    result = _validate("starter.json", "big.json", cwd=tmp_path, timeout=60)
    assert result.stderr.startswith(
        f"error: big.json is {3_000_000 + len(big)} bytes; the limit is 2000000\n"
    )
    assert "unknown funnel 'big'" in result.stderr
