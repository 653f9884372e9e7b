"""Rule variables: what a condition may read about a deal, declared with business-rules' decorators.

Built-in variables live on ``DealVariables``; each funnel's custom fields are added per rule set by
``variables_class``. Time enters as numeric "hours since" variables (business-rules has no datetime
type); an "hours since X" variable is 0 while X has not happened — pair it with its boolean.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any

from business_rules.fields import FIELD_TEXT
from business_rules.operators import BooleanType, NumericType, SelectType, StringType, type_operator
from business_rules.variables import (
    BaseVariables,
    boolean_rule_variable,
    numeric_rule_variable,
    rule_variable,
)

from engine.document.regex import compile_pattern
from engine.document.ruleset import FieldDef, FieldType, RuleSet
from engine.rules.deal import DealState


class SafeStringType(StringType):
    """business-rules' string type with ``matches_regex`` run by RE2 (linear time, cannot hang).

    Same operator names as ``StringType``. RE2 is not Python's ``re``: the validator refuses the
    constructs that both accept but read differently (``\\w \\d \\s \\b`` and their negations are
    ASCII-only in RE2, ``[[:alpha:]]`` is a class only in RE2), so an accepted pattern that Python's
    ``re`` also compiles matches the same Unicode text. Two differences remain (docs/rules-format.md):
    ``$`` matches only at the very end (``re`` also before a final newline), and a few special
    case-insensitive matches (the Turkish dotted İ against ``(?i)i``). RE2-only syntax such as
    ``\\p{L}`` is accepted; Python's ``re`` refuses it outright rather than matching differently.
    """

    @type_operator(FIELD_TEXT)
    def matches_regex(self, regex: str) -> bool:
        return compiled_regex(regex).search(self.value) is not None


@lru_cache(maxsize=1024)
def compiled_regex(pattern: str) -> Any:
    """The RE2 program for ``pattern``, compiled once for every evaluation path (cached)."""
    return compile_pattern(pattern)  # the validator's options: memory bound, nothing logged to stderr


def hours_between(start: datetime | None, end: datetime) -> float:
    if start is None:
        return 0.0
    return (end - start).total_seconds() / 3600.0


#: Time variables and the deal attribute each one counts from (used to derive due times).
TIME_VARIABLES: dict[str, Callable[[DealState], datetime | None]] = {
    "hours_in_stage": lambda d: d.stage_entered_at,
    "hours_since_last_activity": lambda d: d.last_activity_at or d.created_at,
    "hours_since_created": lambda d: d.created_at,
    "hours_since_proposal_attached": lambda d: d.proposal_attached_at,
    "hours_since_proposal_opened": lambda d: d.proposal_opened_at,
}


class DealVariables(BaseVariables):
    """The built-in variables, evaluated against one ``DealState`` at one instant."""

    def __init__(self, deal: DealState, now: datetime):
        self.deal = deal
        self.now = now

    def _since(self, name: str) -> float:
        return hours_between(TIME_VARIABLES[name](self.deal), self.now)

    @rule_variable(SafeStringType, label="Stage")
    def stage(self) -> str:
        return self.deal.stage

    @numeric_rule_variable(label="Hours in stage")
    def hours_in_stage(self) -> float:
        return self._since("hours_in_stage")

    @numeric_rule_variable(label="Hours since last manager activity")
    def hours_since_last_activity(self) -> float:
        return self._since("hours_since_last_activity")

    @numeric_rule_variable(label="Hours since created")
    def hours_since_created(self) -> float:
        return self._since("hours_since_created")

    @boolean_rule_variable(label="Has a manager")
    def has_manager(self) -> bool:
        return self.deal.manager_id is not None

    @boolean_rule_variable(label="Proposal attached")
    def proposal_attached(self) -> bool:
        return self.deal.proposal_attached_at is not None

    @numeric_rule_variable(label="Hours since proposal attached")
    def hours_since_proposal_attached(self) -> float:
        return self._since("hours_since_proposal_attached")

    @boolean_rule_variable(label="Proposal opened by client")
    def proposal_opened(self) -> bool:
        return self.deal.proposal_opened_at is not None

    @numeric_rule_variable(label="Hours since proposal opened")
    def hours_since_proposal_opened(self) -> float:
        return self._since("hours_since_proposal_opened")

    @boolean_rule_variable(label="Client replied")
    def client_replied(self) -> bool:
        return self.deal.client_replied_at is not None

    @boolean_rule_variable(label="Payment received")
    def payment_received(self) -> bool:
        return self.deal.payment_received_at is not None

    @numeric_rule_variable(label="Amount")
    def amount(self) -> float:
        return float(self.deal.amount or 0)


BUILTIN_VARIABLES = frozenset(v["name"] for v in DealVariables.get_all_variables())

_FIELD_TYPES = {
    FieldType.TEXT: SafeStringType,
    FieldType.NUMERIC: NumericType,
    FieldType.BOOLEAN: BooleanType,
    FieldType.SELECT: SelectType,
}


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


def _custom_variable(field: FieldDef) -> Callable[..., Any]:
    def read(self: DealVariables) -> Any:
        return field_value(field, self.deal.fields.get(field.name))

    read.__name__ = field.name
    return rule_variable(
        _FIELD_TYPES[field.type], label=field.label or field.name, options=list(field.options)
    )(read)


def _fields_key(ruleset: RuleSet) -> tuple[tuple[str, str, str, tuple[str, ...]], ...]:
    return tuple((f.name, f.label, f.type.value, tuple(f.options)) for f in ruleset.fields)


@lru_cache(maxsize=256)
def _variables_class_for(key: tuple[tuple[str, str, str, tuple[str, ...]], ...]) -> type[DealVariables]:
    attrs = {
        name: _custom_variable(FieldDef(name=name, label=label, type=FieldType(type_), options=list(options)))
        for name, label, type_, options in key
    }
    return type("FunnelVariables", (DealVariables,), attrs)


def variables_class(ruleset: RuleSet) -> type[DealVariables]:
    """``DealVariables`` extended with the rule set's custom fields (cached per field list)."""
    return _variables_class_for(_fields_key(ruleset))
