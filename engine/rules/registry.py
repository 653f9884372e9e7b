"""The one registry of rule variables: name, kind, label and where each value comes from.

Every evaluator reads it: ``engine.rules.variables`` declares business-rules' variables from it (the
reference path), ``evaluators.compiled`` builds its getters from it and ``evaluators.vectorized`` its
columns. A variable's *source* says where its value is, as data, so each evaluator interprets four
kinds of source once instead of re-describing each variable:

- ``Since(anchors)``: hours since the first set one of these deal attributes (0 while none is set);
- ``Present(attribute)``: the attribute is set;
- ``Attribute(attribute, default)``: the attribute itself (``default`` when unset);
- ``CustomField(field)``: a custom field of the funnel, read by ``field_value``.

Time enters as numeric "hours since" variables (business-rules has no datetime type).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from operator import attrgetter
from typing import Any

from engine.document.ruleset import FieldDef, FieldType, RuleSet

__all__ = ["BUILTINS", "TIME_VARIABLES", "Attribute", "CustomField", "Kind", "Present", "Since",
           "Variable", "custom_variable", "field_value", "hours_between", "variables_for"]


class Kind(StrEnum):
    """A variable's type, spelled as business-rules' ``field_type`` (what ``export_rule_data`` lists)."""

    NUMERIC = "numeric"
    STRING = "string"
    BOOLEAN = "boolean"
    SELECT = "select"


@dataclass(frozen=True)
class Since:
    anchors: tuple[str, ...]

    def anchor(self, deal: Any) -> datetime | None:
        for attribute in self.anchors:
            at = getattr(deal, attribute)
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


Source = Since | Present | Attribute | CustomField


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


def _anchor_reader(source: Since) -> Callable[[Any], datetime | None]:
    # On every change and tick: a plain attribute read where there is one anchor.
    return attrgetter(source.anchors[0]) if len(source.anchors) == 1 else source.anchor


def _reader(source: Source) -> Callable[[Any, datetime], Any]:
    """``(deal, now) -> value`` for a ``DealState`` or an ORM ``Deal`` (same attribute names)."""
    if isinstance(source, Since):
        anchor = _anchor_reader(source)

        def since(d: Any, now: datetime) -> float:
            start = anchor(d)  # hours_between, inlined: this runs for every variable read
            return 0.0 if start is None else (now - start).total_seconds() / 3600.0
        return since
    if isinstance(source, Present):
        attribute = source.attribute
        return lambda d, now: getattr(d, attribute) is not None
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
        return isinstance(self.source, Since)


def _since(*anchors: str) -> Since:
    return Since(anchors)


#: The built-in variables, in the order a person reads them (docs/rules-format.md lists them so).
BUILTINS: tuple[Variable, ...] = (
    Variable("stage", Kind.STRING, "Stage", Attribute("stage", "")),
    Variable("hours_in_stage", Kind.NUMERIC, "Hours in stage", _since("stage_entered_at")),
    Variable("hours_since_last_activity", Kind.NUMERIC, "Hours since last manager activity",
             _since("last_activity_at", "created_at")),
    Variable("hours_since_created", Kind.NUMERIC, "Hours since created", _since("created_at")),
    Variable("has_manager", Kind.BOOLEAN, "Has a manager", Present("manager_id")),
    Variable("proposal_attached", Kind.BOOLEAN, "Proposal attached", Present("proposal_attached_at")),
    Variable("hours_since_proposal_attached", Kind.NUMERIC, "Hours since proposal attached",
             _since("proposal_attached_at")),
    Variable("proposal_opened", Kind.BOOLEAN, "Proposal opened by client", Present("proposal_opened_at")),
    Variable("hours_since_proposal_opened", Kind.NUMERIC, "Hours since proposal opened",
             _since("proposal_opened_at")),
    Variable("client_replied", Kind.BOOLEAN, "Client replied", Present("client_replied_at")),
    Variable("payment_received", Kind.BOOLEAN, "Payment received", Present("payment_received_at")),
    Variable("amount", Kind.NUMERIC, "Amount", Attribute("amount", 0.0)),
)

#: Time variables and the deal attribute each one counts from (used to derive due times).
TIME_VARIABLES: dict[str, Callable[[Any], datetime | None]] = {
    v.name: _anchor_reader(v.source) for v in BUILTINS if isinstance(v.source, Since)
}

_KIND_OF_FIELD = {FieldType.TEXT: Kind.STRING, FieldType.NUMERIC: Kind.NUMERIC,
                  FieldType.BOOLEAN: Kind.BOOLEAN, FieldType.SELECT: Kind.SELECT}


def custom_variable(field: FieldDef) -> Variable:
    return Variable(field.name, _KIND_OF_FIELD[field.type], field.label or field.name,
                    CustomField(field), tuple(field.options))


def variables_for(ruleset: RuleSet | None) -> dict[str, Variable]:
    """Every variable a rule of ``ruleset`` may read: the built-ins, then its custom fields."""
    out = {v.name: v for v in BUILTINS}
    for field in ruleset.fields if ruleset is not None else ():
        out[field.name] = custom_variable(field)
    return out
