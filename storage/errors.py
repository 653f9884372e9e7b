"""Storage errors (kept free of business-rules and Streamlit)."""

from __future__ import annotations


class StorageError(Exception):
    """Base of storage errors."""


class DatabaseUnavailable(StorageError):
    """The database URL cannot be opened or reached."""
