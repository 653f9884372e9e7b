"""The one registry of rule variables: name, kind, label and where each value comes from.

Every evaluator reads it: ``engine.rules.variables`` declares business-rules' variables from it (the
reference path), ``evaluators.compiled`` builds its getters from it and ``evaluators.vectorized`` its
columns. A variable's *source* says where its value is, as data, so each evaluator interprets six
kinds of source once instead of re-describing each variable:

- ``Since(anchors)``: hours since the first set one of these deal attributes (0 while none is set);
- ``Present(attribute)``: the attribute is set;
- ``Attribute(attribute, default)``: the attribute itself (``default`` when unset);
- ``CustomField(field)``: a custom field of the funnel, read by ``field_value``;
- ``EventInVisit(event)``: a declared event was recorded during the deal's current stage visit;
- ``SinceEvent(event)``: hours since the declared event's latest occurrence (0 while it never happened).

A funnel that declares a ``calendar`` also gets a working-time twin of every "hours since" variable
(``working_hours_in_stage``, ``working_hours_since_<event>``, …): the same source with the funnel's
``WorkingCalendar`` attached, read as working hours (``engine.rules.working_time``).

Declared events are read from the deal's ``signals`` summary (``{name: {"at": ISO instant, "visit": n}}``),
which storage keeps on the deal row. Time enters as numeric "hours since" variables (business-rules
has no datetime type).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from operator import attrgetter
from typing import Any

from engine.document.ruleset import EventDef, FieldDef, FieldType, RuleSet
from engine.i18n import N_
from engine.rules.working_time import WorkingCalendar, calendar_of

__all__ = [
    "BUILTINS",
    "TIME_VARIABLES",
    "WORKING_BUILTIN_NAMES",
    "Attribute",
    "CustomField",
    "EventInVisit",
    "Kind",
    "Present",
    "Since",
    "SinceEvent",
    "Variable",
    "custom_variable",
    "event_at",
    "event_variables",
    "field_value",
    "hours_between",
    "time_variables",
    "variables_for",
    "with_event",
    "working_calendars",
    "working_twin",
]


class Kind(StrEnum):
    """A variable's type, spelled as business-rules' ``field_type`` (what ``export_rule_data`` lists)."""

    NUMERIC = "numeric"
    STRING = "string"
    BOOLEAN = "boolean"
    SELECT = "select"


@dataclass(frozen=True)
class Since:
    anchors: tuple[str, ...]
    #: Set on a working-time twin: the hours counted are this calendar's working hours.
    calendar: WorkingCalendar | None = None

    def anchor(self, deal: Any) -> datetime | None:
        for attribute in self.anchors:
            at: datetime | None = getattr(deal, attribute)
            if at is not None:
                return at
        return None


@dataclass(frozen=True)
class Present:
    attribute: str


@dataclass(frozen=True)
class Attribute:
    attribute: str
    default: Any


@dataclass(frozen=True)
class CustomField:
    field: FieldDef


@dataclass(frozen=True)
class EventInVisit:
    event: str


@dataclass(frozen=True)
class SinceEvent:
    event: str
    calendar: WorkingCalendar | None = None

    def anchor(self, deal: Any) -> datetime | None:
        return event_at(deal, self.event)


Source = Since | Present | Attribute | CustomField | EventInVisit | SinceEvent


def with_event(
    signals: dict[str, Any] | None, name: str, at: datetime, visit: int
) -> dict[str, Any]:
    """``signals`` after an occurrence of ``name`` at ``at``, recorded during stage visit ``visit``.

    The summary keeps the latest instant (an occurrence reported late, e.g. a payment made earlier,
    does not move it back) and the latest visit it was recorded in. A new dict: JSON columns notice
    reassignment, not mutation.
    """
    out = dict(signals or {})
    entry = out.get(name)
    at_text = at.astimezone(UTC).isoformat(timespec="microseconds")
    if entry is not None:
        at_text = max(at_text, entry["at"])  # one format, one zone: text order is time order
        visit = max(visit, int(entry["visit"]))
    out[name] = {"at": at_text, "visit": visit}
    return out


def event_at(deal: Any, name: str) -> datetime | None:
    """The latest instant at which the declared event ``name`` happened to ``deal`` (None: never)."""
    entry = (deal.signals or {}).get(name)
    return None if entry is None else datetime.fromisoformat(entry["at"])


def hours_between(start: datetime | None, end: datetime) -> float:
    if start is None:
        return 0.0
    return (end - start).total_seconds() / 3600.0


def field_value(field: FieldDef, raw: Any) -> Any:
    """The value business-rules sees for a custom field (unset: "", 0, False or no selection)."""
    if field.type is FieldType.TEXT:
        return "" if raw is None else str(raw)
    if field.type is FieldType.NUMERIC:
        return 0.0 if raw in (None, "") else float(raw)
    if field.type is FieldType.BOOLEAN:
        return bool(raw)
    # A single-choice select is a one-element list, as business-rules' SelectType expects.
    if raw in (None, ""):
        return []
    return list(raw) if isinstance(raw, list) else [raw]


def _anchor_reader(source: Since | SinceEvent) -> Callable[[Any], datetime | None]:
    # On every change and tick: a plain attribute read where there is one anchor.
    if isinstance(source, SinceEvent):
        return source.anchor
    return attrgetter(source.anchors[0]) if len(source.anchors) == 1 else source.anchor


def _reader(source: Source) -> Callable[[Any, datetime], Any]:
    """``(deal, now) -> value`` for a ``DealState`` or an ORM ``Deal`` (same attribute names)."""
    if isinstance(source, Since | SinceEvent) and source.calendar is not None:
        anchor, hours = _anchor_reader(source), source.calendar.hours
        return lambda d, now: hours(anchor(d), now)
    if isinstance(source, Since | SinceEvent):
        anchor = _anchor_reader(source)

        def since(d: Any, now: datetime) -> float:
            start = anchor(d)  # hours_between, inlined: this runs for every variable read
            return 0.0 if start is None else (now - start).total_seconds() / 3600.0

        return since
    if isinstance(source, Present):
        attribute = source.attribute
        return lambda d, now: getattr(d, attribute) is not None
    if isinstance(source, EventInVisit):
        event = source.event

        def in_visit(d: Any, now: datetime) -> bool:
            entry = (d.signals or {}).get(event)
            return entry is not None and entry["visit"] == d.stage_visit

        return in_visit
    if isinstance(source, Attribute):
        attribute, default = source.attribute, source.default
        if isinstance(default, float):  # amount: a number business-rules compares as a float
            return lambda d, now: float(getattr(d, attribute) or default)
        return lambda d, now: getattr(d, attribute) or default
    fd = source.field
    name = fd.name
    if fd.type is FieldType.TEXT:
        # field_value gives "" for unset; ``or ""`` is StringType's own cast.
        return lambda d, now: field_value(fd, (d.fields or {}).get(name)) or ""
    return lambda d, now: field_value(fd, (d.fields or {}).get(name))


@dataclass(frozen=True)
class Variable:
    name: str
    kind: Kind
    label: str
    source: Source
    options: tuple[str, ...] = ()

    @cached_property
    def read(self) -> Callable[[Any, datetime], Any]:
        """``(deal, now) -> value``, exactly the value business-rules' variable returns."""
        return _reader(self.source)

    @property
    def is_time(self) -> bool:
        return isinstance(self.source, Since | SinceEvent)

    @cached_property
    def anchor(self) -> Callable[[Any], datetime | None]:
        """``deal -> instant`` an "hours since" variable counts from (None: not yet); time variables only."""
        if not isinstance(self.source, Since | SinceEvent):
            raise TypeError(f"'{self.name}' is not a time variable")
        return _anchor_reader(self.source)

    @property
    def calendar(self) -> WorkingCalendar | None:
        """The calendar a working-time variable counts in (None: calendar hours, or not a time variable)."""
        return self.source.calendar if isinstance(self.source, Since | SinceEvent) else None


