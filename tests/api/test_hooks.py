"""Signed inbound webhooks: a good call, a bad signature, a stale timestamp, a replayed id, a rotated
secret, a foreign payload mapped by JSON pointers; every call logged."""

from __future__ import annotations

import json
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from engine.core.conveyor import Conveyor
from engine.core.hooks import parse_mapping, sign
from tests.api.conftest import Api, crashing_server
from tests.support.database import rows


def _deal(api: Api, key: str = "H-1") -> None:
    with api.client("manager") as c:
        assert (
            c.post(
                "/api/v1/deals", json={"funnel": "techflow", "key": key, "title": "Hooked"}
            ).status_code
            == 201
        )


def _post(
    api: Api, name: str, secret: str, body: dict, *, t: int | None = None, mac: str | None = None
):
    raw = json.dumps(body).encode()
    header = sign(secret, int(time.time()) if t is None else t, raw)
    if mac is not None:
        header = header.split(",v1=")[0] + f",v1={mac}"
    with api.client(None) as c:
        return c.post(
            f"/hooks/{name}",
            content=raw,
            headers={"Conveyor-Signature": header, "content-type": "application/json"},
        )


def _signals(api: Api, name: str) -> int:
    return rows(api.db, "SELECT count(*) FROM deal_signals WHERE name = :n", n=name)[0][0]


def test_a_signed_call_records_its_event_once(api: Api) -> None:
    _deal(api)
    c = Conveyor(api.db)
    _info, secret = c.hooks.create("bank")
    event = {"id": "evt-1", "deal": "H-1", "event": "payment_received", "data": {"amount": 1200}}
    r = _post(api, "bank", secret, event)
    assert r.status_code == 200 and r.json() == {"id": "evt-1", "duplicate": False}
    again = _post(api, "bank", secret, event)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert _signals(api, "payment_received") == 1
    with api.client("viewer") as v:
        deal = v.get("/api/v1/deals/H-1").json()
    assert deal["stage"] == "paid" and deal["fields"]["paid_amount"] == 1200
    assert [f["rule_id"] for f in deal["firings"]].count("payment_to_paid") == 1
    outcomes = [(call.event_id, call.outcome) for call in c.hooks.calls()]
    assert outcomes[:2] == [("evt-1", "duplicate"), ("evt-1", "accepted")]
    c.close()


def test_a_bad_signature_or_a_stale_timestamp_is_401_and_changes_nothing(api: Api) -> None:
    _deal(api)
    c = Conveyor(api.db)
    _info, secret = c.hooks.create("bank")
    event = {"id": "evt-2", "deal": "H-1", "event": "payment_received"}
    assert _post(api, "bank", secret, event, mac="0" * 64).status_code == 401
    assert _post(api, "bank", "whsec_not_the_secret", event).status_code == 401
    stale = _post(api, "bank", secret, event, t=int(time.time()) - 301)
    assert stale.status_code == 401 and "5 minutes" in stale.json()["detail"]
    assert _post(api, "unknown", secret, event).status_code == 401
    with api.client(None) as anonymous:
        assert anonymous.post("/hooks/bank", json=event).status_code == 401  # no signature at all
    assert _signals(api, "payment_received") == 0
    assert {call.outcome for call in c.hooks.calls()} == {"refused"}
    # the refused id was not taken: the real delivery still counts
    assert _post(api, "bank", secret, event).json()["duplicate"] is False
    c.close()


def test_a_rotated_secret_keeps_the_old_one_for_its_grace_period(api: Api) -> None:
    _deal(api)
    c = Conveyor(api.db)
    _info, old = c.hooks.create("bank")
    new = c.hooks.rotate("bank", grace=timedelta(hours=1))
    assert (
        _post(api, "bank", old, {"id": "a", "deal": "H-1", "event": "client_replied"}).status_code
        == 200
    )
    assert (
        _post(api, "bank", new, {"id": "b", "deal": "H-1", "event": "client_replied"}).status_code
        == 200
    )
    newer = c.hooks.rotate("bank", grace=timedelta(0))
    assert (
        _post(api, "bank", new, {"id": "c", "deal": "H-1", "event": "client_replied"}).status_code
        == 401
    )
    assert (
        _post(api, "bank", newer, {"id": "d", "deal": "H-1", "event": "client_replied"}).status_code
        == 200
    )
    c.close()


