"""Who may do what: roles, the actor a change is made by, and the one permission table.

Every door (API, CLI, builder, simulator) hands the core an ``Actor``; the core's commands call
``require`` before they change anything, so a role is refused the same way whichever door it used.
Today's callers without sign-in act as ``SYSTEM`` (an owner); a plain string actor (the name written
to a deal's history, e.g. ``"manager"``) is read the same way.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from engine.errors import Forbidden

__all__ = [
    "PERMISSIONS",
    "SYSTEM",
    "Actor",
    "ActorKind",
    "Permission",
    "Role",
    "actor_of",
    "allowed",
    "require",
]


class Role(enum.StrEnum):
    OWNER = "owner"
    MANAGER = "manager"
    #: Reads only (for the builder's sign-in).
    VIEWER = "viewer"
    #: A website, a bank, a phone system: deals, events and activities, nothing else.
    INTEGRATION = "integration"


class ActorKind(enum.StrEnum):
    USER = "user"
    API_KEY = "api_key"
    ENGINE = "engine"
    SYSTEM = "system"


class Permission(enum.StrEnum):
    READ_DEALS = "read deals"
    WRITE_DEALS = "create and update deals"
    RECORD_EVENTS = "record events"
    RECORD_ACTIVITIES = "record activities"
    MOVE_DEALS = "move deals between stages"
    READ_TASKS = "read tasks"
    COMPLETE_TASKS = "complete tasks"
    READ_ACTIONS = "read actions"
    RETRY_ACTIONS = "retry actions"
    READ_FUNNELS = "read funnels"
    WRITE_FUNNELS = "save and activate rule sets"
    READ_STATUS = "read the service status"
    MANAGE_MANAGERS = "manage managers"
    #: Owner only: a manager may neither take a colleague's deal nor give their own away.
    REASSIGN_DEALS = "give deals to another manager"
    MANAGE_ACCESS = "manage API keys, hooks and forms"
    MANAGE_USERS = "manage users"
    READ_AUDIT = "read the audit trail"


_READS = {
    Permission.READ_DEALS,
    Permission.READ_TASKS,
    Permission.READ_ACTIONS,
    Permission.READ_FUNNELS,
    Permission.READ_STATUS,
}
_INTEGRATION = {
    Permission.READ_DEALS,
    Permission.WRITE_DEALS,
    Permission.RECORD_EVENTS,
    Permission.RECORD_ACTIVITIES,
}
_MANAGER = (
    _READS
    | _INTEGRATION
    | {Permission.MOVE_DEALS, Permission.COMPLETE_TASKS, Permission.RETRY_ACTIONS}
)

#: The one table: what each role may do.
PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: frozenset(Permission),
    Role.MANAGER: frozenset(_MANAGER),
    Role.VIEWER: frozenset(_READS | {Permission.READ_AUDIT}),
    Role.INTEGRATION: frozenset(_INTEGRATION),
}


@dataclass(frozen=True)
class Actor:
    """Who makes a change: ``name`` goes to the deal's history, ``role`` decides what is allowed.

    A signed-in manager user also carries their ``managers`` row (``manager_id``) and whether they see
    the whole team (``sees_team``); one who does not may change only the deals assigned to them.
    """

    kind: ActorKind
    name: str
    role: Role
    manager_id: int | None = None
    sees_team: bool = True

    @property
    def own_deals_only(self) -> bool:
        """Is this actor limited to the deals (and their tasks) assigned to them?"""
        return self.kind is ActorKind.USER and self.role is Role.MANAGER and not self.sees_team

    @property
    def label(self) -> str:
        """The name a deal's history shows (``key:website`` for an API key named website)."""
        return f"key:{self.name}" if self.kind is ActorKind.API_KEY else self.name

    @property
    def is_manager_activity(self) -> bool:
        """Does a change by this actor count as a manager's activity on the deal (re-arming reminders)?"""
        if self.kind is ActorKind.SYSTEM:
            return self.name != "system"  # legacy names ("manager", a person's name) are people
        if self.kind is ActorKind.ENGINE:
            return False
        return self.role in (Role.OWNER, Role.MANAGER)


#: The actor of callers without sign-in (CLI, builder, simulator, scripts): may do everything.
SYSTEM = Actor(ActorKind.SYSTEM, "system", Role.OWNER)


def actor_of(actor: Actor | str) -> Actor:
    """An ``Actor``; a plain name (today's callers) is a system actor with the owner's rights."""
    return actor if isinstance(actor, Actor) else Actor(ActorKind.SYSTEM, actor, Role.OWNER)


def allowed(actor: Actor | str, permission: Permission) -> bool:
    return permission in PERMISSIONS[actor_of(actor).role]


def require(actor: Actor | str, permission: Permission) -> Actor:
    """The actor, if its role may do ``permission``; else ``Forbidden`` (which names neither data nor ids)."""
    who = actor_of(actor)
    if permission not in PERMISSIONS[who.role]:
        raise Forbidden(f"the {who.role.value} role may not {permission.value}")
    return who
