"""The interface language: gettext catalogues (built with Babel) and Babel formatting of money and dates.

Text a person reads goes through ``_()``; a string defined at import time is marked with ``N_()`` and
translated where it is shown. The language is per context (a builder session, an API request, a CLI run):
``use_language("uk")`` sets it, ``current_language()`` reads it, ``CONVEYOR_LANG`` gives the default.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import gettext as _gettext
import os
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_datetime as _babel_datetime
from babel.numbers import format_currency, format_decimal

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "LOCALE_DIR",
    "N_",
    "_",
    "current_language",
    "default_language",
    "format_datetime",
    "format_money",
    "format_number",
    "gettext",
    "ngettext",
    "set_language",
    "use_language",
]

LANGUAGES = ("uk", "en")
DEFAULT_LANGUAGE = "en"
LOCALE_DIR = Path(__file__).with_name("locale")
DOMAIN = "conveyor"
_LOCALES = {"uk": "uk_UA", "en": "en_GB"}


def default_language() -> str:
    """``CONVEYOR_LANG`` when it names a language we ship, else English."""
    wanted = os.environ.get("CONVEYOR_LANG", "").strip().lower()[:2]
    return wanted if wanted in LANGUAGES else DEFAULT_LANGUAGE


_language: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "conveyor_language", default=None
)


def current_language() -> str:
    return _language.get() or default_language()


def set_language(language: str) -> None:
    """Set the language for the rest of this context (a builder run, a request)."""
    _language.set(_checked(language))


@contextlib.contextmanager
def use_language(language: str) -> Iterator[None]:
    token = _language.set(_checked(language))
    try:
        yield
    finally:
        _language.reset(token)


def _checked(language: str) -> str:
    if language not in LANGUAGES:
        raise ValueError(f"language {language!r} is not one of {', '.join(LANGUAGES)}")
    return language


@functools.cache
def _translations(language: str) -> _gettext.NullTranslations:
    return _gettext.translation(DOMAIN, localedir=LOCALE_DIR, languages=[language], fallback=True)


def gettext(message: str) -> str:
    return _translations(current_language()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _translations(current_language()).ngettext(singular, plural, n)


_ = gettext


def N_(message: str) -> str:
    """Mark a string for the catalogue without translating it now (module-level constants)."""
    return message


def _locale() -> Locale:
    return Locale.parse(_LOCALES[current_language()])


def format_money(amount: float | Decimal | int, currency: str) -> str:
    """``12 500,00 ₴`` in Ukrainian, ``UAH 12,500.00`` in English."""
    return format_currency(amount, currency, locale=_locale())


def format_number(value: float | Decimal | int) -> str:
    return format_decimal(value, locale=_locale())


def format_datetime(moment: datetime, zone: str | ZoneInfo = "UTC", format: str = "medium") -> str:
    """A moment (aware, or naive UTC as stored) in the display zone and the user's locale."""
    tz = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    return _babel_datetime(moment, format=format, tzinfo=tz, locale=_locale())
