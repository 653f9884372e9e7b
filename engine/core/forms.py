"""Website lead forms: a public token per form, whitelisted fields, a honeypot, a per-address rate limit.

The token is public by nature (it sits in the website's HTML); it only says which funnel and which
fields a submission may set. A bot that fills the hidden honeypot field is answered as if it had
succeeded and nothing is created. Each client address (stored as a digest) may submit
``rate_per_hour`` times per hour per form; the counter is one row per hour, incremented in one
statement so concurrent submissions count exactly.
"""

from __future__ import annotations

import builtins
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from engine.core.access import Actor, ActorKind, Permission, Role, require
from engine.core.audit import record
from engine.core.context import Context
from engine.core.deal_input import clean_text
from engine.core.deals import Deals
from engine.core.rulesets import RuleSets
from engine.document.ruleset import FieldType
from engine.document.suggestions import suggest
from engine.errors import ConveyorError, InvalidChange, NotFound, Unauthenticated
from storage import door_repositories as doors
from storage import repositories as repo

__all__ = ["DEFAULT_FIELDS", "HONEYPOT", "FormInfo", "Forms", "RateLimited", "TOKEN_FIELD"]

#: The hidden field a person leaves empty and a bot fills in.
HONEYPOT = "website_url"
#: The field (or ``Conveyor-Form-Token`` header) that carries the form's public token.
TOKEN_FIELD = "form_token"
DEFAULT_FIELDS = ("title", "phone", "email")
DEFAULT_RATE = 10
_BUILTIN_FORM_FIELDS = ("title", "phone", "email", "amount")


