"""Every resource of /api/v1 through a real uvicorn server, on both backends."""

from __future__ import annotations

from tests.api.conftest import Api

LEAD = {
    "funnel": "techflow",
    "key": "ACME-1",
    "title": "Acme",
    "phone": "+380501112233",
    "email": "a@acme.example",
}


def _qualified(c, key: str) -> None:
    r = c.patch(
        f"/api/v1/deals/{key}",
        json={"fields": {"budget": "yes", "authority": "yes", "need": "yes"}},
    )
    assert r.status_code == 200, r.text


def test_a_created_deal_has_a_manager_a_task_and_its_firing(api: Api) -> None:
    with api.client("manager") as c:
        r = c.post("/api/v1/deals", json=LEAD)
        assert r.status_code == 201, r.text
        deal = r.json()
        assert (
            deal["key"] == "ACME-1"
            and deal["stage"] == "incoming"
            and deal["manager"] in ("Olena", "Petro")
        )
        assert [t["title"] for t in deal["open_tasks"]] == ["Зателефонувати новому ліду Acme"]
        assert [f["rule_id"] for f in deal["firings"]] == ["assign_new_lead"]
        assert "stage" in deal["firings"][0]["values"]
        got = c.get("/api/v1/deals/ACME-1").json()
        assert got["title"] == "Acme" and got["phone"] == "+380501112233"


def test_patch_move_event_activity_and_a_guard_refusal(api: Api) -> None:
    with api.client("manager") as c:
        c.post("/api/v1/deals", json=LEAD)
        _qualified(c, "ACME-1")
        assert (
            c.post("/api/v1/deals/ACME-1/move", json={"stage": "qualification"}).json()["stage"]
            == "qualification"
        )
        assert c.post("/api/v1/deals/ACME-1/move", json={"stage": "proposal"}).status_code == 200
        r = c.post("/api/v1/deals/ACME-1/move", json={"stage": "contract"})
        assert r.status_code == 409
        assert r.headers["content-type"].startswith("application/problem+json")
        problem = r.json()
        assert "Counterparty: company name" in problem["detail"]
        assert {e["path"] for e in problem["errors"]} == {
            "fields.company_name",
            "fields.tax_id",
            "fields.billing_address",
        }
        r = c.post(
            "/api/v1/deals/ACME-1/events",
            json={"name": "proposal_attached", "data": {"url": "https://p.example/1"}},
        )
        assert r.status_code == 200, r.text
        assert "proposal_attached" in r.json()["events"]
        assert (
            c.post(
                "/api/v1/deals/ACME-1/activities", json={"kind": "call", "note": "talked"}
            ).status_code
            == 200
        )
        r = c.post("/api/v1/deals/ACME-1/events", json={"name": "proposal_atached"})
        assert r.status_code == 422 and "proposal_attached" in r.json()["detail"]


