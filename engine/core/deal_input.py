"""What a deal change may carry: text, numbers, keys and field values, checked before any query.

Every value that reaches the database through the core passes here first, so a value no backend
stores alike is a clear ``InvalidChange`` naming the field, never a failing transaction later.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from engine.document.ruleset import FieldDef, FieldType, RuleSet
from engine.document.suggestions import suggest
from engine.errors import InvalidChange
from engine.i18n import _
from engine.rules.deal import BUILTIN_FIELDS
from engine.text import refusal as text_refusal

__all__ = [
    "GENERATED_KEY",
    "MANAGER_NAME_LIMIT",
    "MANAGER_PHONE_LIMIT",
    "MAX_COMMENT",
    "MAX_NUMBER",
    "MAX_SHORT_TEXT",
    "MAX_TEXT",
    "TEXT_LIMITS",
    "blank",
    "clean_builtin",
    "clean_fields",
    "clean_key",
    "clean_text",
    "clean_value",
    "event_data",
    "event_instant",
    "jsonable",
    "number",
    "shown",
]

#: Longest text a built-in deal column holds (storage/models.py): PostgreSQL refuses longer values,
#: and a refused value must be a clear error at the change, not a failing transaction later.
TEXT_LIMITS = {"key": 100, "title": 300, "phone": 50, "email": 200}
MANAGER_NAME_LIMIT, MANAGER_PHONE_LIMIT = 200, 50
#: Largest magnitude a number in a deal may have: beyond it floats lose whole units, and
#: NaN/Infinity are not JSON (PostgreSQL refuses them) and break comparisons.
MAX_NUMBER = 1e15
#: Longest text a custom text field or an activity note may hold (it may become an SMS text).
MAX_TEXT = 10_000
#: Longest activity kind, actor name, version comment and funnel/stage name given to a method.
MAX_SHORT_TEXT, MAX_COMMENT = 200, 2_000
#: At most this many keys in the data an event carries.
MAX_EVENT_KEYS = 50
#: The earliest instant an event may be reported at: due times are counted from it, and far in the
#: past that date arithmetic overflows.
EARLIEST_EVENT = datetime(1970, 1, 1, tzinfo=UTC)
#: Keys the engine generates for keyless deals (``D-<id>``); an explicit key may not take one.
GENERATED_KEY = re.compile(r"^D-\d+$")


def blank(value: Any) -> bool:
    """Empty for an entry guard: None, blank text or an empty list."""
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def shown(value: Any, limit: int = 40) -> str:
    """``value`` quoted for an error message: escaped (so it prints and stores anywhere) and short."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def number(what: str, value: Any, *, non_negative: bool = False) -> float:
    """A finite float within ±``MAX_NUMBER`` (and not below zero if ``non_negative``), or InvalidChange."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidChange(
            _("{what} needs a number, got {value}").format(what=what, value=repr(value))
        )
    try:
        result = float(value)
    except OverflowError:  # an int too large for a float
        result = math.inf
    if not math.isfinite(result) or abs(result) > MAX_NUMBER:
        text = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "…"
        raise InvalidChange(
            _("{what} must be a finite number between -{limit} and {limit}, got {value}").format(
                what=what, limit=f"{MAX_NUMBER:.0e}", value=text
            )
        )
    if non_negative and result < 0:
        raise InvalidChange(
            _("{what} cannot be negative, got {value}").format(what=what, value=repr(value))
        )
    return result


def clean_text(
    what: str, value: Any, limit: int | None = MAX_TEXT, *, one_line: bool = False
) -> str:
    """``value`` if it is text every backend stores as given, else InvalidChange naming ``what``.

    Refused (``engine.text``): non-text, more than ``limit`` characters, lone surrogates (not
    Unicode), NUL and the other C0 control characters; tab and line breaks unless ``one_line``.
    One such value stored would fail every later batch it joins (e.g. the SMS quoting it).
    """
    if not isinstance(value, str):
        raise InvalidChange(
            _("{what} needs text, got {value}").format(what=what, value=shown(value))
        )
    if limit is not None and len(value) > limit:
        raise InvalidChange(
            _("{what} is {length} characters long; the limit is {limit}").format(
                what=what, length=len(value), limit=limit
            )
        )
    reason = text_refusal(value, one_line=one_line)
    if reason is not None:
        raise InvalidChange(f"{what} {reason}")
    return value


def clean_key(raw: Any) -> str:
    """An explicit deal key: text that fits its column and is not an engine-made ``D-<n>``."""
    key = str(raw).strip()
    if _plain_text(key, TEXT_LIMITS["key"], True) and not GENERATED_KEY.match(key):
        return key  # the common case, without building a refusal's words
    if len(key) > TEXT_LIMITS["key"]:
        raise InvalidChange(
            _("{what} is {length} characters long; the limit is {limit}").format(
                what=_("deal key"), length=len(key), limit=TEXT_LIMITS["key"]
            )
        )
    clean_text(_("deal key"), key, None, one_line=True)
    if GENERATED_KEY.match(key):
        raise InvalidChange(
            _(
                "deal key '{key}' looks like a generated key (D-<number> is kept for deals created "
                "without a key); choose another key, e.g. with a prefix of your own"
            ).format(key=key)
        )
    return key


def clean_value(fd: FieldDef, value: Any) -> Any:
    """A custom field's value as its type stores it (None for empty), or InvalidChange."""
    if value is None or value == "":
        return None
    if fd.type is FieldType.NUMERIC:
        if _plain_number(value):  # the common case, without building the refusal's words
            return float(value)
        return number(field_named(fd.name), value)
    if fd.type is FieldType.BOOLEAN:
        if not isinstance(value, bool):
            raise InvalidChange(
                _("{what} needs true or false, got {value}").format(
                    what=field_named(fd.name), value=shown(value)
                )
            )
        return value
    if fd.type is FieldType.SELECT:
        match = next(
            (o for o in fd.options if isinstance(value, str) and o.lower() == value.lower()), None
        )
        if match is None:
            raise InvalidChange(
                _("{what}: {value} is not one of its options ({options})").format(
                    what=field_named(fd.name), value=shown(value), options=", ".join(fd.options)
                )
            )
        return match
    if _plain_text(value, MAX_TEXT, False):
        return value
    return clean_text(field_named(fd.name), value, MAX_TEXT)


