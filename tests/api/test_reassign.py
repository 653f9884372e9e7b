"""``PATCH /api/v1/deals/{key}`` with ``manager``: an owner key gives the deal to another active
manager (its open tasks follow); a bad name is a 422 problem naming it; a repeat changes nothing."""

from __future__ import annotations

from tests.api.conftest import Api

LEAD = {
    "funnel": "techflow",
    "key": "GIVE-1",
    "title": "Acme",
    "phone": "+380501112233",
    "manager": "Olena",
}


def test_an_owner_key_gives_a_deal_to_another_manager(api: Api) -> None:
    with api.client("owner") as c:
        assert c.post("/api/v1/deals", json=LEAD).status_code == 201
        r = c.patch("/api/v1/deals/GIVE-1", json={"manager": "Petro"})
        assert r.status_code == 200, r.text
        deal = r.json()
        assert deal["manager"] == "Petro"
        assert deal["open_tasks"]
        tasks = c.get("/api/v1/tasks", params={"manager": "Petro", "status": "open"}).json()
        assert {t["deal"] for t in tasks["items"]} == {"GIVE-1"}
        again = c.patch("/api/v1/deals/GIVE-1", json={"manager": "Petro"})
        assert again.status_code == 200 and again.json()["manager"] == "Petro"


def test_an_unknown_manager_or_two_changes_at_once_is_a_422_problem(api: Api) -> None:
    with api.client("owner") as c:
        c.post("/api/v1/deals", json=LEAD)
        r = c.patch("/api/v1/deals/GIVE-1", json={"manager": "Petra"})
        assert r.status_code == 422
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "no manager named 'Petra'; did you mean 'Petro'" in r.json()["detail"]
        both = c.patch("/api/v1/deals/GIVE-1", json={"manager": "Petro", "fields": {"title": "x"}})
        assert both.status_code == 422
        assert "either fields or manager" in both.json()["detail"]
        assert c.get("/api/v1/deals/GIVE-1").json()["manager"] == "Olena"
