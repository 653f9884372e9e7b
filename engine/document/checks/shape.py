"""The document's shape: keys and JSON types, the condition tree read into its model, and the
well-formed rest of a document whose shape is wrong (so every problem is reported at once).

Conditions are read here from the raw JSON, not by pydantic: the messages name business-rules'
own vocabulary (groups, 'all'/'any', "a condition must be an object") and come in document order.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from engine.document.checks.messages import shape_message
from engine.document.checks.reading import json_path
from engine.document.conditions import AllOf, AnyOf, Condition
from engine.document.labels import json_kind
from engine.document.limits import MAX_CONDITION_DEPTH
from engine.document.ruleset import (
    ActionSpec,
    EventDef,
    FieldDef,
    FieldType,
    Rule,
    RuleSet,
    Stage,
    Transition,
)
from engine.document.suggestions import suggest
from engine.errors import Problem
from engine.i18n import _

__all__ = [
    "is_condition_error",
    "malformed",
    "read_conditions",
    "reindex",
    "salvage",
    "shape_problem",
]

LEAF_KEYS = ("name", "operator", "value")


def malformed() -> AllOf:
    """The stand-in for a malformed condition node: a group without leaves, so nothing further is
    checked under it and its siblings keep their paths (its problem is already reported)."""
    return AllOf.model_construct(all=[])


def read_conditions(
    node: Any, path: str, problems: list[Problem], depth: int = 1
) -> AllOf | AnyOf | Condition:
    """The model of a raw condition tree, appending every shape problem (with its path) to ``problems``.

    Malformed nodes become ``malformed()`` stand-ins; a leaf that names a variable and an operator is
    kept even with a stray or missing key, so its names are still checked (a missing ``value`` stays
    out of the leaf's ``model_fields_set``). ``depth`` counts groups: a leaf inside the deepest
    allowed group is fine.
    """

    def add(where: str, message: str) -> AllOf:
        problems.append(Problem(where, message))
        return malformed()

    if not isinstance(node, dict):
        return add(
            path,
            _("a condition must be an object, not {kind}").format(kind=json_kind(node)),
        )
    keys = set(node)
    if keys & {"all", "any"}:
        if depth > MAX_CONDITION_DEPTH:
            return add(
                path,
                _("conditions nest deeper than {n} groups").format(n=MAX_CONDITION_DEPTH),
            )
        if len(keys) != 1:
            return add(
                path,
                _("a group has exactly one key, 'all' or 'any'; found {keys}").format(
                    keys=sorted(keys)
                ),
            )
        kind = next(iter(keys))
        items = node[kind]
        if not isinstance(items, list):
            return add(
                f"{path}.{kind}", _("'{kind}' must be a list of conditions").format(kind=kind)
            )
        if not items:
            # business-rules only asserts this (and python -O drops the assert): an empty group would fire.
            problems.append(
                Problem(
                    f"{path}.{kind}",
                    _("'{kind}' is empty; a group needs at least one condition").format(kind=kind),
                )
            )
        children = [
            read_conditions(child, f"{path}.{kind}[{k}]", problems, depth + 1)
            for k, child in enumerate(items)
        ]
        return (
            AllOf.model_construct(all=children)
            if kind == "all"
            else AnyOf.model_construct(any=children)
        )
    for key in sorted(keys - set(LEAF_KEYS)):
        problems.append(
            Problem(
                f"{path}.{key}",
                _("unknown key '{key}' in a condition (expected name, operator, value)").format(
                    key=key
                )
                + suggest(key, [*LEAF_KEYS, "all", "any"]),
            )
        )
    for key in LEAF_KEYS:
        if key not in node:
            message = _("required key '{key}' is missing").format(key=key)
            if key == "value":
                message += " " + _(
                    "(business-rules reads it even for operators without input; use null)"
                )
            problems.append(Problem(path, message))
    if "name" not in node or "operator" not in node:
        return malformed()
    return Condition.model_construct(**{key: node[key] for key in LEAF_KEYS if key in node})


def is_condition_error(err: Any, doc: Any) -> bool:
    """A pydantic error inside a rule's present ``conditions``: ``read_conditions`` reports it instead."""
    loc = err["loc"]
    if len(loc) < 3 or loc[0] != "rules" or not isinstance(loc[1], int) or loc[2] != "conditions":
        return False
    rules = doc.get("rules") if isinstance(doc, dict) else None
    rule = rules[loc[1]] if isinstance(rules, list) and loc[1] < len(rules) else None
    return isinstance(rule, dict) and "conditions" in rule


def shape_problem(err: Any) -> Problem:
    """One pydantic error as a problem at its path, in the reader's language (``messages``)."""
    return Problem(json_path(err["loc"]), shape_message(err))


#: Stand-ins for required values that are missing or malformed, so the rest of the item can be checked.
#: Whatever the checker says about a stand-in is dropped (see ``_semantic_problems_of_partial``).
_PLACEHOLDERS: dict[str, Any] = {
    "funnel": "",
    "name": "",
    "id": "",
    "stages": [],
    "from_": "",
    "to": "",
    "actions": [],
}
_ITEM_MODELS: dict[tuple[type[BaseModel], str], type[BaseModel]] = {
    (RuleSet, "fields"): FieldDef,
    (RuleSet, "events"): EventDef,
    (RuleSet, "stages"): Stage,
    (RuleSet, "transitions"): Transition,
    (RuleSet, "rules"): Rule,
    (Rule, "actions"): ActionSpec,
}


def salvage(model: type[BaseModel], data: Any) -> Any:
    """``model`` built from the parts of ``data`` that validate on their own; None if ``data`` is no object."""
    if not isinstance(data, dict):
        return None
    try:
        return model.model_validate(data)
    except ValidationError:
        pass
    values: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        if key not in data:
            continue
        item_model = _ITEM_MODELS.get((model, name))
        if item_model is not None:
            items = data[key] if isinstance(data[key], list) else []
            values[name] = [
                x for x in (salvage(item_model, item) for item in items) if x is not None
            ]
            continue
        try:
            model.__pydantic_validator__.validate_assignment(
                model.model_construct(), name, data[key]
            )
        except ValidationError:
            continue
        values[name] = getattr(
            model.__pydantic_validator__.validate_assignment(
                model.model_construct(), name, data[key]
            ),
            name,
        )
    for name, info in model.model_fields.items():
        if name not in values and info.is_required():
            if model is FieldDef and name == "type":
                values[name] = FieldType.SELECT if values.get("options") else FieldType.TEXT
            elif model is Rule and name == "conditions":
                values[name] = malformed()
            else:
                values[name] = _PLACEHOLDERS.get(name, "")
    return model.model_construct(**values)


def reindex(problem: Problem, doc: dict[str, Any], partial: Any) -> Problem | None:
    """``problem`` with its list indices mapped from the salvaged rule set back to the document."""
    path = problem.path
    for top in ("fields", "events", "stages", "transitions", "rules"):
        if not path.startswith(top + "["):
            continue
        raw = doc.get(top)
        if not isinstance(raw, list):
            return problem
        kept = [i for i, item in enumerate(raw) if isinstance(item, dict)]
        index_text = path[len(top) + 1 : path.index("]")]
        if not index_text.isdigit() or int(index_text) >= len(kept):
            return problem
        path = f"{top}[{kept[int(index_text)]}]{path[path.index(']') + 1 :]}"
        if top == "rules":
            path = _reindex_actions(path, raw[kept[int(index_text)]])
        return Problem(path, problem.message)
    return problem


def _reindex_actions(path: str, rule: dict[str, Any]) -> str:
    marker = ".actions["
    at = path.find(marker)
    actions = rule.get("actions")
    if at < 0 or not isinstance(actions, list):
        return path
    start = at + len(marker)
    end = path.index("]", start)
    kept = [i for i, item in enumerate(actions) if isinstance(item, dict)]
    n = int(path[start:end]) if path[start:end].isdigit() else -1
    return path if not 0 <= n < len(kept) else f"{path[:start]}{kept[n]}{path[end:]}"
