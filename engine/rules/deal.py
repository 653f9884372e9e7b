"""``DealState``: the snapshot of one deal that evaluation reads (pure data, no database)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: Deal attributes that are not custom fields of a funnel.
BUILTIN_FIELDS = ("title", "phone", "email", "amount")


@dataclass
class DealState:
    id: int
    key: str
    funnel: str
    stage: str
    created_at: datetime
    stage_entered_at: datetime
    stage_visit: int = 1
    activity_seq: int = 0
    title: str = ""
    phone: str = ""
    email: str = ""
    amount: float | None = None
    manager_id: int | None = None
    manager_name: str | None = None
    last_activity_at: datetime | None = None
    #: Declared events that happened: ``{name: {"at": ISO instant of the latest, "visit": stage visit}}``.
    signals: dict[str, Any] = field(default_factory=dict)
    invoice_number: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    def template_values(self, stage_name: str = "", funnel_name: str = "") -> dict[str, Any]:
        """What a message template may name: built-in deal fields plus every custom field."""
        values: dict[str, Any] = dict(self.fields)
        values.update(
            key=self.key,
            title=self.title,
            phone=self.phone,
            email=self.email,
            amount=self.amount,
            stage=self.stage,
            stage_name=stage_name or self.stage,
            funnel_name=funnel_name or self.funnel,
            manager_name=self.manager_name or "",
            invoice_number=self.invoice_number or "",
        )
        return values


#: Names a template may use besides the funnel's custom fields and its events' link placeholders.
TEMPLATE_BUILTINS = frozenset(
    BUILTIN_FIELDS
    + (
        "key",
        "stage",
        "stage_name",
        "funnel_name",
        "manager_name",
        "invoice_number",
    )
)
