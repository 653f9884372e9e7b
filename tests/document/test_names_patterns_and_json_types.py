"""Review follow-ups around the validator, the CLI and providers: column-sized names, patterns that RE2
and Python's ``re`` would read differently, ``equal_to`` on time variables, strict JSON types,
webhook reconciliation answers, ``conveyor validate`` over several files, Ctrl-C and the display zone.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import re2

from engine import clock
from engine.cli.errors import friendly
from engine.document.validate import (
    MAX_FUNNEL_NAME,
    MAX_ID_LENGTH,
    MAX_RULE_NAME,
    MAX_STAGE_NAME,
    regex_differences,
    validate_document,
)
from engine.errors import RuleSetInvalid
from engine.outbox.providers import WebhookProvider
from engine.rules.variables import TIME_VARIABLES, SafeStringType

ROOT = Path(__file__).resolve().parents[2]
BASE: dict[str, Any] = json.loads((ROOT / "sample_rules" / "techflow.json").read_text(encoding="utf-8"))
KNOWN = {"project_work"}
IDLE = 1  # "incoming: 24 h without activity"; its second condition is a time condition
I1 = "rules[1].conditions.all[1]"


def base() -> dict[str, Any]:
    return copy.deepcopy(BASE)


def problems_of(doc: Any) -> list[tuple[str, str]]:
    with pytest.raises(RuleSetInvalid) as info:
        validate_document(doc, known_funnels=KNOWN)
    return [(p.path, p.message) for p in info.value.problems]


def assert_problem(problems: list[tuple[str, str]], path: str, *fragments: str) -> None:
    hits = [m for p, m in problems if p == path and all(f in m for f in fragments)]
    assert hits, f"no problem at {path!r} containing {fragments!r}; got {problems}"


def with_pattern(pattern: str) -> dict[str, Any]:
    doc = base()
    doc["rules"][IDLE]["conditions"]["all"][1] = {"name": "source", "operator": "matches_regex", "value": pattern}
    return doc


# -- 1.2: lengths that fit the storage columns ------------------------------------------------------
@pytest.mark.parametrize("path,keys,limit,what", [
    ("rules[0].name", ["rules", 0, "name"], MAX_RULE_NAME, "a rule name"),
    ("name", ["name"], MAX_FUNNEL_NAME, "a funnel name"),
    ("stages[0].name", ["stages", 0, "name"], MAX_STAGE_NAME, "a stage name"),
    ("fields[0].label", ["fields", 0, "label"], 200, "a field label"),
], ids=["rule-name", "funnel-name", "stage-name", "field-label"])
def test_names_longer_than_their_column_are_refused(path: str, keys: list[Any], limit: int, what: str) -> None:
    doc = base()
    target = doc
    for k in keys[:-1]:
        target = target[k]
    target[keys[-1]] = "Я" * limit
    validate_document(doc, known_funnels=KNOWN)  # exactly at the limit is fine
    target[keys[-1]] = "Я" * (limit + 1)
    assert_problem(problems_of(doc), path, f"{limit + 1} characters long", f"{what} may have at most {limit}")


def test_an_option_longer_than_the_limit_is_refused() -> None:
    doc = base()
    select = next(i for i, f in enumerate(doc["fields"]) if f["type"] == "select")
    doc["fields"][select]["options"][0] = "o" * 201
    assert_problem(problems_of(doc), f"fields[{select}].options[0]", "an option may have at most 200")


@pytest.mark.parametrize("path,keys,what", [
    ("funnel", ["funnel"], "funnel id"),
    ("stages[5].id", ["stages", 5, "id"], "stage id"),
    ("rules[0].id", ["rules", 0, "id"], "rule id"),
    ("fields[0].name", ["fields", 0, "name"], "field name"),
], ids=["funnel-id", "stage-id", "rule-id", "field-name"])
def test_ids_longer_than_their_column_are_refused_with_a_length_message(path: str, keys: list[Any], what: str) -> None:
    doc = base()
    target = doc
    for k in keys[:-1]:
        target = target[k]
    target[keys[-1]] = "a" * (MAX_ID_LENGTH + 1)
    assert_problem(problems_of(doc), path, f"{MAX_ID_LENGTH + 1} characters long",
                   f"a {what} may have at most {MAX_ID_LENGTH}")


def test_an_id_of_exactly_the_maximum_length_is_valid() -> None:
    doc = base()
    doc["rules"][0]["id"] = "r" * MAX_ID_LENGTH
    assert validate_document(doc, known_funnels=KNOWN).rules[0].id == "r" * MAX_ID_LENGTH


# -- 1.4: patterns RE2 and Python's re would read differently ---------------------------------------
@pytest.mark.parametrize("pattern,escape,suggestion", [
    (r"^\w+$", r"\w", r"[\p{L}\p{Nd}_]"),
    (r"\W", r"\W", r"[^\p{L}\p{Nd}_]"),
    (r"^\d{3}", r"\d", r"\p{Nd}"),
    (r"\D", r"\D", r"\P{Nd}"),
    (r"a\sb", r"\s", r"\p{Z}"),
    (r"\S+", r"\S", r"\p{Z}"),
    (r"\bads\b", r"\b", r"[^\p{L}\p{Nd}_]"),
    (r"a\Bb", r"\B", r"[\p{L}\p{Nd}_]"),
    (r"[\d-]", r"\d", r"\p{Nd}"),
    (r"\\\w", r"\w", r"[\p{L}\p{Nd}_]"),  # an escaped backslash, then a real \w
], ids=["w", "W", "d", "D", "s", "S", "b", "B", "d-in-class", "after-escaped-backslash"])
def test_ascii_only_shorthands_are_refused_with_a_unicode_suggestion(pattern: str, escape: str, suggestion: str) -> None:
    assert_problem(problems_of(with_pattern(pattern)), f"{I1}.value", escape, "ASCII", suggestion)


def test_a_posix_class_is_refused() -> None:
    assert_problem(problems_of(with_pattern("[[:alpha:]]+")), f"{I1}.value", "POSIX class", r"\p{L}")


@pytest.mark.parametrize("pattern", [r"\\w", r"\\d+", r"\Q\w\E", r"[\p{L}\p{Nd}_]+", r"^\p{Lu}", r"[]a]", "w+d"],
                         ids=["escaped-backslash-w", "escaped-backslash-d", "quoted", "unicode-word",
                              "unicode-upper", "bracket-first", "plain-letters"])
def test_literal_backslashes_and_unicode_classes_are_accepted(pattern: str) -> None:
    assert regex_differences(pattern) == []
    validate_document(with_pattern(pattern), known_funnels=KNOWN)


def test_the_unicode_suggestions_match_cyrillic_where_the_shorthands_did_not() -> None:
    assert SafeStringType("Олена").matches_regex(r"^\w+$") is False  # why \w is refused
    assert SafeStringType("Олена_2").matches_regex(r"^[\p{L}\p{Nd}_]+$") is True
    assert SafeStringType("ціна ٣").matches_regex(r"\p{Nd}") is True


# Patterns the validator accepts that Python's re also compiles: both engines must agree on Unicode text.
SHARED_PATTERNS = [
    "^Олена$", "(?i)^олена", "(?i)ПЕТРО", "[а-яіїєґ]+", "^[А-ЯІЇЄҐ]", "(?i)[а-я]+ [а-я]+", "Ґ|ґ", ".", "^.{5}$",
    "о+", "(?s)а.б", "(?m)^П", "ї$", "[^а-я]", "x*", "(Ол|Пе)(ена|тро)", "(?i)straße", "é", "[0-9]{2}",
]
TEXTS = ["Олена", "олена", "ОЛЕНА", "Петро Іваненко", "Ґанок їжак", "ціна 42", "a\nб", "Straße", "café",
         "", "ї", "x", "ОлЕнА\nПетро"]


@pytest.mark.parametrize("pattern", SHARED_PATTERNS)
def test_accepted_patterns_match_cyrillic_text_like_pythons_re(pattern: str) -> None:
    assert regex_differences(pattern) == []
    validate_document(with_pattern(pattern), known_funnels=KNOWN)
    for text in TEXTS:
        expected = re.search(pattern, text) is not None
        assert SafeStringType(text).matches_regex(pattern) is expected, (pattern, text)
        assert (re2.search(pattern, text) is not None) is expected, (pattern, text)


# -- 1.5: equal_to on a time variable ----------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(TIME_VARIABLES))
def test_equal_to_on_a_time_variable_is_refused_with_a_suggestion(name: str) -> None:
    doc = base()
    doc["rules"][IDLE]["conditions"]["all"][1] = {"name": name, "operator": "equal_to", "value": 24}
    assert_problem(problems_of(doc), f"{I1}.operator", f"'equal_to' on '{name}'", "greater_than_or_equal_to")


def test_equal_to_on_other_numeric_variables_stays_valid() -> None:
    doc = base()
    doc["rules"][IDLE]["conditions"]["all"][1] = {"name": "amount", "operator": "equal_to", "value": 1000}
    validate_document(doc, known_funnels=KNOWN)


# -- section 3: strict JSON types ------------------------------------------------------------------
@pytest.mark.parametrize("value", ["yes", "true", 1, 0, None], ids=["yes", "true-text", "one", "zero", "null"])
def test_enabled_must_be_a_json_boolean(value: Any) -> None:
    doc = base()
    doc["rules"][0]["enabled"] = value
    assert_problem(problems_of(doc), "rules[0].enabled", "valid boolean")


@pytest.mark.parametrize("value", ["10", True, None], ids=["text", "boolean", "null"])
def test_positions_must_be_json_numbers(value: Any) -> None:
    doc = base()
    doc["stages"][0]["position"] = {"x": value, "y": 0}
    assert_problem(problems_of(doc), "stages[0].position.x", "valid number")


def test_integer_positions_are_still_numbers() -> None:
    doc = base()
    doc["stages"][0]["position"] = {"x": 10, "y": 2.5}
    assert validate_document(doc, known_funnels=KNOWN).stages[0].position.x == 10.0


@pytest.mark.parametrize("value", [5, 5.0, True], ids=["int", "float", "boolean"])
def test_names_must_be_json_text(value: Any) -> None:
    doc = base()
    doc["rules"][0]["name"] = value
    assert_problem(problems_of(doc), "rules[0].name", "valid string")


def test_from_underscore_is_not_an_alias_for_from() -> None:
    doc = base()
    doc["transitions"][0]["from_"] = doc["transitions"][0].pop("from")
    problems = problems_of(doc)
    assert_problem(problems, "transitions[0].from_", "unknown key 'from_'")
    assert_problem(problems, "transitions[0].from", "required key 'from' is missing")


def test_every_sample_rule_set_is_valid_under_the_stricter_checks() -> None:
    docs = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in (ROOT / "sample_rules").glob("*.json")}
    for doc in docs.values():
        validate_document(doc, known_funnels=set(docs))
    assert len(docs) >= 2


# -- 1.10: webhook reconciliation trusts only a JSON true -------------------------------------------
@pytest.fixture
def answering_gateway() -> Iterator[tuple[str, list[bytes]]]:
    """A real HTTP server on 127.0.0.1 whose GET answer is whatever the test puts in ``answers[0]``."""
    answers: list[bytes] = [b"{}"]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = answers[0]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/send", answers
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize("body,expected", [
    (b'{"delivered": true}', True),
    (b'{"delivered": false}', False),
    (b'{"delivered": "false"}', None),
    (b'{"delivered": "true"}', None),
    (b'{"delivered": 1}', None),
    (b'{}', None),
    (b'[true]', None),
    (b'not json', None),
], ids=["true", "false", "text-false", "text-true", "one", "missing", "a-list", "not-json"])
def test_webhook_delivered_trusts_only_a_json_boolean(answering_gateway, body: bytes, expected: bool | None) -> None:
    url, answers = answering_gateway
    answers[0] = body
    assert WebhookProvider(url, timeout=5).delivered("k-1") is expected


# -- section 2: the CLI ----------------------------------------------------------------------------
def _cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CONVEYOR_DB", "CONVEYOR_DEBUG", "CONVEYOR_TZ")}
    env["PYTHONWARNINGS"] = "error"
    return env


def test_validate_reports_every_file_even_after_a_syntax_error(tmp_path: Path) -> None:
    broken = tmp_path / "a_broken.json"
    broken.write_text('{"funnel": "x",\n  "name": }', encoding="utf-8")
    bad = tmp_path / "b_bad.json"
    doc = base()
    doc["rules"][0]["enabled"] = "yes"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    good = tmp_path / "c_good.json"
    good.write_text(json.dumps(base()), encoding="utf-8")
    # The sample's start_process names project_work: a funnel beside the files is a known funnel.
    (tmp_path / "project_work.json").write_bytes((ROOT / "sample_rules" / "project_work.json").read_bytes())
    result = subprocess.run([sys.executable, "-m", "engine.cli", "validate", broken, tmp_path / "missing.json", bad,
                             good], cwd=tmp_path, env=_cli_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert f"error: {broken} is not valid JSON: Expecting value at line 2, column 11" in lines
    assert f"error: no such file: {tmp_path / 'missing.json'}" in lines
    assert f"{bad}: 1 problem(s)" in result.stderr and "rules[0].enabled" in result.stderr
    assert f"{good}: ok (TechFlow B2B sales" in result.stdout


def test_friendly_turns_ctrl_c_into_one_line_and_exit_130(capsys: pytest.CaptureFixture[str]) -> None:
    @friendly
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as info:
        interrupted()
    assert info.value.code == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_ctrl_c_during_simulate_prints_no_traceback(tmp_path: Path) -> None:
    fifo = tmp_path / "scenario.jsonl"
    os.mkfifo(fifo)
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "simulate", fifo], cwd=tmp_path, env=_cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Opening the FIFO for writing returns once the command has opened it, inside the command itself;
        # it then waits for scenario lines that never come.
        writer = os.open(fifo, os.O_WRONLY)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        os.close(writer)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "interrupted"


# -- section 2: one display-zone function ---------------------------------------------------------
def test_an_unknown_display_zone_falls_back_to_kyiv_with_a_warning(monkeypatch, caplog) -> None:
    monkeypatch.setenv("CONVEYOR_TZ", "Mars/Olympus_Mons")
    with caplog.at_level(logging.WARNING, logger="engine.clock"):
        assert clock.display_zone().key == "Europe/Kyiv"
        assert clock.display_zone().key == "Europe/Kyiv"
    warnings = [r.getMessage() for r in caplog.records if "Mars/Olympus_Mons" in r.getMessage()]
    assert len(warnings) == 1  # once per name, not once per shown time
    with pytest.raises(ValueError, match="'Mars/Olympus_Mons' is not a known time zone"):
        clock.display_zone(strict=True)


def test_the_first_unknown_zone_warning_names_the_fallback(monkeypatch, caplog) -> None:
    monkeypatch.setenv("CONVEYOR_TZ", "Nowhere/At_All")
    with caplog.at_level(logging.WARNING, logger="engine.clock"):
        clock.display_zone()
    assert any("Nowhere/At_All" in r.getMessage() and "Europe/Kyiv" in r.getMessage() for r in caplog.records)


def test_a_known_display_zone_is_used(monkeypatch) -> None:
    monkeypatch.setenv("CONVEYOR_TZ", "UTC")
    assert clock.display_zone(strict=True).key == "UTC"
    monkeypatch.delenv("CONVEYOR_TZ")
    assert clock.display_zone().key == "Europe/Kyiv"


def test_versions_listing_shows_the_fallback_zone_and_the_warning(tmp_path: Path) -> None:
    env = {**_cli_env(), "CONVEYOR_TZ": "Bad/Zone", "CONVEYOR_DB": f"sqlite:///{tmp_path / 'c.db'}"}
    run = [sys.executable, "-m", "engine.cli"]
    subprocess.run([*run, "init", "--load", ROOT / "sample_rules"], cwd=tmp_path, env=env, capture_output=True,
                   text=True, timeout=120, check=True)
    result = subprocess.run([*run, "versions", "techflow"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "times in Europe/Kyiv" in result.stdout
    assert "'Bad/Zone' is not a known time zone" in result.stderr and "Traceback" not in result.stderr
