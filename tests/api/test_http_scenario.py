"""The whole funnel through HTTP alone: a website lead, its manager and task, qualification, a
proposal whose link the client opens, the bank's signed payment, Paid and "Project work" — each rule
firing once. The operator's set-up is the CLI (`forms create`, `hooks create`); the engine service
runs beside the API and sends the client's message with the link."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from engine.core.hooks import sign
from tests.api.conftest import Api
from tests.support.database import rows
from tests.support.processes import ROOT

PROPOSAL_SMS = {
    "id": "proposal_link_sms",
    "name": "Proposal attached: send the client the link",
    "conditions": {
        "all": [
            {"name": "stage", "operator": "equal_to", "value": "proposal"},
            {"name": "proposal_attached", "operator": "is_true", "value": None},
        ]
    },
    "actions": [
        {"name": "send_sms", "params": {"text": "{title}: your proposal is at {proposal_link}"}}
    ],
}


def _cli(api: Api, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CONVEYOR_DB": api.db}
    out = subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def _wait(what: str, check, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_website_lead_is_paid_and_starts_project_work_through_http(api: Api, tmp_path) -> None:
    form_token = _cli(api, "forms", "create", "techflow", "--field", "title", "--field", "phone")
    bank_secret = _cli(
        api,
        "hooks",
        "create",
        "bank",
        "--map",
        "/order=deal",
        "--map",
        "/txn=id",
        "--map",
        "/sum=data.amount",
        "--event",
        "payment_received",
    )
    engine_log = (tmp_path / "engine.log").open("wb")
    engine = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "engine", "--tick-seconds", "1"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "CONVEYOR_DB": api.db},
        stdout=engine_log,
        stderr=subprocess.STDOUT,
    )
    try:
        with (
            api.client("owner") as owner,
            api.client("manager") as manager,
            api.client(None) as public,
        ):
            doc = owner.get("/api/v1/funnels/techflow/export").json()
            doc["rules"].append(PROPOSAL_SMS)
            assert (
                owner.post(
                    "/api/v1/funnels/techflow/versions",
                    json=doc,
                    params={"comment": "send the proposal link"},
                ).status_code
                == 201
            )

            r = public.post(
                "/forms/techflow",
                data={"form_token": form_token, "title": "Acme web lead", "phone": "+380501234567"},
            )
            assert r.status_code == 201
            tasks = manager.get("/api/v1/tasks", params={"status": "open"}).json()["items"]
            assert [t["title"] for t in tasks] == ["Зателефонувати новому ліду Acme web lead"]
            key = tasks[0]["deal"]
            deal = manager.get(f"/api/v1/deals/{key}").json()
            assert deal["manager"] in ("Olena", "Petro") and deal["stage"] == "incoming"

            assert (
                manager.patch(
                    f"/api/v1/deals/{key}",
                    json={"fields": {"budget": "yes", "authority": "yes", "need": "yes"}},
                ).status_code
                == 200
            )
            assert (
                manager.post(
                    f"/api/v1/deals/{key}/move", json={"stage": "qualification"}
                ).status_code
                == 200
            )
            assert (
                manager.post(f"/api/v1/deals/{key}/move", json={"stage": "proposal"}).status_code
                == 200
            )
            r = manager.post(
                f"/api/v1/deals/{key}/events",
                json={
                    "name": "proposal_attached",
                    "data": {"url": "https://docs.techflow.example/p/acme"},
                },
            )
            assert r.status_code == 200

            text = _wait(
                "the SMS with the link",
                lambda: rows(api.db, "SELECT text FROM messages WHERE text LIKE '%/t/%'"),
            )[0][0]
            link = text.split("your proposal is at ")[1].strip()
            assert link.startswith(api.url + "/t/")
            opened = public.get(link)
            assert (
                opened.status_code == 303
                and opened.headers["location"] == "https://docs.techflow.example/p/acme"
            )
            assert "proposal_opened" in manager.get(f"/api/v1/deals/{key}").json()["events"]

            body = json.dumps({"order": key, "txn": "PAY-1", "sum": 45000}).encode()
            for _ in range(2):  # the bank retries: the second delivery is a duplicate
                r = public.post(
                    "/hooks/bank",
                    content=body,
                    headers={
                        "Conveyor-Signature": sign(bank_secret, int(time.time()), body),
                        "content-type": "application/json",
                    },
                )
                assert r.status_code == 200
            assert r.json()["duplicate"] is True

            deal = manager.get(f"/api/v1/deals/{key}").json()
            assert deal["stage"] == "paid" and deal["fields"]["paid_amount"] == 45000
            fired = [f["rule_id"] for f in deal["firings"]]
            assert set(fired) >= {
                "assign_new_lead",
                "proposal_attached",
                "proposal_link_sms",
                "payment_to_paid",
                "paid_start_project",
            }
            assert len(fired) == len(set(fired)), fired  # each rule fired once
            project = rows(
                api.db,
                "SELECT d.title, d.funnel_id FROM deals d JOIN deals p ON d.parent_deal_id = p.id"
                " WHERE p.key = :k",
                k=key,
            )
            assert project == [("Проєкт: Acme web lead", "project_work")]
            actions = manager.get("/api/v1/actions", params={"deal": key}).json()["items"]
            assert [a["action"] for a in actions].count("start_process") == 1
            assert rows(api.db, "SELECT count(*) FROM messages WHERE text LIKE '%/t/%'")[0][0] == 1
    finally:
        engine.terminate()
        engine.wait(timeout=30)
        engine_log.close()
