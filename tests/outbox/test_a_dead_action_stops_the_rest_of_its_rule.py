"""A dead action marks the later actions of its rule dead (skipped, naming it); retrying it requeues them.

The invoice numbering is refused by a real trigger, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa

from engine.core.conveyor import Conveyor
from engine.outbox.dispatcher import (
    RetryPolicy,
    dispatch_internal,
    dispatch_messages,
    retry,
    run_until_idle,
)
from storage import repositories as repo
from storage.models import Deal, OutboxAction
from tests.support.database import refuse_inserts
from tests.support.funnels import funnel, rule
from tests.support.sessions import db_session

INVOICE = funnel(
    "billing",
    [
        rule(
            "invoice_and_sms",
            "start",
            [
                {"name": "generate_invoice", "params": {}},
                {"name": "send_sms", "params": {"text": "Please pay invoice {invoice_number}"}},
                {"name": "notify_manager", "params": {"text": "Invoice {invoice_number} sent"}},
            ],
        )
    ],
)


def _outbox(c: Conveyor, deal_id: int) -> list[tuple[str, str, str | None]]:
    with db_session(c) as s:
        rows = s.scalars(
            sa.select(OutboxAction)
            .where(OutboxAction.deal_id == deal_id)
            .order_by(OutboxAction.seq)
        )
        return [(r.action, r.status, r.last_error) for r in rows]


def test_a_dead_action_marks_the_later_actions_of_its_rule_dead_and_retry_requeues_them(
    conveyor, backend
):
    conveyor.save_ruleset(INVOICE)
    deal = conveyor.create_deal(
        "billing", title="Acme", fields={"phone": "+380501234567", "amount": 10}
    )
    repair = refuse_inserts(backend, "invoices", "invoice numbering is locked")
    once = RetryPolicy(max_attempts=1)
    dispatch_internal(conveyor, policy=once)
    dispatch_messages(conveyor, policy=once)
    rows = _outbox(conveyor, deal)
    first_id = _outbox_id(conveyor, deal, "generate_invoice")
    assert (
        rows[0][:2] == ("generate_invoice", "dead") and "invoice numbering is locked" in rows[0][2]
    )
    for action, status, error in rows[1:]:
        assert status == "dead", action
        assert error.startswith(f"skipped: earlier action {first_id} (generate_invoice) is dead: ")
    assert run_until_idle(conveyor) == []  # nothing runs without the invoice
    with db_session(conveyor) as s:
        assert repo.list_messages(s, deal) == [] and repo.list_tasks(s, deal_id=deal) == []

    repair()
    retry(conveyor, first_id)
    assert [status for _, status, _ in _outbox(conveyor, deal)] == ["pending"] * 3
    run_until_idle(conveyor)
    assert [status for _, status, _ in _outbox(conveyor, deal)] == ["done"] * 3
    with db_session(conveyor) as s:
        [message] = repo.list_messages(s, deal)
        number = s.get(Deal, deal).invoice_number
    assert number and message.text == f"Please pay invoice {number}"


def _outbox_id(c: Conveyor, deal_id: int, action: str) -> int:
    with db_session(c) as s:
        return s.scalar(
            sa.select(OutboxAction.id).where(
                OutboxAction.deal_id == deal_id, OutboxAction.action == action
            )
        )


def test_a_dead_message_skips_the_rest_of_its_rule(conveyor):
    conveyor.save_ruleset(INVOICE)
    deal = conveyor.create_deal("billing", title="Acme", fields={"phone": "not a phone"})
    run_until_idle(conveyor)
    rows = _outbox(conveyor, deal)
    assert [status for _, status, _ in rows] == ["done", "dead", "dead"]
    assert "bad phone number" in rows[1][2]
    assert rows[2][2].startswith(
        f"skipped: earlier action {_outbox_id(conveyor, deal, 'send_sms')} (send_sms)"
    )
