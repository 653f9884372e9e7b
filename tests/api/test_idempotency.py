"""Idempotency-Key: the same key and body replay the first answer (sequentially and concurrently),
another body is 422; one deal, one firing."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from engine.api.app import create_app
from engine.clock import VirtualClock
from engine.core.conveyor import Conveyor
from engine.core.idempotency import LEASE, Replay
from engine.errors import Conflict, InvalidChange
from tests.api.conftest import Api, crashing_server, serving
from tests.support.database import rows

LEAD = {"funnel": "techflow", "title": "Idem"}


def _counts(url: str) -> tuple[int, int]:
    deals = rows(url, "SELECT count(*) FROM deals")[0][0]
    firings = rows(url, "SELECT count(*) FROM firings WHERE rule_id = 'assign_new_lead'")[0][0]
    return deals, firings


def test_a_replayed_post_returns_the_first_answer_and_changes_nothing(api: Api) -> None:
    with api.client("integration") as c:
        first = c.post("/api/v1/deals", json=LEAD, headers={"Idempotency-Key": "k-1"})
        again = c.post("/api/v1/deals", json=LEAD, headers={"Idempotency-Key": "k-1"})
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
        assert _counts(api.db) == (1, 1)
        other = c.post(
            "/api/v1/deals", json={**LEAD, "title": "Other"}, headers={"Idempotency-Key": "k-1"}
        )
        assert other.status_code == 422 and "different request" in other.json()["detail"]
        assert _counts(api.db) == (1, 1)
        refused = c.post(
            "/api/v1/deals/NOPE/events",
            json={"name": "client_replied"},
            headers={"Idempotency-Key": "k-2"},
        )
        assert refused.status_code == 404
        assert (
            c.post(
                "/api/v1/deals/NOPE/events",
                json={"name": "client_replied"},
                headers={"Idempotency-Key": "k-2"},
            ).json()
            == refused.json()
        )


def test_concurrent_requests_with_one_key_create_one_deal(api: Api) -> None:
    def send(_i: int) -> tuple[int, str]:
        with api.client("integration") as c:
            r = c.post("/api/v1/deals", json=LEAD, headers={"Idempotency-Key": "same"})
            return r.status_code, r.json()["key"]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, range(8)))
    assert {a for a in answers} == {answers[0]} and answers[0][0] == 201
    assert _counts(api.db) == (1, 1)


def test_each_caller_has_its_own_keys(api: Api) -> None:
    with api.client("integration") as a, api.client("manager") as b:
        a.post("/api/v1/deals", json=LEAD, headers={"Idempotency-Key": "shared"})
        b.post("/api/v1/deals", json=LEAD, headers={"Idempotency-Key": "shared"})
    assert _counts(api.db) == (2, 2)


class _Later:
    """The system clock, ``LEASE`` and a second ahead: what the server sees once a lease has lapsed."""

    def now(self) -> datetime:
        return datetime.now(UTC) + LEASE + LEASE / 30


def test_a_key_whose_request_was_killed_is_taken_over_once_its_lease_lapses(
    api: Api, tmp_path: Path
) -> None:
    """A server killed (SIGKILL) inside the request's transaction leaves a pending claim and no deal;
    once the claim's lease lapses (nobody renews it), the retry with the same key runs, and is then
    replayed as usual."""
    headers = {"Authorization": f"Bearer {api.keys['integration']}", "Idempotency-Key": "k-crash"}
    with crashing_server(api, r"^INSERT INTO outbox", tmp_path / "crash.log") as (url, proc):
        with pytest.raises(httpx.TransportError):
            httpx.post(f"{url}/api/v1/deals", json=LEAD, headers=headers, timeout=60)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    assert _counts(api.db) == (0, 0)
    assert rows(api.db, "SELECT status FROM idempotency_keys") == [("pending",)]
    later = Conveyor(api.db, clock=_Later())
    with serving(create_app(later)) as later_url:
        retried = httpx.post(f"{later_url}/api/v1/deals", json=LEAD, headers=headers, timeout=60)
    later.close()
    assert retried.status_code == 201 and "idempotent-replayed" not in retried.headers
    assert _counts(api.db) == (1, 1)
    with api.client("integration") as c:
        again = c.post("/api/v1/deals", json=LEAD, headers={"Idempotency-Key": "k-crash"})
    assert again.json() == retried.json() and again.headers["idempotent-replayed"] == "true"
    assert _counts(api.db) == (1, 1)


def test_a_renewed_claim_stays_its_requests_and_a_lapsed_one_is_taken_over(
    backend: str, clock: VirtualClock
) -> None:
    c = Conveyor(backend, clock=clock)
    idem = c.idempotency
    idem.wait_seconds = 0  # answer at once instead of waiting for the first request
    assert idem.begin("caller", "k", "body-1") is None
    clock.advance(LEASE * 2 / 3)
    idem.renew("caller", "k")  # what the running request does every third of its lease
    clock.advance(LEASE * 2 / 3)
    with pytest.raises(Conflict, match="still being processed"):
        idem.begin("caller", "k", "body-1")
    with pytest.raises(InvalidChange, match="different request"):
        idem.begin("caller", "k", "body-2")
    clock.advance(LEASE)  # no renewal for a whole lease: its request died
    with pytest.raises(InvalidChange, match="different request"):
        idem.begin("caller", "k", "body-2")  # a lapsed claim is still only the same request's
    assert idem.begin("caller", "k", "body-1") is None
    with pytest.raises(Conflict):
        idem.begin("caller", "k", "body-1")  # held again, by the request that took it over
    idem.finish("caller", "k", 201, "{}")
    assert idem.begin("caller", "k", "body-1") == Replay(201, "{}")
    c.close()