def test_bad_input_is_a_problem_naming_the_field(api: Api) -> None:
    with api.client("owner") as c:
        r = c.post("/api/v1/deals", json={**LEAD, "fields": {"budget": "maybe"}})
        assert r.status_code == 422
        assert r.json()["errors"][0]["path"] == "fields.budget"
        r = c.post("/api/v1/deals", json={"funnel": "techflow", "colour": "red"})
        assert r.status_code == 422 and r.json()["errors"][0]["path"] == "colour"
        r = c.post(
            "/api/v1/deals", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert r.status_code == 422 and "Traceback" not in r.text
        r = c.get("/api/v1/deals/NOPE")
        assert r.status_code == 404 and r.json()["detail"] == "no deal with key 'NOPE'"
        r = c.post(
            "/api/v1/deals", content=b"x" * 2_200_000, headers={"content-type": "application/json"}
        )
        assert r.status_code == 413


def test_tasks_are_paged_filtered_and_completed(api: Api) -> None:
    with api.client("manager") as c:
        for i in range(5):
            c.post("/api/v1/deals", json={"funnel": "techflow", "title": f"Lead {i}"})
        first = c.get("/api/v1/tasks", params={"limit": 2, "status": "open"}).json()
        assert len(first["items"]) == 2 and first["next_cursor"]
        seen = [t["id"] for t in first["items"]]
        cursor = first["next_cursor"]
        while cursor:
            page = c.get(
                "/api/v1/tasks", params={"limit": 2, "status": "open", "cursor": cursor}
            ).json()
            seen += [t["id"] for t in page["items"]]
            cursor = page["next_cursor"]
        assert seen == sorted(seen) and len(seen) == 5
        olena = c.get("/api/v1/tasks", params={"manager": "Olena"}).json()["items"]
        assert olena and all(t["manager"] == "Olena" for t in olena)
        assert (
            c.get("/api/v1/tasks", params={"due_before": "2000-01-01T00:00:00Z"}).json()["items"]
            == []
        )
        done = c.post(f"/api/v1/tasks/{seen[0]}/complete")
        assert done.status_code == 200 and done.json()["status"] == "done"
        assert c.post("/api/v1/tasks/999999/complete").status_code == 404
        assert c.get("/api/v1/tasks", params={"cursor": "%%%"}).status_code == 422


def test_actions_are_listed_and_a_dead_one_retried(api: Api) -> None:
    with api.client("manager") as c:
        c.post("/api/v1/deals", json=LEAD)
        actions = c.get("/api/v1/actions", params={"deal": "ACME-1"}).json()["items"]
        assert {a["action"] for a in actions} == {"assign_manager", "create_task"}
        assert all(a["status"] == "done" for a in actions)
        assert c.get("/api/v1/actions", params={"status": "dead"}).json()["items"] == []
        r = c.post(f"/api/v1/actions/{actions[0]['id']}/retry")
        assert r.status_code == 409 and "only failed or dead" in r.json()["detail"]


def test_funnels_versions_export_activate_and_a_refused_document(api: Api) -> None:
    with api.client("owner") as c:
        funnels = c.get("/api/v1/funnels").json()
        assert {f["id"] for f in funnels} == {"techflow", "project_work"}
        doc = c.get("/api/v1/funnels/techflow/export").json()
        rules = c.get("/api/v1/funnels/techflow/export", params={"format": "business-rules"}).json()
        assert isinstance(rules, list) and rules
        doc["rules"][0]["conditions"]["all"][0]["operator"] = "equal_too"
        r = c.post("/api/v1/funnels/techflow/versions", json=doc)
        assert r.status_code == 422
        assert r.json()["errors"][0]["path"].startswith("rules[0].conditions.all[0].operator")
        doc["rules"][0]["conditions"]["all"][0]["operator"] = "equal_to"
        r = c.post(
            "/api/v1/funnels/techflow/versions",
            params={"activate": "false", "comment": "via API"},
            json=doc,
        )
        assert r.status_code == 201 and r.json()["version"] == 2 and not r.json()["active"]
        versions = c.get("/api/v1/funnels/techflow/versions").json()
        assert [v["version"] for v in versions["items"]] == [2, 1]
        assert versions["next_cursor"] is None
        first = c.get("/api/v1/funnels/techflow/versions", params={"limit": 1}).json()
        assert [v["version"] for v in first["items"]] == [2]
        rest = c.get(
            "/api/v1/funnels/techflow/versions", params={"limit": 1, "cursor": first["next_cursor"]}
        ).json()
        assert [v["version"] for v in rest["items"]] == [1]
        assert c.post("/api/v1/funnels/techflow/activate", params={"version": 2}).json()["active"]
        assert c.post("/api/v1/funnels/techflow/activate", params={"version": 9}).status_code == 404
        events = c.get("/api/v1/funnels/techflow/events").json()
        assert "payment_received" in {e["name"] for e in events}


def test_status_shows_the_queue(api: Api) -> None:
    with api.client("viewer") as c:
        body = c.get("/api/v1/status").json()
        assert "actions" in body and "engines" in body and "problems" in body


def test_docs_are_served_without_a_cdn(api: Api) -> None:
    with api.client(None) as c:
        page = c.get("/docs").text
        assert "/docs/assets/swagger-ui-bundle.js" in page and "cdn" not in page.lower()
        assert c.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
        assert c.get("/openapi.json").json()["info"]["title"] == "Conveyor API"
