"""Events and hook calls sent together through uvicorn: on SQLite they go through the API's one writer
thread (``engine.api.writer``), grouped into shared commits; on PostgreSQL through the thread pool.
Either way every acknowledged one is in the database once, a bad one is refused alone with its own
problem answer, and a failed COMMIT acknowledges nothing of its group."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text

from engine.api.app import create_app
from engine.api.writer import Writer
from engine.core.conveyor import Conveyor
from engine.core.hooks import sign
from tests.api.conftest import serving
from tests.conftest import SAMPLE_RULES

DEALS = 5


def _prepared(backend: str) -> tuple[Conveyor, str, str]:
    c = Conveyor(backend)
    c.load_rules_dir(SAMPLE_RULES)
    c.add_manager("Olena")
    for i in range(DEALS):
        c.create_deal("techflow", key=f"W-{i}", title=f"Writer {i}")
    key = c.api_keys.create("writer", "integration")[1]
    secret = c.hooks.create("bank")[1]
    return c, key, secret


def _stored_seqs(c: Conveyor) -> list[str]:
    with c.engine.connect() as conn:
        rows = conn.execute(text("SELECT data FROM deal_signals WHERE name = 'client_replied'"))
        datas = [d if isinstance(d, dict) else json.loads(d) for (d,) in rows]
    return [d["seq"] for d in datas if d and "seq" in d]


def _hook(secret: str, body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    t = int(time.time())
    return raw, {"Conveyor-Signature": f"t={t},v1={sign(secret, t, raw)}"}


async def _send_together(url: str, key: str, secret: str) -> dict[str, httpx.Response]:
    auth = {"Authorization": f"Bearer {key}"}
    calls: dict[str, Any] = {}
    for n in range(24):
        calls[f"good-{n}"] = (
            f"/api/v1/deals/W-{n % DEALS}/events",
            {"name": "client_replied", "data": {"seq": f"good-{n}"}},
            auth,
        )
    calls["bad-event"] = ("/api/v1/deals/W-0/events", {"name": "no_such_event"}, auth)
    calls["bad-deal"] = ("/api/v1/deals/NOPE/events", {"name": "client_replied"}, auth)
    for n in range(8):
        body = {"id": f"h-{n}", "deal": f"W-{n % DEALS}", "event": "client_replied"}
        raw, signed = _hook(secret, {**body, "data": {"seq": f"hook-{n}"}})
        calls[f"hook-{n}"] = ("/hooks/bank", raw, signed)
    first = calls["hook-0"]
    calls["hook-again"] = first  # the same call sent twice at once: one of the two is a duplicate
    calls["hook-unsigned"] = ("/hooks/bank", first[1], {"Conveyor-Signature": "t=1,v1=00"})

    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def one(path: str, body: Any, headers: dict[str, str]) -> httpx.Response:
            if isinstance(body, bytes):
                return await client.post(
                    path, content=body, headers={**headers, "Content-Type": "application/json"}
                )
            return await client.post(path, json=body, headers=headers)

        answers = await asyncio.gather(*(one(*call) for call in calls.values()))
    return dict(zip(calls, answers, strict=True))


def test_events_and_hook_calls_sent_together_are_each_durable_and_a_bad_one_is_refused_alone(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_SECRET_KEY", "test-secret-key-for-the-writer")
    c, key, secret = _prepared(backend)
    app = create_app(c)
    try:
        with serving(app) as url:
            answers = asyncio.run(_send_together(url, key, secret))
            writer = app.state.writer
            grouped = (writer.groups, writer.changes) if writer is not None else None
        good = [name for name in answers if name.startswith("good-")]
        for name in good:
            assert answers[name].status_code == 200, answers[name].text
            assert answers[name].json()["key"].startswith("W-")
        for n in range(1, 8):
            assert answers[f"hook-{n}"].json() == {"id": f"h-{n}", "duplicate": False}
        twice = [answers[name].json() for name in ("hook-0", "hook-again")]
        assert sorted(a["duplicate"] for a in twice) == [False, True]  # one recorded, one not
        assert {a["id"] for a in twice} == {"h-0"}
        for name, status in (("bad-event", 422), ("bad-deal", 404), ("hook-unsigned", 401)):
            assert answers[name].status_code == status, answers[name].text
            assert answers[name].headers["content-type"].startswith("application/problem+json")
        stored = _stored_seqs(c)
        assert sorted(stored) == sorted(good + [f"hook-{n}" for n in range(8)])
        if backend.startswith("sqlite"):  # group commit: every change went through the writer
            assert grouped is not None
            groups, changes = grouped
            assert changes == len(answers) and 1 <= groups <= changes
        else:  # no group commit: the thread pool, no writer
            assert grouped is None
    finally:
        c.close()


def test_a_failed_commit_acknowledges_nothing_of_its_group(tmp_path) -> None:
    c, _key, _secret = _prepared(f"sqlite:///{tmp_path / 'w.db'}")
    writer = Writer(c)
    failing = {"on": True}

    @event.listens_for(c.engine, "commit")
    def refuse(_conn: Any) -> None:
        if failing["on"]:
            raise OSError("disk gone")

    deal = c.deal_id("W-1")

    def change(n: int) -> Any:
        return lambda: c.record_event(deal, "client_replied", data={"seq": f"lost-{n}"})

    async def together() -> list[Any]:
        return await asyncio.gather(
            *(writer.run(change(n), lambda v: v) for n in range(6)),
            writer.run(lambda: c.record_event(deal, "no_such_event"), lambda v: v),
            return_exceptions=True,
        )

    writer.start()
    try:
        answers = asyncio.run(together())
        failing["on"] = False
        after = asyncio.run(writer.run(change(99), lambda _v: "durable"))
    finally:
        writer.stop()
    # every request of a failed group hears the failure (the refusal too: it may have read the
    # group's writes); nothing of the group is in the database; the next group commits
    assert all(isinstance(a, Exception) for a in answers), answers
    assert sum("disk gone" in str(a) for a in answers) >= 6
    assert after == "durable"
    assert _stored_seqs(c) == ["lost-99"]
    c.close()
