"""The rule-set document: one funnel's fields, stages, transitions and business-rules rules.

This is the one model of the format that the builder edits, the validator checks, storage versions,
the engine evaluates and export writes. Parse untrusted JSON with ``engine.document.validate`` instead of
constructing these models directly: it reports every problem with its JSON path.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat

from engine.document.conditions import ConditionNode, leaves
from engine.document.labels import Label

FORMAT: Literal["conveyor.ruleset/1"] = "conveyor.ruleset/1"


class _Model(BaseModel):
    # Strings are never coerced from numbers by pydantic; booleans and numbers are declared strict
    # below, so "enabled": "yes" or "x": "10" are refused instead of guessed at. Only the JSON
    # spelling "from" names a transition's start (no populate_by_name: "from_" is an unknown key).
    model_config = ConfigDict(extra="forbid")


class FieldType(StrEnum):
    TEXT = "text"
    NUMERIC = "numeric"
    BOOLEAN = "boolean"
    SELECT = "select"


class StageKind(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class RepeatPolicy(StrEnum):
    """How often one rule may fire for one deal. Conveyor's extension to business-rules."""

    ONCE_PER_STAGE_VISIT = "once_per_stage_visit"
    ONCE_PER_DEAL = "once_per_deal"
    AFTER_EACH_ACTIVITY = "after_each_activity"


class Position(_Model):
    x: StrictFloat
    y: StrictFloat


class FieldDef(_Model):
    name: str
    label: Label = Label("")
    type: FieldType
    options: list[str] = Field(default_factory=list)


class EventSource(StrEnum):
    """Who causes a declared event: a manager's events count as their activity."""

    MANAGER = "manager"
    CLIENT = "client"
    SYSTEM = "system"


class EventLink(_Model):
    """A tracking link to the URL an event carries (a proposal's, a contract's).

    ``{<placeholder>}`` in a message template becomes a signed, expiring link; the client who opens it
    is sent on to the URL in the latest occurrence's data under ``url``, and the declared event
    ``opened`` is recorded once per occurrence of the event that carries the link.
    """

    placeholder: str
    opened: str
    url: str = "url"


class EventDef(_Model):
    """A signal the funnel's owner declares ("Client opened the proposal"); rules read it as variables.

    ``fields`` maps keys of the data an occurrence carries to the deal fields they are written into
    (``{"amount": "paid_amount"}``); ``link``: the event carries a URL a message may link to.
    """

    name: str
    label: Label = Label("")
    by: EventSource = EventSource.CLIENT
    fields: dict[str, str] = Field(default_factory=dict)
    link: EventLink | None = None


class Holidays(_Model):
    """Days off besides the week's free days: a country's public holidays and dates listed by hand."""

    #: An ISO 3166 code the ``holidays`` package knows ("UA"); None: listed dates only.
    country: str | None = None
    #: ISO dates ("2026-12-31"), kept as written so the document round-trips unchanged.
    dates: list[str] = Field(default_factory=list)


class Calendar(_Model):
    """The funnel's working time: the hours of each weekday in a time zone, and days off.

    ``week`` maps ``mon`` … ``sun`` to ``[["09:00", "18:00"], …]`` (wall-clock time in ``zone``;
    ``"24:00"`` ends a day at midnight); a day that is not listed is a day off.
    """

    zone: str
    week: dict[str, list[list[str]]]
    holidays: Holidays | None = None


class Guard(_Model):
    """Entry guard of a stage: every listed field must be filled before a deal may enter."""

    required_fields: list[str] = Field(default_factory=list)


class Stage(_Model):
    id: str
    name: Label
    kind: StageKind = StageKind.OPEN
    guard: Guard | None = None
    position: Position | None = None


class Transition(_Model):
    from_: str = Field(alias="from")
    to: str


class ActionSpec(_Model):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    #: Conveyor's option for a task or notification a stage's rule creates: stay open when the deal
    #: leaves the stage (by default it is closed as cancelled). None (absent) means False, so documents
    #: without it export and fingerprint as before.
    keep_after_stage_exit: StrictBool | None = None


