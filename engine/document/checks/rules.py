"""The semantic checks of rules: conditions leaf by leaf (variables, operators, values, patterns),
actions and their params, templates — each problem at its JSON path, in document order."""

from __future__ import annotations

import json
from typing import Any

import re2

from engine.document.checks.base import Checks
from engine.document.checks.calendar import (
    is_working_twin,
    notification_delay_problems,
    task_delay_problems,
    working_time_refusal,
)
from engine.document.checks.patterns import pattern_problems
from engine.document.checks.shape import read_conditions
from engine.document.conditions import Condition, leaves
from engine.document.limits import (
    MAX_DUE_IN_HOURS,
    MAX_RULE_NAME,
    MAX_TIME_HOURS,
    MAX_WORKING_HOURS,
)
from engine.document.suggestions import suggest
from engine.document.template import LANGUAGE, TemplateError, placeholders
from engine.errors import Problem
from engine.i18n import _
from engine.rules.actions import TASK_ACTIONS, TEMPLATE_PARAMS
from engine.rules.deal import TEMPLATE_BUILTINS

__all__ = ["RuleChecks"]

_INDEX = re2.compile(r"\[(\d+)\]")


def _position(path: str, root: str) -> list[int]:
    """Where ``path`` lies in the tree under ``root``, as list indices: sorts in document order."""
    return [int(i) for i in _INDEX.findall(path[len(root) :])]


