"""A change through the API answers with the internal actions it queued already applied, and looks
for ready internal actions only when its change queued some."""

from __future__ import annotations

import pytest

from engine.outbox.dispatcher import Dispatcher
from tests.api.conftest import Api
from tests.api.test_resources import LEAD


@pytest.fixture
def looks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per ``apply_internal`` call of the server (it runs in this process)."""
    calls: list[int] = []
    real = Dispatcher.apply_internal

    def counting(self: Dispatcher, rounds: int = 50):  # type: ignore[no-untyped-def]
        calls.append(rounds)
        return real(self, rounds)

    monkeypatch.setattr(Dispatcher, "apply_internal", counting)
    return calls


def test_an_event_answers_with_the_task_it_queued_and_one_that_queues_none_looks_for_none(
    api: Api, looks: list[int]
) -> None:
    with api.client("manager") as c:
        c.post("/api/v1/deals", json=LEAD)
        qualified = {"fields": {"budget": "yes", "authority": "yes", "need": "yes"}}
        assert c.patch("/api/v1/deals/ACME-1", json=qualified).status_code == 200
        c.post("/api/v1/deals/ACME-1/move", json={"stage": "qualification"})
        c.post("/api/v1/deals/ACME-1/move", json={"stage": "proposal"})
        looks.clear()
        r = c.post(
            "/api/v1/deals/ACME-1/events",
            json={"name": "proposal_attached", "data": {"url": "https://p.example/1"}},
        )
        assert r.status_code == 200, r.text
        assert looks, "the event queued internal actions: they are applied before the answer"
        assert any("КП" in t["title"] for t in r.json()["open_tasks"])

        looks.clear()
        r = c.post("/api/v1/deals/ACME-1/activities", json={"kind": "note", "note": "fine"})
        assert r.status_code == 200, r.text
        assert looks == []
