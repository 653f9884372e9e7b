"""The website's lead form (token, whitelist, honeypot, rate limit, CORS) and proposal tracking links
(valid, forged, expired)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from engine.core.conveyor import Conveyor
from tests.api.conftest import Api
from tests.support.database import rows


def _form(api: Api, **kwargs: object) -> str:
    c = Conveyor(api.db)
    token = c.forms.create("techflow", **kwargs).token  # type: ignore[arg-type]
    c.close()
    return token


def _deals(api: Api) -> list[tuple]:
    return rows(api.db, "SELECT title, phone, email, fields FROM deals ORDER BY id")


def test_a_form_post_creates_a_lead_from_whitelisted_fields(api: Api) -> None:
    token = _form(
        api, fields=["title", "phone", "email", "source"], origins=["https://techflow.example"]
    )
    with api.client(None) as c:
        r = c.post(
            "/forms/techflow",
            data={
                "form_token": token,
                "title": "Web lead",
                "phone": "+380501234567",
                "email": "w@example.com",
                "source": "landing",
                "budget": "yes",
            },
        )
        assert r.status_code == 201 and "Thank you" in r.text
        j = c.post(
            "/forms/techflow",
            json={"form_token": token, "title": "JSON lead"},
            headers={"Origin": "https://techflow.example"},
        )
        assert j.status_code == 201 and j.json() == {"received": True}
        assert j.headers["access-control-allow-origin"] == "https://techflow.example"
        assert (
            c.post("/forms/techflow", data={"form_token": "form_forged", "title": "x"}).status_code
            == 401
        )
        assert c.post("/forms/techflow", json={"title": "no token"}).status_code == 401
        elsewhere = c.post(
            "/forms/techflow",
            json={"form_token": token},
            headers={"Origin": "https://evil.example"},
        )
        assert (
            elsewhere.status_code == 403 and "access-control-allow-origin" not in elsewhere.headers
        )
        pre = c.options(
            "/forms/techflow",
            headers={"Origin": "https://techflow.example", "Access-Control-Request-Method": "POST"},
        )
        assert (
            pre.status_code == 204
            and pre.headers["access-control-allow-origin"] == "https://techflow.example"
        )
        assert (
            c.options("/forms/techflow", headers={"Origin": "https://evil.example"}).status_code
            == 403
        )
    deals = _deals(api)
    assert [d[0] for d in deals] == ["Web lead", "JSON lead"]
    assert (
        deals[0][1] == "+380501234567"
        and "budget" not in str(deals[0][3])
        and "landing" in str(deals[0][3])
    )
    assert (
        rows(api.db, "SELECT count(*) FROM tasks")[0][0] == 2
    )  # each lead got its manager and first task


def test_the_honeypot_creates_nothing_and_answers_as_usual(api: Api) -> None:
    token = _form(api)
    with api.client(None) as c:
        r = c.post(
            "/forms/techflow",
            data={"form_token": token, "title": "Bot", "website_url": "http://spam.example"},
        )
        assert r.status_code == 201
    assert _deals(api) == []


def test_one_address_is_rate_limited(api: Api) -> None:
    token = _form(api, rate_per_hour=3)
    with api.client(None) as c:
        codes = [
            c.post("/forms/techflow", data={"form_token": token, "title": f"L{i}"}).status_code
            for i in range(5)
        ]
        assert codes == [201, 201, 201, 429, 429]
        r = c.post("/forms/techflow", data={"form_token": token, "title": "late"})
        assert int(r.headers["retry-after"]) > 0 and r.headers["content-type"].startswith(
            "application/problem+json"
        )
    assert len(_deals(api)) == 3


def _proposal(api: Api) -> tuple[Conveyor, int]:
    with api.client("manager") as c:
        c.post("/api/v1/deals", json={"funnel": "techflow", "key": "T-1", "title": "Tracked"})
        c.post(
            "/api/v1/deals/T-1/events",
            json={"name": "proposal_attached", "data": {"url": "https://docs.example/p/1"}},
        )
    conveyor = Conveyor(api.db)
    return conveyor, conveyor.deal_id("T-1")


def _opened(api: Api) -> int:
    return rows(api.db, "SELECT count(*) FROM deal_signals WHERE name = 'proposal_opened'")[0][0]


def test_a_valid_link_records_proposal_opened_once_and_redirects(api: Api) -> None:
    conveyor, deal_id = _proposal(api)
    link = conveyor.links.url(deal_id, "proposal_attached")
    assert link.startswith(api.url + "/t/")
    with api.client(None) as c:
        for _ in range(2):
            r = c.get(link)
            assert r.status_code == 303 and r.headers["location"] == "https://docs.example/p/1"
    assert _opened(api) == 1
    conveyor.close()


def test_a_forged_or_expired_link_records_nothing(api: Api) -> None:
    conveyor, deal_id = _proposal(api)
    token = conveyor.links.token(deal_id, "proposal_attached")
    expired = conveyor.links.token(
        deal_id, "proposal_attached", signed_at=datetime.now(UTC) - timedelta(days=31)
    )
    with api.client(None) as c:
        for bad in (
            token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
            expired,
            "nonsense",
            "a" * 400,
        ):
            r = c.get(f"/t/{bad}")
            assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
            assert "not valid or has expired" in r.text
    assert _opened(api) == 0
    conveyor.close()


def test_simultaneous_first_opens_of_a_link_record_it_once(api: Api) -> None:
    conveyor, deal_id = _proposal(api)
    link = conveyor.links.url(deal_id, "proposal_attached")

    def open_link(_i: int) -> tuple[int, str]:
        with api.client(None) as c:
            r = c.get(link)
            return r.status_code, r.headers.get("location", "")

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(open_link, range(12)))
    assert set(answers) == {(303, "https://docs.example/p/1")}
    assert _opened(api) == 1
    conveyor.close()


def test_a_new_proposal_makes_the_link_record_an_opening_again(api: Api) -> None:
    conveyor, deal_id = _proposal(api)
    link = conveyor.links.url(deal_id, "proposal_attached")
    with api.client(None) as c:
        assert c.get(link).headers["location"] == "https://docs.example/p/1"
    with api.client("manager") as m:
        m.post(
            "/api/v1/deals/T-1/events",
            json={"name": "proposal_attached", "data": {"url": "https://docs.example/p/2"}},
        )
    with api.client(None) as c:
        assert c.get(link).headers["location"] == "https://docs.example/p/2"
        assert c.get(link).status_code == 303
    assert _opened(api) == 2
    conveyor.close()