def field_named(name: str) -> str:
    """``field 'budget'``: how an error message names a deal's field."""
    return _("field '{name}'").format(name=name)


def clean_builtin(name: str, value: Any) -> Any:
    """A built-in field's value (``BUILTIN_FIELDS``) as its column stores it, or InvalidChange."""
    if name == "amount":
        if value is None:
            return None
        if _plain_number(value, non_negative=True):
            return float(value)
        return number(field_named("amount"), value, non_negative=True)
    limit, one_line = TEXT_LIMITS.get(name, MAX_TEXT), name != "title"
    if _plain_text(value, limit, one_line):
        return value
    text = "" if value is None else str(value)
    return clean_text(field_named(name), text, limit, one_line=one_line)


def _plain_number(value: Any, non_negative: bool = False) -> bool:
    """Would ``number`` take ``value`` as it is? (An import checks 100,000s: no message built.)"""
    kind = type(value)
    return (
        (kind is float or kind is int)
        and -MAX_NUMBER <= value <= MAX_NUMBER  # NaN compares false
        and (not non_negative or value >= 0)
    )


def _plain_text(value: Any, limit: int, one_line: bool) -> bool:
    """Would ``clean_text`` take ``value`` as it is?"""
    return (
        isinstance(value, str)
        and len(value) <= limit
        and text_refusal(value, one_line=one_line) is None
    )


def clean_fields(rs: RuleSet, fields: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split and type-check fields: (built-in deal attributes, custom fields)."""
    builtin: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    if not isinstance(fields, dict):
        raise InvalidChange(
            _("fields must be an object of field names and values, got {value}").format(
                value=shown(fields)
            )
        )
    known = list(BUILTIN_FIELDS) + [f.name for f in rs.fields]
    for name, value in fields.items():
        clean_text(_("a field name"), name, MAX_SHORT_TEXT, one_line=True)
        if name in BUILTIN_FIELDS:
            builtin[name] = clean_builtin(name, value)
            continue
        fd = rs.field(name)
        if fd is None:
            raise InvalidChange(
                _("unknown field '{name}' in funnel '{funnel}'").format(name=name, funnel=rs.funnel)
                + suggest(name, known)
            )
        custom[name] = clean_value(fd, value)
    return builtin, custom


def event_instant(at: Any, now: datetime) -> datetime:
    """When a reported event happened: an aware instant, not after ``now`` (the clock's) nor before 1970."""
    if not isinstance(at, datetime):
        raise InvalidChange(f"event time needs a date and time, got {shown(at)}")
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidChange(f"event time {at.isoformat()} has no time zone; give one (e.g. +00:00)")
    if at > now:
        raise InvalidChange(
            f"event time {at.isoformat()} is in the future (now is {now.isoformat()})"
        )
    if at < EARLIEST_EVENT:
        raise InvalidChange(f"event time {at.isoformat()} is before 1970")
    return at.astimezone(UTC)


def event_data(data: Any) -> dict[str, Any]:
    """The data an event carries: a flat JSON object of text, numbers, true/false and null, each
    within the limits of a deal's fields (keys one line of at most 200 characters, text 10 000)."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidChange(f"event data must be an object of names and values, got {shown(data)}")
    if len(data) > MAX_EVENT_KEYS:
        raise InvalidChange(f"event data has {len(data)} keys; the limit is {MAX_EVENT_KEYS}")
    out: dict[str, Any] = {}
    for key, value in data.items():
        clean_text("an event data key", key, MAX_SHORT_TEXT, one_line=True)
        if value is None or isinstance(value, bool):
            out[key] = value
        elif isinstance(value, int | float):
            out[key] = number(f"event data '{key}'", value)
        elif isinstance(value, str):
            out[key] = clean_text(f"event data '{key}'", value, MAX_TEXT)
        else:
            raise InvalidChange(
                f"event data '{key}' must be text, a number, true/false or null, got {shown(value)}"
            )
    return out


def jsonable(value: Any) -> Any:
    """``value`` as JSON every backend stores alike: string keys, rounded floats, ISO instants."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str | int | bool) or value is None:
        return value
    return str(value)
