"""Checks past the shape: names against business-rules' own declarations, values against operators,
references between parts of the document, action params and templates."""

from __future__ import annotations

import json
from typing import Any

import re2
from babel.numbers import is_currency
from business_rules import export_rule_data

from engine.document.checks.patterns import pattern_problems
from engine.document.checks.shape import read_conditions
from engine.document.conditions import Condition, leaves
from engine.document.labels import label_texts
from engine.document.limits import (
    IDENT,
    MAX_DUE_IN_HOURS,
    MAX_FUNNEL_NAME,
    MAX_ID_LENGTH,
    MAX_LABEL,
    MAX_RULE_NAME,
    MAX_RULES,
    MAX_STAGE_NAME,
    MAX_STAGES,
    MAX_TIME_HOURS,
)
from engine.document.ruleset import FieldType, RuleSet
from engine.document.suggestions import suggest
from engine.document.template import LANGUAGE, TemplateError, placeholders
from engine.errors import Problem
from engine.i18n import _
from engine.rules.actions import TASK_ACTIONS, TEMPLATE_PARAMS, DealActions
from engine.rules.deal import BUILTIN_FIELDS, TEMPLATE_BUILTINS
from engine.rules.registry import TIME_VARIABLES, time_variables
from engine.rules.variables import DealVariables, variables_class
from engine.text import name_refusal

__all__ = ["Checker", "rule_data"]

_INDEX = re2.compile(r"\[(\d+)\]")


def rule_data(ruleset: RuleSet | None = None) -> dict[str, Any]:
    """``export_rule_data`` for a rule set: the single source of what a rule may name."""
    variables = variables_class(ruleset) if ruleset is not None else DealVariables
    data: dict[str, Any] = export_rule_data(variables, DealActions)
    return data


def _position(path: str, root: str) -> list[int]:
    """Where ``path`` lies in the tree under ``root``, as list indices: sorts in document order."""
    return [int(i) for i in _INDEX.findall(path[len(root) :])]


