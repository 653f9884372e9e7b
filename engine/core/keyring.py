"""The server's secret key: it encrypts hook secrets and signs tracking links.

``CONVEYOR_SECRET_KEY`` (any long random text, the same for every process of one installation) wins;
without it a SQLite database gets one generated into ``<database file>.secret`` (mode 0600) beside
it, and an in-memory database a key for the life of the process. PostgreSQL installations set the
variable (several hosts must share it). Losing the key makes stored hook secrets unusable (rotate
them) and outstanding tracking links invalid; nothing else depends on it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from engine.errors import ConveyorError
from storage.db import sqlite_path

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

__all__ = ["ENV", "Keyring"]

ENV = "CONVEYOR_SECRET_KEY"


class Keyring:
    """Sub-keys derived from the one secret key, found lazily (only doors that need it ask)."""

    def __init__(self, engine: Engine):
        self._engine = engine
        self._key: bytes | None = None

    def _master(self) -> bytes:
        if self._key is None:
            self._key = self._load()
        return self._key

    def _load(self) -> bytes:
        configured = os.environ.get(ENV, "").strip()
        if configured:
            return configured.encode()
        url = self._engine.url
        if url.get_backend_name() != "sqlite":
            raise ConveyorError(
                f"{ENV} is not set: PostgreSQL installations set it to the same long random text"
                " in every Conveyor process (it encrypts hook secrets and signs tracking links),"
                " e.g. `export CONVEYOR_SECRET_KEY=$(python -c 'import secrets;"
                " print(secrets.token_urlsafe(32))')`"
            )
        path = sqlite_path(url.render_as_string(hide_password=False))
        if path is None:
            return secrets.token_bytes(32)  # in memory: nothing outlives the process anyway
        key_file = path + ".secret"
        try:
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            with open(key_file, "rb") as fh:
                return fh.read().strip()
        key = secrets.token_urlsafe(32).encode()
        with os.fdopen(fd, "wb") as fh:
            fh.write(key + b"\n")
        return key

    def subkey(self, purpose: str) -> bytes:
        """32 bytes for one purpose (``hooks``, ``links``): a leak of one reveals nothing of the others."""
        return hmac.new(self._master(), f"conveyor/{purpose}".encode(), hashlib.sha256).digest()

    def encrypt(self, text: str) -> str:
        return self._fernet().encrypt(text.encode()).decode()

    def decrypt(self, token: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet().decrypt(token.encode()).decode()
        except InvalidToken:
            raise ConveyorError(
                f"a stored secret cannot be decrypted with this {ENV}: was the key changed?"
                " Rotate the hook (`conveyor hooks rotate NAME`)"
            ) from None

    def _fernet(self) -> Fernet:
        from cryptography.fernet import Fernet  # imported when a secret is used, not at every start

        return Fernet(base64.urlsafe_b64encode(self.subkey("secrets")))
