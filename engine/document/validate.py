"""Validation of rule-set documents: every check, every problem with its JSON path.

This is the one gate in front of business-rules: it resolves names with ``getattr`` and checks
structure with ``assert``, so nothing reaches ``business_rules.engine`` that did not pass here. Names a
rule may use come from ``business_rules.export_rule_data`` only. The raw JSON is checked first
(``checks.reading``), then the model is built (``checks.shape`` says what does not fit it), then
every other check runs (``checks.semantics``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from engine.document.checks.patterns import regex_differences
from engine.document.checks.reading import (
    nesting_depth,
    parse_json,
    read_document,
    value_problems,
)
from engine.document.checks.semantics import Checker, rule_data
from engine.document.checks.shape import is_condition_error, reindex, salvage, shape_problem
from engine.document.limits import (
    IDENT,
    MAX_CONDITION_DEPTH,
    MAX_DOCUMENT_BYTES,
    MAX_DUE_IN_HOURS,
    MAX_FUNNEL_NAME,
    MAX_ID_LENGTH,
    MAX_INT_DIGITS,
    MAX_LABEL,
    MAX_REGEX_LENGTH,
    MAX_RULE_NAME,
    MAX_RULES,
    MAX_STAGE_NAME,
    MAX_STAGES,
    MAX_TIME_HOURS,
)
from engine.document.ruleset import RuleSet
from engine.errors import Problem, RuleSetInvalid

__all__ = [
    "MAX_CONDITION_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "MAX_DUE_IN_HOURS",
    "MAX_FUNNEL_NAME",
    "MAX_ID_LENGTH",
    "MAX_INT_DIGITS",
    "MAX_LABEL",
    "MAX_REGEX_LENGTH",
    "MAX_RULE_NAME",
    "MAX_RULES",
    "MAX_STAGE_NAME",
    "MAX_STAGES",
    "MAX_TIME_HOURS",
    "parse_json",
    "read_document",
    "regex_differences",
    "rule_data",
    "validate_document",
    "validate_text",
]

#: The old private name builder/views/designer.py still imports; new code uses ``limits.IDENT``.
_IDENT = IDENT


def validate_text(
    text: str | bytes, *, known_funnels: Iterable[str] = (), source: str = "document"
) -> RuleSet:
    return validate_document(parse_json(text, source), known_funnels=known_funnels)


def validate_document(doc: Any, *, known_funnels: Iterable[str] = ()) -> RuleSet:
    """Check a parsed document; return the ``RuleSet`` or raise ``RuleSetInvalid`` with every problem.

    ``known_funnels`` are funnel ids that ``start_process`` may name besides the document's own.
    """
    if not isinstance(doc, dict):
        raise RuleSetInvalid(
            [Problem("", f"a rule set must be a JSON object, not {type(doc).__name__}")]
        )
    # Conditions nest by all/any objects inside lists: 2 JSON levels per group, plus the document's own.
    if nesting_depth(doc, 2 * MAX_CONDITION_DEPTH + 8) > 2 * MAX_CONDITION_DEPTH + 7:
        raise RuleSetInvalid(
            [
                Problem(
                    "",
                    f"document is nested too deeply (conditions may nest at most {MAX_CONDITION_DEPTH} groups)",
                )
            ]
        )
    # Values no backend stores alike (a lone surrogate, NUL), numbers Python cannot print and NaN or
    # Infinity, which no JSON reader accepts: each refused with its path, before anything reads them.
    bad_values = value_problems(doc)
    if bad_values:
        raise RuleSetInvalid(bad_values)
    # Documents handed over as Python objects (API, builder) skip parse_json, so the size bound is here too.
    size = len(json.dumps(doc, ensure_ascii=False, default=str).encode("utf-8"))
    if size > MAX_DOCUMENT_BYTES:
        raise RuleSetInvalid(
            [Problem("", f"document is {size} bytes; the limit is {MAX_DOCUMENT_BYTES}")]
        )
    try:
        ruleset = RuleSet.model_validate(doc)
    except ValidationError as exc:
        # Conditions are read by the checker from the raw JSON (shape.read_conditions), in
        # business-rules' words; pydantic's view of them would only say the same thing less clearly.
        shape = [shape_problem(err) for err in exc.errors() if not is_condition_error(err, doc)]
        # Docs promise every problem at once: check what is well-formed too, so fixing the shape does
        # not reveal a second round of problems.
        problems = shape + _problems_of_partial(doc, shape, set(known_funnels))
        raise RuleSetInvalid(problems or [shape_problem(err) for err in exc.errors()]) from None
    problems = Checker(ruleset, set(known_funnels), doc["rules"] if "rules" in doc else []).run()
    if problems:
        raise RuleSetInvalid(problems)
    return ruleset


def _problems_of_partial(
    doc: dict[str, Any], shape: list[Problem], known: set[str]
) -> list[Problem]:
    """The checker's problems on the well-formed parts of a document that failed the shape check.

    A problem at or under a path with a shape problem (a stand-in's), or at a path above one (e.g. "a
    funnel needs at least one stage" when the only stage is malformed), is left out: the shape
    problem already says what to fix there.
    """
    try:
        partial = salvage(RuleSet, doc)
        rules = doc.get("rules")
        raw_rules = rules if isinstance(rules, list) else []
        # salvage keeps exactly the rule objects, in order: the raw rules aligned with partial.rules.
        found = Checker(partial, known, [r for r in raw_rules if isinstance(r, dict)]).run()
    except Exception:  # noqa: BLE001 - a document too broken to check further still gets its shape problems
        return []
    bad = {p.path for p in shape}

    def related(path: str) -> bool:
        for b in bad:
            if path == b or path.startswith((b + ".", b + "[")):
                return True
            if path and b.startswith((path + ".", path + "[")):
                return True
        return False

    # Items dropped as malformed shift the indices after them: only positions before the first dropped
    # item in a list are trustworthy, so problems in later items are re-indexed to document order.
    return [
        p
        for p in (reindex(problem, doc, partial) for problem in found)
        if p is not None and not related(p.path)
    ]
