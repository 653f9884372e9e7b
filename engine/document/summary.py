"""A rule in the owner's words: one line made from its conditions and actions, in the interface language.

"In Qualification, 24 h after entering, if Budget, Authority or Need is still unanswered → move to
Cold call". The conditions are read with the condition model's ``Visitor``; the common shapes (a
field answered / not answered, any of several fields "no", within N hours of a moment) are told in
one phrase instead of their nested business-rules groups. The builder (canvas, rule list, compare),
the dry run and the API all call ``summarise``; every phrase goes through ``_()`` with named
placeholders so a translation may reorder them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from engine.document.conditions import AllOf, AnyOf, Condition, Group, Visitor, parse
from engine.document.labels import label
from engine.document.ruleset import RuleSet
from engine.i18n import N_, _, current_language, format_number, ngettext

__all__ = [
    "Vocabulary",
    "common_shape",
    "describe_action",
    "describe_actions",
    "describe_conditions",
    "fill",
    "summarise",
    "summarise_both",
    "summaries",
]

_BUILTIN_LABELS = {
    "stage": N_("the stage"),
    "amount": N_("Amount"),
    "has_manager": N_("a manager is assigned"),
    "hours_in_stage": N_("hours in stage"),
    "hours_since_last_activity": N_("hours since the last manager activity"),
    "hours_since_created": N_("hours since the deal was created"),
}
#: The built-in "hours since" variables and what each counts from (declared events add their own).
_BUILTIN_TIMES = ("hours_in_stage", "hours_since_last_activity", "hours_since_created")
_TEXT_LIMIT = 48


def fill(template: str, **values: Any) -> str:
    """``template.format(**values)``, but a translation with a broken placeholder still shows text."""
    try:
        return template.format_map(values)
    except (KeyError, IndexError, ValueError):
        return template


@dataclass(frozen=True)
class _FieldInfo:
    label: str
    type: str
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Vocabulary:
    """The names a summary uses: stage names, field labels and options, event labels, funnel names."""

    stages: Mapping[str, str] = field(default_factory=dict)
    fields: Mapping[str, _FieldInfo] = field(default_factory=dict)
    events: Mapping[str, str] = field(default_factory=dict)
    funnels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls, source: RuleSet | Mapping[str, Any], funnels: Mapping[str, str] | None = None
    ) -> Vocabulary:
        """From a rule set, or from a draft document (a dict that may not validate yet)."""
        if isinstance(source, RuleSet):
            return cls(
                {s.id: label(s.name) or s.id for s in source.stages},
                {
                    f.name: _FieldInfo(label(f.label) or f.name, f.type.value, tuple(f.options))
                    for f in source.fields
                },
                {e.name: label(e.label) or e.name for e in source.events},
                dict(funnels or {}),
            )
        doc = source
        stages = {
            str(s["id"]): label(s.get("name")) or str(s["id"])
            for s in doc.get("stages") or []
            if isinstance(s, Mapping) and "id" in s
        }
        fields = {
            str(f["name"]): _FieldInfo(
                label(f.get("label")) or str(f["name"]),
                str(f.get("type", "text")),
                tuple(str(o) for o in f.get("options") or []),
            )
            for f in doc.get("fields") or []
            if isinstance(f, Mapping) and "name" in f
        }
        events = {
            str(e["name"]): label(e.get("label")) or str(e["name"])
            for e in doc.get("events") or []
            if isinstance(e, Mapping) and "name" in e
        }
        return cls(stages, fields, events, dict(funnels or {}))

    def stage(self, sid: Any) -> str:
        return self.stages.get(str(sid), str(sid))

    def label(self, variable: str) -> str:
        if variable in self.fields:
            return self.fields[variable].label
        if variable in self.events:
            return self.events[variable]
        builtin = _BUILTIN_LABELS.get(variable)
        return _(builtin) if builtin else variable

    def event_of(self, variable: str) -> str | None:
        """The declared event an ``hours_since_<event>`` variable counts from."""
        if variable.startswith("hours_since_") and variable[len("hours_since_") :] in self.events:
            return variable[len("hours_since_") :]
        return None

    def is_time(self, variable: str) -> bool:
        return variable in _BUILTIN_TIMES or self.event_of(variable) is not None


# -- small words -------------------------------------------------------------------------------------
def _quoted(text: Any) -> str:
    # TRANSLATORS: quotes around a value or a message the owner typed; Ukrainian uses «{text}».
    return fill(_("“{text}”"), text=_short(text))


def _short(text: Any, limit: int = _TEXT_LIMIT) -> str:
    if isinstance(
        text, Mapping
    ):  # a template per language: the interface language's, else the first
        text = text.get(current_language()) or next(iter(text.values()), "")
    words = " ".join(str(text).split())
    if len(words) <= limit:
        return words
    cut = words[: limit - 1].rsplit(" ", 1)[0]
    return cut + "…"


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return str(value)
    return _formatted(int(value) if float(value).is_integer() else value, current_language())


@functools.lru_cache(maxsize=4096)
def _formatted(value: float, language: str) -> str:
    # Babel's formatting costs ~0.3 ms a call; a funnel repeats the same few numbers in every rule.
    return format_number(value)


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _hours(value: Any) -> str:
    """``24 h``, ``48 h``; whole days from three days up: ``90 days``."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        if value >= 72 and float(value).is_integer() and int(value) % 24 == 0:
            days = int(value) // 24
            return fill(
                ngettext("{n} day", "{n} days", days), n=_formatted(days, current_language())
            )
    # TRANSLATORS: a number of hours, short: Ukrainian "{n} год".
    return fill(_("{n} h"), n=_number(value))


