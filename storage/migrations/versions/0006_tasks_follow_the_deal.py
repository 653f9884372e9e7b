"""tasks follow the deal: the stage visit a task belongs to, and why it was closed

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

A task a stage's rule created records that stage and visit (``tasks.stage``, ``tasks.stage_visit``;
NULL for a task that outlives its stage: a rule without a stage condition, or an action with
``keep_after_stage_exit``). When the deal leaves that visit the task is closed as ``cancelled`` and
``tasks.closed_reason`` says why (``moved_to:<stage id>``). Existing tasks keep NULL: nothing is
cancelled retroactively.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("stage", sa.String(64), nullable=True))
        batch.add_column(sa.Column("stage_visit", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("closed_reason", sa.String(100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("closed_reason")
        batch.drop_column("stage_visit")
        batch.drop_column("stage")
