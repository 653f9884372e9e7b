"""An SMS quotes the invoice its own rule firing generated, even when the deal has moved on and got
a newer invoice before the SMS went out (the engine was down, or the gateway had a backlog)."""

from __future__ import annotations

from sqlalchemy import select

from engine.outbox.dispatcher import dispatch_internal, dispatch_messages, run_until_idle
from storage import repositories as repo
from storage.models import Firing, Invoice, Message, OutboxAction
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


def test_a_message_handed_out_before_its_invoice_waits_for_it(conveyor, monkeypatch) -> None:
    """The dispatcher checks again, where it renders, that the earlier actions of a message's rule
    are finished: an SMS claimed too early (the kill loop once saw one on PostgreSQL) is not rendered
    without its invoice number, nor counted as an attempt; it goes out once the invoice exists."""
    c = conveyor
    deal = c.create_deal(
        "techflow",
        key="C2",
        title="Acme",
        stage="contract",
        fields={"phone": GOOD_PHONE, "amount": 1000, **COUNTERPARTY},
    )

    def too_early(s, now, limit, kind=None):  # every pending row of the kind, order not looked at
        q = select(OutboxAction).where(OutboxAction.status == "pending").order_by(OutboxAction.id)
        return list(s.scalars(q.where(OutboxAction.kind == kind) if kind else q).all())[:limit]

    monkeypatch.setattr(repo, "claim_ready", too_early)
    assert dispatch_messages(c) == []  # the SMS was handed out, and left waiting
    with db_session(c) as s:
        [sms] = s.scalars(select(OutboxAction).where(OutboxAction.action == "send_sms"))
        assert (sms.status, sms.attempts) == ("pending", 0)
        assert s.scalar(select(Message).where(Message.outbox_id == sms.id)) is None
    monkeypatch.undo()
    run_until_idle(c)
    with db_session(c) as s:
        [number] = s.scalars(select(Invoice.number).where(Invoice.deal_id == deal))
        [text] = s.scalars(select(Message.text).where(Message.deal_id == deal))
    assert number in text