def _series(items: list[str], last_word: str) -> str:
    """``A, B or C`` / ``A, B and C``; ``last_word`` is a translated "{items} or {last}" template."""
    if len(items) == 1:
        return items[0]
    return fill(last_word, items=", ".join(items[:-1]), last=items[-1])


def _or(items: list[str]) -> str:
    # TRANSLATORS: the end of a list, "Budget, Authority or Need"; {items} is the comma-separated start.
    return _series(items, _("{items} or {last}"))


def _and(items: list[str]) -> str:
    # TRANSLATORS: the end of a list, "Budget, Authority and Need"; {items} is the comma-separated start.
    return _series(items, _("{items} and {last}"))


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


# -- conditions --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Phrase:
    """What a node says, and what a group around it needs to recognise a common shape."""

    text: str
    compound: bool = False  # an "and"/"or" of several phrases: bracketed inside another one
    #: "is" / "is_not" (a select field's option), "answered", "unanswered", "happened" (an event in
    #: this visit), "within" (less than N hours since an event)
    shape: str = ""
    fields: tuple[str, ...] = ()
    value: Any = None
    common: bool = False  # a group told as one common shape (the editor shows it as one row)


class _Words(Visitor[_Phrase]):
    def __init__(self, vocabulary: Vocabulary):
        self.v = vocabulary

    # leaves ----------------------------------------------------------------------------------------
    def leaf(self, node: Condition, path: str) -> _Phrase:
        v, name, op, value = self.v, node.name, node.operator, node.value
        if v.is_time(name):
            event = v.event_of(name)
            within = event is not None and op in ("less_than", "less_than_or_equal_to")
            return _Phrase(
                _time_phrase(v, name, op, value),
                shape="within" if within else "",
                fields=(event,) if within and event else (),
            )
        if name == "stage":
            if op in ("equal_to", "equal_to_case_insensitive"):
                return _Phrase(fill(_("the deal is in {stage}"), stage=v.stage(value)))
            return _Phrase(_generic(v.label(name), op, value))
        if name == "has_manager":
            return _Phrase(
                _("a manager is assigned") if op == "is_true" else _("no manager is assigned")
            )
        if name in v.events:
            if op == "is_true":
                return _Phrase(v.events[name], shape="happened", fields=(name,))
            # TRANSLATORS: a declared event not recorded in this stage visit: "“Client replied” has not happened yet".
            return _Phrase(fill(_("{event} has not happened yet"), event=_quoted(v.events[name])))
        info = v.fields.get(name)
        label = v.label(name)
        if info is not None and info.type == "select" and op in ("contains", "does_not_contain"):
            text = _("{field} is {value}") if op == "contains" else _("{field} is not {value}")
            return _Phrase(
                fill(text, field=label, value=_quoted(value)),
                shape="is" if op == "contains" else "is_not",
                fields=(name,),
                value=value,
            )
        if info is not None and info.type == "boolean" and op in ("is_true", "is_false"):
            text = _("{field} is yes") if op == "is_true" else _("{field} is no")
            return _Phrase(fill(text, field=label))
        if op == "non_empty":
            return _Phrase(
                fill(_("{field} is answered"), field=label), shape="answered", fields=(name,)
            )
        if op == "equal_to" and value == "":
            return _Phrase(
                fill(_("{field} is still unanswered"), field=label),
                shape="unanswered",
                fields=(name,),
            )
        return _Phrase(_generic(label, op, value))

    # groups ----------------------------------------------------------------------------------------
    def all_(self, node: Group, parts: list[_Phrase], path: str) -> _Phrase:
        # Every option of one select field ruled out: the field is not answered yet.
        one = self._covering(parts, "is_not")
        if one is not None:
            return _Phrase(
                fill(_("{field} is still unanswered"), field=self.v.label(one)),
                shape="unanswered",
                fields=(one,),
                common=True,
            )
        # "within 24 h of Client replied" already says that the event happened.
        timed = {f for p in parts if p.shape == "within" for f in p.fields}
        if timed:
            parts = [p for p in parts if not (p.shape == "happened" and set(p.fields) <= timed)]
            if len(parts) == 1:
                return _Phrase(parts[0].text, common=True)
        same = _same_shape(parts)
        labels = [self.v.label(f) for p in parts for f in p.fields]
        if same == "answered":
            return _Phrase(fill(_("{fields} are answered"), fields=_and(labels)), common=True)
        if same == "is" and len({str(p.value) for p in parts}) == 1:
            text = _("{fields} are all {value}")
            return _Phrase(
                fill(text, fields=_and(labels), value=_quoted(parts[0].value)), common=True
            )
        return self._join(parts, _and)

    def any_(self, node: Group, parts: list[_Phrase], path: str) -> _Phrase:
        # Some option of one select field chosen: the field is answered.
        one = self._covering(parts, "is")
        if one is not None:
            return _Phrase(
                fill(_("{field} is answered"), field=self.v.label(one)),
                shape="answered",
                fields=(one,),
                common=True,
            )
        same = _same_shape(parts)
        labels = [self.v.label(f) for p in parts for f in p.fields]
        if same == "unanswered":
            # TRANSLATORS: "Budget, Authority or Need is still unanswered" (at least one of them).
            text = _("{fields} is still unanswered")
            return _Phrase(fill(text, fields=_or(labels)), common=True)
        if same == "is" and len({str(p.value) for p in parts}) == 1:
            # TRANSLATORS: "any of Budget, Authority or Need is “no”" (at least one of them).
            text = _("any of {fields} is {value}")
            return _Phrase(
                fill(text, fields=_or(labels), value=_quoted(parts[0].value)), common=True
            )
        return self._join(parts, _or)

    def _covering(self, parts: list[_Phrase], shape: str) -> str | None:
        """The select field whose every option one part each names with ``shape`` (else None)."""
        if not parts or any(p.shape != shape for p in parts):
            return None
        names = {p.fields[0] for p in parts}
        if len(names) != 1:
            return None
        name = names.pop()
        options = set(self.v.fields[name].options)
        return name if options and options <= {str(p.value) for p in parts} else None

    @staticmethod
    def _join(parts: list[_Phrase], series: Any) -> _Phrase:
        if not parts:
            return _Phrase(_("(an empty group)"))
        if len(parts) == 1:
            return parts[0]
        return _Phrase(
            series([f"({p.text})" if p.compound else p.text for p in parts]), compound=True
        )


