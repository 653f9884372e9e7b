"""Validation suite: bad rule-set documents are refused with a clear message at the right JSON path.

Every bad document is the TechFlow sample with one small mutation, so each case shows exactly one mistake
and the message a user would see for it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from business_rules.engine import check_conditions_recursively

from engine.core.conveyor import Conveyor
from engine.document.ruleset import RuleSet
from engine.document.validate import (
    MAX_CONDITION_DEPTH,
    MAX_DOCUMENT_BYTES,
    MAX_TIME_HOURS,
    validate_document,
    validate_text,
)
from engine.errors import RuleSetInvalid
from engine.rules.deal import DealState
from engine.rules.evaluators.reference import evaluate
from engine.rules.variables import SafeStringType, variables_class

SAMPLE = Path(__file__).resolve().parents[2] / "sample_rules" / "techflow.json"
BASE: dict[str, Any] = json.loads(SAMPLE.read_text(encoding="utf-8"))
KNOWN = {"project_work"}

# Indexes into the sample's rules, named so the cases below read as what they change.
ASSIGN, IDLE, QUAL_NO, QUAL_TIMEOUT, COLD, PROP_ATTACHED = 0, 1, 2, 3, 4, 5
CONTRACT, PAYMENT, PAID = 8, 9, 10


def base() -> dict[str, Any]:
    return copy.deepcopy(BASE)


def leaf(name: str, operator: str, value: Any = None) -> dict[str, Any]:
    return {"name": name, "operator": operator, "value": value}


def problems_of(doc: Any) -> list[tuple[str, str]]:
    with pytest.raises(RuleSetInvalid) as info:
        validate_document(doc, known_funnels=KNOWN)
    return [(p.path, p.message) for p in info.value.problems]


def assert_problem(problems: list[tuple[str, str]], path: str, fragment: str) -> None:
    hits = [m for p, m in problems if p == path and fragment in m]
    assert hits, f"no problem at {path!r} containing {fragment!r}; got {problems}"


# Each case: (id, mutation of a fresh copy of the sample — returns the document to check, path, fragment).
Mutation = Callable[[dict[str, Any]], Any]


def _set(path: list[Any], value: Any) -> Mutation:
    def mutate(doc: dict[str, Any]) -> dict[str, Any]:
        node = doc
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value
        return doc

    return mutate


def _delete(path: list[Any]) -> Mutation:
    def mutate(doc: dict[str, Any]) -> dict[str, Any]:
        node = doc
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]
        return doc

    return mutate


def _do(fn: Callable[[dict[str, Any]], None]) -> Mutation:
    def mutate(doc: dict[str, Any]) -> dict[str, Any]:
        fn(doc)
        return doc

    return mutate


def _cond(rule: int, *where: Any) -> list[Any]:
    return ["rules", rule, "conditions", *where]


def _nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"all": [leaf("stage", "equal_to", "incoming")]}
    for _ in range(depth - 1):
        node = {"all": [node]}
    return node


def _add_field(name: str, type_: str = "text", **extra: Any) -> Mutation:
    return _do(lambda d: d["fields"].append({"name": name, "label": name, "type": type_, **extra}))


def _use_variable(name: str, operator: str = "equal_to", value: Any = 1) -> Mutation:
    return _set(_cond(IDLE, "all", 1), leaf(name, operator, value))


def _use_action(name: str) -> Mutation:
    return _set(["rules", ASSIGN, "actions", 0], {"name": name, "params": {}})


def _template(text: str) -> Mutation:
    return _set(["rules", CONTRACT, "actions", 1, "params", "text"], text)


I1 = "rules[1].conditions.all[1]"  # the "24 h without activity" condition
CASES: list[tuple[str, Mutation, str, str]] = [
    # -- document shape ------------------------------------------------------------------------
    ("not-an-object", lambda d: [d], "", "must be a JSON object, not list"),
    ("a-string", lambda d: "techflow", "", "must be a JSON object, not str"),
    ("missing-funnel", _delete(["funnel"]), "funnel", "required key 'funnel' is missing"),
    ("missing-stages", _delete(["stages"]), "stages", "required key 'stages' is missing"),
    (
        "missing-rule-conditions",
        _delete(["rules", 0, "conditions"]),
        "rules[0].conditions",
        "required key 'conditions'",
    ),
    ("unknown-top-key", _set(["colour"], "red"), "colour", "unknown key 'colour'"),
    (
        "unknown-rule-key",
        _set(["rules", 0, "priority"], 1),
        "rules[0].priority",
        "unknown key 'priority'",
    ),
    (
        "unknown-stage-key",
        _set(["stages", 0, "colour"], "red"),
        "stages[0].colour",
        "unknown key 'colour'",
    ),
    ("stages-not-a-list", _set(["stages"], "incoming"), "stages", "valid list"),
    (
        "enabled-not-boolean",
        _set(["rules", 0, "enabled"], "maybe"),
        "rules[0].enabled",
        "valid boolean",
    ),
    (
        "params-not-an-object",
        _set(["rules", 0, "actions", 0, "params"], "x"),
        "rules[0].actions[0].params",
        "valid dictionary",
    ),
    (
        "unknown-repeat-policy",
        _set(["rules", 0, "repeat"], "always"),
        "rules[0].repeat",
        "once_per_stage_visit",
    ),
    ("unknown-format", _set(["format"], "conveyor.ruleset/2"), "format", "conveyor.ruleset/1"),
    ("unknown-field-type", _set(["fields", 0, "type"], "date"), "fields[0].type", "'select'"),
    ("unknown-stage-kind", _set(["stages", 0, "kind"], "frozen"), "stages[0].kind", "'won'"),
    ("invalid-funnel-id", _set(["funnel"], "Tech Flow"), "funnel", "not a valid funnel id"),
    ("empty-funnel-name", _set(["name"], "  "), "name", "funnel name is empty"),
    (
        "invalid-rule-id",
        _set(["rules", 0, "id"], "Assign lead"),
        "rules[0].id",
        "not a valid rule id",
    ),
    (
        "invalid-stage-id",
        _set(["stages", 5, "id"], "cold-call"),
        "stages[5].id",
        "not a valid stage id",
    ),
    ("no-stages", _set(["stages"], []), "stages", "at least one stage"),
    (
        "rule-without-actions",
        _set(["rules", 0, "actions"], []),
        "rules[0].actions",
        "at least one action",
    ),
    # -- names: variables, operators, actions, params (with suggestions) -------------------------
    (
        "misspelt-variable",
        _set(_cond(IDLE, "all", 1, "name"), "hours_since_last_activty"),
        f"{I1}.name",
        "'hours_since_last_activty' is not a rule variable; did you mean 'hours_since_last_activity'?",
    ),
    (
        "misspelt-custom-field-variable",
        _set(_cond(QUAL_NO, "all", 1, "any", 0, "name"), "budgett"),
        "rules[2].conditions.all[1].any[0].name",
        "did you mean 'budget'?",
    ),
    (
        "misspelt-operator",
        _set(_cond(IDLE, "all", 1, "operator"), "greater_then"),
        f"{I1}.operator",
        "'greater_then' is not an operator for numeric variables; did you mean 'greater_than'?",
    ),
    (
        "text-operator-on-numeric",
        _set(_cond(IDLE, "all", 1, "operator"), "contains"),
        f"{I1}.operator",
        "not an operator for numeric variables",
    ),
    (
        "numeric-operator-on-boolean",
        _set(_cond(PROP_ATTACHED, "all", 1, "operator"), "greater_than"),
        "rules[5].conditions.all[1].operator",
        "'greater_than' is not an operator for boolean variables",
    ),
    (
        "numeric-operator-on-select",
        _set(_cond(QUAL_NO, "all", 1, "any", 0, "operator"), "less_than"),
        "rules[2].conditions.all[1].any[0].operator",
        "not an operator for select variables",
    ),
    (
        "misspelt-action",
        _set(["rules", IDLE, "actions", 0, "name"], "notify_manger"),
        "rules[1].actions[0].name",
        "'notify_manger' is not an action; did you mean 'notify_manager'?",
    ),
    (
        "misspelt-param",
        _do(
            lambda d: d["rules"][ASSIGN]["actions"][1]["params"].update(
                due_in_hour=d["rules"][ASSIGN]["actions"][1]["params"].pop("due_in_hours")
            )
        ),
        "rules[0].actions[1].params.due_in_hour",
        "did you mean 'due_in_hours'?",
    ),
    (
        "missing-required-param",
        _delete(["rules", ASSIGN, "actions", 1, "params", "title"]),
        "rules[0].actions[1].params",
        "'create_task' needs parameter 'title'",
    ),
    (
        "param-on-action-without-params",
        _set(["rules", ASSIGN, "actions", 0, "params"], {"who": "Olena"}),
        "rules[0].actions[0].params.who",
        "parameters: none",
    ),
    # -- names business-rules would resolve with getattr but that are no rule variable/action/operator --
    (
        "dunder-class-variable",
        _use_variable("__class__"),
        f"{I1}.name",
        "'__class__' is not a rule variable",
    ),
    (
        "dunder-init-variable",
        _use_variable("__init__"),
        f"{I1}.name",
        "'__init__' is not a rule variable",
    ),
    (
        "private-helper-variable",
        _use_variable("_since"),
        f"{I1}.name",
        "'_since' is not a rule variable",
    ),
    (
        "base-class-method-variable",
        _use_variable("get_all_variables"),
        f"{I1}.name",
        "'get_all_variables' is not a rule variable",
    ),
    (
        "instance-attribute-deal-variable",
        _use_variable("deal"),
        f"{I1}.name",
        "'deal' is not a rule variable",
    ),
    (
        "instance-attribute-now-variable",
        _use_variable("now"),
        f"{I1}.name",
        "'now' is not a rule variable",
    ),
    (
        "dunder-init-action",
        _use_action("__init__"),
        "rules[0].actions[0].name",
        "'__init__' is not an action",
    ),
    (
        "private-plan-action",
        _use_action("_plan"),
        "rules[0].actions[0].name",
        "'_plan' is not an action",
    ),
    (
        "base-class-method-action",
        _use_action("get_all_actions"),
        "rules[0].actions[0].name",
        "'get_all_actions' is not an action",
    ),
    (
        "dunder-class-operator",
        _set(_cond(IDLE, "all", 1, "operator"), "__class__"),
        f"{I1}.operator",
        "'__class__' is not an operator for numeric variables",
    ),
    (
        "private-operator",
        _set(_cond(IDLE, "all", 1, "operator"), "_assert_valid_value_and_cast"),
        f"{I1}.operator",
        "is not an operator for numeric variables",
    ),
    (
        "dunder-init-operator",
        _set(_cond(IDLE, "all", 1, "operator"), "__init__"),
        f"{I1}.operator",
        "'__init__' is not an operator",
    ),
    # -- values ---------------------------------------------------------------------------------
    (
        "text-where-number-needed",
        _set(_cond(IDLE, "all", 1, "value"), "24"),
        f"{I1}.value",
        "'greater_than_or_equal_to' on 'hours_since_last_activity' needs a number, got \"24\"",
    ),
    (
        "boolean-where-number-needed",
        _set(_cond(IDLE, "all", 1, "value"), True),
        f"{I1}.value",
        "needs a number, got true",
    ),
    (
        "infinite-number",
        _set(_cond(IDLE, "all", 1, "value"), float("inf")),
        f"{I1}.value",
        "not a finite number",
    ),
    (
        "nan-position",
        _set(["stages", 0, "position", "x"], float("nan")),
        "stages[0].position.x",
        "not a finite number",
    ),
    (
        "value-for-operator-without-input",
        _set(_cond(PROP_ATTACHED, "all", 1, "value"), True),
        "rules[5].conditions.all[1].value",
        "'is_true' takes no value; write null, got true",
    ),
    (
        "time-threshold-beyond-the-calendar",
        _set(_cond(IDLE, "all", 1, "value"), -1e8),
        f"{I1}.value",
        "out of range for 'hours_since_last_activity'",
    ),
    (
        "number-where-text-needed",
        _set(_cond(ASSIGN, "all", 0, "value"), 5),
        "rules[0].conditions.all[0].value",
        "'equal_to' on 'stage' needs a text value, got 5",
    ),
    (
        "unknown-select-option",
        _set(_cond(QUAL_NO, "all", 1, "any", 0, "value"), "maybe"),
        "rules[2].conditions.all[1].any[0].value",
        "'maybe' is not an option of 'budget' (options: yes, no)",
    ),
    (
        "list-where-one-option-needed",
        _set(_cond(QUAL_NO, "all", 1, "any", 0, "value"), ["no"]),
        "rules[2].conditions.all[1].any[0].value",
        "needs one option",
    ),
    (
        "missing-value-key",
        _delete(_cond(PROP_ATTACHED, "all", 1, "value")),
        "rules[5].conditions.all[1]",
        "required key 'value' is missing (business-rules reads it even for operators without input; use null)",
    ),
    (
        "missing-operator-key",
        _delete(_cond(IDLE, "all", 1, "operator")),
        I1,
        "required key 'operator' is missing",
    ),
    (
        "misspelt-condition-key",
        _do(
            lambda d: d["rules"][IDLE]["conditions"]["all"][1].update(
                operater=d["rules"][IDLE]["conditions"]["all"][1].pop("operator")
            )
        ),
        f"{I1}.operater",
        "did you mean 'operator'?",
    ),
    # -- stage, field and funnel references -----------------------------------------------------
    (
        "unknown-stage-in-condition",
        _set(_cond(ASSIGN, "all", 0, "value"), "incomming"),
        "rules[0].conditions.all[0].value",
        "unknown stage 'incomming'; did you mean 'incoming'?",
    ),
    (
        "unknown-stage-case-insensitive",
        _set(_cond(ASSIGN, "all", 0), leaf("stage", "equal_to_case_insensitive", "Incomng")),
        "rules[0].conditions.all[0].value",
        "unknown stage 'Incomng'; did you mean 'incoming'?",
    ),
    (
        "unknown-stage-in-move",
        _set(["rules", QUAL_NO, "actions", 0, "params", "to_stage"], "cold_cal"),
        "rules[2].actions[0].params.to_stage",
        "unknown stage 'cold_cal'; did you mean 'cold_call'?",
    ),
    (
        "unknown-stage-in-transition-to",
        _set(["transitions", 0, "to"], "qualify"),
        "transitions[0].to",
        "unknown stage 'qualify'",
    ),
    (
        "unknown-stage-in-transition-from",
        _set(["transitions", 0, "from"], "new"),
        "transitions[0].from",
        "unknown stage 'new'",
    ),
    (
        "transition-to-itself",
        _set(["transitions", 0, "to"], "incoming"),
        "transitions[0]",
        "from 'incoming' to itself",
    ),
    (
        "unknown-initial-stage",
        _set(["initial_stage"], "incomng"),
        "initial_stage",
        "unknown stage 'incomng'; did you mean 'incoming'?",
    ),
    (
        "unknown-field-in-guard",
        _set(["stages", 3, "guard", "required_fields", 1], "tax_idd"),
        "stages[3].guard.required_fields[1]",
        "unknown field 'tax_idd'; did you mean 'tax_id'?",
    ),
    (
        "unknown-funnel-in-start-process",
        _set(["rules", PAID, "actions", 0, "params", "funnel"], "project_wrk"),
        "rules[10].actions[0].params.funnel",
        "unknown funnel 'project_wrk'; did you mean 'project_work'?",
    ),
    # -- duplicates -----------------------------------------------------------------------------
    (
        "duplicate-rule-id",
        _set(["rules", 1, "id"], "assign_new_lead"),
        "rules[1].id",
        "duplicate rule id 'assign_new_lead'",
    ),
    (
        "duplicate-stage-id",
        _set(["stages", 1, "id"], "incoming"),
        "stages[1].id",
        "duplicate stage id 'incoming'",
    ),
    (
        "duplicate-field-name",
        _set(["fields", 1, "name"], "budget"),
        "fields[1].name",
        "duplicate field name 'budget'",
    ),
    (
        "duplicate-transition",
        _do(lambda d: d["transitions"].append({"from": "incoming", "to": "qualification"})),
        "transitions[9]",
        "duplicate transition incoming → qualification",
    ),
    # -- custom fields --------------------------------------------------------------------------
    (
        "field-named-private-helper",
        _add_field("_since"),
        "fields[8].name",
        "not a valid field name",
    ),
    ("field-named-dunder", _add_field("__class__"), "fields[8].name", "not a valid field name"),
    ("field-named-base-method", _add_field("get_all_variables"), "fields[8].name", "is reserved"),
    ("field-named-deal", _add_field("deal"), "fields[8].name", "'deal' is reserved"),
    ("field-named-now", _add_field("now"), "fields[8].name", "'now' is reserved"),
    (
        "field-named-builtin-variable",
        _add_field("hours_in_stage", "numeric"),
        "fields[8].name",
        "'hours_in_stage' is reserved",
    ),
    ("field-named-deal-attribute", _add_field("title"), "fields[8].name", "'title' is reserved"),
    ("field-name-with-capitals", _add_field("Region"), "fields[8].name", "not a valid field name"),
    (
        "select-without-options",
        _add_field("region", "select"),
        "fields[8].options",
        "select field 'region' needs at least one option",
    ),
    (
        "options-on-text-field",
        _add_field("region", "text", options=["north"]),
        "fields[8].options",
        "only select fields have options",
    ),
    (
        "blank-option",
        _add_field("region", "select", options=["north", " "]),
        "fields[8].options",
        "has an empty option",
    ),
    (
        "null-required-param",
        _set(["rules", ASSIGN, "actions", 1, "params", "due_in_hours"], None),
        "rules[0].actions[1].params.due_in_hours",
        "needs a number, got null",
    ),
    (
        "repeated-options",
        _add_field("region", "select", options=["North", "north"]),
        "fields[8].options",
        "options repeat",
    ),
    # -- declared events ------------------------------------------------------------------------
    (
        "event-named-builtin-variable",
        _do(lambda d: d["events"].append({"name": "stage"})),
        "events[4].name",
        "would give the rule variable 'stage', which is reserved",
    ),
    (
        "event-named-like-a-field",
        _do(lambda d: d["events"].append({"name": "budget"})),
        "events[4].name",
        "would give the rule variable 'budget', which is already a custom field",
    ),
    (
        "event-hours-since-clashes",
        _do(lambda d: d["events"].append({"name": "hours_since_client_replied"})),
        "events[4].name",
        "also a variable of event 'client_replied'",
    ),
    (
        "duplicate-event",
        _set(["events", 1, "name"], "proposal_attached"),
        "events[1].name",
        "a duplicate event name",
    ),
    (
        "event-name-with-capitals",
        _set(["events", 0, "name"], "Demo"),
        "events[0].name",
        "not a valid event name",
    ),
    (
        "event-carries-unknown-field",
        _set(["events", 3, "fields", "amount"], "paid_amont"),
        "events[3].fields.amount",
        "unknown field 'paid_amont'; did you mean 'paid_amount'?",
    ),
    (
        "event-unknown-source",
        _set(["events", 0, "by"], "robot"),
        "events[0].by",
        "'manager', 'client' or 'system'",
    ),
    ("event-unknown-key", _set(["events", 0, "labl"], "x"), "events[0].labl", ""),
    # -- tracking links (an event's link) -----------------------------------------------------------
    (
        "link-opens-undeclared-event",
        _set(["events", 0, "link", "opened"], "proposal_openned"),
        "events[0].link.opened",
        "unknown event 'proposal_openned'; did you mean 'proposal_opened'?",
    ),
    (
        "link-records-its-own-event",
        _set(["events", 0, "link", "opened"], "proposal_attached"),
        "events[0].link.opened",
        "a link cannot record the event that carries it",
    ),
    (
        "link-placeholder-is-a-builtin",
        _set(["events", 0, "link", "placeholder"], "invoice_number"),
        "events[0].link.placeholder",
        "'{invoice_number}' already means a deal attribute or field in a template",
    ),
    (
        "link-placeholder-not-an-identifier",
        _set(["events", 0, "link", "placeholder"], "Proposal Link"),
        "events[0].link.placeholder",
        "link placeholder",
    ),
    (
        "link-url-key-not-a-data-key",
        _set(["events", 0, "link", "url"], "the url"),
        "events[0].link.url",
        "is not a valid data key",
    ),
    (
        "link-without-opened",
        _do(lambda d: d["events"][0]["link"].pop("opened")),
        "events[0].link.opened",
        "required key 'opened' is missing",
    ),
    (
        "link-unknown-key",
        _set(["events", 0, "link", "opens"], "proposal_opened"),
        "events[0].link.opens",
        "unknown key 'opens'",
    ),
    (
        "two-links-record-one-event",
        _set(["events", 2, "link"], {"placeholder": "reply_link", "opened": "proposal_opened"}),
        "events[2].link.opened",
        "event 'proposal_opened' is already recorded by the link of event 'proposal_attached'",
    ),
    (
        "template-names-an-undeclared-link",
        _do(
            lambda d: (
                d["events"][0].pop("link"),
                d["rules"][8]["actions"][1]["params"].update(text="See {proposal_link}"),
            )
        ),
        "rules[8].actions[1].params.text",
        "template names unknown field '{proposal_link}'",
    ),
    # -- regular expressions --------------------------------------------------------------------
    (
        "regex-backreference",
        _set(_cond(IDLE, "all", 1), leaf("source", "matches_regex", r"(a)\1")),
        f"{I1}.value",
        "is not a valid regular expression: invalid escape sequence: \\1 (lookaround and backreferences",
    ),
    (
        "regex-lookahead",
        _set(_cond(IDLE, "all", 1), leaf("source", "matches_regex", r"ads(?=web)")),
        f"{I1}.value",
        "lookaround and backreferences are not supported",
    ),
    (
        "regex-lookbehind",
        _set(_cond(IDLE, "all", 1), leaf("source", "matches_regex", r"(?<!x)ads")),
        f"{I1}.value",
        "not a valid regular expression: invalid perl operator: (?<!",
    ),
    (
        "regex-unbalanced",
        _set(_cond(IDLE, "all", 1), leaf("source", "matches_regex", "(ads")),
        f"{I1}.value",
        "pattern '(ads' is not a valid regular expression: missing ): (ads",
    ),
    (
        "regex-too-long",
        _set(_cond(IDLE, "all", 1), leaf("source", "matches_regex", "a" * 501)),
        f"{I1}.value",
        "pattern is 501 characters; the limit is 500",
    ),
    (
        "regex-ascii-only-word-class",
        _set(_cond(IDLE, "all", 1), leaf("source", "matches_regex", r"^\w+$")),
        f"{I1}.value",
        r"write [\p{L}\p{Nd}_] instead",
    ),
    (
        "regex-posix-class",
        _set(_cond(IDLE, "all", 1), leaf("source", "matches_regex", "[[:digit:]]")),
        f"{I1}.value",
        "POSIX class",
    ),
    # -- time conditions, strict types, column lengths ---------------------------------------------
    (
        "equal-to-on-hours-since",
        _set(_cond(IDLE, "all", 1), leaf("hours_since_last_activity", "equal_to", 24)),
        f"{I1}.operator",
        "use 'greater_than_or_equal_to'",
    ),
    (
        "enabled-as-text-yes",
        _set(["rules", 0, "enabled"], "yes"),
        "rules[0].enabled",
        "valid boolean",
    ),
    (
        "transition-from-underscore",
        _do(lambda d: d["transitions"][0].update(from_=d["transitions"][0].pop("from"))),
        "transitions[0].from_",
        "unknown key 'from_'",
    ),
    (
        "rule-name-too-long",
        _set(["rules", 0, "name"], "n" * 301),
        "rules[0].name",
        "a rule name may have at most 300",
    ),
    (
        "funnel-name-too-long",
        _set(["name"], "n" * 201),
        "name",
        "a funnel name may have at most 200",
    ),
    # -- groups ---------------------------------------------------------------------------------
    (
        "empty-all-group",
        _set(["rules", ASSIGN, "conditions"], {"all": []}),
        "rules[0].conditions.all",
        "'all' is empty; a group needs at least one condition",
    ),
    (
        "empty-nested-any-group",
        _set(_cond(QUAL_NO, "all", 1, "any"), []),
        "rules[2].conditions.all[1].any",
        "'any' is empty",
    ),
    (
        "mixed-all-and-any",
        _do(
            lambda d: d["rules"][ASSIGN]["conditions"].update(any=[leaf("has_manager", "is_false")])
        ),
        "rules[0].conditions",
        "exactly one key, 'all' or 'any'; found ['all', 'any']",
    ),
    (
        "group-with-condition-keys",
        _do(lambda d: d["rules"][ASSIGN]["conditions"].update(name="stage")),
        "rules[0].conditions",
        "exactly one key",
    ),
    (
        "group-not-a-list",
        _set(["rules", ASSIGN, "conditions"], {"all": leaf("stage", "equal_to", "incoming")}),
        "rules[0].conditions.all",
        "'all' must be a list of conditions",
    ),
    (
        "condition-not-an-object",
        _set(_cond(ASSIGN, "all", 0), "stage"),
        "rules[0].conditions.all[0]",
        "a condition must be an object, not a string",
    ),
    (
        "nesting-one-past-the-bound",
        _set(["rules", ASSIGN, "conditions"], _nested(MAX_CONDITION_DEPTH + 1)),
        "rules[0].conditions" + ".all[0]" * MAX_CONDITION_DEPTH,
        f"conditions nest deeper than {MAX_CONDITION_DEPTH} groups",
    ),
    (
        "nesting-far-past-the-bound",
        _set(["rules", ASSIGN, "conditions"], _nested(60)),
        "",
        "nested too deeply",
    ),
    # -- action params --------------------------------------------------------------------------
    (
        "negative-due-in-hours",
        _set(["rules", ASSIGN, "actions", 1, "params", "due_in_hours"], -2),
        "rules[0].actions[1].params.due_in_hours",
        "must not be negative, got -2",
    ),
    (
        "text-due-in-hours",
        _set(["rules", ASSIGN, "actions", 1, "params", "due_in_hours"], "2"),
        "rules[0].actions[1].params.due_in_hours",
        'needs a number, got "2"',
    ),
    (
        "infinite-due-in-hours",
        _set(["rules", ASSIGN, "actions", 1, "params", "due_in_hours"], float("inf")),
        "rules[0].actions[1].params.due_in_hours",
        "not a finite number",
    ),
    (
        "due-in-hours-beyond-calendar",
        _set(["rules", ASSIGN, "actions", 1, "params", "due_in_hours"], 1e12),
        "rules[0].actions[1].params.due_in_hours",
        "at most",
    ),
    (
        "negative-invoice-amount",
        _set(["rules", CONTRACT, "actions", 0, "params"], {"amount": -100}),
        "rules[8].actions[0].params.amount",
        "must not be negative",
    ),
    (
        "unknown-priority",
        _set(["rules", IDLE, "actions", 0, "params", "priority"], "urgent"),
        "rules[1].actions[0].params.priority",
        "unknown option 'urgent'",
    ),
    (
        "unknown-channel",
        _set(
            ["rules", CONTRACT, "actions", 1],
            {"name": "send_message", "params": {"channel": "pigeon", "text": "Hi"}},
        ),
        "rules[8].actions[1].params.channel",
        "unknown option 'pigeon'",
    ),
    (
        "number-as-title",
        _set(["rules", ASSIGN, "actions", 1, "params", "title"], 7),
        "rules[0].actions[1].params.title",
        "needs a text value, got 7",
    ),
    # -- templates ------------------------------------------------------------------------------
    (
        "template-attribute-access",
        _template("{title.__class__}"),
        "rules[8].actions[1].params.text",
        "not a plain field name",
    ),
    (
        "template-indexing",
        _template("{company_name[0]}"),
        "rules[8].actions[1].params.text",
        "no attributes, indexes",
    ),
    (
        "template-conversion",
        _template("{company_name!r}"),
        "rules[8].actions[1].params.text",
        "not a plain field name",
    ),
    (
        "template-unknown-field",
        _template("Pay for {invoice_numbr}"),
        "rules[8].actions[1].params.text",
        "template names unknown field '{invoice_numbr}'; did you mean 'invoice_number'?",
    ),
    (
        "template-unmatched-brace",
        _template("Pay {amount UAH"),
        "rules[8].actions[1].params.text",
        "unmatched '{'",
    ),
    ("template-empty", _template("   "), "rules[8].actions[1].params.text", "text is empty"),
]


def test_the_base_document_is_valid() -> None:
    rs = validate_document(base(), known_funnels=KNOWN)
    assert rs.funnel == "techflow" and len(rs.rules) == 11


def test_the_suite_has_enough_bad_documents() -> None:
    assert len(CASES) >= 35
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize(
    ("mutate", "path", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_document_is_refused_with_its_path(mutate: Mutation, path: str, fragment: str) -> None:
    assert_problem(problems_of(mutate(base())), path, fragment)


def test_conditions_may_nest_exactly_to_the_bound() -> None:
    doc = base()
    doc["rules"][ASSIGN]["conditions"] = _nested(MAX_CONDITION_DEPTH)
    assert validate_document(doc, known_funnels=KNOWN).rules[
        ASSIGN
    ].conditions.model_dump() == _nested(MAX_CONDITION_DEPTH)


def test_every_problem_is_reported_not_only_the_first() -> None:
    doc = base()
    doc["rules"][ASSIGN]["id"] = "assign new"
    doc["transitions"][0]["to"] = "nowhere"
    doc["rules"][IDLE]["conditions"]["all"][1]["operator"] = "greater_then"
    problems = problems_of(doc)
    assert_problem(problems, "rules[0].id", "not a valid rule id")
    assert_problem(problems, "transitions[0].to", "unknown stage 'nowhere'")
    assert_problem(problems, f"{I1}.operator", "did you mean 'greater_than'?")


def test_null_for_an_optional_param_means_its_default() -> None:
    doc = base()
    doc["rules"][CONTRACT]["actions"][0]["params"] = {"amount": None}
    doc["rules"][IDLE]["actions"][0]["params"]["priority"] = None
    rs = validate_document(doc, known_funnels=KNOWN)
    assert rs.rules[CONTRACT].actions[0].params == {"amount": None}


def test_start_process_may_name_only_known_funnels() -> None:
    with pytest.raises(RuleSetInvalid, match=r"unknown funnel 'project_work'"):
        validate_document(base())  # project_work not saved yet and not known
    assert validate_document(base(), known_funnels={"project_work"}).funnel == "techflow"


# -- JSON text: syntax with line and column, size bound ---------------------------------------------
@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"funnel": "x",\n  "name": }', "not valid JSON: Expecting value at line 2, column 11"),
        ('{"funnel": "x",}', "line 1, column 16"),
        ("", "line 1, column 1"),
        ('{"funnel": "x"', "line 1, column 15"),
        (b'{"funnel": "\xff"}', "not UTF-8 text"),
        ('{"funnel": NaN}', "NaN"),
        (
            '{"rules": [{"id": "a", "name": "x", "id": "b"}]}',
            """key 'id' appears twice in one object ({"id": "a", "name": "x", "id": "b"})""",
        ),
        ('{"funnel": "x", "stages": [], "rules": [], "name": Infinity}', "Infinity"),
    ],
    ids=[
        "missing-value",
        "trailing-comma",
        "empty-text",
        "unterminated-object",
        "not-utf8",
        "nan",
        "duplicate-key",
        "infinity",
    ],
)
def test_json_syntax_errors_name_line_and_column(text: str | bytes, fragment: str) -> None:
    with pytest.raises(RuleSetInvalid) as info:
        validate_text(text, source="techflow.json")
    (problem,) = info.value.problems
    assert problem.path == ""
    assert fragment in problem.message
    assert "techflow.json" in problem.message


@pytest.mark.parametrize("as_bytes", [False, True], ids=["text", "bytes"])
def test_document_size_is_bounded(as_bytes: bool) -> None:
    doc = base()
    doc["description"] = "x" * MAX_DOCUMENT_BYTES
    text = json.dumps(doc)
    with pytest.raises(RuleSetInvalid, match=rf"limit (is|of) {MAX_DOCUMENT_BYTES}"):
        validate_text(text.encode() if as_bytes else text)


def test_stage_compared_case_insensitively_accepts_other_case() -> None:
    doc = base()
    doc["rules"][ASSIGN]["conditions"]["all"][0] = leaf(
        "stage", "equal_to_case_insensitive", "INCOMING"
    )
    assert (
        validate_document(doc, known_funnels=KNOWN).rules[ASSIGN].conditions.all[0].value
        == "INCOMING"
    )


def test_document_size_is_bounded_for_python_objects_too() -> None:
    doc = base()
    doc["description"] = "x" * MAX_DOCUMENT_BYTES
    (problem,) = problems_of(doc)
    assert problem[0] == "" and f"the limit is {MAX_DOCUMENT_BYTES}" in problem[1]


# -- the engine never hands an unvalidated rule to business-rules -----------------------------------
def test_saving_a_bad_document_saves_nothing(conveyor: Conveyor) -> None:
    before = [v.version for v in conveyor.versions("techflow")]
    doc = base()
    doc["rules"][IDLE]["conditions"]["all"][1]["name"] = "__class__"
    with pytest.raises(
        RuleSetInvalid, match=r"rules\[1\]\.conditions\.all\[1\]\.name: '__class__'"
    ):
        conveyor.save_ruleset(doc)
    with pytest.raises(RuleSetInvalid, match="not valid JSON"):
        conveyor.save_ruleset(json.dumps(doc)[:-3])
    assert [v.version for v in conveyor.versions("techflow")] == before


def test_a_model_built_without_the_validator_is_still_validated_on_save(conveyor: Conveyor) -> None:
    doc = base()
    doc["rules"][ASSIGN]["actions"][0]["name"] = "__init__"
    unchecked = RuleSet.model_validate(
        doc
    )  # pydantic alone accepts it: action names are free text there
    before = len(conveyor.versions("techflow"))
    with pytest.raises(
        RuleSetInvalid, match=r"rules\[0\]\.actions\[0\]\.name: '__init__' is not an action"
    ):
        conveyor.save_ruleset(unchecked)
    assert len(conveyor.versions("techflow")) == before
    assert conveyor.ruleset("techflow").rules[ASSIGN].actions[0].name == "assign_manager"


def test_dry_run_refuses_an_unvalidated_draft(conveyor: Conveyor) -> None:
    deal = conveyor.create_deal("techflow", key="d1", title="Acme")
    doc = base()
    doc["rules"][IDLE]["conditions"]["all"][1]["operator"] = "__init__"
    draft = RuleSet.model_validate(doc)
    with pytest.raises(RuleSetInvalid, match=r"'__init__' is not an operator"):
        conveyor.dry_run(deal, ruleset=draft)
    traces = conveyor.dry_run(deal, ruleset=RuleSet.model_validate(base()))
    assert [t.rule.id for t in traces if t.fires] == ["assign_new_lead"]


# -- matches_regex runs through RE2: linear time, no catastrophic backtracking ----------------------
def test_catastrophic_pattern_for_python_re_returns_the_right_answer() -> None:
    evil = "(a+)+$"
    assert SafeStringType("a" * 5000 + "b").matches_regex(evil) is False
    assert SafeStringType("a" * 5000).matches_regex(evil) is True


def test_catastrophic_pattern_through_business_rules_conditions() -> None:
    doc = base()
    doc["rules"][IDLE]["conditions"]["all"][1] = leaf("source", "matches_regex", "(a+)+$")
    rs = validate_document(doc, known_funnels=KNOWN)
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def variables(source: str) -> Any:
        deal = DealState(
            id=1,
            key="d1",
            funnel="techflow",
            stage="incoming",
            created_at=now,
            stage_entered_at=now,
            fields={"source": source},
        )
        return variables_class(rs)(deal, now)

    conditions = rs.rules[IDLE].business_rule()["conditions"]
    assert check_conditions_recursively(conditions, variables("a" * 5000 + "b")) is False
    assert check_conditions_recursively(conditions, variables("a" * 5000)) is True


@pytest.mark.parametrize("threshold", [-MAX_TIME_HOURS, MAX_TIME_HOURS], ids=["lowest", "highest"])
def test_time_thresholds_within_the_bound_evaluate_without_overflow(threshold: float) -> None:
    doc = base()
    doc["rules"][IDLE]["conditions"]["all"][1]["value"] = threshold
    doc["rules"][IDLE]["conditions"]["all"][1]["operator"] = "greater_than_or_equal_to"
    rs = validate_document(doc, known_funnels=KNOWN)
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    deal = DealState(
        id=1, key="d1", funnel="techflow", stage="incoming", created_at=now, stage_entered_at=now
    )
    fired = {d.rule.id for d in evaluate(rs, deal, now)}
    assert ("incoming_idle_24h" in fired) is (threshold < 0)
