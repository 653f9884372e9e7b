"""Stage and rule ids derived from their names: ``Демо-дзвінок`` → ``demo_dzvinok``.

Cyrillic is romanised with Ukraine's national system (Cabinet of Ministers resolution No. 55 of
27.01.2010, the one used in passports): some letters are spelled one way at the start of a word and
another elsewhere, ``зг`` becomes ``zgh`` (so it is not read as ``ж``), the soft sign and the
apostrophe are dropped. The result is lowercase, every other character becomes ``_``, and the id
always matches the document validator's pattern (``^[a-z][a-z0-9_]{0,62}$``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from engine.document.validate import MAX_ID_LENGTH

__all__ = ["id_from_name", "romanize", "unique_id"]

# Letters spelled differently at the start of a word: (start, elsewhere).
_INITIAL = {
    "є": ("ye", "ie"),
    "ї": ("yi", "i"),
    "й": ("y", "i"),
    "ю": ("yu", "iu"),
    "я": ("ya", "ia"),
}
_LETTERS = {
    "а": "a",
    "б": "b",
    "в": "v",
    "г": "h",
    "ґ": "g",
    "д": "d",
    "е": "e",
    "ж": "zh",
    "з": "z",
    "и": "y",
    "і": "i",
    "к": "k",
    "л": "l",
    "м": "m",
    "н": "n",
    "о": "o",
    "п": "p",
    "р": "r",
    "с": "s",
    "т": "t",
    "у": "u",
    "ф": "f",
    "х": "kh",
    "ц": "ts",
    "ч": "ch",
    "ш": "sh",
    "щ": "shch",
    "ь": "",
    "'": "",
    "’": "",
    "ʼ": "",
    "`": "",
    # Russian letters an owner may type in a Ukrainian funnel: the usual passport spellings.
    "ё": "yo",
    "ъ": "",
    "ы": "y",
    "э": "e",
}
_APOSTROPHES = "'’ʼ`"
_NOT_ID = re.compile(r"[^a-z0-9]+")


def _is_letter(ch: str) -> bool:
    return bool(ch) and (ch.isalpha() or ch in _APOSTROPHES)


def romanize(text: str) -> str:
    """``text`` with Ukrainian Cyrillic romanised (case kept only as lower case); other text as is."""
    out: list[str] = []
    low = text.lower()
    for i, ch in enumerate(low):
        prev = low[i - 1] if i else ""
        if ch in _INITIAL:
            # "Start of a word": no letter (an apostrophe counts as inside the word) right before it.
            out.append(_INITIAL[ch][0 if not _is_letter(prev) else 1])
        elif ch == "г" and prev == "з":
            out.append("gh")
        else:
            out.append(_LETTERS.get(ch, ch))
    return "".join(out)


def id_from_name(name: str, fallback: str = "item") -> str:
    """An id for ``name``: romanised, lowercase, ``_`` between words, starting with a letter.

    Latin letters with accents lose them (``Café`` → ``cafe``); a name with nothing to keep gives
    ``fallback``; one starting with a digit is prefixed with ``fallback`` (``2nd call`` → ``stage_2nd_call``).
    """
    text = unicodedata.normalize("NFKD", romanize(name))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    slug = _NOT_ID.sub("_", text.encode("ascii", "ignore").decode().lower()).strip("_")
    slug = re.sub(r"_+", "_", slug)
    if not slug:
        return fallback
    if not slug[0].isalpha():
        slug = f"{fallback}_{slug}"
    return _trim(slug, MAX_ID_LENGTH)


def _trim(slug: str, limit: int) -> str:
    if len(slug) <= limit:
        return slug
    cut = slug[:limit]
    # Cut at a word boundary when there is one in the last third, so the id does not end mid-word.
    if "_" in cut[limit * 2 // 3 :]:
        cut = cut[: cut.rindex("_")]
    return cut.rstrip("_")


def unique_id(name: str, taken: Iterable[str], fallback: str = "item") -> str:
    """``id_from_name(name)``, or it with ``_2``, ``_3``… when that id is already in ``taken``."""
    used = set(taken)
    base = id_from_name(name, fallback)
    if base not in used:
        return base
    n = 2
    while True:
        suffix = f"_{n}"
        candidate = _trim(base, MAX_ID_LENGTH - len(suffix)) + suffix
        if candidate not in used:
            return candidate
        n += 1
