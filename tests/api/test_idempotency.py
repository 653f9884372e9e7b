"""Idempotency-Key: the same key and body replay the first answer (sequentially and concurrently),
another body is 422; one deal, one firing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.api.conftest import Api
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
