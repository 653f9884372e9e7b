"""declared events: one deal_signals table and a deals.signals summary instead of four event columns

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

A funnel now declares its own events; storage keeps their occurrences in ``deal_signals`` (deal,
name, at, stage visit, data), indexed on (deal, name, at), and the latest of each on the deal row
(``deals.signals`` = ``{name: {"at": ISO instant, "visit": n}}``) so evaluation reads it with the row.
Each non-null ``proposal_attached_at`` / ``proposal_opened_at`` / ``client_replied_at`` /
``payment_received_at`` becomes one row under the sample funnel's event of that name, in the deal's
current stage visit (so every existing deal's variables read as they did), and the columns go.
Stored rule-set versions read those four as built-in variables; each version that does not
declare events yet gets them declared (``EVENTS``, as the sample funnel does), so every stored
funnel keeps evaluating as before. The downgrade restores the columns from the rows (the latest
instant; for a payment the first, as before) and removes ``events`` from stored documents again.
"""

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
#: The former columns and the event each one becomes (named as the sample funnel declares them).
COLUMNS = {
    "proposal_attached_at": "proposal_attached",
    "proposal_opened_at": "proposal_opened",
    "client_replied_at": "client_replied",
    "payment_received_at": "payment_received",
}
BATCH = 1000
#: Declarations of the four former built-ins, added to stored documents that declare no events.
EVENTS = [
    {"name": "proposal_attached", "label": "Proposal attached", "by": "manager", "fields": {}},
    {
        "name": "proposal_opened",
        "label": "Client opened the proposal",
        "by": "client",
        "fields": {},
    },
    {"name": "client_replied", "label": "Client replied", "by": "client", "fields": {}},
    {"name": "payment_received", "label": "Payment received", "by": "client", "fields": {}},
]


def _rewrite_documents(change: Callable[[dict[str, Any]], dict[str, Any] | None]) -> None:
    """Apply ``change(doc) -> doc | None`` to every stored rule-set document (None: leave it)."""
    bind = op.get_bind()
    versions = sa.table("ruleset_versions", sa.column("id", ID), sa.column("document", sa.Text()))
    for version_id, text in bind.execute(sa.select(versions.c.id, versions.c.document)).all():
        new = change(json.loads(text))
        if new is not None:  # written as RuleSet.to_json writes a document
            bind.execute(
                versions.update()
                .where(versions.c.id == version_id)
                .values(document=json.dumps(new, ensure_ascii=False, indent=2) + "\n")
            )


def _declare_former_events(doc: dict[str, Any]) -> dict[str, Any] | None:
    if "events" in doc:
        return None
    fields = {f.get("name") for f in doc.get("fields", []) if isinstance(f, dict)}
    out: dict[str, Any] = {}
    for key, value in doc.items():
        out[key] = value
        if key == "fields":
            out["events"] = [e for e in EVENTS if e["name"] not in fields]
    if "events" not in out:
        out["events"] = [e for e in EVENTS if e["name"] not in fields]
    return out


def _drop_events(doc: dict[str, Any]) -> dict[str, Any] | None:
    if "events" not in doc:
        return None
    return {k: v for k, v in doc.items() if k != "events"}


def _iso(at: datetime) -> str:
    # Stored naive UTC; the summary spells it as engine.rules.registry.with_event does.
    return at.replace(tzinfo=UTC).isoformat(timespec="microseconds")


def _drop_columns(table: str, names: list[str]) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite" and sqlite3.sqlite_version_info >= (3, 35):
        # Natively: a batch copy would DROP the table that deal_events, firings... reference,
        # which fails under PRAGMA foreign_keys=ON (and that pragma cannot change in a transaction).
        for name in names:
            op.execute(f"ALTER TABLE {table} DROP COLUMN {name}")
        return
    with op.batch_alter_table(table, schema=None) as batch_op:
        for name in names:
            batch_op.drop_column(name)


def upgrade() -> None:
    op.create_table(
        "deal_signals",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("deal_id", ID, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("stage_visit", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["deal_id"],
            ["deals.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_deal_signals_deal_name_at", "deal_signals", ["deal_id", "name", "at"], unique=False
    )
    op.add_column(
        "deals", sa.Column("signals", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
    )

    bind = op.get_bind()
    deals = sa.table(
        "deals",
        sa.column("id", ID),
        sa.column("stage_visit", sa.Integer()),
        sa.column("updated_at", sa.DateTime()),
        sa.column("signals", sa.JSON()),
        *(sa.column(c, sa.DateTime()) for c in COLUMNS),
    )
    signals = sa.table(
        "deal_signals",
        sa.column("deal_id", ID),
        sa.column("name", sa.String()),
        sa.column("at", sa.DateTime()),
        sa.column("stage_visit", sa.Integer()),
        sa.column("data", sa.JSON()),
        sa.column("created_at", sa.DateTime()),
    )
    query = (
        sa.select(
            deals.c.id, deals.c.stage_visit, deals.c.updated_at, *(deals.c[c] for c in COLUMNS)
        )
        .where(sa.or_(*(deals.c[c].is_not(None) for c in COLUMNS)))
        .order_by(deals.c.id)
    )
    last_id = None
    while True:
        page = query if last_id is None else query.where(deals.c.id > last_id)
        rows = bind.execute(page.limit(BATCH)).all()
        if not rows:
            break
        inserts: list[dict[str, Any]] = []
        for row in rows:
            summary = {}
            for column, name in COLUMNS.items():
                at = getattr(row, column)
                if at is None:
                    continue
                inserts.append(
                    dict(
                        deal_id=row.id,
                        name=name,
                        at=at,
                        stage_visit=row.stage_visit,
                        data={},
                        created_at=row.updated_at,
                    )
                )
                summary[name] = {"at": _iso(at), "visit": row.stage_visit}
            bind.execute(deals.update().where(deals.c.id == row.id).values(signals=summary))
        bind.execute(signals.insert(), inserts)
        last_id = rows[-1].id
    _drop_columns("deals", list(COLUMNS))
    _rewrite_documents(_declare_former_events)


def downgrade() -> None:
    _rewrite_documents(_drop_events)
    for column in COLUMNS:
        op.add_column("deals", sa.Column(column, sa.DateTime(), nullable=True))
    deals = sa.table("deals", sa.column("id", ID), *(sa.column(c, sa.DateTime()) for c in COLUMNS))
    signals = sa.table(
        "deal_signals",
        sa.column("deal_id", ID),
        sa.column("name", sa.String()),
        sa.column("at", sa.DateTime()),
    )
    for column, name in COLUMNS.items():
        # Before 0003 a payment kept its first instant, the other three their latest.
        pick = sa.func.min if name == "payment_received" else sa.func.max
        latest = (
            sa.select(pick(signals.c.at))
            .where(signals.c.deal_id == deals.c.id, signals.c.name == name)
            .scalar_subquery()
        )
        op.execute(deals.update().values({column: latest}))
    _drop_columns("deals", ["signals"])
    op.drop_index("ix_deal_signals_deal_name_at", table_name="deal_signals")
    op.drop_table("deal_signals")
