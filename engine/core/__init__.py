"""The core: deal commands, rule-set versions, evaluation and recording, ticks and timers, queries.

Every change from any door (builder, CLI, simulator, service) goes through ``Conveyor``
(``engine.core.conveyor``), a façade over the services listed here, so rules fire the same way
whichever door a change came through. ``Conveyor`` is not re-exported from this package: it also
builds the outbox, which depends on these services (``from engine import Conveyor`` works).

    context      one database, its sessions, the clock, the engine id (shared by the services)
    group_commit concurrent write transactions share one commit, each decided on its own
    rulesets     versions: validate, save, activate, export; rule files in start_process order
    deal_input   what a change may carry (text, numbers, keys, field values)
    deals        deal commands and managers
    evaluation   decide, record firings and outbox rows, catch up what fell due, stage entry
    ticks        due deals in batches, each deal isolated
    queries      deal reads, dry runs, stage references, tasks and actions lists
    engines      heartbeats, claims, the queue figures ``status`` shows
    reports      the builder's read queries
    timers       the due-time index ticks read
"""

from __future__ import annotations

from engine.core.context import Context
from engine.core.deals import Deals, Manager
from engine.core.engines import Engines, Heartbeat, QueueSnapshot
from engine.core.evaluation import MAX_CASCADE, Evaluation
from engine.core.group_commit import GroupCommit, GroupFigures
from engine.core.queries import ActionInfo, Queries, TaskInfo, stored_funnel_ids
from engine.core.reports import Reports
from engine.core.rulesets import RuleSets, VersionInfo, read_rule_files
from engine.core.ticks import TickReport, Ticks

__all__ = [
    "MAX_CASCADE",
    "ActionInfo",
    "Context",
    "Deals",
    "Engines",
    "Evaluation",
    "GroupCommit",
    "GroupFigures",
    "Heartbeat",
    "Manager",
    "Queries",
    "QueueSnapshot",
    "Reports",
    "RuleSets",
    "TaskInfo",
    "TickReport",
    "Ticks",
    "VersionInfo",
    "read_rule_files",
    "stored_funnel_ids",
]
