"""A message to a manager (here a digest that died) is an action of /api/v1/actions like any other:
listed with the manager it is for, and retried with POST …/retry (the answer names it, no 404)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from engine.core.conveyor import Conveyor
from engine.outbox import manager_messages
from storage.models import OutboxAction
from tests.api.conftest import Api
from tests.support.sessions import db_session


def test_a_dead_digest_is_listed_with_its_manager_and_retried(api: Api) -> None:
    setup = Conveyor(api.db)
    olena = next(m.id for m in setup.deals.managers() if m.name == "Olena")
    with db_session(setup) as s:
        manager_messages.queue(
            s,
            manager_id=olena,
            deal_id=None,
            text="Good morning",
            subject="Your tasks",
            key="digest:test",
            now=datetime.now(UTC),
            action=manager_messages.DIGEST,
        )
        row = s.scalar(select(OutboxAction).where(OutboxAction.idempotency_key == "digest:test"))
        row.status, row.last_error = "dead", "telegram refused: Bad Request: chat not found"
        s.commit()
        outbox_id = row.id
    setup.close()
    with api.client("owner") as c:
        [item] = c.get("/api/v1/actions", params={"status": "dead"}).json()["items"]
        assert item["id"] == outbox_id and item["manager"] == "Olena"
        assert item["deal"] == "" and item["rule_id"] == "manager_digest"
        r = c.post(f"/api/v1/actions/{outbox_id}/retry")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "pending" and r.json()["manager"] == "Olena"
