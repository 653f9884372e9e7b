"""Evaluation inside a change's transaction: decide, record firings and outbox rows, enter stages.

``evaluate`` uses the compiled rule set (same decisions as ``engine.rules.evaluators.reference``),
stores the deal's next due instant for ticks (``engine.core.timers``) and writes each new firing
with its outbox rows, which the outbox carries out after the commit. The outbox calls these
functions too (a stage move, a started process) with its own session, inside its own transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.core import timers
from engine.core.deal_input import blank, jsonable
from engine.core.rulesets import RuleSets
from engine.crashpoints import crashpoint
from engine.document.labels import label
from engine.document.ruleset import RuleSet, Stage, StageKind
from engine.errors import GuardFailed, NotFound
from engine.rules.actions import MESSAGE_ACTIONS
from engine.rules.deal import BUILTIN_FIELDS
from engine.rules.evaluators.compiled import compile_ruleset
from engine.rules.evaluators.reference import Decision
from storage import repositories as repo
from storage.models import Deal

__all__ = [
    "MAX_CASCADE",
    "Active",
    "MOVED_TO",
    "Evaluation",
    "Plan",
    "enter_stage",
    "firing_values",
    "guard_failed",
    "internal_queued",
    "moved_reason",
    "outbox_values",
    "record_decisions",
]

#: Prefix of ``Task.closed_reason`` for a task cancelled by a stage move; the stage id follows.
MOVED_TO = "moved_to:"

#: A cascade of engine stage moves longer than this is a loop; the move is refused and recorded.
MAX_CASCADE = 10

#: One deal's new decisions under the version (id) they were made with.
Plan = tuple[Deal, int, list[Decision]]
#: A funnel's active rule set and its version id.
Active = tuple[RuleSet, int]

#: How many times this thread (or task) wrote internal outbox rows: a door compares it before and
#: after a change and looks for ready internal actions only when it moved (most changes queue none,
#: and the look cost an event 17 % of its server CPU). Per context, so concurrent requests do not
#: see each other's; a rolled-back write only costs one needless look.
_INTERNAL_QUEUED: ContextVar[int] = ContextVar("conveyor_internal_queued", default=0)


def internal_queued() -> int:
    """A counter that grows whenever this thread or task writes internal outbox rows (tasks, moves,
    invoices): a change queued some for ``Conveyor.apply_queued`` when it moved across the change."""
    return _INTERNAL_QUEUED.get()


class Evaluation:
    """Decides what fires for a deal and writes it down in the caller's transaction."""

    def __init__(self, rulesets: RuleSets):
        self._rulesets = rulesets

    def evaluate(
        self,
        s: Session,
        deal: Deal,
        now: datetime,
        trigger: str,
        chain: list[str] | None = None,
        *,
        fired: set[tuple[str, str]] | None = None,
        flush: bool = True,
        active: Active | None = None,
    ) -> list[Decision]:
        """Evaluate the deal's active rules and record new firings + outbox rows in this transaction.

        ``fired``: its (rule, occurrence) pairs, if the caller already read them (a tick reads a whole
        batch at once, a change reads them with the deal); the occurrences decided now are added to
        it. ``flush=False``: the caller flushes (a tick writes a whole batch in one flush).
        ``active``: the funnel's active (rule set, version id), if the caller already read it.
        """
        plan = self.decide(s, deal, now, fired, active)
        if fired is not None:  # a second evaluation in this transaction skips them unread
            fired.update((d.rule.id, d.occurrence) for d in plan[2])
        recorded = self.record(s, [plan], now, trigger, chain)
        if flush:
            s.flush()
        crashpoint(
            "after_evaluate_before_commit"
        )  # crash tests: firings written, not yet committed
        return recorded

    def catch_up(
        self,
        s: Session,
        deal: Deal,
        now: datetime,
        *,
        fired: set[tuple[str, str]] | None = None,
        active: Active | None = None,
    ) -> list[Decision]:
        """Fire what became due on the deal as it stands, before a change alters it.

        A tick sees a deal only at its interval (or not at all while the engine is down); a change
        that lands between the due instant and the next tick would otherwise reset what the rule
        waits for (the last activity, the stage) and the firing would be lost. Each firing keeps
        its own ``due_at``; the caller's transaction records it together with the change.
        """
        if deal.closed or deal.next_due_at is None or deal.next_due_at > now:
            return []
        return self.evaluate(s, deal, now, "due", fired=fired, active=active)

    def active(self, s: Session, funnel_id: str) -> Active:
        """The funnel's active (rule set, version id), to pass to ``decide`` for many deals."""
        return self._rulesets.active(s, funnel_id)

    def decide(
        self,
        s: Session,
        deal: Deal,
        now: datetime,
        fired: set[tuple[str, str]] | None,
        active: Active | None = None,
    ) -> Plan:
        """The deal's new decisions under its funnel's active version; stores its next due instant."""
        timers.begin(s, deal)  # the flushes below belong to this evaluation, not to a bare change
        if deal.id is None:
            s.flush()
        with s.no_autoflush:  # the change is written once, together with its next due instant
            rs, version_id = active or self._rulesets.active(s, deal.funnel_id)
            compiled = compile_ruleset(rs)
            if fired is None:
                fired = repo.fired_occurrences(s, deal.id)
        values = compiled.values(deal, now)
        decisions = compiled.evaluate(deal, now, skip=fired, values=values)
        done = fired | {(d.rule.id, d.occurrence) for d in decisions}
        timers.finish(
            s, deal, None if deal.closed else compiled.next_due(deal, now, done, values=values)
        )
        return deal, version_id, decisions

    def record(
        self,
        s: Session,
        plans: list[Plan],
        now: datetime,
        trigger: str,
        chain: list[str] | None = None,
    ) -> list[Decision]:
        """Firings and their outbox rows for decided deals: two statements however many deals."""
        return record_decisions(
            s,
            [
                (deal.id, deal.funnel_id, version_id, decisions)
                for deal, version_id, decisions in plans
            ],
            now,
            trigger,
            chain,
        )


