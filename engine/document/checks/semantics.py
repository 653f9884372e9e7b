"""Checks past the shape: names against business-rules' own declarations, values against operators,
references between parts of the document, action params and templates."""

from __future__ import annotations

from typing import Any

from babel.numbers import is_currency
from business_rules import export_rule_data

from engine.document.checks.calendar import calendar_problems
from engine.document.checks.rules import RuleChecks
from engine.document.limits import (
    IDENT,
    MAX_FUNNEL_NAME,
    MAX_LABEL,
    MAX_RULES,
    MAX_STAGE_NAME,
    MAX_STAGES,
)
from engine.document.ruleset import FieldType, RuleSet
from engine.document.suggestions import suggest
from engine.document.template import LANGUAGE
from engine.errors import Problem
from engine.i18n import _
from engine.rules.actions import DealActions
from engine.rules.deal import BUILTIN_FIELDS, TEMPLATE_BUILTINS
from engine.rules.registry import time_variables, working_calendars
from engine.rules.variables import DealVariables, variables_class

__all__ = ["Checker", "rule_data"]


def rule_data(ruleset: RuleSet | None = None) -> dict[str, Any]:
    """``export_rule_data`` for a rule set: the single source of what a rule may name."""
    variables = variables_class(ruleset) if ruleset is not None else DealVariables
    data: dict[str, Any] = export_rule_data(variables, DealActions)
    return data


class Checker(RuleChecks):
    """Every check past the shape, on a (possibly salvaged) ``RuleSet``; ``run`` returns the problems.

    ``raw_rules``: the document's rule objects, aligned with ``ruleset.rules``, from which each
    rule's conditions are read (``shape.read_conditions``) and then checked leaf by leaf.

    The funnel-level checks are here; those of rules come from ``rules.RuleChecks``, the shared
    ones from ``base.Checks``.
    """

    def run(self) -> list[Problem]:
        self.check_header()
        self.check_fields()
        self.check_events()
        if self.rs.calendar is not None:
            self.problems += calendar_problems(self.rs.calendar)
        if not self.problems:
            # Custom fields and events become variables; only build the class from clean lists.
            self.data = rule_data(self.rs)
            self.time_names = set(time_variables(self.rs))
            self.working_names = set(working_calendars(self.rs))
        elif self.rs.calendar is not None and all(
            p.path.startswith("calendar") for p in self.problems
        ):
            # Only the calendar is wrong: check the rules as if there were none.
            bare = self.rs.model_copy(update={"calendar": None})
            self.data = rule_data(bare)
            self.time_names = set(time_variables(bare))
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
                for var in (e.name, f"hours_since_{e.name}", f"working_hours_since_{e.name}"):
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
