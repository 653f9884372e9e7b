"""Signed inbound webhooks: a bank's or a provider's calls, verified, de-duplicated, logged.

A call carries ``Conveyor-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``.
It is refused unless a ``v1`` verifies with the hook's secret (or, during a rotation's grace period,
the previous one) and ``t`` is within ``TOLERANCE`` of now. The body is the canonical
``{"id", "deal", "event", "data"}`` or a foreign payload mapped by JSON pointers. The event id is
claimed under a unique key inside the event's own transaction (``Deals.record_event(only_if=…)``):
the claim, the event, its firings and outbox rows commit together, so a replayed delivery fires
nothing again and a delivery whose process died mid-way left nothing behind and is processed when
the sender retries. Every call is logged (time, hook, id, outcome), whatever happened; an accepted
call's log line commits with its event.

The hook's row is read on every call (a rotation or a revoked grace period counts at once, whichever
process made it); the decrypted secrets are kept as HMAC states keyed by their ciphertext (never the
secret's text), so a busy sender does not cost a decryption per call.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import json
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from engine.core.access import Actor, ActorKind, Permission, Role, require
from engine.core.audit import record
from engine.core.context import Context
from engine.core.deal_input import clean_text
from engine.core.deals import Deals
from engine.core.keyring import Keyring
from engine.core.queries import Queries
from engine.errors import ConveyorError, InvalidChange, NotFound, Problem, Unauthenticated
from engine.printable import printable
from storage import door_repositories as doors

__all__ = [
    "CANONICAL",
    "TOLERANCE",
    "Delivery",
    "HookCallInfo",
    "HookInfo",
    "Hooks",
    "parse_mapping",
    "sign",
]

TOLERANCE = timedelta(minutes=5)
DEFAULT_GRACE = timedelta(hours=24)
#: The canonical body's fields; a mapping names one of these (or ``data.<name>``) per JSON pointer.
CANONICAL = ("id", "deal", "event")
NAME_LIMIT = 100
EVENT_ID_LIMIT = 200
#: At most this many decrypted secrets (as HMAC states) are kept in memory.
MAC_LIMIT = 1024


@dataclass(frozen=True)
class HookInfo:
    name: str
    mapping: dict[str, str]
    event: str | None
    created_at: datetime
    rotated_at: datetime | None
    previous_valid_until: datetime | None


@dataclass(frozen=True)
class HookCallInfo:
    at: datetime
    hook: str
    event_id: str | None
    outcome: str
    detail: str


@dataclass(frozen=True)
class Delivery:
    event_id: str
    deal: str
    event: str
    duplicate: bool


@dataclass(frozen=True)
class _Keys:
    """What verifies one hook's calls: HMAC states keyed with its secrets (current, previous)."""

    hook_id: int
    macs: tuple[Any, ...]
    mapping: dict[str, Any]


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Conveyor-Signature`` header value for ``body`` at ``timestamp`` (what a sender computes)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def parse_mapping(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``/pointer=field`` pairs (``field``: id, deal, event or data.<name>) as {field: pointer}."""
    mapping: dict[str, str] = {}
    for item in items:
        pointer, sep, field = item.rpartition("=")
        if not sep or not pointer.startswith("/") or not field:
            raise InvalidChange(
                f"--map {item!r}: write it as /json/pointer=field (e.g. /order_id=deal)"
            )
        if field not in CANONICAL and not (field.startswith("data.") and len(field) > 5):
            raise InvalidChange(
                f"--map {item!r}: the field must be id, deal, event or data.<name>, got '{field}'"
            )
        mapping[field] = pointer
    return mapping


def _pointer(doc: Any, pointer: str) -> Any:
    """RFC 6901: the value at ``pointer`` in ``doc``, or None when it is not there."""
    for raw in pointer.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(doc, dict):
            doc = doc.get(part)
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return None
    return doc


class Hooks:
    def __init__(self, context: Context, keyring: Keyring, deals: Deals, queries: Queries):
        self._context = context
        self._keyring = keyring
        self._deals = deals
        self._queries = queries
        self._macs: dict[str, Any] = {}  # secret's ciphertext -> HMAC state keyed with it
        self._lock = threading.Lock()

    # -- operator commands ---------------------------------------------------------------------------
    def create(
        self,
        name: str,
        mapping: dict[str, str] | None = None,
        *,
        event: str | None = None,
        actor: Actor | str = "system",
    ) -> tuple[HookInfo, str]:
        """A new hook and its secret, which is shown once and stored only encrypted."""
        require(actor, Permission.MANAGE_ACCESS)
        name = _clean_name(name)
        if event is not None:
            clean_text("event", event, 100, one_line=True)
        secret = "whsec_" + secrets.token_urlsafe(32)
        now = self._context.clock.now()
        stored = {"fields": dict(mapping or {}), "event": event}
        try:
            with self._context.transaction() as s:
                if doors.get_hook(s, name):
                    raise InvalidChange(
                        f"a hook named '{name}' already exists (`conveyor hooks rotate {name}`"
                        " gives it a new secret)"
                    )
                row = doors.add_hook(
                    s,
                    name=name,
                    secret_enc=self._keyring.encrypt(secret),
                    mapping=stored,
                    created_at=now,
                )
                record(s, actor, "hook_created", now, subject=name, detail={"event": event})
                return _info(row), secret
        except IntegrityError:
            raise InvalidChange(f"a hook named '{name}' was created at the same time") from None

    def rotate(
        self, name: str, *, grace: timedelta = DEFAULT_GRACE, actor: Actor | str = "system"
    ) -> str:
        """A new secret; the old one keeps verifying for ``grace`` so senders can switch without loss."""
        require(actor, Permission.MANAGE_ACCESS)
        if grace < timedelta(0):
            raise InvalidChange("the grace period cannot be negative")
        name = _clean_name(name)
        secret = "whsec_" + secrets.token_urlsafe(32)
        now = self._context.clock.now()
        with self._context.transaction() as s:
            row = doors.get_hook(s, name)
            if row is None:
                raise NotFound(f"no hook named '{name}'")
            row.previous_secret_enc, row.previous_valid_until = row.secret_enc, now + grace
            row.secret_enc, row.rotated_at = self._keyring.encrypt(secret), now
            record(s, actor, "hook_rotated", now, subject=name)
        return secret

    def list(self, *, actor: Actor | str = "system") -> list[HookInfo]:
        require(actor, Permission.READ_STATUS)
        with self._context.read_transaction() as s:
            return [_info(r) for r in doors.list_hooks(s)]

    def calls(
        self, *, hook: str | None = None, limit: int = 100, actor: Actor | str = "system"
    ) -> builtins.list[HookCallInfo]:
        """The latest calls, newest first: what the builder's hook log shows."""
        require(actor, Permission.READ_STATUS)
        with self._context.read_transaction() as s:
            return [
                HookCallInfo(c.at, c.hook, c.event_id, c.outcome, c.detail)
                for c in doors.list_hook_calls(s, hook=hook, limit=limit)
            ]

    # -- a call --------------------------------------------------------------------------------------
    def receive(self, name: str, body: bytes, signature: str | None) -> Delivery:
        """Verify, de-duplicate and record one call; every outcome is logged, secrets and bodies never.

        Not a duplicate: the event was recorded and committed with its claim (apply what it queued).
        """
        shown = printable(name)[:NAME_LIMIT]
        event_id: str | None = None
        try:
            keys = self._secrets(name)
            self._verify(keys, body, signature)
            event_id, deal, event, data = self._read(keys.mapping, body)
            claimed_id = event_id
            detail = f"{event} on {deal}"

            def claim(s: Any, _deal: Any, _rs: Any) -> bool:
                now = self._context.clock.now()
                if not doors.claim_hook_event(s, keys.hook_id, claimed_id, now):
                    return False
                self._add_log(s, shown, claimed_id, "accepted", detail)
                return True

            recorded = self._deals.record_event(
                self._queries.deal_id(deal),
                event,
                data=data,
                actor=Actor(ActorKind.SYSTEM, f"hook:{name}", Role.INTEGRATION),
                only_if=claim,
            )
            if not recorded:
                self._log(shown, event_id, "duplicate", "")
                return Delivery(event_id, deal, event, duplicate=True)
            return Delivery(event_id, deal, event, duplicate=False)
        except Unauthenticated as exc:
            self._log(shown, event_id, "refused", str(exc))
            raise
        except ConveyorError as exc:
            self._log(shown, event_id, "invalid", str(exc)[:500])
            raise
        except Exception as exc:
            self._log(shown, event_id, "error", type(exc).__name__)
            raise

    def _secrets(self, name: str) -> _Keys:
        if not isinstance(name, str) or len(name) > NAME_LIMIT or printable(name) != name:
            raise Unauthenticated("the signature does not verify")
        now = self._context.clock.now()
        with self._context.read_transaction() as s:
            row = doors.get_hook(s, name)
            if (
                row is None
            ):  # as for a bad signature: a caller learns nothing about which hooks exist
                raise Unauthenticated("the signature does not verify")
            macs = [self._mac(row.secret_enc)]
            if (
                row.previous_secret_enc
                and row.previous_valid_until
                and row.previous_valid_until > now
            ):
                macs.append(self._mac(row.previous_secret_enc))
            return _Keys(row.id, tuple(macs), dict(row.mapping or {}))

    def _mac(self, token: str) -> Any:
        """An HMAC-SHA256 state keyed with the secret ``token`` encrypts (copied per call)."""
        with self._lock:
            state = self._macs.get(token)
        if state is None:
            state = hmac.new(self._keyring.decrypt(token).encode(), digestmod=hashlib.sha256)
            with self._lock:
                if len(self._macs) >= MAC_LIMIT:
                    self._macs.clear()
                self._macs[token] = state
        return state

    def _verify(self, keys: _Keys, body: bytes, header: str | None) -> None:
        if not header:
            raise Unauthenticated("the Conveyor-Signature header is missing")
        timestamp: int | None = None
        macs: list[str] = []
        for part in header.split(","):
            k, _, v = part.strip().partition("=")
            if k == "t" and v.isdigit() and len(v) < 15:
                timestamp = int(v)
            elif k == "v1":
                macs.append(v.strip().lower())
        if timestamp is None or not macs:
            raise Unauthenticated("the Conveyor-Signature header is not t=<unix seconds>,v1=<hex>")
        now = self._context.clock.now().timestamp()
        if abs(now - timestamp) > TOLERANCE.total_seconds():
            raise Unauthenticated("the signature's timestamp is more than 5 minutes away from now")
        message = f"{timestamp}.".encode() + body
        for state in keys.macs:
            mac = state.copy()
            mac.update(message)
            expected = mac.hexdigest()
            if any(hmac.compare_digest(expected, given) for given in macs):
                return
        raise Unauthenticated("the signature does not verify")

    def _read(self, mapping: dict[str, Any], body: bytes) -> tuple[str, str, str, dict[str, Any]]:
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise InvalidChange("the body is not JSON") from None
        fields: dict[str, str] = mapping.get("fields") or {}
        if fields:
            canonical: dict[str, Any] = {"data": {}}
            for field, pointer in fields.items():
                value = _pointer(doc, pointer)
                if field.startswith("data."):
                    if value is not None:
                        canonical["data"][field[5:]] = value
                else:
                    canonical[field] = value
            doc = canonical
        if not isinstance(doc, dict):
            raise InvalidChange('the body must be a JSON object {"id", "deal", "event", "data"}')
        if doc.get("event") is None and mapping.get("event"):
            doc["event"] = mapping["event"]
        problems = []
        for field in CANONICAL:
            value = doc.get(field)
            if isinstance(value, int | float) and not isinstance(value, bool) and field != "event":
                value = doc[field] = str(value)  # a bank's numeric order or payment id
            if not isinstance(value, str) or not value.strip():
                where = f" (JSON pointer {fields[field]})" if field in fields else ""
                problems.append(Problem(field, f"needs a non-empty text{where}"))
        data = doc.get("data", {})
        if data is None:
            data = {}
        if not isinstance(data, dict):
            problems.append(Problem("data", "needs a JSON object"))
        if problems:
            raise InvalidChange("; ".join(str(p) for p in problems))
        event_id = clean_text("id", doc["id"], EVENT_ID_LIMIT, one_line=True)
        return event_id, doc["deal"], doc["event"], data

    def _log(self, hook: str, event_id: str | None, outcome: str, detail: str) -> None:
        with self._context.transaction() as s:
            self._add_log(s, hook, event_id, outcome, detail)

    def _add_log(self, s: Any, hook: str, event_id: str | None, outcome: str, detail: str) -> None:
        shown_id = _storable(event_id)[:EVENT_ID_LIMIT] if event_id else None
        doors.add_hook_call(
            s,
            at=self._context.clock.now(),
            hook=_storable(hook),
            event_id=shown_id,
            outcome=outcome,
            detail=_storable(detail)[:1000],
        )


def _storable(text: str) -> str:
    """Text any backend stores: controls escaped, a lone surrogate replaced (a log line must never fail)."""
    return printable(text).encode("utf-8", "replace").decode("utf-8")


def _clean_name(name: str) -> str:
    name = clean_text("hook name", name, NAME_LIMIT, one_line=True).strip()
    if not name or not all(ch.isalnum() or ch in "-_" for ch in name) or not name.isascii():
        raise InvalidChange(
            f"hook name {name!r} may hold only letters, digits, '-' and '_' (it is part of a URL)"
        )
    return name


def _info(row: Any) -> HookInfo:
    mapping = dict(row.mapping or {})
    return HookInfo(
        row.name,
        dict(mapping.get("fields") or {}),
        mapping.get("event"),
        row.created_at,
        row.rotated_at,
        row.previous_valid_until,
    )
