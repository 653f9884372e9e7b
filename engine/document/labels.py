"""Labels people read in a funnel (its name, stages, fields, events, rules): one text, or one per language.

``"Paid"`` or ``{"uk": "Оплачено", "en": "Paid"}``. In the model a label is a ``Label``: a ``str`` (the
English text, else the first one written, so code that only needs *a* text keeps working) that also
carries its texts per language and is written back exactly as it was given. ``label()`` picks the text
for the reader's language (``engine.i18n.current_language``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import PydanticCustomError, core_schema

from engine.document.template import LANGUAGE, localized
from engine.i18n import _, current_language

__all__ = ["Label", "json_kind", "label", "label_texts"]


class Label(str):
    """A label as written in the document; ``str(label)`` is its English (else first) text."""

    texts: dict[str, str] | None

    def __new__(cls, value: str | Mapping[str, str]) -> Label:
        if isinstance(value, Mapping):
            texts = dict(value)
            self = super().__new__(cls, localized(texts, "en") if texts else "")
            self.texts = texts
        else:
            self = super().__new__(cls, value)
            self.texts = None
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (Label, (self.texts if self.texts is not None else str(self),))

    def in_language(self, language: str) -> str:
        return localized(self.texts, language) if self.texts else str(self)

    def as_written(self) -> str | dict[str, str]:
        return dict(self.texts) if self.texts is not None else str(self)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda v: v.as_written() if isinstance(v, Label) else v
            ),
        )

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: Any, handler: Any) -> dict[str, Any]:
        return {
            "anyOf": [
                {"type": "string"},
                {"type": "object", "additionalProperties": {"type": "string"}, "minProperties": 1},
            ]
        }

    @classmethod
    def _validate(cls, value: Any) -> Label:
        if isinstance(value, Label):
            return value
        if isinstance(value, str):
            return cls(value)
        if isinstance(value, dict):
            if not value:
                raise PydanticCustomError(
                    "label_empty",
                    'a label per language needs at least one language, e.g. {"uk": "…", "en": "…"}',
                )
            for lang, text in value.items():
                if not isinstance(lang, str) or not LANGUAGE.match(lang):
                    raise PydanticCustomError(
                        "label_language",
                        "'{lang}' is not a language code (e.g. uk, en, pt-BR)",
                        {"lang": str(lang)},
                    )
                if not isinstance(text, str):
                    raise PydanticCustomError(
                        "label_text",
                        "the '{lang}' text must be a string, not {kind}",
                        {"lang": lang, "kind": json_kind(text)},
                    )
            return cls(value)
        raise PydanticCustomError(
            "label_type",
            'a label should be a valid string or an object of texts per language ({"uk": "…", "en": "…"}), '
            "not {kind}",
            {"kind": json_kind(value)},
        )


def json_kind(value: Any) -> str:
    """What a JSON value is, in the reader's words ("a number", "a list"): for "… not {kind}" messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return _("a boolean")
    if isinstance(value, int | float):
        return _("a number")
    if isinstance(value, str):
        return _("a string")
    if isinstance(value, list):
        return _("a list")
    return _("an object") if isinstance(value, dict) else type(value).__name__


def label_texts(value: Any) -> dict[str, str] | None:
    """The texts per language of a label (a ``Label`` or a draft's raw value); None for one text."""
    if isinstance(value, Label):
        return value.texts
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items() if isinstance(v, str)}
    return None


def label(value: Any, language: str | None = None) -> str:
    """The text of a label for ``language`` (default: the reader's), English, else the first written."""
    texts = label_texts(value)
    if texts is None:
        return "" if value is None else str(value)
    return localized(texts, language or current_language()) if texts else ""
