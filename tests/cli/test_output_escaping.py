"""Terminal escape sequences stored in the database never reach the operator's terminal raw.

Rows written before the door refused control characters (or by a gateway's error text) may hold
``\\x1b[2J`` (clear the screen), ``\\x1b]0;…\\x07`` (retitle the window), a C1 ``\\x9b`` CSI or a bidi
override; ``conveyor actions``, ``status``, ``versions`` and ``export`` show them escaped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from storage import repositories as repo
from tests.support.sessions import db_session

ROOT = Path(__file__).resolve().parents[2]
EVIL_KEY = "ACME\x1b[2J\x1b]0;owned\x07"
EVIL_ERROR = "gateway said \x1b[31mred\x9b1m and \u202eevil"
EVIL_ENGINE = "web1\x1b[8m:42:abcdef"
EVIL_COMMENT = "rollback \x1b[5mblink\x1b[0m"
RAW = ("\x1b", "\x07", "\x9b", "\u202e")


def _conveyor_cli(*args: str) -> subprocess.CompletedProcess:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")},
        "PYTHONPATH": str(ROOT),
        "CONVEYOR_TZ": "UTC",
    }
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def hostile_db(sqlite_conveyor, clock, db_url):
    """The sample funnel, one deal with a dead action; then hostile text put straight into the rows."""
    deal = sqlite_conveyor.create_deal(
        "techflow", title="Acme", fields={"phone": "+380501112233", "amount": 1000}
    )
    with db_session(sqlite_conveyor) as s:
        repo.upsert_heartbeat(
            s,
            EVIL_ENGINE,
            host="web1",
            pid=42,
            started_at=clock.now(),
            seen_at=clock.now(),
            last_tick_summary={},
        )
    sqlite_conveyor.close()
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE deals SET key = :k, title = :k WHERE id = :id"),
            {"k": EVIL_KEY, "id": deal},
        )
        conn.execute(
            sa.text("UPDATE outbox SET status = 'dead', last_error = :e WHERE deal_id = :id"),
            {"e": EVIL_ERROR, "id": deal},
        )
        conn.execute(
            sa.text("UPDATE ruleset_versions SET comment = :c, author = :c"), {"c": EVIL_COMMENT}
        )
    engine.dispose()
    return db_url


def _assert_escaped(text: str) -> None:
    for ch in RAW:
        assert ch not in text, repr(text)


def test_actions_shows_escape_sequences_in_deal_keys_and_errors_escaped(hostile_db):
    result = _conveyor_cli("--db", hostile_db, "actions", "--status", "dead")
    assert result.returncode == 0, result.stderr
    _assert_escaped(result.stdout + result.stderr)
    assert r"ACME\x1b[2J\x1b]0;owned\x07" in result.stdout
    assert r"gateway said \x1b[31mred\x9b1m and \u202eevil" in result.stdout


def test_an_error_naming_a_hostile_value_is_escaped(hostile_db):
    result = _conveyor_cli("--db", hostile_db, "actions", "--deal", "NOPE\x1b]0;owned\x07")
    assert result.returncode == 1 and result.stderr.startswith("error: ")
    _assert_escaped(
        result.stdout + result.stderr
    )  # whatever the message says of the key, it is escaped


def test_status_shows_a_hostile_engine_id_escaped(hostile_db):
    result = _conveyor_cli("--db", hostile_db, "status")
    assert result.returncode == 0, result.stderr
    _assert_escaped(result.stdout + result.stderr)
    assert r"web1\x1b[8m:42:abcdef" in result.stdout


def test_versions_shows_hostile_comments_escaped(hostile_db):
    result = _conveyor_cli("--db", hostile_db, "versions", "techflow")
    assert result.returncode == 0, result.stderr
    _assert_escaped(result.stdout + result.stderr)
    assert r"rollback \x1b[5mblink\x1b[0m" in result.stdout


def test_export_keeps_valid_json_without_raw_terminal_controls(sqlite_conveyor, db_url):
    import json

    sqlite_conveyor.close()
    # A version saved before the door refused such names: put straight into the stored document.
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        for vid, text in conn.execute(sa.text("SELECT id, document FROM ruleset_versions")).all():
            doc = json.loads(text)
            doc["description"] = "TechFlow \x9b2J \u202eevil"
            conn.execute(
                sa.text("UPDATE ruleset_versions SET document = :d WHERE id = :id"),
                {"d": json.dumps(doc, ensure_ascii=False), "id": vid},
            )
    engine.dispose()
    result = _conveyor_cli("--db", db_url, "export", "techflow")
    assert result.returncode == 0, result.stderr
    _assert_escaped(result.stdout)
    assert json.loads(result.stdout)["description"] == "TechFlow \x9b2J \u202eevil"  # the same data


def test_printable_escapes_control_characters_and_keeps_plain_text():
    from engine.printable import printable

    assert printable("a\x1b[2Jb") == r"a\x1b[2Jb"
    assert printable("line\nnext\ttab") == r"line\nnext\ttab"
    assert printable("Одеса «Порт» €") == "Одеса «Порт» €"
    assert printable(None) == ""
