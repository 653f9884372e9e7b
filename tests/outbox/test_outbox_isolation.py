"""Each outbox row succeeds or fails on its own: a row whose deal holds text the database cannot store
(written straight into the database, past the input checks) ends failed with its error, its attempt
counted, retried with backoff and dead after the last attempt, and every other row is applied and sent.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from engine.core.conveyor import Conveyor
from engine.outbox.dispatcher import RetryPolicy, dispatch_internal, dispatch_messages
from engine.outbox.providers import WebhookProvider
from storage import repositories as repo
from storage.models import Deal, OutboxAction, Task
from tests.conftest import ROOT
from tests.support.engine_world import start_engine, stop, wait_for
from tests.support.sessions import db_session
from tests.support.webhook import Gateway

PHONE = "+380501234567"
FUNNEL: dict[str, Any] = {
    "format": "conveyor.ruleset/1",
    "funnel": "shop",
    "name": "Shop",
    "fields": [{"name": "notes", "type": "text"}],
    "stages": [{"id": "start", "name": "Start"}],
    "rules": [
        {
            "id": "hello",
            "name": "hello",
            "conditions": {"all": [{"name": "stage", "operator": "equal_to", "value": "start"}]},
            "actions": [{"name": "send_sms", "params": {"text": "Hi {title}: {notes}"}}],
        },
        {
            "id": "call",
            "name": "call",
            "conditions": {"all": [{"name": "stage", "operator": "equal_to", "value": "start"}]},
            "actions": [
                {
                    "name": "create_task",
                    "params": {"title": "Call {title}: {notes}", "due_in_hours": 1},
                }
            ],
        },
    ],
}
KEYS = ["poisoned", "broken", "good-1", "good-2"]  # the bad ones first: they are claimed first


@pytest.fixture
def url(backend: str) -> str:
    return backend


def _seed(c: Conveyor) -> None:
    c.save_ruleset(FUNNEL)
    for key in KEYS:
        c.create_deal("shop", key=key, title=key.title(), fields={"phone": PHONE, "notes": "fine"})


def _poison(url: str) -> str:
    """Write bad values straight into the database: the checks at the door never see them."""
    if url.startswith("sqlite"):
        # SQLite stores the JSON escape as is; read back, it is a lone surrogate no driver can write.
        bad = '{"notes": "bad \\udfff here"}'
        with sqlite3.connect(url.removeprefix("sqlite:///")) as con:
            con.execute("UPDATE deals SET fields = ? WHERE key = 'poisoned'", (bad,))
            con.execute("UPDATE deals SET fields = '[\"not an object\"]' WHERE key = 'broken'")
        return "surrogate"
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # PostgreSQL's json type keeps \u0000; text columns refuse NUL
        conn.execute(
            sa.text("UPDATE deals SET fields = CAST(:f AS json) WHERE key = 'poisoned'"),
            {"f": '{"notes": "bad \\u0000 here"}'},
        )
        conn.execute(
            sa.text(
                "UPDATE deals SET fields = CAST('[\"not an object\"]' AS json) WHERE key = 'broken'"
            )
        )
    engine.dispose()
    return "NUL"


def _rows(c: Conveyor) -> dict[tuple[str, str], OutboxAction]:
    with db_session(c) as s:
        keys = {d.id: d.key for d in s.scalars(sa.select(Deal))}
        rows = list(s.scalars(sa.select(OutboxAction)))
        s.expunge_all()
    return {(keys[r.deal_id], r.action): r for r in rows}


def _actions_cli(url: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "engine.cli", "--db", url, "actions", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    with Gateway("ok") as gw:
        yield gw


def test_a_poisoned_deal_fails_its_own_rows_and_every_other_row_is_applied_and_sent(
    url, gateway, clock
):
    c = Conveyor(url, clock=clock, provider=WebhookProvider(gateway.url, timeout=5))
    try:
        _seed(c)
        what = _poison(url)
        policy = RetryPolicy(max_attempts=2, base=timedelta(minutes=1), jitter=0)
        internal = dispatch_internal(c, policy=policy)
        messages = dispatch_messages(c, policy=policy)
        assert (
            sorted((e.action, e.status) for e in internal)
            == [("create_task", "done")] * 2 + [("create_task", "failed")] * 2
        )
        assert sorted(e.status for e in messages) == ["done", "done", "failed", "failed"]
        # The good deals' messages reached the gateway; the bad ones never left.
        assert sorted(m["deal"] for m in gateway.received) == ["good-1", "good-2"]
        rows = _rows(c)
        for key in ("poisoned", "broken"):
            for action in ("send_sms", "create_task"):
                row = rows[(key, action)]
                assert (row.status, row.attempts) == ("failed", 1), (key, action)
                assert row.next_attempt_at > clock.now()  # backoff, not a hot loop
        sms_error = rows[("poisoned", "send_sms")].last_error
        if what == "surrogate":
            assert sms_error == (
                "could not prepare the message: the text for deal poisoned is not valid Unicode"
                " text: a lone surrogate (U+DFFF at character 18); fix the deal's fields it quotes"
            )
            assert "UnicodeEncodeError" in rows[("poisoned", "create_task")].last_error
        else:
            assert sms_error.startswith(
                "could not prepare the message: the text for deal poisoned contains the"
                " control character NUL (U+0000 at character 18)"
            )
            assert rows[("poisoned", "create_task")].last_error == (
                "DataError: PostgreSQL text fields cannot contain NUL (0x00) bytes"
            )
        assert rows[("broken", "send_sms")].last_error.startswith(
            "could not prepare the message: ValueError: "
        )
        for key in ("good-1", "good-2"):
            assert rows[(key, "send_sms")].status == rows[(key, "create_task")].status == "done"
        with db_session(c) as s:
            assert sorted(t.title for t in s.scalars(sa.select(Task))) == [
                "Call Good-1: fine",
                "Call Good-2: fine",
            ]
            assert sorted(m.text for m in repo.list_messages(s)) == [
                "Hi Good-1: fine",
                "Hi Good-2: fine",
            ]

        listed = _actions_cli(url, "--status", "failed")
        assert (
            listed.count(" failed ") == 4
            and "could not prepare the message: the text for deal poisoned" in listed
        )

        # Retried after the backoff, and dead after the last attempt; the good rows stay done.
        clock.advance(timedelta(minutes=5))
        assert dispatch_internal(c, policy=policy) and dispatch_messages(c, policy=policy)
        rows = _rows(c)
        assert {
            (r.status, r.attempts) for (key, _a), r in rows.items() if key in ("poisoned", "broken")
        } == {("dead", 2)}
        assert {r.status for (key, _a), r in rows.items() if key.startswith("good")} == {"done"}
        assert len(gateway.received) == 2
    finally:
        c.close()


def test_a_running_engine_sends_the_good_deals_messages_past_a_poisoned_row(url, tmp_path):
    with Gateway("ok") as gw:
        c = Conveyor(url)
        try:
            _seed(c)
        finally:
            c.close()
        _poison(url)
        log = tmp_path / "engine.log"
        engine = start_engine(url, log, provider=gw.url, tick=1, workers=2, retry_base=300)
        try:
            wait_for(
                lambda: sorted(m["deal"] for m in gw.received) == ["good-1", "good-2"],
                60,
                "the good deals' messages at the gateway",
                [engine],
                [log],
            )
            c = Conveyor(url, migrate=False)
            try:

                def settled() -> bool:
                    rows = _rows(c)
                    return all(
                        r.status == ("done" if key.startswith("good") else "failed")
                        for (key, _action), r in rows.items()
                    )

                wait_for(settled, 60, "good rows done and bad rows failed", [engine], [log])
            finally:
                c.close()
        finally:
            assert stop(engine) == 0
        assert sorted(m["deal"] for m in gw.received) == ["good-1", "good-2"]
    listed = _actions_cli(url, "--status", "failed")
    assert "deal poisoned" in listed and "deal broken" in listed and "deal good" not in listed
    assert "could not prepare the message: the text for deal poisoned" in listed
    assert "Traceback" not in log.read_text(errors="replace")