def _since(*anchors: str) -> Since:
    return Since(anchors)


#: The built-in variables, in the order a person reads them (docs/rules-format.md lists them so).
BUILTINS: tuple[Variable, ...] = (
    Variable("stage", Kind.STRING, N_("Stage"), Attribute("stage", "")),
    Variable("hours_in_stage", Kind.NUMERIC, N_("Hours in stage"), _since("stage_entered_at")),
    Variable(
        "hours_since_last_activity",
        Kind.NUMERIC,
        N_("Hours since last manager activity"),
        _since("last_activity_at", "created_at"),
    ),
    Variable("hours_since_created", Kind.NUMERIC, N_("Hours since created"), _since("created_at")),
    Variable("has_manager", Kind.BOOLEAN, N_("Has a manager"), Present("manager_id")),
    Variable("amount", Kind.NUMERIC, N_("Amount"), Attribute("amount", 0.0)),
)

#: The built-in time variables and the deal attribute each one counts from (used to derive due
#: times); a rule set adds one per declared event (``time_variables``).
TIME_VARIABLES: dict[str, Callable[[Any], datetime | None]] = {
    v.name: v.anchor for v in BUILTINS if v.is_time
}

_KIND_OF_FIELD = {
    FieldType.TEXT: Kind.STRING,
    FieldType.NUMERIC: Kind.NUMERIC,
    FieldType.BOOLEAN: Kind.BOOLEAN,
    FieldType.SELECT: Kind.SELECT,
}


