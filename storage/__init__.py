"""Conveyor's storage: SQLAlchemy models, repositories and Alembic migrations.

It knows nothing of business-rules or Streamlit. Public: ``make_engine``, ``session_factory``,
``transaction``, ``database_url`` and ``upgrade``; the engine uses ``storage.repositories`` directly.
"""

from __future__ import annotations

from storage.db import database_url, make_engine, session_factory, transaction
from storage.migrate import upgrade

__all__ = ["database_url", "make_engine", "session_factory", "transaction", "upgrade"]
