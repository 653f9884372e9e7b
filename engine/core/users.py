"""Local users: accounts with a role and an argon2 password, sign-in with throttling, sessions.

``Users`` (``Conveyor.users``) is what the CLI's ``conveyor users`` and the builder's sign-in call. A
manager user has a row in ``managers`` (what deals and tasks are assigned to), so ``assign_manager``
assigns to the people who sign in. Passwords are hashed with argon2id (argon2-cffi) and never logged;
after ``FREE_ATTEMPTS`` failures in a row an account, or an address, waits a growing delay, which the
owner can lift (``unlock``). Every change to a user is written to the audit trail.
"""

from __future__ import annotations

import builtins
import hashlib
import os
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.core.access import Actor, ActorKind, Permission, Role, require
from engine.core.audit import record
from engine.core.context import Context
from engine.core.deal_input import MANAGER_PHONE_LIMIT, clean_text
from engine.errors import InvalidChange, NotFound, TooManyAttempts, Unauthenticated
from engine.i18n import LANGUAGES, _
from storage import people_repositories as people
from storage import repositories as repo
from storage.people_models import User

__all__ = [
    "FREE_ATTEMPTS",
    "MIN_PASSWORD",
    "ROLES",
    "SignedIn",
    "UserInfo",
    "Users",
    "retry_delay",
]

#: The roles a person can have (an API key may also be ``integration``).
ROLES = (Role.OWNER, Role.MANAGER, Role.VIEWER)
NAME_LIMIT = 100
EMAIL_LIMIT = 200
MIN_PASSWORD = 8
MAX_PASSWORD = 1000
#: Failed sign-ins in a row an account or an address may make before it has to wait.
FREE_ATTEMPTS = 5
FIRST_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=1)
#: A session ends this long after sign-in, or after this long without a page being used
#: (``CONVEYOR_SESSION_HOURS``, default 12; ``CONVEYOR_SESSION_IDLE_MINUTES``, default 60).
SESSION_LIFETIME = timedelta(hours=float(os.environ.get("CONVEYOR_SESSION_HOURS", "12")))
SESSION_IDLE = timedelta(minutes=float(os.environ.get("CONVEYOR_SESSION_IDLE_MINUTES", "60")))

#: argon2id with argon2-cffi's defaults (RFC 9106's low-memory profile). Tests swap in a cheaper one.
HASHER = PasswordHasher()
_dummy: dict[PasswordHasher, str] = {}


def _hash(password: str) -> str:
    return HASHER.hash(password)


def _dummy_hash() -> str:
    """Verified when the name is unknown, so a wrong name takes as long as a wrong password."""
    if HASHER not in _dummy:
        _dummy[HASHER] = HASHER.hash("not a password of anyone")
    return _dummy[HASHER]


@dataclass(frozen=True)
class UserInfo:
    name: str
    role: Role
    active: bool
    email: str | None
    sees_team: bool
    has_password: bool
    created_at: datetime
    language: str | None = None  # the interface language chosen; None: CONVEYOR_LANG's


@dataclass(frozen=True)
class SignedIn:
    """A signed-in session: who, as of when; ``actor`` is what the builder hands the core."""

    name: str
    role: Role
    manager_id: int | None
    sees_team: bool
    signed_in_at: datetime
    last_seen_at: datetime
    via: str = "password"  # or "sso"
    language: str | None = None  # the interface language the user chose last
    #: The opaque id of the stored session (``engine.core.sessions``); "" for one that is not stored.
    session: str = field(default="", repr=False, compare=False)

    @property
    def actor(self) -> Actor:
        return Actor(
            ActorKind.USER,
            self.name,
            self.role,
            manager_id=self.manager_id,
            sees_team=self.sees_team or self.role is not Role.MANAGER,
        )


def retry_delay(failures: int) -> timedelta:
    """How long to wait after ``failures`` failures in a row: nothing up to FREE_ATTEMPTS, then 30 s,
    doubling with each further failure, at most an hour."""
    if failures < FREE_ATTEMPTS:
        return timedelta(0)
    return min(FIRST_DELAY * (1 << min(failures - FREE_ATTEMPTS, 20)), MAX_DELAY)


def _account_key(name: str) -> str:
    return "account:" + name.strip().lower()[:150]


def _address_key(address: str) -> str:
    return "address:" + hashlib.sha256(address.encode("utf-8", "replace")).hexdigest()[:40]


