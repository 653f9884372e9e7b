"""index deals and outbox rows by manager only where they have one

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01

``ix_deals_manager_id`` and ``ix_outbox_manager_id`` become partial (``WHERE manager_id IS NOT
NULL``). Every query that reads them names a manager (``manager_id = ?``) or asks for deals that
have one (``IS NOT NULL``), both of which imply the index's condition on SQLite and PostgreSQL, so
their plans do not change; but a rule's outbox rows never have a manager and a new lead has none
until ``assign_manager`` runs, so a bulk import of 100,000 leads (141,500 outbox rows) wrote about
240,000 index entries that no query could ever find (docs/performance.md, Bulk import).
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

HAS_ONE = sa.text("manager_id IS NOT NULL")


def upgrade() -> None:
    for table in ("deals", "outbox"):
        op.drop_index(f"ix_{table}_manager_id", table_name=table)
        op.create_index(
            f"ix_{table}_manager_id",
            table,
            ["manager_id"],
            unique=False,
            sqlite_where=HAS_ONE,
            postgresql_where=HAS_ONE,
        )


def downgrade() -> None:
    for table in ("deals", "outbox"):
        op.drop_index(f"ix_{table}_manager_id", table_name=table)
        op.create_index(f"ix_{table}_manager_id", table, ["manager_id"], unique=False)
