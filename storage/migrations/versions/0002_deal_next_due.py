"""deals.next_due_at: the indexed instant at which a deal's time conditions may next turn true

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

Ticks select ``next_due_at <= now`` instead of scanning every open deal. Existing open deals are
marked due at their creation time, so the first tick after the upgrade evaluates each of them once
(what every tick did before) and stores its real next due instant.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_due_at", sa.DateTime(), nullable=True))
        batch_op.create_index("ix_deals_next_due_at", ["next_due_at"], unique=False)
    deals = sa.table(
        "deals",
        sa.column("next_due_at", sa.DateTime()),
        sa.column("created_at", sa.DateTime()),
        sa.column("closed", sa.Boolean()),
    )
    op.execute(
        deals.update().where(deals.c.closed == sa.false()).values(next_due_at=deals.c.created_at)
    )


def downgrade() -> None:
    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.drop_index("ix_deals_next_due_at")
        batch_op.drop_column("next_due_at")