class Checker:
    """Every check past the shape, on a (possibly salvaged) ``RuleSet``; ``run`` returns the problems.

    ``raw_rules``: the document's rule objects, aligned with ``ruleset.rules``, from which each
    rule's conditions are read (``shape.read_conditions``) and then checked leaf by leaf.
    """

    def __init__(self, ruleset: RuleSet, known_funnels: set[str], raw_rules: list[Any]):
        self.rs = ruleset
        self.raw_rules = raw_rules
        self.known_funnels = known_funnels | {ruleset.funnel}
        self.problems: list[Problem] = []
        self.stage_ids = [s.id for s in ruleset.stages]
        self.field_names = [f.name for f in ruleset.fields]
        self.time_names: set[str] = set(TIME_VARIABLES)

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def run(self) -> list[Problem]:
        self.check_header()
        self.check_fields()
        self.check_events()
        if not self.problems:
            # Custom fields and events become variables; only build the class from clean lists.
            self.data = rule_data(self.rs)
            self.time_names = set(time_variables(self.rs))
        else:
            self.data = rule_data(None)
        self.variables = {v["name"]: v for v in self.data["variables"]}
        self.operators = {
            t: {o["name"]: o for o in ops}
            for t, ops in self.data["variable_type_operators"].items()
        }
        self.actions = {a["name"]: a for a in self.data["actions"]}
        self.check_stages()
        self.check_transitions()
        self.check_rules()
        return self.problems

    def check_header(self) -> None:
        self.check_ident("funnel", self.rs.funnel, "funnel id")
        if not self.rs.name.strip():
            self.add("name", _("funnel name is empty"))
        self.check_name("name", self.rs.name, _("funnel name"))
        self.check_length("name", self.rs.name, MAX_FUNNEL_NAME, _("a funnel name"))
        if len(self.rs.rules) > MAX_RULES:
            self.add(
                "rules",
                _("{count} rules; the limit is {limit}").format(
                    count=len(self.rs.rules), limit=MAX_RULES
                ),
            )
        if len(self.rs.stages) > MAX_STAGES:
            self.add(
                "stages",
                _("{count} stages; the limit is {limit}").format(
                    count=len(self.rs.stages), limit=MAX_STAGES
                ),
            )
        if self.rs.language is not None and not LANGUAGE.match(self.rs.language):
            self.add(
                "language",
                _("'{code}' is not a language code (e.g. 'uk', 'en')").format(
                    code=self.rs.language[:20]
                ),
            )
        if self.rs.currency is not None and not (
            len(self.rs.currency) == 3
            and self.rs.currency.isupper()
            and is_currency(self.rs.currency)
        ):
            self.add(
                "currency",
                _("'{code}' is not an ISO 4217 currency code (e.g. 'UAH', 'EUR')").format(
                    code=self.rs.currency[:20]
                ),
            )

    def check_ident(self, path: str, value: str, what: str) -> bool:
        """A lowercase identifier that fits its storage column; False (and a problem) otherwise."""
        reason = name_refusal(value)
        if (
            reason is not None
        ):  # said plainly: quoted in the message below, it would reorder the line
            self.add(path, _("{what} {reason}").format(what=what, reason=reason))
            return False
        if len(value) > MAX_ID_LENGTH:
            self.add(
                path,
                _(
                    "'{value}…' is {length} characters long; a {what} may have at most {limit}"
                ).format(value=value[:30], length=len(value), what=what, limit=MAX_ID_LENGTH),
            )
            return False
        if not IDENT.match(value):
            self.add(
                path,
                _(
                    "'{value}' is not a valid {what} (lowercase letters, digits and '_', starting "
                    "with a letter)"
                ).format(value=value, what=what),
            )
            return False
        return True

    def check_length(self, path: str, value: str, limit: int, what: str) -> None:
        texts = label_texts(value)
        if texts is not None:  # a label per language: each text on its own path (stages[0].name.uk)
            for lang, text in texts.items():
                self.check_length(f"{path}.{lang}", text, limit, what)
            return
        if len(value) > limit:
            self.add(
                path,
                _("'{value}…' is {length} characters long; {what} may have at most {limit}").format(
                    value=value[:30], length=len(value), what=what, limit=limit
                ),
            )

    def check_name(self, path: str, value: str, what: str) -> None:
        """A name people read: no bidirectional overrides, and not only invisible characters."""
        texts = label_texts(value)
        if texts is not None:
            for lang, text in texts.items():
                if not text.strip():
                    self.add(f"{path}.{lang}", _("{what} is empty").format(what=what))
                else:
                    self.check_name(f"{path}.{lang}", text, what)
            return
        reason = name_refusal(value) if value.strip() else None  # empty: each caller's own rule
        if reason is not None:
            self.add(path, _("{what} {reason}").format(what=what, reason=reason))

    @staticmethod
    def reserved_names() -> set[str]:
        """Names a field or an event variable may not take: built-in variables, deal attributes, engine names."""
        return (
            set(dir(DealVariables)) | set(BUILTIN_FIELDS) | set(TEMPLATE_BUILTINS) | {"deal", "now"}
        )

    def check_fields(self) -> None:
        reserved = self.reserved_names()
        seen: set[str] = set()
        for i, f in enumerate(self.rs.fields):
            p = f"fields[{i}]"
            if not self.check_ident(f"{p}.name", f.name, _("field name")):
                pass
            elif f.name in reserved:
                self.add(
                    f"{p}.name",
                    _(
                        "'{name}' is reserved (a built-in variable, deal attribute or engine name)"
                    ).format(name=f.name),
                )
            if f.name in seen:
                self.add(f"{p}.name", _("duplicate field name '{name}'").format(name=f.name))
            seen.add(f.name)
            self.check_length(f"{p}.label", f.label, MAX_LABEL, _("a field label"))
            self.check_name(f"{p}.label", f.label, _("field label"))
            for k, option in enumerate(f.options):
                self.check_length(f"{p}.options[{k}]", option, MAX_LABEL, _("an option"))
                self.check_name(f"{p}.options[{k}]", option, _("option"))
            if f.type is FieldType.SELECT:
                if not f.options:
                    self.add(
                        f"{p}.options",
                        _("select field '{name}' needs at least one option").format(name=f.name),
                    )
                if any(not o.strip() for o in f.options):
                    # An empty answer means "not answered" everywhere else, so it cannot also be an option.
                    self.add(
                        f"{p}.options",
                        _("select field '{name}' has an empty option").format(name=f.name),
                    )
                if len({o.lower() for o in f.options}) != len(f.options):
                    self.add(
                        f"{p}.options",
                        _("options repeat (options are compared case-insensitively)"),
                    )
            elif f.options:
                self.add(
                    f"{p}.options",
                    _("only select fields have options; '{name}' is {type}").format(
                        name=f.name, type=f.type.value
                    ),
                )

    def check_events(self) -> None:
        """Declared events: names whose two variables clash with nothing, labels, carried fields."""
        reserved, fields = self.reserved_names(), set(self.field_names)
        targets = self.field_names + list(BUILTIN_FIELDS)
        taken: dict[str, str] = {}  # variable name -> the event that gives it
        for i, e in enumerate(self.rs.events):
            p = f"events[{i}]"
            if self.check_ident(f"{p}.name", e.name, _("event name")):
                for var in (e.name, f"hours_since_{e.name}"):
                    if var in reserved:
                        self.add(
                            f"{p}.name",
                            _(
                                "event '{event}' would give the rule variable '{variable}', which "
                                "is reserved (a built-in variable, deal attribute or engine name)"
                            ).format(event=e.name, variable=var),
                        )
                    elif var in fields:
                        self.add(
                            f"{p}.name",
                            _(
                                "event '{event}' would give the rule variable '{variable}', which "
                                "is already a custom field"
                            ).format(event=e.name, variable=var),
                        )
                    elif var in taken:
                        what = (
                            _("a duplicate event name")
                            if taken[var] == e.name
                            else _("also a variable of event '{event}'").format(event=taken[var])
                        )
                        self.add(
                            f"{p}.name",
                            _(
                                "event '{event}' would give the rule variable '{variable}': {why}"
                            ).format(event=e.name, variable=var, why=what),
                        )
                    else:
                        taken[var] = e.name
            self.check_length(f"{p}.label", e.label, MAX_LABEL, _("an event label"))
            self.check_name(f"{p}.label", e.label, _("event label"))
            written: dict[str, str] = {}
            for key, target in e.fields.items():
                kp = f"{p}.fields.{key}"
                if not IDENT.match(key):
                    self.add(
                        kp,
                        _(
                            "'{key}' is not a valid data key (lowercase letters, digits and '_', "
                            "starting with a letter)"
                        ).format(key=key[:30]),
                    )
                if target not in targets:
                    self.add(
                        kp,
                        _("unknown field '{name}'").format(name=target) + suggest(target, targets),
                    )
                elif target in written:
                    self.add(
                        kp,
                        _("field '{name}' is already written by data key '{key}'").format(
                            name=target, key=written[target]
                        ),
                    )
                else:
                    written[target] = key
        self.check_links()

    def check_links(self) -> None:
        """Tracking links: a placeholder no template name already means, a declared event to record."""
        events = [e.name for e in self.rs.events]
        taken = set(TEMPLATE_BUILTINS) | set(self.field_names)
        placeholders: dict[str, str] = {}  # placeholder -> the event that declares it
        opened_by: dict[str, str] = {}  # opened event -> the event whose link records it
        for i, e in enumerate(self.rs.events):
            if e.link is None:
                continue
            p = f"events[{i}].link"
            name = e.link.placeholder
            if self.check_ident(f"{p}.placeholder", name, _("link placeholder")):
                if name in taken:
                    self.add(
                        f"{p}.placeholder",
                        _(
                            "'{placeholder}' already means a deal attribute or field in a template"
                        ).format(placeholder="{" + name + "}"),
                    )
                elif name in placeholders:
                    self.add(
                        f"{p}.placeholder",
                        _("'{placeholder}' is already the link of event '{event}'").format(
                            placeholder="{" + name + "}", event=placeholders[name]
                        ),
                    )
                else:
                    placeholders[name] = e.name
            opened = e.link.opened
            if opened not in events:
                self.add(
                    f"{p}.opened",
                    _("unknown event '{name}'").format(name=opened)
                    + suggest(opened, events)
                    + _(" (declared: {events})").format(events=", ".join(events)),
                )
            elif opened == e.name:
                self.add(f"{p}.opened", _("a link cannot record the event that carries it"))
            elif opened in opened_by:
                self.add(
                    f"{p}.opened",
                    _("event '{event}' is already recorded by the link of event '{other}'").format(
                        event=opened, other=opened_by[opened]
                    ),
                )
            else:
                opened_by[opened] = e.name
            if not IDENT.match(e.link.url):
                self.add(
                    f"{p}.url",
                    _(
                        "'{key}' is not a valid data key (lowercase letters, digits and '_', "
                        "starting with a letter)"
                    ).format(key=e.link.url[:30]),
                )

    def check_stages(self) -> None:
        if not self.rs.stages:
            self.add("stages", _("a funnel needs at least one stage"))
        seen: set[str] = set()
        for i, s in enumerate(self.rs.stages):
            p = f"stages[{i}]"
            self.check_ident(f"{p}.id", s.id, _("stage id"))
            if s.id in seen:
                self.add(f"{p}.id", _("duplicate stage id '{id}'").format(id=s.id))
            seen.add(s.id)
            if not s.name.strip():
                self.add(f"{p}.name", _("stage name is empty"))
            self.check_name(f"{p}.name", s.name, _("stage name"))
            self.check_length(f"{p}.name", s.name, MAX_STAGE_NAME, _("a stage name"))
            if s.guard:
                for j, name in enumerate(s.guard.required_fields):
                    if name not in self.field_names and name not in BUILTIN_FIELDS:
                        self.add(
                            f"{p}.guard.required_fields[{j}]",
                            _("unknown field '{name}'").format(name=name)
                            + suggest(name, self.field_names + list(BUILTIN_FIELDS)),
                        )
        if self.rs.initial_stage is not None and self.rs.initial_stage not in self.stage_ids:
            self.add(
                "initial_stage",
                _("unknown stage '{id}'").format(id=self.rs.initial_stage)
                + suggest(self.rs.initial_stage, self.stage_ids),
            )

    def check_transitions(self) -> None:
        seen: set[tuple[str, str]] = set()
        for i, t in enumerate(self.rs.transitions):
            for key, value in (("from", t.from_), ("to", t.to)):
                if value not in self.stage_ids:
                    self.add(
                        f"transitions[{i}].{key}",
                        _("unknown stage '{id}'").format(id=value) + suggest(value, self.stage_ids),
                    )
            if t.from_ == t.to:
                self.add(
                    f"transitions[{i}]",
                    _("a transition from '{stage}' to itself is not allowed").format(stage=t.from_),
                )
            if (t.from_, t.to) in seen:
                self.add(
                    f"transitions[{i}]",
                    _("duplicate transition {source} → {target}").format(
                        source=t.from_, target=t.to
                    ),
                )
            seen.add((t.from_, t.to))

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

    # -- conditions ------------------------------------------------------------------------------
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
        # No variable is of business-rules' select_multiple type (custom fields are single-choice),
        # so its operators are never offered: check_leaf refuses them by the variable's type.

    def check_regex(self, pattern: str, p: str) -> None:
        for message in pattern_problems(pattern):
            self.add(p, message)

    # -- actions -------------------------------------------------------------------------------
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
            elif decl["name"] == "due_in_hours" and value > MAX_DUE_IN_HOURS:
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
