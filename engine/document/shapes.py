"""The common condition shapes an owner picks directly, built as plain business-rules JSON.

"Budget is answered", "any of Budget, Authority or Need is “no”", "within 24 h of entering": each is
a small group of ordinary conditions (``contains`` / ``does_not_contain`` over a select field's
options, an "hours since" variable below a bound), so the saved document stays business-rules' own
and every evaluator reads it unchanged. ``engine.document.summary`` tells the same shapes back in
one phrase.
"""

from __future__ import annotations

from typing import Any

from engine.document.ruleset import FieldDef, FieldType

__all__ = ["after_hours", "answered", "any_is", "any_unanswered", "unanswered", "within_hours"]

Node = dict[str, Any]


def answered(field: FieldDef) -> Node:
    """The field has a value: one of a select field's options is chosen; a text field is filled in."""
    if field.type is FieldType.SELECT and field.options:
        return {"any": [_leaf(field.name, "contains", o) for o in field.options]}
    if field.type is FieldType.TEXT:
        return _leaf(field.name, "non_empty", None)
    raise ValueError(f"field '{field.name}' ({field.type.value}) has no 'answered' shape")


def unanswered(field: FieldDef) -> Node:
    """The field is still empty: none of a select field's options chosen; a text field left blank."""
    if field.type is FieldType.SELECT and field.options:
        return {"all": [_leaf(field.name, "does_not_contain", o) for o in field.options]}
    if field.type is FieldType.TEXT:
        return _leaf(field.name, "equal_to", "")
    raise ValueError(f"field '{field.name}' ({field.type.value}) has no 'unanswered' shape")


def any_unanswered(fields: list[FieldDef]) -> Node:
    """At least one of the fields is still empty."""
    return _one_or_any([unanswered(f) for f in fields])


def any_is(fields: list[FieldDef], value: str) -> Node:
    """At least one of the select fields has ``value`` chosen ("any of … is no")."""
    for f in fields:
        if f.type is not FieldType.SELECT or value not in f.options:
            raise ValueError(f"'{value}' is not an option of field '{f.name}'")
    return _one_or_any([_leaf(f.name, "contains", value) for f in fields])


def within_hours(variable: str, hours: float, event: str | None = None) -> Node:
    """Less than ``hours`` since the moment ``variable`` counts from; for a declared ``event`` the event
    must also have happened in this stage visit (its "hours since" is 0 until it does)."""
    bound = _leaf(variable, "less_than", _number(hours))
    return {"all": [_leaf(event, "is_true", None), bound]} if event else bound


def after_hours(variable: str, hours: float) -> Node:
    """At least ``hours`` since the moment ``variable`` counts from."""
    return _leaf(variable, "greater_than_or_equal_to", _number(hours))


def _leaf(name: str, operator: str, value: Any) -> Node:
    return {"name": name, "operator": operator, "value": value}


def _one_or_any(nodes: list[Node]) -> Node:
    if not nodes:
        raise ValueError("choose at least one field")
    return nodes[0] if len(nodes) == 1 else {"any": nodes}


def _number(hours: float) -> float | int:
    return int(hours) if float(hours).is_integer() else hours