def test_a_foreign_payload_is_mapped_by_json_pointers(api: Api) -> None:
    _deal(api, "ORDER-77")
    c = Conveyor(api.db)
    _info, secret = c.hooks.create(
        "privat",
        parse_mapping(["/payment/id=id", "/order_id=deal", "/amount=data.amount"]),
        event="payment_received",
    )
    r = _post(
        api, "privat", secret, {"order_id": "ORDER-77", "amount": 500, "payment": {"id": 98765}}
    )
    assert r.status_code == 200 and r.json()["id"] == "98765"
    bad = _post(api, "privat", secret, {"amount": 500, "payment": {"id": 1}})
    assert bad.status_code == 422 and "deal" in bad.json()["detail"]
    c.close()
    assert rows(api.db, "SELECT count(*) FROM hook_calls")[0][0] == 2


def test_hook_secrets_are_stored_encrypted(api: Api) -> None:
    c = Conveyor(api.db)
    _info, secret = c.hooks.create("bank")
    c.close()
    stored = rows(api.db, "SELECT secret_enc FROM hooks")[0][0]
    assert secret not in stored and secret[6:] not in stored


def test_a_delivery_whose_server_was_killed_mid_transaction_is_processed_when_redelivered(
    api: Api, tmp_path: Path
) -> None:
    """The claim of the id, the event, its firing and outbox row are one transaction: a server killed
    (SIGKILL) after the claim and the event were written, before the outbox row, left nothing, so the
    bank's retry is processed, not answered as a duplicate."""
    _deal(api)
    c = Conveyor(api.db)
    _info, secret = c.hooks.create("bank")
    event = {"id": "evt-k", "deal": "H-1", "event": "payment_received", "data": {"amount": 900}}
    raw = json.dumps(event).encode()
    with crashing_server(api, r"^INSERT INTO outbox", tmp_path / "crash.log") as (url, proc):
        with pytest.raises(httpx.TransportError):
            httpx.post(
                f"{url}/hooks/bank",
                content=raw,
                headers={"Conveyor-Signature": sign(secret, int(time.time()), raw)},
                timeout=60,
            )
        assert proc.wait(timeout=30) == -signal.SIGKILL
    assert _signals(api, "payment_received") == 0
    assert rows(api.db, "SELECT count(*) FROM hook_events")[0][0] == 0
    retried = _post(api, "bank", secret, event)
    assert retried.status_code == 200 and retried.json() == {"id": "evt-k", "duplicate": False}
    assert _post(api, "bank", secret, event).json()["duplicate"] is True
    assert _signals(api, "payment_received") == 1
    with api.client("viewer") as v:
        deal = v.get("/api/v1/deals/H-1").json()
    assert deal["stage"] == "paid"
    assert [f["rule_id"] for f in deal["firings"]].count("payment_to_paid") == 1
    c.close()


def test_simultaneous_deliveries_of_one_id_record_it_once(api: Api) -> None:
    _deal(api)
    c = Conveyor(api.db)
    _info, secret = c.hooks.create("bank")
    event = {"id": "evt-c", "deal": "H-1", "event": "payment_received", "data": {"amount": 700}}
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _i: _post(api, "bank", secret, event), range(8)))
    assert [r.status_code for r in answers] == [200] * 8
    assert sorted(r.json()["duplicate"] for r in answers) == [False] + [True] * 7
    assert _signals(api, "payment_received") == 1
    assert rows(api.db, "SELECT count(*) FROM firings WHERE rule_id = 'payment_to_paid'")[0][0] == 1
    c.close()