def _info(u: User) -> UserInfo:
    return UserInfo(
        u.name,
        Role(u.role),
        bool(u.active),
        u.email,
        bool(u.sees_team),
        bool(u.password_hash),
        u.created_at,
        u.language,
    )


def _role(role: Role | str) -> Role:
    try:
        r = Role(role)
    except ValueError:
        r = None
    if r not in ROLES:
        raise InvalidChange(
            _("unknown role '{role}' (use {roles})").format(
                role=role, roles=", ".join(x.value for x in ROLES)
            )
        )
    return r


def _password(password: str) -> str:
    clean_text(_("password"), password, MAX_PASSWORD)
    if len(password) < MIN_PASSWORD:
        raise InvalidChange(
            _("the password is too short: at least {n} characters").format(n=MIN_PASSWORD)
        )
    return password


def _email(email: str | None) -> str | None:
    if email is None or not email.strip():
        return None
    email = clean_text(_("e-mail"), email.strip(), EMAIL_LIMIT, one_line=True).lower()
    if "@" not in email:
        raise InvalidChange(_("e-mail '{email}' has no @").format(email=email))
    return email


class Users:
    """Accounts (add, list, disable, enable, passwd, set, unlock) and sign-in."""

    def __init__(self, context: Context):
        self._context = context

    # -- accounts --------------------------------------------------------------------------------
    def add(
        self,
        name: str,
        role: Role | str,
        password: str | None = None,
        *,
        email: str | None = None,
        phone: str = "",
        sees_team: bool = False,
        actor: Actor | str = "system",
    ) -> UserInfo:
        """A new account. ``password=None``: no password (signs in only through single sign-on).

        A manager gets a ``managers`` row (an existing one of that name is taken over), so deals and
        tasks can be assigned to them.
        """
        require(actor, Permission.MANAGE_USERS)
        name = clean_text(_("user name"), name, NAME_LIMIT, one_line=True).strip()
        if not name:
            raise InvalidChange(_("user name is empty"))
        role = _role(role)
        digest = _hash(_password(password)) if password is not None else ""
        email = _email(email)
        clean_text(_("phone"), phone, MANAGER_PHONE_LIMIT, one_line=True)
        now = self._context.clock.now()
        try:
            with self._context.transaction() as s:
                if people.get_user_by_name(s, name):
                    raise InvalidChange(_("a user named '{name}' already exists").format(name=name))
                if email and people.get_user_by_email(s, email):
                    raise InvalidChange(
                        _("another user already has the e-mail '{email}'").format(email=email)
                    )
                manager_id = self._manager_row(s, name, phone) if role is Role.MANAGER else None
                row = people.add_user(
                    s,
                    name=name,
                    role=role.value,
                    password_hash=digest,
                    email=email,
                    active=True,
                    manager_id=manager_id,
                    sees_team=sees_team,
                    created_at=now,
                    sessions_valid_from=now,
                )
                record(s, actor, "user_added", now, subject=name, detail={"role": role.value})
                return _info(row)
        except IntegrityError:
            raise InvalidChange(
                _("a user named '{name}' was added at the same time; try again").format(name=name)
            ) from None

    @staticmethod
    def _manager_row(s: Session, name: str, phone: str) -> int:
        m = repo.get_manager_by_name(s, name)
        if m is None:
            return repo.add_manager(s, name, phone).id
        if people.get_user_by_manager(s, m.id) is not None:
            raise InvalidChange(_("the manager '{name}' is already another user").format(name=name))
        m.active = True
        if phone:
            m.phone = phone
        return m.id

    def list(self, *, actor: Actor | str = "system") -> list[UserInfo]:
        require(actor, Permission.MANAGE_USERS)
        with self._context.read_transaction() as s:
            return [_info(u) for u in people.list_users(s)]

    def get(self, name: str, *, actor: Actor | str = "system") -> UserInfo:
        require(actor, Permission.MANAGE_USERS)
        with self._context.read_transaction() as s:
            return _info(self._user(s, name))

    def disable(self, name: str, *, actor: Actor | str = "system") -> None:
        """No more sign-in, every open session ends, and a manager gets no new deals."""
        self._set_active(name, False, actor)

    def enable(self, name: str, *, actor: Actor | str = "system") -> None:
        self._set_active(name, True, actor)

    def _set_active(self, name: str, active: bool, actor: Actor | str) -> None:
        require(actor, Permission.MANAGE_USERS)
        now = self._context.clock.now()
        with self._context.transaction() as s:
            u = self._user(s, name)
            if bool(u.active) == active:
                return
            u.active = active
            u.sessions_valid_from = now
            if u.manager_id is not None:
                for m in repo.list_managers(s):
                    if m.id == u.manager_id:
                        m.active = active
            record(s, actor, "user_enabled" if active else "user_disabled", now, subject=u.name)

    def set_password(
        self, name: str, password: str | None, *, actor: Actor | str = "system"
    ) -> None:
        """A new password (``None``: none, single sign-on only); the user's open sessions end."""
        require(actor, Permission.MANAGE_USERS)
        digest = _hash(_password(password)) if password is not None else ""
        now = self._context.clock.now()
        with self._context.transaction() as s:
            u = self._user(s, name)
            u.password_hash = digest
            u.sessions_valid_from = now
            people.clear_failures(s, _account_key(u.name))
            record(s, actor, "password_changed", now, subject=u.name)

    def update(
        self,
        name: str,
        *,
        email: str | None = None,
        sees_team: bool | None = None,
        actor: Actor | str = "system",
    ) -> UserInfo:
        """Change a user's e-mail (for single sign-on; ``""`` removes it) or whether a manager sees the team."""
        require(actor, Permission.MANAGE_USERS)
        now = self._context.clock.now()
        with self._context.transaction() as s:
            u = self._user(s, name)
            changed: dict[str, object] = {}
            if email is not None:
                new = _email(email)
                other = people.get_user_by_email(s, new) if new else None
                if other is not None and other.id != u.id:
                    raise InvalidChange(
                        _("another user already has the e-mail '{email}'").format(email=new)
                    )
                if new != u.email:
                    changed["email"] = {"from": u.email, "to": new}
                    u.email = new
            if sees_team is not None and bool(u.sees_team) != sees_team:
                changed["sees_team"] = {"from": bool(u.sees_team), "to": sees_team}
                u.sees_team = sees_team
            if changed:
                u.sessions_valid_from = now  # what a session may see changed: sign in again
                record(s, actor, "user_changed", now, subject=u.name, detail=changed)
            return _info(u)

    def set_language(
        self, name: str, language: str | None, *, actor: Actor | str = "system"
    ) -> UserInfo:
        """The user's interface language (``uk``, ``en``; None: the default). Everyone may set their
        own (a viewer too: it changes nothing but what they read); the owner anyone's."""
        if language is not None and language not in LANGUAGES:
            raise InvalidChange(
                _("unknown language '{language}' (use {languages})").format(
                    language=language, languages=", ".join(LANGUAGES)
                )
            )
        own = isinstance(actor, Actor) and actor.kind is ActorKind.USER and actor.name == name
        if not own:
            require(actor, Permission.MANAGE_USERS)
        now = self._context.clock.now()
        with self._context.transaction() as s:
            u = self._user(s, name)
            if u.language != language:
                detail = {"language": {"from": u.language, "to": language}}
                record(s, actor, "user_changed", now, subject=u.name, detail=detail)
                u.language = language
            return _info(u)

    def unlock(self, name: str | None = None, *, actor: Actor | str = "system") -> int:
        """Lift the wait after failed sign-ins: of one account, or (``None``) of every account and address."""
        require(actor, Permission.MANAGE_USERS)
        now = self._context.clock.now()
        with self._context.transaction() as s:
            if name is None:
                n = people.clear_failures(s)
                record(s, actor, "sign_in_unlocked", now, subject="*")
                return n
            u = self._user(s, name)
            n = people.clear_failures(s, _account_key(u.name))
            record(s, actor, "sign_in_unlocked", now, subject=u.name)
            return n

    @staticmethod
    def _user(s: Session, name: str) -> User:
        clean_text(_("user name"), name, NAME_LIMIT, one_line=True)
        u = people.get_user_by_name(s, name.strip())
        if u is None:
            raise NotFound(_("no user named '{name}'").format(name=name))
        return u

    # -- sign-in ---------------------------------------------------------------------------------
    def sign_in(self, name: str, password: str, *, address: str = "") -> SignedIn:
        """A session for ``name`` if the password is right and neither the account nor the address has to
        wait; else ``Unauthenticated`` (wrong name or password: one message for both) or ``TooManyAttempts``.
        """
        name = name.strip() if isinstance(name, str) else ""
        if not name or len(name) > NAME_LIMIT or not isinstance(password, str):
            raise Unauthenticated(_("Wrong user name or password."))
        if len(password) > MAX_PASSWORD:
            raise Unauthenticated(_("Wrong user name or password."))
        keys = [_account_key(name)] + ([_address_key(address)] if address else [])
        now = self._context.clock.now()
        with self._context.read_transaction() as s:
            self._check_wait(s, keys, now)
            u = people.get_user_by_name(s, name)
            stored = u.password_hash if u is not None and u.active else ""
        ok = _verify(stored or _dummy_hash(), password) and bool(stored)
        failures = 0
        with self._context.transaction() as s:
            u = people.get_user_by_name(s, name) if ok else None
            if u is None or not u.active:
                failures = max(people.count_failure(s, key, now).failures for key in keys)
                record(
                    s,
                    Actor(ActorKind.SYSTEM, "sign-in", Role.VIEWER),
                    "sign_in_failed",
                    now,
                    subject=clean_name_for_trail(name),
                )
            else:
                if HASHER.check_needs_rehash(u.password_hash):
                    u.password_hash = _hash(password)
                for key in keys:
                    people.clear_failures(s, key)
                signed = _session(u, now, "password")
                record(s, signed.actor, "signed_in", now, subject=u.name)
                return signed
        wait = retry_delay(failures)
        if wait:
            raise TooManyAttempts(
                _(
                    "Wrong user name or password. Too many failed sign-ins: wait {seconds} s before"
                    " the next attempt, or ask the owner to unlock the account."
                ).format(seconds=int(wait.total_seconds())),
                retry_after=int(wait.total_seconds()),
            )
        raise Unauthenticated(_("Wrong user name or password."))

    def sign_in_by_email(self, email: str) -> SignedIn:
        """Single sign-on: the active user whose e-mail the identity provider vouched for."""
        try:
            wanted = _email(email)
        except InvalidChange:
            wanted = None
        now = self._context.clock.now()
        with self._context.transaction() as s:
            u = people.get_user_by_email(s, wanted) if wanted else None
            if u is None or not u.active:
                raise Unauthenticated(
                    _(
                        "No active Conveyor user has the e-mail '{email}'. Ask the owner to add it"
                        " (conveyor users set NAME --email ...)."
                    ).format(email=email)
                )
            signed = _session(u, now, "sso")
            record(s, signed.actor, "signed_in", now, subject=u.name, detail={"via": "sso"})
            return signed

    def resume(self, signed: SignedIn) -> SignedIn | None:
        """The session again, seen now, if it is still good: not expired, not idle too long, and its
        user still active with the same role and no new password since; else ``None`` (sign in again)."""
        now = self._context.clock.now()
        if (
            now >= signed.signed_in_at + SESSION_LIFETIME
            or now >= signed.last_seen_at + SESSION_IDLE
        ):
            return None
        with self._context.read_transaction() as s:
            u = people.get_user_by_name(s, signed.name)
            if (
                u is None
                or not u.active
                or Role(u.role) is not signed.role
                or signed.signed_in_at < u.sessions_valid_from
            ):
                return None
            return replace(
                signed,
                manager_id=u.manager_id,
                sees_team=bool(u.sees_team),
                last_seen_at=now,
                language=u.language,
            )

    @staticmethod
    def _check_wait(s: Session, keys: builtins.list[str], now: datetime) -> None:
        for key in keys:
            row = people.get_failures(s, key)
            if row is None:
                continue
            until = row.last_failed_at + retry_delay(row.failures)
            if until > now:
                seconds = max(1, int((until - now).total_seconds() + 0.999))
                what = _("this account") if key.startswith("account:") else _("this address")
                raise TooManyAttempts(
                    _(
                        "Too many failed sign-ins for {what}: wait {seconds} s and try again,"
                        " or ask the owner to unlock it (conveyor users unlock NAME)."
                    ).format(what=what, seconds=seconds),
                    retry_after=seconds,
                )


def clean_name_for_trail(name: str) -> str:
    """A name someone typed, as the trail may keep it: control characters and surrogates replaced."""
    return "".join(
        "?" if (ord(c) < 32 or 0xD800 <= ord(c) <= 0xDFFF or ord(c) == 0x7F) else c for c in name
    )[:NAME_LIMIT]


def _verify(digest: str, password: str) -> bool:
    try:
        return HASHER.verify(digest, password)
    except (VerificationError, InvalidHashError):
        return False


def _session(u: User, now: datetime, via: str) -> SignedIn:
    return SignedIn(
        u.name, Role(u.role), u.manager_id, bool(u.sees_team), now, now, via, u.language
    )
