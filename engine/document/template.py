"""Safe message templates: ``{name}`` placeholders over deal fields, nothing else.

No attribute access, indexing, format specs or code: ``{deal.__class__}`` or ``{x[0]}`` is an error,
unlike ``str.format``. ``{{`` and ``}}`` stand for literal braces.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


class TemplateError(ValueError):
    pass


def placeholders(template: str) -> list[str]:
    """Names used by ``template``; raises ``TemplateError`` naming the first bad placeholder."""
    names: list[str] = []
    for m in _TOKEN.finditer(template):
        token = m.group(0)
        if token in ("{{", "}}"):
            continue
        if m.group(1) is None:
            raise TemplateError(f"unmatched '{token}' at character {m.start()} (write '{token * 2}' for a literal brace)")
        name = m.group(1).strip()
        if not _NAME.match(name):
            raise TemplateError(
                f"placeholder '{{{m.group(1)}}}' is not a plain field name "
                "(only letters, digits and '_' are allowed; no attributes, indexes or code)"
            )
        names.append(name)
    return names


def render(template: str, values: Mapping[str, Any]) -> str:
    """Fill ``template``; a missing or empty value renders as an empty string."""
    placeholders(template)

    def sub(m: re.Match[str]) -> str:
        token = m.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        value = values.get(m.group(1).strip())
        if value is None:
            return ""
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return str(value)

    return _TOKEN.sub(sub, template)
