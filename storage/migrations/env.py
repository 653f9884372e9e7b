"""Alembic environment: runs on the connection handed over by ``storage.migrate.upgrade``."""

from __future__ import annotations

from alembic import context

import storage.door_models
import storage.people_models  # noqa: F401  - and the users' and audit tables
from storage.models import Base

target_metadata = Base.metadata
connection = context.config.attributes.get("connection")

if connection is None:
    from storage.db import make_engine

    with make_engine(context.config.get_main_option("sqlalchemy.url")).connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
