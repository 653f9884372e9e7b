"""managers are notified where they are: a preferred channel and address, messages to managers

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

``managers`` gets ``notify_channel`` / ``notify_address`` (an address, never a secret). An outbox row
and its message may now be for a manager (``outbox.manager_id``) and belong to no rule firing (a
notification is independent of its rule's later actions) and, for the daily digest, to no deal.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("managers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notify_channel", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("notify_address", sa.String(length=200), nullable=True))
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("manager_id", ID, nullable=True))
        batch_op.alter_column("firing_id", existing_type=ID, nullable=True)
        batch_op.alter_column("deal_id", existing_type=ID, nullable=True)
        batch_op.create_foreign_key(
            "fk_outbox_manager_id_managers", "managers", ["manager_id"], ["id"]
        )
        batch_op.create_index(batch_op.f("ix_outbox_manager_id"), ["manager_id"], unique=False)
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.alter_column("deal_id", existing_type=ID, nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.alter_column("deal_id", existing_type=ID, nullable=False)
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_manager_id"))
        batch_op.drop_constraint("fk_outbox_manager_id_managers", type_="foreignkey")
        batch_op.alter_column("deal_id", existing_type=ID, nullable=False)
        batch_op.alter_column("firing_id", existing_type=ID, nullable=False)
        batch_op.drop_column("manager_id")
    with op.batch_alter_table("managers", schema=None) as batch_op:
        batch_op.drop_column("notify_address")
        batch_op.drop_column("notify_channel")
