"""Safe message templates: ``{name}`` placeholders over deal fields, nothing else.

No attribute access, indexing, format specs or code: ``{deal.__class__}`` or ``{x[0]}`` is an error,
unlike ``str.format``. ``{{`` and ``}}`` stand for literal braces. A template may also be given per
language, ``{"uk": "…", "en": "…"}``: ``localized`` picks the deal's (or funnel's) language, then
English, then the first one written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
#: A language code as a template's key: ``uk``, ``en``, ``pt-BR`` (BCP 47's common shapes).
LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?\Z")
#: The language of a funnel that names none.
DEFAULT_LANGUAGE = "en"

#: A template: one text, or one text per language code.
Template = str | Mapping[str, str]


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
            raise TemplateError(
                f"unmatched '{token}' at character {m.start()} (write '{token * 2}' for a literal brace)"
            )
        name = m.group(1).strip()
        if not _NAME.match(name):
            raise TemplateError(
                f"placeholder '{{{m.group(1)}}}' is not a plain field name "
                "(only letters, digits and '_' are allowed; no attributes, indexes or code)"
            )
        names.append(name)
    return names


def localized(template: Template, language: str | None = None) -> str:
    """The text of ``template`` for ``language``: that language, its base (``pt`` for ``pt-BR``),
    English, else the first language written; a plain string is the same in every language."""
    if isinstance(template, str):
        return template
    if not isinstance(template, Mapping) or not template:
        raise TemplateError(
            'a template is a text or an object of texts by language, e.g. {"uk": "…", "en": "…"}'
        )
    wanted = (language or "").strip()
    for key in (wanted, wanted.split("-")[0].lower(), DEFAULT_LANGUAGE):
        if key and isinstance(template.get(key), str):
            return template[key]
    first = next(iter(template.values()))
    return first if isinstance(first, str) else ""


def render(template: Template, values: Mapping[str, Any], language: str | None = None) -> str:
    """Fill ``template`` (in ``language`` when given per language); a missing or empty value renders as
    an empty string."""
    template = localized(template, language)
    placeholders(template)

    def sub(m: re.Match[str]) -> str:
        token = m.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        value = values.get(m.group(1).strip())
        if callable(value):  # computed only when a template names it (a signed link)
            value = value()
        if value is None:
            return ""
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return str(value)

    return _TOKEN.sub(sub, template)


def render_each(template: Template, values: Mapping[str, Any]) -> dict[str, str] | None:
    """``template`` filled in each language it is written in (``None`` for a plain string, which reads
    the same in every language): what a person reads in their own interface language."""
    if not isinstance(template, Mapping) or not template:
        return None
    return {lang: render(template, values, lang) for lang in template if isinstance(lang, str)}
