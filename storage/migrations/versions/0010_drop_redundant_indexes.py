"""drop the single-column indexes that a unique key already leads with

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

``ix_firings_deal_id`` repeats the first column of ``uq_firing_occurrence`` (deal, rule, occurrence)
and ``ix_outbox_firing_id`` the first of ``uq_outbox_firing_seq`` (firing, seq): every lookup by deal
or by firing (and PostgreSQL's foreign-key checks) is served by the unique index, while each extra
index costs one more random page per firing written. A tick of 1,000 due deals among 1,000,000
wrote 741 of its 3,054 pages into ``ix_firings_deal_id`` (docs/performance.md).
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_firings_deal_id", table_name="firings")
    op.drop_index("ix_outbox_firing_id", table_name="outbox")


def downgrade() -> None:
    op.create_index("ix_outbox_firing_id", "outbox", ["firing_id"], unique=False)
    op.create_index("ix_firings_deal_id", "firings", ["deal_id"], unique=False)
