"""Rule variables as business-rules declares them, generated from the one registry (``engine.rules.registry``).

``DealVariables`` carries the built-in variables; each funnel's custom fields are added per rule set
(and declared events) by ``variables_class``. These declarations are what ``export_rule_data`` lists and what the reference
evaluator (business-rules' own ``run_all``) calls: the source of truth the other evaluators are held to.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any

from business_rules.fields import FIELD_TEXT
from business_rules.operators import BooleanType, NumericType, SelectType, StringType, type_operator
from business_rules.variables import BaseVariables, rule_variable

from engine.document.labels import Label
from engine.document.regex import compile_pattern
from engine.document.ruleset import EventDef, FieldDef, FieldType, RuleSet
from engine.rules.deal import DealState
from engine.rules.registry import (
    BUILTINS,
    TIME_VARIABLES,
    Kind,
    Variable,
    custom_variable,
    event_variables,
    field_value,
    hours_between,
    working_twin,
)
from engine.rules.working_time import WorkingCalendar, calendar_of

__all__ = [
    "BUILTIN_VARIABLES",
    "TIME_VARIABLES",
    "DealVariables",
    "SafeStringType",
    "compiled_regex",
    "field_value",
    "hours_between",
    "variables_class",
]


#: business-rules' ``type_operator(FIELD_TEXT)`` (untyped), typed: it marks the method, unchanged.
_text_operator: Callable[[Callable[[Any, str], bool]], Callable[[Any, str], bool]] = type_operator(
    FIELD_TEXT
)


class SafeStringType(StringType):  # type: ignore[misc]  # business-rules ships no types
    """business-rules' string type with ``matches_regex`` run by RE2 (linear time, cannot hang).

    Same operator names as ``StringType``. RE2 is not Python's ``re``: the validator refuses the
    constructs that both accept but read differently (``\\w \\d \\s \\b`` and their negations are
    ASCII-only in RE2, ``[[:alpha:]]`` is a class only in RE2), so an accepted pattern that Python's
    ``re`` also compiles matches the same Unicode text. Two differences remain (docs/rules-format.md):
    ``$`` matches only at the very end (``re`` also before a final newline), and a few special
    case-insensitive matches (the Turkish dotted İ against ``(?i)i``). RE2-only syntax such as
    ``\\p{L}`` is accepted; Python's ``re`` refuses it outright rather than matching differently.
    """

    @_text_operator
    def matches_regex(self, regex: str) -> bool:
        return compiled_regex(regex).search(self.value) is not None


@lru_cache(maxsize=1024)
def compiled_regex(pattern: str) -> Any:
    """The RE2 program for ``pattern``, compiled once for every evaluation path (cached)."""
    return compile_pattern(
        pattern
    )  # the validator's options: memory bound, nothing logged to stderr


_TYPES = {
    Kind.STRING: SafeStringType,
    Kind.NUMERIC: NumericType,
    Kind.BOOLEAN: BooleanType,
    Kind.SELECT: SelectType,
}


def _declared(var: Variable) -> Callable[..., Any]:
    """The business-rules variable method for ``var``: its registry reader, decorated with its type."""
    read = var.read

    def method(self: DealVariables) -> Any:
        return read(self.deal, self.now)

    method.__name__ = method.__qualname__ = var.name
    declare: Callable[[Callable[..., Any]], Callable[..., Any]] = rule_variable(
        _TYPES[var.kind], label=var.label, options=list(var.options)
    )
    return declare(method)


class DealVariables(BaseVariables):  # type: ignore[misc]  # business-rules ships no types
    """The built-in variables (one method per ``registry.BUILTINS`` entry), against one deal at one instant."""

    def __init__(self, deal: DealState, now: datetime):
        self.deal = deal
        self.now = now


for _var in BUILTINS:
    setattr(DealVariables, _var.name, _declared(_var))
del _var

BUILTIN_VARIABLES = frozenset(v.name for v in BUILTINS)


# A Label compares as its English text, so the keys carry every text too: two funnels whose labels
# agree in English but differ in Ukrainian must not share a variables class.
_Texts = tuple[tuple[str, str], ...]
_FieldsKey = tuple[tuple[str, Label, _Texts, str, tuple[str, ...]], ...]
_EventsKey = tuple[tuple[str, Label, _Texts], ...]


def _texts(label: Label) -> _Texts:
    return tuple(sorted(label.texts.items())) if label.texts else ()


def _fields_key(ruleset: RuleSet) -> _FieldsKey:
    return tuple(
        (f.name, f.label, _texts(f.label), f.type.value, tuple(f.options)) for f in ruleset.fields
    )


@lru_cache(maxsize=256)
def _variables_class_for(
    key: _FieldsKey, events: _EventsKey = (), calendar: WorkingCalendar | None = None
) -> type[DealVariables]:
    attrs = {
        name: _declared(
            custom_variable(
                FieldDef(name=name, label=label, type=FieldType(type_), options=list(options))
            )
        )
        for name, label, _, type_, options in key
    }
    times = [v for v in BUILTINS if v.is_time]
    for name, label, _ in events:
        for var in event_variables(EventDef(name=name, label=label)):
            attrs[var.name] = _declared(var)
            times += [var] if var.is_time else []
    if calendar is not None:
        for var in times:
            twin = working_twin(var, calendar)
            attrs[twin.name] = _declared(twin)
    return type("FunnelVariables", (DealVariables,), attrs)


def variables_class(ruleset: RuleSet) -> type[DealVariables]:
    """``DealVariables`` extended with the rule set's custom fields, declared events and, with a
    calendar, the working-time twins (cached per list)."""
    return _variables_class_for(
        _fields_key(ruleset),
        tuple((e.name, e.label, _texts(e.label)) for e in ruleset.events),
        calendar_of(ruleset.calendar),
    )