class RuleChecks(Checks):
    """Checks of ``rules[*]``, run by ``Checker`` once the funnel's variables are known."""

    def check_rules(self) -> None:
        seen: set[str] = set()
        for i, rule in enumerate(self.rs.rules):
            p = f"rules[{i}]"
            self.check_ident(f"{p}.id", rule.id, _("rule id"))
            self.check_length(f"{p}.name", rule.name, MAX_RULE_NAME, _("a rule name"))
            self.check_name(f"{p}.name", rule.name, _("rule name"))
            if rule.id in seen:
                self.add(f"{p}.id", _("duplicate rule id '{id}'").format(id=rule.id))
            seen.add(rule.id)
            raw = self.raw_rules[i] if i < len(self.raw_rules) else None
            self.check_conditions(
                raw.get("conditions") if isinstance(raw, dict) else None, f"{p}.conditions"
            )
            if not rule.actions:
                self.add(f"{p}.actions", _("a rule needs at least one action"))
            for j, action in enumerate(rule.actions):
                self.check_action(action.name, action.params, f"{p}.actions[{j}]")
                if action.keep_after_stage_exit is not None and action.name not in TASK_ACTIONS:
                    self.add(
                        f"{p}.actions[{j}].keep_after_stage_exit",
                        _(
                            "only a task or a notification can stay open after the deal leaves"
                            " the stage ('{action}' creates neither; it applies to: {allowed})"
                        ).format(action=action.name, allowed=", ".join(sorted(TASK_ACTIONS))),
                    )

    def check_conditions(self, raw: Any, p: str) -> None:
        """The tree's shape problems (from the raw JSON) and each leaf's, merged in document order."""
        shape: list[Problem] = []
        tree = read_conditions(raw, p, shape)
        found = [(_position(problem.path, p), 0, problem) for problem in shape]
        for path, leaf in leaves(tree, p):
            before = len(self.problems)
            self.check_leaf(leaf, path)
            found += [
                (_position(problem.path, p), 1, problem) for problem in self.problems[before:]
            ]
            del self.problems[before:]
        self.problems += [problem for *_key, problem in sorted(found, key=lambda x: (x[0], x[1]))]

    def check_leaf(self, leaf: Condition, p: str) -> None:
        name, op = leaf.name, leaf.operator
        if (
            isinstance(name, str)
            and name not in self.variables
            and is_working_twin(name, self.time_names)
        ):
            self.add(f"{p}.name", working_time_refusal(name))
            return
        if not isinstance(name, str) or name not in self.variables:
            self.add(
                f"{p}.name",
                _("'{name}' is not a rule variable").format(name=name)
                + suggest(name, self.variables),
            )
            return
        var = self.variables[name]
        ops = self.operators[var["field_type"]]
        if not isinstance(op, str) or op not in ops:
            self.add(
                f"{p}.operator",
                _("'{operator}' is not an operator for {type} variables").format(
                    operator=op, type=var["field_type"]
                )
                + suggest(op, ops)
                + " "
                + _("(allowed: {operators})").format(operators=", ".join(sorted(ops))),
            )
            return
        if "value" in leaf.model_fields_set:
            self.check_value(var, ops[op], leaf.value, f"{p}.value")

    def check_value(self, var: dict[str, Any], op: dict[str, Any], value: Any, p: str) -> None:
        input_type = op["input_type"]
        name = var["name"]
        if input_type == "none":
            if value is not None:
                # business-rules ignores it; a stray value only hides what the author meant.
                self.add(
                    p,
                    _("'{operator}' takes no value; write null, got {value}").format(
                        operator=op["name"], value=json.dumps(value)
                    ),
                )
            return
        if input_type == "numeric":
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.add(
                    p,
                    _("'{operator}' on '{variable}' needs a number, got {value}").format(
                        operator=op["name"], variable=name, value=json.dumps(value)
                    ),
                )
            elif value != value or value in (float("inf"), float("-inf")):
                self.add(p, _("the number must be finite"))
            elif name in self.working_names and abs(value) > MAX_WORKING_HOURS:
                self.add(
                    p,
                    _(
                        "{value} working hours is out of range for '{name}' (at most {limit:,}"
                        " either way)"
                    ).format(value=value, name=name, limit=MAX_WORKING_HOURS),
                )
            elif name in self.time_names and abs(value) > MAX_TIME_HOURS:
                self.add(
                    p,
                    _(
                        "{value} hours is out of range for '{variable}' (at most {limit} hours "
                        "either way)"
                    ).format(value=value, variable=name, limit=f"{MAX_TIME_HOURS:,}"),
                )
            elif name in self.time_names and op["name"] == "equal_to":
                # Time flows between ticks: "exactly 24 h" holds for microseconds that no tick meets.
                self.add(
                    f"{p[: -len('.value')]}.operator",
                    _(
                        "'equal_to' on '{variable}' would almost never fire (time moves on between "
                        "ticks, so the value is exactly {value} only for an instant); use "
                        "'greater_than_or_equal_to'"
                    ).format(variable=name, value=value),
                )
            return
        if input_type == "text":
            if not isinstance(value, str):
                self.add(
                    p,
                    _("'{operator}' on '{variable}' needs a text value, got {value}").format(
                        operator=op["name"], variable=name, value=json.dumps(value)
                    ),
                )
                return
            if op["name"] == "matches_regex":
                self.check_regex(value, p)
            elif name == "stage" and op["name"] == "equal_to" and value not in self.stage_ids:
                self.add(
                    p, _("unknown stage '{id}'").format(id=value) + suggest(value, self.stage_ids)
                )
            elif (
                name == "stage"
                and op["name"] == "equal_to_case_insensitive"
                and value.lower() not in {s.lower() for s in self.stage_ids}
            ):
                self.add(
                    p,
                    _("unknown stage '{id}'").format(id=value)
                    + suggest(value.lower(), self.stage_ids),
                )
            return
        if input_type == "select":
            options = var.get("options") or []
            if isinstance(value, list | dict) or value is None:
                self.add(
                    p,
                    _("'{operator}' on '{variable}' needs one option, got {value}").format(
                        operator=op["name"], variable=name, value=json.dumps(value)
                    ),
                )
            elif options and (
                not isinstance(value, str) or value.lower() not in {o.lower() for o in options}
            ):
                self.add(
                    p,
                    _("'{value}' is not an option of '{variable}' (options: {options})").format(
                        value=value, variable=name, options=", ".join(options)
                    )
                    + suggest(value, options),
                )
            return

    def check_regex(self, pattern: str, p: str) -> None:
        for message in pattern_problems(pattern):
            self.add(p, message)

    def check_action(self, name: str, params: dict[str, Any], p: str) -> None:
        if name not in self.actions:
            self.add(
                f"{p}.name",
                _("'{name}' is not an action").format(name=name) + suggest(name, self.actions),
            )
            return
        declared = {d["name"]: d for d in self.actions[name]["params"] or []}
        for key in params:
            if key not in declared:
                self.add(
                    f"{p}.params.{key}",
                    _("'{key}' is not a parameter of '{action}'").format(key=key, action=name)
                    + suggest(key, declared)
                    + " "
                    + _("(parameters: {parameters})").format(
                        parameters=", ".join(declared) or _("none")
                    ),
                )
        if name == "create_task":
            self.problems += task_delay_problems(params, p, self.rs.calendar is not None)
        elif name == "notify_manager":
            self.problems += notification_delay_problems(params, p, self.rs.calendar is not None)
        for key, d in declared.items():
            # null for an optional param means "the default", as the action itself treats it.
            if key not in params or (params[key] is None and not d.get("required", True)):
                if d.get("required", True):
                    self.add(
                        f"{p}.params",
                        _("'{action}' needs parameter '{key}'").format(action=name, key=key),
                    )
                continue
            self.check_param(name, d, params[key], f"{p}.params.{key}")

    def check_param(self, action: str, decl: dict[str, Any], value: Any, p: str) -> None:
        ftype = decl["fieldType"]
        if ftype == "numeric":
            if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
                self.add(p, _("needs a number, got {value}").format(value=json.dumps(value)))
            elif value in (float("inf"), float("-inf")):
                # Infinity would pass the sign check and then crash the effect (timedelta overflow).
                self.add(p, _("the number must be finite"))
            elif value < 0:
                self.add(p, _("must not be negative, got {value}").format(value=value))
            elif decl["name"] in ("due_in_hours", "delay_hours") and value > MAX_DUE_IN_HOURS:
                self.add(
                    p,
                    _(
                        "is {value} hours; a task may be due at most {limit} hours (ten years) ahead"
                    ).format(value=value, limit=MAX_DUE_IN_HOURS),
                )
            return
        key = decl["name"]
        if isinstance(value, dict) and key in TEMPLATE_PARAMS.get(action, ()):
            # One template per language: {"uk": "…", "en": "…"}, each checked as a template.
            if not value:
                self.add(
                    p,
                    _("needs a text, or texts by language such as {example}").format(
                        example='{"uk": "…", "en": "…"}'
                    ),
                )
            for lang, text in value.items():
                if not isinstance(lang, str) or not LANGUAGE.match(lang):
                    self.add(
                        f"{p}.{lang}",
                        _("'{code}' is not a language code (e.g. 'uk', 'en')").format(
                            code=str(lang)[:20]
                        ),
                    )
                elif not isinstance(text, str):
                    self.add(
                        f"{p}.{lang}",
                        _("needs a text value, got {value}").format(value=json.dumps(text)),
                    )
                else:
                    self.check_template(text, f"{p}.{lang}")
            return
        if not isinstance(value, str):
            self.add(p, _("needs a text value, got {value}").format(value=json.dumps(value)))
            return
        if ftype == "select":
            options = list(decl.get("options") or [])
            if action == "move_to_stage" and key == "to_stage":
                options = self.stage_ids
                unknown = _("unknown stage '{id}'")
            elif action == "start_process" and key == "funnel":
                options = sorted(self.known_funnels)
                unknown = _("unknown funnel '{id}'")
            else:
                unknown = _("unknown option '{id}'")
            if value not in options:
                # The other funnel usually exists, just not where the validator looked.
                hint = (
                    " — "
                    + _("validate it together with that funnel's file, or import that funnel first")
                    if action == "start_process" and key == "funnel"
                    else ""
                )
                self.add(
                    p,
                    unknown.format(id=value)
                    + suggest(value, options)
                    + " "
                    + _("(choose one of: {options})").format(options=", ".join(options))
                    + hint,
                )
            return
        if key in TEMPLATE_PARAMS.get(action, ()):
            self.check_template(value, p)

    def check_template(self, value: str, p: str) -> None:
        if not value.strip():
            self.add(p, _("text is empty"))
            return
        try:
            names = placeholders(value)
        except TemplateError as exc:
            self.add(p, str(exc))
            return
        allowed = (
            set(TEMPLATE_BUILTINS)
            | set(self.field_names)
            | {e.link.placeholder for e in self.rs.linked_events() if e.link}
        )
        for n in names:
            if n not in allowed:
                self.add(
                    p,
                    _("template names unknown field '{placeholder}'").format(placeholder=f"{{{n}}}")
                    + suggest(n, allowed),
                )
