"""``Conveyor``: the one entry point a caller needs. Every deal change, from a page, the CLI or a test, goes here.

A façade over small services of one concern each, which it builds on one database: ``rulesets``
(versions, rule files), ``deals`` (deal commands, managers), ``evaluation``, ``ticks``, ``queries``,
``engines`` (heartbeats, queue figures), ``reports`` (the pages' reads), ``users`` (sign-in, roles),
``sessions`` (stored sign-in sessions the builder resumes from its cookie), ``audit`` (who changed
what) and the outbox's ``dispatcher``. It is the composition root:
the only core module that knows the outbox (the outbox depends on the core's services, not on it).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from engine.clock import Clock, SystemClock
from engine.core.access import Actor, Permission, require
from engine.core.api_keys import ApiKeys
from engine.core.audit import Audit
from engine.core.context import Context
from engine.core.deals import Deals, Manager
from engine.core.engines import Engines
from engine.core.evaluation import Evaluation
from engine.core.forms import Forms
from engine.core.hooks import Hooks
from engine.core.idempotency import Idempotency
from engine.core.imports import Imports
from engine.core.keyring import Keyring
from engine.core.links import Links
from engine.core.listings import Listings
from engine.core.manager_channels import ManagerChannels
from engine.core.my_day import Day
from engine.core.queries import Queries
from engine.core.reports import Reports
from engine.core.rulesets import RuleSets, VersionInfo
from engine.core.sessions import Sessions
from engine.core.ticks import TickReport, Ticks
from engine.core.users import Users
from engine.document.ruleset import RuleSet
from engine.outbox.digest import Digests
from engine.outbox.dispatcher import Dispatcher, Executed
from engine.outbox.effects import Core
from engine.outbox.providers import MessageProvider, RecordingProvider
from engine.rules.deal import DealState
from engine.rules.evaluators.reference import RuleTrace
from storage.db import make_engine
from storage.migrate import upgrade

__all__ = ["Conveyor", "Manager", "TickReport", "VersionInfo"]


class Conveyor:
    """One handle on one database: rule sets, deals, evaluation, ticks and the outbox.

    ``read_only=True``: every transaction is a read-only one (reports, ``conveyor status``); a change
    made through it fails loudly instead of vanishing. ``group_commit``: concurrent changes share one
    commit (``engine.core.group_commit``; default: on SQLite yes, on PostgreSQL no); ``group_commit``
    the attribute says how many commits carried how many changes.
    """

    def __init__(
        self,
        db: str | Engine | None = None,
        *,
        clock: Clock | None = None,
        provider: MessageProvider | None = None,
        engine_id: str | None = None,
        migrate: bool = True,
        read_only: bool = False,
        group_commit: bool | None = None,
    ):
        self.engine = db if isinstance(db, Engine) else make_engine(db)
        if migrate:
            upgrade(self.engine)
        context = Context(
            self.engine,
            clock or SystemClock(),
            engine_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}",
            read_only=read_only,
            group_commit=group_commit,
        )
        self._context = context
        self.group_commit = context.group_commit
        self.rulesets = RuleSets(context)
        self.evaluation = Evaluation(self.rulesets)
        self.queries = Queries(context, self.rulesets)
        self.deals = Deals(context, self.rulesets, self.evaluation)
        self.imports = Imports(context, self.rulesets)  # bulk import: a CSV file, an API batch
        self.ticks = Ticks(context, self.evaluation)
        self.engines = Engines(context)
        self.reports = Reports(context, self.rulesets, self.queries)
        self.day = Day(context, self.rulesets)  # a manager's day: due tasks, deals that need them
        self.dispatcher = Dispatcher(
            context,
            Core(self.rulesets, self.evaluation, self.queries),
            provider or RecordingProvider(),
        )
        # The doors' services (engine.api): keys, idempotency records, hooks, forms, links, checked reads.
        self.keyring = Keyring(self.engine)
        self.api_keys = ApiKeys(context)
        self.idempotency = Idempotency(context)
        self.hooks = Hooks(context, self.keyring, self.deals, self.queries)
        self.forms = Forms(context, self.rulesets, self.deals)
        self.links = Links(context, self.keyring, self.deals, self.rulesets)
        self.listings = Listings(context, self.rulesets, self.queries)
        # The people who sign in (engine.core.users) and the trail of who changed what.
        self.users = Users(context)
        self.sessions = Sessions(context, self.users, self.keyring)  # kept across page reloads
        self.audit = Audit(context)
        # Managers told where they are: their channel preference, and each one's daily digest.
        self.manager_channels = ManagerChannels(context, self._configured_channels)
        self.digests = Digests(context, self.day)
        self.queries.link_maker = (
            self.links.url
        )  # an event's link placeholder in a message template

    @property
    def clock(self) -> Clock:
        return self._context.clock

    @property
    def engine_id(self) -> str:
        return self._context.engine_id

    @property
    def provider(self) -> MessageProvider:
        return self.dispatcher.provider

    @provider.setter
    def provider(
        self, provider: MessageProvider
    ) -> None:  # the service wraps it to wake its senders
        self.dispatcher.provider = provider

    def close(self) -> None:
        self.engine.dispose()

    def _configured_channels(self) -> list[str]:
        """The channels this run's config file configures: the router's, else the file's names."""
        routes = getattr(self.dispatcher.provider, "routes", None)
        if isinstance(routes, dict):
            return list(routes)
        from engine.config import channel_names, config_path

        return channel_names(config_path(None))

    # -- rule sets -------------------------------------------------------------------------------
    def funnels(self) -> list[tuple[str, str]]:
        """(id, name) of every stored funnel."""
        return self.rulesets.funnels()

    def save_ruleset(
        self,
        document: RuleSet | dict[str, Any] | str | bytes,
        *,
        comment: str = "",
        author: str = "",
        activate: bool = True,
        known_funnels: Iterable[str] = (),
        actor: Actor | str = "system",
    ) -> VersionInfo:
        """Validate and store a new immutable version (active unless ``activate=False``)."""
        return self.rulesets.save(
            document,
            comment=comment,
            author=author,
            activate=activate,
            known_funnels=known_funnels,
            actor=actor,
        )

    def load_rules_dir(
        self, folder: str | Path, *, comment: str = "", author: str = ""
    ) -> list[VersionInfo]:
        """Save every ``*.json`` in ``folder``; funnels that ``start_process`` names are saved first."""
        return self.rulesets.load_dir(folder, comment=comment, author=author)

    def activate(self, funnel: str, version: int, *, actor: Actor | str = "system") -> VersionInfo:
        """Make an existing version the active one (rollback)."""
        return self.rulesets.activate(funnel, version, actor=actor)

    def versions(self, funnel: str) -> list[VersionInfo]:
        return self.rulesets.versions(funnel)

    def ruleset(self, funnel: str, version: int | None = None) -> RuleSet:
        """The active rule set of ``funnel`` (or a given version number)."""
        return self.rulesets.get(funnel, version)

    # -- managers --------------------------------------------------------------------------------
    def add_manager(self, name: str, phone: str = "") -> int:
        return self.deals.add_manager(name, phone)

    # -- deal changes ----------------------------------------------------------------------------
    def create_deal(
        self,
        funnel: str,
        *,
        key: str | None = None,
        title: str = "",
        stage: str | None = None,
        fields: dict[str, Any] | None = None,
        manager: str | None = None,
        actor: Actor | str = "system",
    ) -> int:
        return self.deals.create(
            funnel, key=key, title=title, stage=stage, fields=fields, manager=manager, actor=actor
        )

    def update_deal(
        self, deal_id: int, fields: dict[str, Any], *, actor: Actor | str = "manager"
    ) -> None:
        """Change built-in (title, phone, email, amount) and custom fields; a manager's edit is activity."""
        self.deals.update(deal_id, fields, actor=actor)

    def move_deal(self, deal_id: int, stage: str, *, actor: Actor | str = "manager") -> None:
        """A manual stage move: allowed transitions and the target's entry guard are enforced."""
        self.deals.move(deal_id, stage, actor=actor)

    def record_event(
        self,
        deal_id: int,
        name: str,
        at: datetime | None = None,
        data: dict[str, Any] | None = None,
        *,
        actor: Actor | str | None = None,
    ) -> None:
        """An event the deal's funnel declares happened (``at``: when, default now; ``data``: what it carried)."""
        self.deals.record_event(deal_id, name, at, data, actor=actor)

    def record_activity(
        self, deal_id: int, kind: str = "call", note: str = "", *, actor: Actor | str = "manager"
    ) -> None:
        """A manager's call, note, meeting...: re-arms ``after_each_activity`` rules."""
        self.deals.record_activity(deal_id, kind, note, actor=actor)

    def complete_task(self, task_id: int, *, actor: Actor | str = "manager") -> None:
        """Mark a task or notification done; counts as the manager's activity on its deal."""
        self.deals.complete_task(task_id, actor=actor)

    # -- time and the outbox ---------------------------------------------------------------------
    def tick(self, batch: int = 500) -> TickReport:
        """Evaluate the deals whose time conditions became due by ``clock.now()`` (``engine.core.ticks``)."""
        return self.ticks.tick(batch)

    def retry_action(self, outbox_id: int, *, actor: Actor | str = "system") -> None:
        """Queue a failed or dead action again now (``conveyor actions --retry``, the API)."""
        self.dispatcher.retry(outbox_id, actor=require(actor, Permission.RETRY_ACTIONS))

    def apply_queued(self, rounds: int = 50) -> list[Executed]:
        """Apply the internal actions changes queued (tasks, moves, invoices), cascades included, now;
        messages are left to the engine service. What a page calls to show its change's effect."""
        return self.dispatcher.apply_internal(rounds)

    # -- reading ---------------------------------------------------------------------------------
    def deal(self, deal_id: int) -> DealState:
        return self.queries.deal(deal_id)

    def deal_id(self, key: str) -> int:
        return self.queries.deal_id(key)

    def dry_run(
        self, deal: int | DealState, at: datetime | None = None, ruleset: RuleSet | None = None
    ) -> list[RuleTrace]:
        """Which rules would fire for ``deal`` at ``at`` and why; executes and records nothing."""
        return self.queries.dry_run(deal, at, ruleset)
