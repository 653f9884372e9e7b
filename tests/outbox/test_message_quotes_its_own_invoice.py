"""An SMS quotes the invoice its own rule firing generated, even when the deal has moved on and got
a newer invoice before the SMS went out (the engine was down, or the gateway had a backlog)."""

from __future__ import annotations

from sqlalchemy import select

from engine.outbox.dispatcher import dispatch_internal, run_until_idle
from storage.models import Firing, Invoice, Message
from tests.support.engine_world import COUNTERPARTY, GOOD_PHONE
from tests.support.sessions import db_session


def test_sms_sent_after_a_second_contract_visit_quotes_the_first_invoice(conveyor) -> None:
    c = conveyor
    deal = c.create_deal(
        "techflow",
        key="C1",
        title="Acme",
        stage="contract",
        fields={"phone": GOOD_PHONE, "amount": 1000, **COUNTERPARTY},
    )
    dispatch_internal(c)  # the first invoice is generated; its SMS is not sent yet
    for stage in ("cold_call", "qualification", "proposal", "contract"):
        c.move_deal(deal, stage)
    run_until_idle(c)
    with db_session(c) as s:
        numbers = sorted(s.scalars(select(Invoice.number).where(Invoice.deal_id == deal)))
        texts = sorted(m.text for m in s.scalars(select(Message).where(Message.deal_id == deal)))
        firings = list(
            s.scalars(
                select(Firing).where(
                    Firing.deal_id == deal, Firing.rule_id == "contract_invoice_sms"
                )
            )
        )
    assert len(numbers) == 2, numbers
    assert len(texts) == 2, texts
    assert len(firings) == 2
    # Each SMS names a different invoice: one per contract visit, none quoting the other's.
    assert [sum(n in t for t in texts) for n in numbers] == [1, 1], texts