class Rule(_Model):
    """A business-rules rule (``conditions`` + ``actions``) plus Conveyor's metadata keys."""

    id: str
    name: Label = Label("")
    enabled: StrictBool = True
    repeat: RepeatPolicy = RepeatPolicy.ONCE_PER_STAGE_VISIT
    conditions: ConditionNode
    actions: list[ActionSpec]
    position: Position | None = None

    def scoped_to_stage(self, stage_id: str) -> bool:
        """Whether a condition compares ``stage`` with this stage id: the rule is one of that stage's."""
        return any(
            leaf.name == "stage"
            and isinstance(leaf.value, str)
            and (
                leaf.value == stage_id
                or (
                    leaf.operator == "equal_to_case_insensitive"
                    and leaf.value.lower() == stage_id.lower()
                )
            )
            for _path, leaf in leaves(self.conditions)
        )

    def refers_to_stage(self, stage_id: str) -> bool:
        """Whether a condition compares ``stage`` with this stage id or an action moves deals into it."""
        if self.scoped_to_stage(stage_id):
            return True
        return any(
            a.name == "move_to_stage" and a.params.get("to_stage") == stage_id for a in self.actions
        )

    def business_rule(self) -> dict[str, Any]:
        """The rule as business-rules reads it (metadata dropped)."""
        return {
            "conditions": self.conditions.model_dump(),
            "actions": [{"name": a.name, "params": dict(a.params)} for a in self.actions],
        }


class RuleSet(_Model):
    format: Literal["conveyor.ruleset/1"] = FORMAT
    funnel: str
    #: The funnel's, its stages', fields', events' and rules' labels: one text, or one per language
    #: (``{"uk": …, "en": …}``, see ``engine.document.labels``); written back exactly as given.
    name: Label
    description: Label = Label("")
    #: The language client messages are written in when a template is given per language
    #: (``{"uk": …, "en": …}``); a deal's own ``language`` field, if the funnel declares one, wins.
    language: str | None = None
    #: The ISO 4217 code amounts are shown in (``UAH``: ``12 500,00 ₴``); none: plain numbers.
    currency: str | None = None
    #: Working time for the ``working_hours_*`` variables and ``due_in_working_hours``; None: none declared.
    calendar: Calendar | None = None
    fields: list[FieldDef] = Field(default_factory=list)
    events: list[EventDef] = Field(default_factory=list)
    stages: list[Stage]
    initial_stage: str | None = None
    transitions: list[Transition] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)

    # -- lookups -------------------------------------------------------------------------------
    def stage(self, stage_id: str) -> Stage | None:
        return next((s for s in self.stages if s.id == stage_id), None)

    def field(self, name: str) -> FieldDef | None:
        return next((f for f in self.fields if f.name == name), None)

    def event(self, name: str) -> EventDef | None:
        return next((e for e in self.events if e.name == name), None)

    def linked_events(self) -> list[EventDef]:
        """The declared events that carry a tracking link (``EventDef.link``), in document order."""
        return [e for e in self.events if e.link is not None]

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    @property
    def entry_stage(self) -> str:
        return self.initial_stage or self.stages[0].id

    def allows(self, from_stage: str, to_stage: str) -> bool:
        return any(t.from_ == from_stage and t.to == to_stage for t in self.transitions)

    # -- serialisation -------------------------------------------------------------------------
    def to_document(self) -> dict[str, Any]:
        """The JSON document (``from`` spelled as in the file, defaults kept explicit).

        A funnel without declared events is written without ``events``: its export and fingerprint
        stay what they were before events existed (a re-import is still "unchanged").
        """
        doc = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        if not doc.get("events"):
            doc.pop("events", None)
        return doc

    def to_json(self) -> str:
        return json.dumps(self.to_document(), ensure_ascii=False, indent=2) + "\n"

    def business_rules(self) -> list[dict[str, Any]]:
        """The bare business-rules list of the enabled rules, in document order."""
        return [r.business_rule() for r in self.rules if r.enabled]

    def fingerprint(self) -> str:
        canonical = json.dumps(self.to_document(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]
