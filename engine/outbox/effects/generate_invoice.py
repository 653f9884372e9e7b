"""``generate_invoice``: the next invoice number of the year, for ``amount`` or the deal's amount."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.core.audit import deal_change
from engine.outbox.effects.base import Core
from storage import repositories as repo
from storage.models import Deal, Firing, OutboxAction


def apply(
    core: Core, s: Session, deal: Deal, row: OutboxAction, firing: Firing, now: datetime
) -> dict[str, Any]:
    params = row.params or {}
    amount = params.get("amount")
    amount = float(deal.amount or 0) if amount is None else float(amount)
    seq = repo.next_invoice_seq(s)
    number = f"INV-{now.year}-{seq:05d}"
    repo.add_invoice(
        s, number=number, seq=seq, deal_id=deal.id, amount=amount, created_at=now, outbox_id=row.id
    )
    deal.invoice_number = number
    deal_change(
        s,
        deal,
        now,
        "invoice_generated",
        "engine",
        {"number": number, "amount": amount},
        rule=firing.rule_id,
    )
    return {"number": number, "amount": amount}
