"""tracking links declared by funnels; idempotency claims held by a lease

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

``idempotency_keys.lease_until``: a pending claim belongs to its request only while the request
renews the lease; a claim whose request died (the process killed) lapses and the same key may be
used again, instead of answering 409 until it is purged. A pending claim of an older version has no
lease: it counts as held for one lease from its creation.

Until now the engine knew the sample funnel's ``{proposal_link}``: the link to the ``url`` of
``proposal_attached`` whose opening records ``proposal_opened``. A funnel declares that itself now
(``events[].link``); each stored version that declares those two events and no link gets that link
declared on ``proposal_attached``, so its templates and the links already sent keep working. The
downgrade removes the declarations and the column again.
"""

import json
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
#: What the engine used to know: the link techflow's templates named.
CARRIER, OPENED = "proposal_attached", "proposal_opened"
LINK = {"placeholder": "proposal_link", "opened": OPENED, "url": "url"}


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


def _events(doc: dict[str, Any]) -> list[dict[str, Any]]:
    events = doc.get("events")
    return [e for e in events if isinstance(e, dict)] if isinstance(events, list) else []


def _declare_link(doc: dict[str, Any]) -> dict[str, Any] | None:
    events = _events(doc)
    names = {e.get("name") for e in events}
    if CARRIER not in names or OPENED not in names or any("link" in e for e in events):
        return None
    for event in events:
        if event.get("name") == CARRIER:
            event["link"] = dict(LINK)
    return doc


def _drop_links(doc: dict[str, Any]) -> dict[str, Any] | None:
    events = [e for e in _events(doc) if "link" in e]
    for event in events:
        del event["link"]
    return doc if events else None


def upgrade() -> None:
    op.add_column("idempotency_keys", sa.Column("lease_until", sa.DateTime(), nullable=True))
    _rewrite_documents(_declare_link)


def downgrade() -> None:
    _rewrite_documents(_drop_links)
    with op.batch_alter_table("idempotency_keys") as batch_op:
        batch_op.drop_column("lease_until")