def custom_variable(field: FieldDef) -> Variable:
    return Variable(
        field.name,
        _KIND_OF_FIELD[field.type],
        field.label or field.name,
        CustomField(field),
        tuple(field.options),
    )


def event_variables(event: EventDef) -> tuple[Variable, Variable]:
    """A declared event's two variables: ``<name>`` (recorded in this stage visit), ``hours_since_<name>``."""
    label = event.label or event.name
    return (
        Variable(event.name, Kind.BOOLEAN, label, EventInVisit(event.name)),
        Variable(
            f"hours_since_{event.name}",
            Kind.NUMERIC,
            f"Hours since: {label}",
            SinceEvent(event.name),
        ),
    )


#: Labels of the built-in twins (an event's twin is labelled "Working hours since: <event>").
_TWIN_LABELS = {
    "hours_in_stage": N_("Working hours in stage"),
    "hours_since_last_activity": N_("Working hours since last manager activity"),
    "hours_since_created": N_("Working hours since created"),
}
#: The names the built-in twins take (reserved whether or not a funnel declares a calendar).
WORKING_BUILTIN_NAMES = tuple(f"working_{name}" for name in _TWIN_LABELS)


def working_twin(var: Variable, calendar: WorkingCalendar) -> Variable:
    """``working_<name>``: the "hours since" variable ``var`` counted in ``calendar``'s working hours."""
    source = var.source
    if not isinstance(source, Since | SinceEvent):
        raise TypeError(f"'{var.name}' is not a time variable")
    label = _TWIN_LABELS.get(var.name) or "Working hours since: " + var.label.split(": ", 1)[-1]
    return Variable(
        f"working_{var.name}",
        Kind.NUMERIC,
        label,
        Since(source.anchors, calendar)
        if isinstance(source, Since)
        else SinceEvent(source.event, calendar),
    )


def variables_for(ruleset: RuleSet | None) -> dict[str, Variable]:
    """Every variable a rule of ``ruleset`` may read: the built-ins, its custom fields, its declared
    events, and with a calendar the working-time twin of each time variable."""
    out = {v.name: v for v in BUILTINS}
    if ruleset is None:
        return out
    for field in ruleset.fields:
        out[field.name] = custom_variable(field)
    for event in ruleset.events:
        for var in event_variables(event):
            out[var.name] = var
    calendar = calendar_of(ruleset.calendar)
    if calendar is not None:
        for var in [v for v in out.values() if v.is_time]:
            twin = working_twin(var, calendar)
            out[twin.name] = twin
    return out


def time_variables(ruleset: RuleSet | None) -> dict[str, Callable[[Any], datetime | None]]:
    """Every time variable of ``ruleset`` and its anchor reader: the built-ins', one per declared
    event, and their working-time twins."""
    if ruleset is None or (not ruleset.events and ruleset.calendar is None):
        return TIME_VARIABLES
    return {name: var.anchor for name, var in variables_for(ruleset).items() if var.is_time}


def working_calendars(ruleset: RuleSet | None) -> dict[str, WorkingCalendar]:
    """The working-time variables of ``ruleset`` and the calendar each counts in (empty: no calendar)."""
    if ruleset is None or ruleset.calendar is None:
        return {}
    return {
        name: var.calendar
        for name, var in variables_for(ruleset).items()
        if var.calendar is not None
    }
