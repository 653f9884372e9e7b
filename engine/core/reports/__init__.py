"""Read-only reports for the manager pages: deal board, deal card, task queue, action log, analytics.

Every function reads through ``storage.repositories`` and returns plain dataclasses or pandas
DataFrames, so the builder never queries tables and nothing here can write a row. Times stay UTC;
``to_display`` converts them to the display zone (``CONVEYOR_TZ``, default Europe/Kyiv). Reads use
a read-only transaction (no write lock on SQLite), so a page never waits for the engine's writes.
``Reports`` (``board``) is ``Conveyor.reports``, its analytics inherited from ``Analytics``
(``analytics``); ``text`` holds the pure helpers that say things the way the pages show them. pandas is imported where a
frame is built: it takes about a second, which every ``Conveyor`` (the CLI, the engine) would pay.
"""

from __future__ import annotations

from engine.core.reports.analytics import Analytics, StageVisit, Summary
from engine.core.reports.board import DealCard, Reports, sample_deal
from engine.core.reports.text import (
    ACTION_STATUSES,
    HIGH_PRIORITIES,
    action_summary,
    describe_event,
    display_zone,
    event_label,
    event_text,
    hours_text,
    kind_label,
    task_status_text,
    to_display,
    why_text,
)

__all__ = [
    "ACTION_STATUSES",
    "HIGH_PRIORITIES",
    "Analytics",
    "DealCard",
    "Reports",
    "StageVisit",
    "Summary",
    "action_summary",
    "describe_event",
    "display_zone",
    "event_label",
    "event_text",
    "hours_text",
    "kind_label",
    "sample_deal",
    "task_status_text",
    "to_display",
    "why_text",
]
