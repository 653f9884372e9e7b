"""What every semantic check shares: the document being checked, the problems found so far, and the
checks of identifiers, lengths and names that funnel parts and rules both apply."""

from __future__ import annotations

from typing import Any

from engine.document.labels import label_texts
from engine.document.limits import (
    IDENT,
    MAX_ID_LENGTH,
)
from engine.document.ruleset import RuleSet
from engine.errors import Problem
from engine.i18n import _
from engine.rules.deal import BUILTIN_FIELDS, TEMPLATE_BUILTINS
from engine.rules.registry import TIME_VARIABLES, WORKING_BUILTIN_NAMES
from engine.rules.variables import DealVariables
from engine.text import name_refusal

__all__ = ["Checks"]


class Checks:
    """The state of one run over a (possibly salvaged) ``RuleSet``; ``Checker`` fills in what
    business-rules declares for it (``data``, ``variables``, ``operators``, ``actions``) before the
    rules are checked."""

    data: dict[str, Any]
    variables: dict[str, dict[str, Any]]
    operators: dict[str, dict[str, dict[str, Any]]]
    actions: dict[str, dict[str, Any]]

    def __init__(self, ruleset: RuleSet, known_funnels: set[str], raw_rules: list[Any]):
        self.rs = ruleset
        self.raw_rules = raw_rules
        self.known_funnels = known_funnels | {ruleset.funnel}
        self.problems: list[Problem] = []
        self.stage_ids = [s.id for s in ruleset.stages]
        self.field_names = [f.name for f in ruleset.fields]
        self.time_names: set[str] = set(TIME_VARIABLES)
        #: The working-time variables (with a valid calendar): their thresholds have their own bound.
        self.working_names: set[str] = set()

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

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
            set(dir(DealVariables))
            | set(BUILTIN_FIELDS)
            | set(TEMPLATE_BUILTINS)
            | set(WORKING_BUILTIN_NAMES)
            | {"deal", "now"}
        )
