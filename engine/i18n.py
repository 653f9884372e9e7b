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
import io
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
    # The compiled .mo (``make translations``) when it is at least as new as its .po; otherwise the .po is
    # compiled in memory, so a checkout that skipped the step (or edited a .po since) never silently
    # falls back to English.
    folder = LOCALE_DIR / language / "LC_MESSAGES"
    po, mo = folder / f"{DOMAIN}.po", folder / f"{DOMAIN}.mo"
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as compiled:
            return _gettext.GNUTranslations(compiled)
    if not po.exists():
        return _gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po.open("rb") as source:
        catalogue = read_po(source, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalogue)
    buffer.seek(0)
    return _gettext.GNUTranslations(buffer)


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
    text = format_currency(amount, currency, locale=_locale())
    # Where the locale has no symbol for the currency, CLDR glues the code to the number ("UAH12.00").
    if text.startswith(currency) and text[len(currency) : len(currency) + 1].isdigit():
        text = f"{currency}\u00a0{text[len(currency) :]}"
    return text


def format_number(value: float | Decimal | int) -> str:
    return format_decimal(value, locale=_locale())


def format_datetime(moment: datetime, zone: str | ZoneInfo = "UTC", format: str = "medium") -> str:
    """A moment (aware, or naive UTC as stored) in the display zone and the user's locale."""
    tz = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    return _babel_datetime(moment, format=format, tzinfo=tz, locale=_locale())