def _same_shape(parts: list[_Phrase]) -> str:
    if len(parts) < 2:
        return ""
    shapes = {p.shape for p in parts}
    return shapes.pop() if len(shapes) == 1 and len({p.fields for p in parts}) == len(parts) else ""


_SYMBOLS = {
    "equal_to": "=",
    "greater_than": ">",
    "greater_than_or_equal_to": "≥",
    "less_than": "<",
    "less_than_or_equal_to": "≤",
}


_OPERATOR_WORDS = {
    "equal_to": N_("{field} is {value}"),
    "equal_to_case_insensitive": N_("{field} is {value} (any case)"),
    "contains": N_("{field} contains {value}"),
    "does_not_contain": N_("{field} does not contain {value}"),
    "starts_with": N_("{field} starts with {value}"),
    "ends_with": N_("{field} ends with {value}"),
    "matches_regex": N_("{field} matches the pattern {value}"),
    "non_empty": N_("{field} is answered"),
    "is_true": N_("{field} is yes"),
    "is_false": N_("{field} is no"),
}


def _generic(label: str, op: str, value: Any) -> str:
    if op in _SYMBOLS and not isinstance(value, str):
        return f"{label} {_SYMBOLS[op]} {_number(value)}"
    template = _OPERATOR_WORDS.get(op)
    if template is None:
        return f"{label} {op} {_short(value)}"
    return fill(_(template), field=label, value=_quoted(value))