def record_decisions(
    s: Session,
    plans: list[tuple[int, str, int, list[Decision]]],
    now: datetime,
    trigger: str,
    chain: list[str] | None = None,
) -> list[Decision]:
    """``Evaluation.record`` for (deal id, funnel id, version id, decisions): a bulk import has no
    ORM deals. The unique (deal, rule, occurrence) key decides what is new; returns what was recorded."""
    rows = [
        firing_values(deal_id, funnel_id, version_id, d, now, trigger, chain)
        for deal_id, funnel_id, version_id, decisions in plans
        for d in decisions
    ]
    ids = repo.insert_firings(s, rows)
    outbox, recorded = [], []
    for deal_id, _funnel_id, _version_id, decisions in plans:
        for d in decisions:
            firing_id = ids.get((deal_id, d.rule.id, d.occurrence))
            if firing_id is None:
                continue  # another engine (or a re-run) recorded this occurrence first
            outbox += outbox_values(firing_id, deal_id, d, now)
            recorded.append(d)
    repo.add_outbox_rows(s, outbox)
    if any(row["kind"] == "internal" for row in outbox):
        _INTERNAL_QUEUED.set(_INTERNAL_QUEUED.get() + 1)
    return recorded


def firing_values(
    deal_id: int,
    funnel_id: str,
    version_id: int,
    d: Decision,
    now: datetime,
    trigger: str,
    chain: list[str] | None = None,
    *,
    json: Callable[[Any], Any] = jsonable,
) -> dict[str, Any]:
    """The ``firings`` row of one decision (without its id). ``json``: how its JSON values are made
    storable (``jsonable``; a bulk import shares one object between equal ones)."""
    return dict(
        deal_id=deal_id,
        funnel_id=funnel_id,
        rule_id=d.rule.id,
        rule_name=d.rule.name[:300],
        occurrence=d.occurrence,
        ruleset_version_id=version_id,
        trigger=trigger,
        values=json(d.values),
        due_at=d.due_at or now,
        fired_at=now,
        chain=json([*(chain or []), d.rule.id]),
    )


def outbox_values(
    firing_id: int,
    deal_id: int,
    d: Decision,
    now: datetime,
    *,
    json: Callable[[Any], Any] = jsonable,
) -> list[dict[str, Any]]:
    """The ``outbox`` rows of one recorded firing, one per planned action, in order."""
    return [
        dict(
            firing_id=firing_id,
            deal_id=deal_id,
            seq=seq,
            action=action.name,
            params=json(action.params),
            kind="message" if action.name in MESSAGE_ACTIONS else "internal",
            status="pending",
            attempts=0,
            next_attempt_at=now,
            idempotency_key=f"conveyor-{firing_id}-{seq}",
            created_at=now,
            updated_at=now,
        )
        for seq, action in enumerate(d.actions)
    ]


def enter_stage(s: Session, deal: Deal, rs: RuleSet, stage: str, now: datetime) -> dict[str, Any]:
    """Put ``deal`` into ``stage`` (a new visit); GuardFailed if the stage's entry guard does not hold.

    The open tasks the left visit's rules created (``Task.stage``/``stage_visit``) close as cancelled
    in the same transaction: "Call the new lead" is no one's job once the deal is in Contract.
    """
    target = rs.stage(stage)
    if target is None:
        raise NotFound(f"no stage '{stage}' in funnel '{rs.funnel}'")
    if target.guard:
        missing = [f for f in target.guard.required_fields if blank(_field_of(deal, f))]
        if missing:
            raise guard_failed(rs, target, missing)
    previous, visit = deal.stage, deal.stage_visit
    deal.stage = stage
    deal.stage_visit += 1
    deal.stage_entered_at = now
    deal.closed = target.kind is not StageKind.OPEN
    moved: dict[str, Any] = {"from": previous, "to": stage}
    cancelled = repo.cancel_stage_tasks(s, deal.id, previous, visit, moved_reason(stage), now)
    if cancelled:
        moved["cancelled_tasks"] = cancelled
    return moved


def moved_reason(stage: str) -> str:
    """``Task.closed_reason`` of a task cancelled because its deal moved to ``stage``."""
    return f"{MOVED_TO}{stage}"


def guard_failed(rs: RuleSet, stage: Stage, missing: list[str]) -> GuardFailed:
    """The refusal in the owner's words: the stage's name and the fields' labels as typed in the funnel."""
    labels = []
    for name in missing:
        fd = rs.field(name)
        labels.append(
            (label(fd.label).strip() if fd is not None else "") or name
        )  # no label: the name it was given
    return GuardFailed(
        stage.id, missing, stage_name=label(stage.name).strip() or stage.id, labels=labels
    )


def _field_of(deal: Deal, name: str) -> Any:
    return getattr(deal, name) if name in BUILTIN_FIELDS else (deal.fields or {}).get(name)
