"""a task's title in each language its rule wrote it in

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01

One nullable column: tasks made before it keep their one title, shown as it is.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("titles", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("titles")