def _time_phrase(v: Vocabulary, name: str, op: str, value: Any) -> str:
    """``24 h after entering`` / ``within 24 h of entering`` for an "hours since" variable."""
    hours = _hours(value)
    event = v.event_of(name)
    if op in ("greater_than", "greater_than_or_equal_to"):
        if event is not None:
            return fill(_("{hours} after {event}"), hours=hours, event=v.events[event])
        return fill(
            {
                # TRANSLATORS: "24 h after entering" the stage.
                "hours_in_stage": _("{hours} after entering"),
                "hours_since_last_activity": _("after {hours} without manager activity"),
                "hours_since_created": _("{hours} after the deal was created"),
            }[name],
            hours=hours,
        )
    if op in ("less_than", "less_than_or_equal_to"):
        if event is not None:
            return fill(_("within {hours} of {event}"), hours=hours, event=v.events[event])
        return fill(
            {
                "hours_in_stage": _("within {hours} of entering"),
                "hours_since_last_activity": _("within {hours} of the last manager activity"),
                "hours_since_created": _("within {hours} of the deal being created"),
            }[name],
            hours=hours,
        )
    return _generic(v.label(name), op, value)


def describe_conditions(conditions: Any, vocabulary: Vocabulary) -> str:
    """The conditions alone, as one phrase (a malformed tree: "?")."""
    node = _node(conditions)
    return "?" if node is None else _Words(vocabulary).visit(node).text


def common_shape(node: AllOf | AnyOf | Condition, vocabulary: Vocabulary) -> str | None:
    """The phrase of a group that is one of the common shapes ("Budget is still unanswered"), else None."""
    if isinstance(node, Condition):
        return None
    phrase = _Words(vocabulary).visit(node)
    return phrase.text if phrase.common else None


def _node(conditions: Any) -> AllOf | AnyOf | Condition | None:
    if isinstance(conditions, AllOf | AnyOf | Condition):
        return conditions
    try:
        return parse(conditions)
    except ValidationError:
        return None


# -- actions -----------------------------------------------------------------------------------------
def describe_action(action: Any, vocabulary: Vocabulary) -> str:
    """One action as a few words: ``move to Cold call``, ``task “Call …” due in 2 h``."""
    name = str(_get(action, "name") or "?")
    p = _get(action, "params") or {}
    if not isinstance(p, Mapping):
        p = {}
    if name == "move_to_stage":
        text = fill(_("move to {stage}"), stage=vocabulary.stage(p.get("to_stage", "?")))
    elif name == "assign_manager":
        text = _("assign a manager")
    elif name == "create_task":
        due, working = p.get("due_in_hours"), p.get("due_in_working_hours")
        if _positive(working):
            text = fill(
                _("task {title} due in {hours} of working time"),
                title=_quoted(p.get("title", "")),
                hours=_hours(working),
            )
        elif _positive(due):
            text = fill(
                _("task {title} due in {hours}"),
                title=_quoted(p.get("title", "")),
                hours=_hours(due),
            )
        else:
            text = fill(_("task {title} due now"), title=_quoted(p.get("title", "")))
    elif name == "notify_manager":
        text = fill(_("tell the manager {text}"), text=_quoted(p.get("text", "")))
        delay, working = p.get("delay_hours"), p.get("due_in_working_hours")
        if _positive(working):
            text += " " + fill(_("after {hours} of working time"), hours=_hours(working))
        elif _positive(delay):
            text += " " + fill(_("after {hours}"), hours=_hours(delay))
    elif name == "send_sms":
        text = fill(_("SMS to the client {text}"), text=_quoted(p.get("text", "")))
    elif name == "send_message":
        text = fill(
            _("{channel} message to the client {text}"),
            channel=str(p.get("channel", "")),
            text=_quoted(p.get("text", "")),
        )
    elif name == "send_email":
        to = p.get("to")
        if to:
            text = fill(
                _("e-mail {subject} to {to}"), subject=_quoted(p.get("subject", "")), to=str(to)
            )
        else:
            text = fill(_("e-mail {subject} to the client"), subject=_quoted(p.get("subject", "")))
    elif name == "generate_invoice":
        amount = p.get("amount")
        text = (
            fill(_("issue an invoice for {amount}"), amount=_number(amount))
            if amount is not None
            else _("issue an invoice")
        )
    elif name == "start_process":
        funnel = str(p.get("funnel", "?"))
        text = fill(_("start {funnel}"), funnel=vocabulary.funnels.get(funnel, funnel))
    else:
        text = name
    if p.get("priority") == "high":
        # TRANSLATORS: an action marked urgent: "tell the manager “…” (high priority)".
        text = fill(_("{action} (high priority)"), action=text)
    return text