class RateLimited(ConveyorError):
    """Too many submissions from one address; ``retry_after`` seconds until the next window."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class FormInfo:
    id: int
    token: str
    funnel: str
    fields: list[str]
    origins: list[str]
    rate_per_hour: int
    created_at: datetime
    revoked: bool


class Forms:
    def __init__(self, context: Context, rulesets: RuleSets, deals: Deals):
        self._context = context
        self._rulesets = rulesets
        self._deals = deals

    def create(
        self,
        funnel: str,
        *,
        fields: list[str] | tuple[str, ...] = (),
        origins: list[str] | tuple[str, ...] = (),
        rate_per_hour: int = DEFAULT_RATE,
        actor: Actor | str = "system",
    ) -> FormInfo:
        require(actor, Permission.MANAGE_ACCESS)
        rs = self._rulesets.get(funnel)
        known = [*_BUILTIN_FORM_FIELDS, *(f.name for f in rs.fields)]
        chosen = list(dict.fromkeys(fields or DEFAULT_FIELDS))
        for name in chosen:
            if name not in known:
                raise InvalidChange(
                    f"--field '{name}' is not a field of funnel '{funnel}'{suggest(name, known)}"
                )
        for origin in origins:
            clean_text("origin", origin, 200, one_line=True)
            if (
                not origin.startswith(("http://", "https://"))
                or origin.rstrip("/") != origin
                or origin.count("/") > 2
            ):
                raise InvalidChange(
                    f"--origin '{origin}' must be a scheme and host such as https://example.com"
                    " (no path, no trailing slash)"
                )
        if rate_per_hour < 1:
            raise InvalidChange("--rate must be at least 1 submission per hour")
        now = self._context.clock.now()
        with self._context.transaction() as s:
            row = doors.add_form(
                s,
                token="form_" + secrets.token_urlsafe(18),
                funnel_id=funnel,
                fields=chosen,
                origins=list(origins),
                rate_per_hour=rate_per_hour,
                created_at=now,
            )
            record(s, actor, "form_created", now, subject=funnel, detail={"fields": chosen})
            return _info(row)

    def list(self, *, actor: Actor | str = "system") -> list[FormInfo]:
        require(actor, Permission.READ_FUNNELS)
        with self._context.read_transaction() as s:
            return [_info(r) for r in doors.list_forms(s)]

    def revoke(self, token: str, *, actor: Actor | str = "system") -> None:
        require(actor, Permission.MANAGE_ACCESS)
        with self._context.transaction() as s:
            row = doors.get_form_by_token(s, clean_text("form token", token, 64, one_line=True))
            if row is None:
                raise NotFound("no form with this token")
            if row.revoked_at is None:
                row.revoked_at = self._context.clock.now()
                record(s, actor, "form_revoked", row.revoked_at, subject=row.funnel_id)

    def origins(self, funnel: str) -> set[str]:
        """Origins any live form of ``funnel`` accepts (a CORS preflight carries no token)."""
        return {o for f in self._live() if f.funnel == funnel for o in f.origins}

    def _live(self) -> builtins.list[FormInfo]:
        with self._context.read_transaction() as s:
            return [_info(r) for r in doors.list_forms(s) if r.revoked_at is None]

    def submit(
        self,
        funnel: str,
        token: str,
        values: dict[str, Any],
        *,
        client: str,
        origin: str | None = None,
    ) -> str | None:
        """Create the lead; its deal key, or None when the honeypot caught a bot (nothing created)."""
        if not isinstance(token, str) or not token or len(token) > 64:
            raise Unauthenticated("the form token is missing or not valid")
        now = self._context.clock.now()
        with self._context.read_transaction() as s:
            row = doors.get_form_by_token(s, token)
            form = _info(row) if row is not None else None
        if form is None or form.revoked or form.funnel != funnel:
            raise Unauthenticated("the form token is missing or not valid")
        if origin and form.origins and origin not in form.origins:
            raise Unauthenticated(f"this form does not accept submissions from {origin}")
        window = now.replace(minute=0, second=0, microsecond=0)
        bucket = (
            f"form:{form.id}:" + hashlib.sha256(client.encode("utf-8", "replace")).hexdigest()[:40]
        )
        with self._context.transaction() as s:
            count = doors.count_request(s, bucket, window)
            if now.minute == 0 and now.second < 5:
                doors.purge_rate_counters(s, window - timedelta(hours=2))
        if count > form.rate_per_hour:
            retry = int((window + timedelta(hours=1) - now).total_seconds()) + 1
            raise RateLimited(
                f"too many submissions from this address; try again in {retry // 60 + 1} minutes",
                retry,
            )
        if str(values.get(HONEYPOT) or "").strip():
            return None
        chosen = {k: v for k, v in values.items() if k in form.fields}
        rs = self._rulesets.get(funnel)
        numeric = {"amount", *(f.name for f in rs.fields if f.type is FieldType.NUMERIC)}
        for name in list(chosen):
            value = chosen[name]
            if value is None or (isinstance(value, str) and not value.strip()):
                del chosen[name]
            elif name in numeric and isinstance(value, str):
                try:
                    chosen[name] = float(value.replace(",", ".").replace(" ", ""))
                except ValueError:
                    raise InvalidChange(
                        f"field '{name}' needs a number, got {value[:40]!r}"
                    ) from None
        title = (
            chosen.pop("title", None)
            or chosen.get("email")
            or chosen.get("phone")
            or "Website lead"
        )
        if not isinstance(title, str):
            raise InvalidChange(f"field 'title' needs text, got {title!r}"[:120])
        deal_id = self._deals.create(
            funnel,
            title=title,
            fields=chosen,
            actor=Actor(ActorKind.SYSTEM, "form", Role.INTEGRATION),
        )
        with self._context.read_transaction() as s:
            deal = repo.get_deal(s, deal_id)
            return deal.key if deal is not None else None


def _info(row: Any) -> FormInfo:
    return FormInfo(
        row.id,
        row.token,
        row.funnel_id,
        list(row.fields or []),
        list(row.origins or []),
        int(row.rate_per_hour),
        row.created_at,
        row.revoked_at is not None,
    )
