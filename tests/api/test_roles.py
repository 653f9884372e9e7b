"""Every role refusal: 401 without a valid key, 403 for a role without the right, and neither says
whether the deal exists."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import Api

LEAD = {"funnel": "techflow", "key": "R-1", "title": "Roles"}
DOC_PATH = "/api/v1/funnels/techflow/versions"

#: (method, path, body) → roles refused with 403 (the others may).
CASES = [
    ("POST", "/api/v1/deals", LEAD, {"viewer"}),
    ("PATCH", "/api/v1/deals/R-1", {"fields": {"title": "x"}}, {"viewer"}),
    ("PATCH", "/api/v1/deals/R-1", {"manager": "Petro"}, {"viewer", "integration", "manager"}),
    ("POST", "/api/v1/deals/R-1/move", {"stage": "qualification"}, {"viewer", "integration"}),
    ("POST", "/api/v1/deals/R-1/events", {"name": "client_replied"}, {"viewer"}),
    ("POST", "/api/v1/deals/R-1/activities", {"kind": "call"}, {"viewer"}),
    ("GET", "/api/v1/tasks", None, {"integration"}),
    ("POST", "/api/v1/tasks/1/complete", None, {"viewer", "integration"}),
    ("GET", "/api/v1/actions", None, {"integration"}),
    ("POST", "/api/v1/actions/1/retry", None, {"viewer", "integration"}),
    ("GET", "/api/v1/funnels", None, {"integration"}),
    (
        "POST",
        "/api/v1/funnels/techflow/activate?version=1",
        None,
        {"viewer", "integration", "manager"},
    ),
    ("POST", DOC_PATH, {"format": "conveyor.ruleset/1"}, {"viewer", "integration", "manager"}),
    ("GET", "/api/v1/status", None, {"integration"}),
]


@pytest.mark.parametrize(
    "method,path,body,refused", CASES, ids=[f"{m} {p}" for m, p, _b, _r in CASES]
)
def test_roles_without_the_right_get_403_and_no_key_gets_401(
    api: Api, method: str, path: str, body: object, refused: set[str]
) -> None:
    with api.client(None) as anonymous:
        r = anonymous.request(method, path, json=body)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        r = anonymous.request(method, path, json=body, headers={"Authorization": "Bearer cv_wrong"})
        assert r.status_code == 401
    for role in refused:
        with api.client(role) as c:
            r = c.request(method, path, json=body)
            assert r.status_code == 403, (role, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert f"the {role} role may not" in r.json()["detail"]


def test_a_refused_role_learns_nothing_about_which_deals_exist(api: Api) -> None:
    with api.client("owner") as owner:
        owner.post("/api/v1/deals", json=LEAD)
    with api.client("integration") as c:
        existing = c.post("/api/v1/deals/R-1/move", json={"stage": "qualification"})
        missing = c.post("/api/v1/deals/NO-SUCH/move", json={"stage": "qualification"})
        assert existing.status_code == missing.status_code == 403
        assert existing.json()["detail"] == missing.json()["detail"]


@pytest.mark.parametrize("where", ["same process", "another process"])
def test_a_revoked_key_is_401(api: Api, where: str) -> None:
    """Revoked by the serving process: refused at once. Revoked elsewhere (the CLI): refused once the
    server's trust in the key lapses (``ApiKeys.trust_seconds``, a few seconds; 0 here)."""
    from engine.api.app import create_app
    from engine.core.conveyor import Conveyor
    from tests.api.conftest import serving

    server = Conveyor(api.db)
    elsewhere = Conveyor(api.db)
    if where == "another process":
        server.api_keys.trust_seconds = 0
    revoker = server if where == "same process" else elsewhere
    _info, key = elsewhere.api_keys.create("temporary", "manager")
    with (
        serving(create_app(server)) as url,
        httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as client,
    ):
        assert client.get("/api/v1/tasks").status_code == 200
        assert client.get("/api/v1/tasks").status_code == 200  # trusted from memory (same process)
        revoker.api_keys.revoke("temporary")
        assert client.get("/api/v1/tasks").status_code == 401
    server.close()
    elsewhere.close()