def describe_actions(actions: Iterable[Any], vocabulary: Vocabulary) -> str:
    words = [describe_action(a, vocabulary) for a in actions]
    return _and(words) if words else _("nothing")


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


# -- the whole rule ------------------------------------------------------------------------------------
def summarise(rule: Any, vocabulary: Vocabulary, *, with_stage: bool = True) -> str:
    """The rule (a ``Rule`` or a draft dict) as one line; ``with_stage=False`` leaves out "In <stage>"
    (the canvas draws a rule at its stage already)."""
    full, short = summarise_both(rule, vocabulary)
    return full if with_stage else short


def summarise_both(rule: Any, vocabulary: Vocabulary) -> tuple[str, str]:
    """The line with and without "In <stage>", from one walk (the canvas shows both)."""
    node = _node(_get(rule, "conditions"))
    actions = describe_actions(_get(rule, "actions") or [], vocabulary)
    line = _("{situation} → {actions}")
    if node is None:
        text = fill(line, situation="?", actions=actions)
        return text, text
    top = list(node.all) if isinstance(node, AllOf) else [node]
    words = _Words(vocabulary)
    stage: str | None = None
    times: list[str] = []
    rest: list[Any] = []
    anchors: set[str] = set()
    for child in top:
        if isinstance(child, Condition):
            if stage is None and child.name == "stage" and child.operator == "equal_to":
                stage = vocabulary.stage(child.value)
                continue
            if vocabulary.is_time(child.name) and child.operator in (
                "greater_than",
                "greater_than_or_equal_to",
            ):
                times.append(words.visit(child).text)
                event = vocabulary.event_of(child.name)
                if event is not None:
                    anchors.add(event)
                continue
        rest.append(child)
    # "24 h after Client opened the proposal" already says the event happened.
    rest = [
        c
        for c in rest
        if not (isinstance(c, Condition) and c.name in anchors and c.operator == "is_true")
    ]
    said = None
    if rest:
        said = words.visit(AllOf(all=rest)).text if len(rest) > 1 else words.visit(rest[0]).text

    def situation(with_stage: bool) -> str:
        parts: list[str] = []
        if stage is not None and with_stage:
            # TRANSLATORS: the stage a rule watches; Ukrainian: "На етапі «{stage}»" (no case ending on the name).
            parts.append(fill(_("In {stage}"), stage=stage))
        if times:
            parts.append(_and(times))
        if said is not None:
            parts.append(
                fill(_("if {conditions}") if parts else _("when {conditions}"), conditions=said)
            )
        if not parts:
            parts.append(_("on entering the stage") if stage is not None else _("always"))
        # TRANSLATORS: joins the parts of a rule's situation: "In Qualification, 24 h after entering, if …".
        return _capital(_(", ").join(parts))

    return (
        fill(line, situation=situation(True), actions=actions),
        fill(line, situation=situation(False), actions=actions),
    )


def summaries(ruleset: RuleSet, funnels: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every rule's summary by rule id, in document order."""
    vocabulary = Vocabulary.of(ruleset, funnels)
    return {r.id: summarise(r, vocabulary) for r in ruleset.rules}
