"""API keys: created with a role, shown once, stored as a SHA-256 digest, revoked by name.

A key is 32 random bytes (``cv_`` + URL-safe text), so a plain digest is enough to store (nothing to
brute-force); the lookup is by digest and the stored digest is compared in constant time. A key the
database verified is trusted for ``TRUST_SECONDS`` by digest (never the key itself) so a busy client
does not cost a query per request; a revocation reaches other processes within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from engine.core.access import Actor, ActorKind, Permission, Role, require
from engine.core.audit import record
from engine.core.context import Context
from engine.core.deal_input import clean_text
from engine.errors import InvalidChange, NotFound, Unauthenticated
from storage import door_repositories as doors
from storage.door_models import ApiKey

__all__ = ["ApiKeyInfo", "ApiKeys", "NAME_LIMIT"]

NAME_LIMIT = 100
PREFIX = "cv_"
#: How long a verified key is trusted without asking the database again (revocation delay elsewhere).
TRUST_SECONDS = 5.0
#: At most this many verified digests are remembered (only valid keys get there).
TRUSTED_LIMIT = 1024


@dataclass(frozen=True)
class ApiKeyInfo:
    name: str
    role: Role
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class ApiKeys:
    def __init__(self, context: Context):
        self._context = context
        self._trusted: dict[str, tuple[float, Actor]] = {}  # digest -> (monotonic deadline, actor)
        self._lock = threading.Lock()
        #: How long this process trusts a verified key (``TRUST_SECONDS``; 0 asks the database each time).
        self.trust_seconds = TRUST_SECONDS

    def create(
        self, name: str, role: Role | str, *, actor: Actor | str = "system"
    ) -> tuple[ApiKeyInfo, str]:
        """A new key: its description and the key itself, which is never shown or stored again."""
        require(actor, Permission.MANAGE_ACCESS)
        name = clean_text("key name", name, NAME_LIMIT, one_line=True).strip()
        if not name:
            raise InvalidChange("key name is empty")
        try:
            role = Role(role)
        except ValueError:
            raise InvalidChange(
                f"unknown role '{role}' (use {', '.join(r.value for r in Role)})"
            ) from None
        key = PREFIX + secrets.token_urlsafe(32)
        now = self._context.clock.now()
        try:
            with self._context.transaction() as s:
                if doors.get_api_key_by_name(s, name):
                    raise InvalidChange(f"an API key named '{name}' already exists")
                row = doors.add_api_key(
                    s,
                    name=name,
                    role=role.value,
                    key_hash=_digest(key),
                    prefix=key[: len(PREFIX) + 4],
                    created_at=now,
                )
                record(s, actor, "api_key_created", now, subject=name, detail={"role": role.value})
                return _info(row), key
        except IntegrityError:
            raise InvalidChange(
                f"an API key named '{name}' was created at the same time; try another name"
            ) from None

    def list(self, *, actor: Actor | str = "system") -> list[ApiKeyInfo]:
        require(actor, Permission.MANAGE_ACCESS)
        with self._context.read_transaction() as s:
            return [_info(r) for r in doors.list_api_keys(s)]

    def revoke(self, name: str, *, actor: Actor | str = "system") -> None:
        require(actor, Permission.MANAGE_ACCESS)
        clean_text("key name", name, NAME_LIMIT, one_line=True)
        with self._context.transaction() as s:
            row = doors.get_api_key_by_name(s, name)
            if row is None:
                raise NotFound(f"no API key named '{name}'")
            if row.revoked_at is None:
                row.revoked_at = self._context.clock.now()
                record(s, actor, "api_key_revoked", row.revoked_at, subject=name)
        with self._lock:
            self._trusted.clear()

    def trusted(self, key: str) -> Actor | None:
        """The actor of a key verified less than ``TRUST_SECONDS`` ago, without a query; else None."""
        if not key.startswith(PREFIX) or len(key) > 200:
            return None
        digest = _digest(key)
        with self._lock:
            hit = self._trusted.get(digest)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def authenticate(self, key: str) -> Actor:
        """The actor a presented key stands for; ``Unauthenticated`` for an unknown or revoked one."""
        if not key.startswith(PREFIX) or len(key) > 200:
            raise Unauthenticated("the API key is not valid")
        known = self.trusted(key)
        if known is not None:
            return known
        digest = _digest(key)
        with self._context.read_transaction() as s:
            row = doors.get_api_key_by_hash(s, digest)
            if (
                row is None
                or not hmac.compare_digest(row.key_hash, digest)
                or row.revoked_at is not None
            ):
                raise Unauthenticated("the API key is not valid")
            actor = Actor(ActorKind.API_KEY, row.name, Role(row.role))
        with self._lock:
            if len(self._trusted) >= TRUSTED_LIMIT:
                self._trusted.clear()
            if self.trust_seconds > 0:
                self._trusted[digest] = (time.monotonic() + self.trust_seconds, actor)
        return actor


def _info(row: ApiKey) -> ApiKeyInfo:
    return ApiKeyInfo(
        row.name, Role(row.role), row.prefix, row.created_at, row.last_used_at, row.revoked_at
    )
