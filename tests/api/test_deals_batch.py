"""``POST /api/v1/deals:batch``: many deals of one funnel in one request, each checked; problem+json
naming each bad item's index and field for a strict or dry run; Idempotency-Key as on every POST."""

from __future__ import annotations

from tests.api.conftest import Api
from tests.support.database import rows

GOOD = [
    {"key": "B-1", "title": "Fair lead", "phone": "+380501234567", "fields": {"source": "fair"}},
    {"key": "B-2", "stage": "qualification", "fields": {"budget": "no"}},
    {"title": "No key"},
]
BAD = {"key": "B-9", "stage": "contract", "amount": -5, "fields": {"budget": "maybe"}}


def _count(api: Api, sql: str) -> int:
    return int(rows(api.db, sql)[0][0])


def test_a_batch_creates_every_deal_and_fires_their_rules(api: Api) -> None:
    with api.client("integration") as c:
        r = c.post("/api/v1/deals:batch", json={"funnel": "techflow", "deals": GOOD})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["imported"], body["skipped"], body["errors"]) == (3, 0, [])
    assert body["keys"][:2] == ["B-1", "B-2"] and body["keys"][2].startswith("D-")
    assert _count(api, "SELECT count(*) FROM deals") == 3
    fired = {r[0] for r in rows(api.db, "SELECT rule_id FROM firings")}
    assert fired == {"assign_new_lead", "qualification_no"}
    with api.client("integration") as c:
        deal = c.get("/api/v1/deals/B-1").json()
    assert deal["phone"] == "+380501234567" and deal["fields"]["source"] == "fair"


def test_a_strict_batch_with_a_bad_deal_is_a_problem_naming_it_and_writes_nothing(api: Api) -> None:
    with api.client("integration") as c:
        r = c.post(
            "/api/v1/deals:batch",
            json={"funnel": "techflow", "deals": [*GOOD, BAD], "strict": True},
        )
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    paths = sorted(e["path"] for e in r.json()["errors"])
    assert paths == ["deals[3].amount", "deals[3].fields.budget"]
    assert "1 of 4 deals are bad" in r.json()["detail"]
    assert _count(api, "SELECT count(*) FROM deals") == 0


def test_a_dry_run_reports_and_writes_nothing_and_a_plain_batch_imports_the_good_ones(
    api: Api,
) -> None:
    with api.client("integration") as c:
        dry = c.post(
            "/api/v1/deals:batch", json={"funnel": "techflow", "deals": GOOD, "dry_run": True}
        )
        assert dry.status_code == 200 and dry.json()["imported"] == 3
        assert _count(api, "SELECT count(*) FROM deals") == 0
        mixed = c.post("/api/v1/deals:batch", json={"funnel": "techflow", "deals": [BAD, *GOOD]})
    assert mixed.status_code == 200
    assert mixed.json()["imported"] == 3
    assert sorted(e["path"] for e in mixed.json()["errors"]) == [
        "deals[0].amount",
        "deals[0].fields.budget",
    ]


def test_a_replayed_batch_returns_the_first_answer_and_creates_nothing_more(api: Api) -> None:
    body = {"funnel": "techflow", "deals": GOOD}
    with api.client("integration") as c:
        first = c.post("/api/v1/deals:batch", json=body, headers={"Idempotency-Key": "batch-1"})
        again = c.post("/api/v1/deals:batch", json=body, headers={"Idempotency-Key": "batch-1"})
        other = c.post(
            "/api/v1/deals:batch",
            json={**body, "deals": GOOD[:1]},
            headers={"Idempotency-Key": "batch-1"},
        )
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert other.status_code == 422
    assert _count(api, "SELECT count(*) FROM deals") == 3


def test_a_viewer_may_not_post_a_batch_and_a_batch_over_the_limit_is_refused(api: Api) -> None:
    with api.client("viewer") as c:
        r = c.post("/api/v1/deals:batch", json={"funnel": "techflow", "deals": GOOD})
    assert r.status_code == 403
    with api.client("integration") as c:
        r = c.post(
            "/api/v1/deals:batch",
            json={"funnel": "techflow", "deals": [{"title": "x"}] * 1001},
        )
    assert r.status_code == 422 and r.json()["errors"][0]["path"].startswith("deals")
    assert _count(api, "SELECT count(*) FROM deals") == 0
