"""Pydantic's shape messages in the reader's language.

The document model's own pydantic errors (a wrong JSON type, a value out of range, an unknown stage
kind) arrive with pydantic's English text. The kinds a funnel document meets are worded here again,
through ``_()``: in English exactly as pydantic says them, in Ukrainian as the catalogue does. A kind
not listed keeps pydantic's text (still in English) rather than losing what it says.
"""

from __future__ import annotations

from typing import Any

from engine.i18n import N_, _, ngettext

__all__ = ["shape_message"]

#: pydantic's error type → its English message template (``{name}`` from the error's ``ctx``).
TEMPLATES = {
    "string_type": N_("Input should be a valid string"),
    "int_type": N_("Input should be a valid integer"),
    "int_parsing": N_("Input should be a valid integer, unable to parse string as an integer"),
    "int_from_float": N_("Input should be a valid integer, got a number with a fractional part"),
    "float_type": N_("Input should be a valid number"),
    "float_parsing": N_("Input should be a valid number, unable to parse string as a number"),
    "bool_type": N_("Input should be a valid boolean"),
    "bool_parsing": N_("Input should be a valid boolean, unable to interpret input"),
    "list_type": N_("Input should be a valid list"),
    "dict_type": N_("Input should be a valid dictionary"),
    "model_type": N_("Input should be a valid dictionary or instance of {class_name}"),
    "model_attributes_type": N_(
        "Input should be a valid dictionary or object to extract fields from"
    ),
    "literal_error": N_("Input should be {expected}"),
    "enum": N_("Input should be {expected}"),
    "greater_than": N_("Input should be greater than {gt}"),
    "greater_than_equal": N_("Input should be greater than or equal to {ge}"),
    "less_than": N_("Input should be less than {lt}"),
    "less_than_equal": N_("Input should be less than or equal to {le}"),
    "string_pattern_mismatch": N_("String should match pattern '{pattern}'"),
    "union_tag_invalid": N_(
        "Input tag '{tag}' found using {discriminator} does not match any of the expected tags:"
        " {expected_tags}"
    ),
    "union_tag_not_found": N_("Unable to extract tag using discriminator {discriminator}"),
    # engine.document.labels' own errors (PydanticCustomError), same words as there.
    "label_empty": N_(
        'a label per language needs at least one language, e.g. {{"uk": "…", "en": "…"}}'
    ),
    "label_language": N_("'{lang}' is not a language code (e.g. uk, en, pt-BR)"),
    "label_type": N_(
        'a label should be a valid string or an object of texts per language ({{"uk": "…", "en":'
        ' "…"}}), not {kind}'
    ),
    "label_text": N_("the '{lang}' text must be a string, not {kind}"),
}


def _counted(kind: str, ctx: dict[str, Any]) -> str | None:
    """The messages with a count, singular or plural as pydantic words them (literal ``ngettext`` calls,
    so the catalogue extracts each pair as one plural entry)."""
    if kind == "string_too_short":
        n = int(ctx["min_length"])
        text = ngettext(
            "String should have at least {min_length} character",
            "String should have at least {min_length} characters",
            n,
        )
    elif kind == "string_too_long":
        n = int(ctx["max_length"])
        text = ngettext(
            "String should have at most {max_length} character",
            "String should have at most {max_length} characters",
            n,
        )
    elif kind == "too_short":
        n = int(ctx["min_length"])
        text = ngettext(
            "{field_type} should have at least {min_length} item after validation, not"
            " {actual_length}",
            "{field_type} should have at least {min_length} items after validation, not"
            " {actual_length}",
            n,
        )
    elif kind == "too_long":
        n = int(ctx["max_length"])
        text = ngettext(
            "{field_type} should have at most {max_length} item after validation, not"
            " {actual_length}",
            "{field_type} should have at most {max_length} items after validation, not"
            " {actual_length}",
            n,
        )
    else:
        return None
    return text.format(**ctx)


def shape_message(err: Any) -> str:
    """One pydantic error's message (``err`` from ``ValidationError.errors()``) in the reader's language."""
    kind = err.get("type", "")
    ctx = dict(err.get("ctx") or {})
    try:
        if kind == "extra_forbidden":
            return _("unknown key '{key}'").format(key=err["loc"][-1])
        if kind == "missing":
            return _("required key '{key}' is missing").format(key=err["loc"][-1])
        if kind == "value_error" and "error" in ctx:
            return str(ctx["error"])  # our own validators' words, without "Value error, "
        if kind in TEMPLATES:
            return _(TEMPLATES[kind]).format(**ctx)
        counted = _counted(kind, ctx)
        if counted is not None:
            return counted
    except (KeyError, IndexError, ValueError, TypeError):
        pass  # a context this wording does not expect: pydantic's own text
    return str(err.get("msg", ""))
