"""a user's interface language

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

One nullable column: users who never chose keep the installation's default (CONVEYOR_LANG).
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("language", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("language")
