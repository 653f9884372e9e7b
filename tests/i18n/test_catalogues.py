"""Every string the code marks for translation is in each catalogue, translated, not fuzzy, and its
translation keeps the same named placeholders (a missing ``{stage}`` would break the sentence, an extra
one would raise). The strings are extracted with Babel's API exactly as ``make i18n`` does."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from engine.i18n import LANGUAGES, LOCALE_DIR

ROOT = Path(__file__).resolve().parents[2]
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}


def _extracted() -> Catalog:
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    catalog = Catalog()
    for filename, lineno, message, _comments, _context in extract_from_dir(
        ROOT, method_map, options_map, keywords=KEYWORDS
    ):
        catalog.add(message, locations=[(filename, lineno)])
    return catalog


EXTRACTED = _extracted()


def _fields(text: str) -> set[str]:
    try:
        return {name for _lit, name, _spec, _conv in string.Formatter().parse(text) if name}
    except ValueError as exc:  # an unbalanced brace
        return {f"<unparsable: {exc}>"}


def _catalogue(language: str) -> Catalog:
    with (LOCALE_DIR / language / "LC_MESSAGES" / "conveyor.po").open("rb") as po:
        return read_po(po)


def _where(message) -> str:
    return ", ".join(f"{f}:{n}" for f, n in message.locations[:2])


def test_the_code_marks_strings_for_translation() -> None:
    assert len([m for m in EXTRACTED if m.id]) > 100


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_marked_string_is_translated_in_the_catalogue(language: str) -> None:
    catalogue = _catalogue(language)
    missing, untranslated, fuzzy = [], [], []
    for message in EXTRACTED:
        if not message.id:
            continue
        entry = catalogue.get(message.id)
        label = f"{message.id!r} ({_where(message)})"
        if entry is None:
            missing.append(label)
        elif entry.fuzzy:
            fuzzy.append(label)
        elif not entry.string or (isinstance(entry.string, tuple) and not all(entry.string)):
            untranslated.append(label)
    report = [
        *(f"missing: {m}" for m in missing),
        *(f"untranslated: {m}" for m in untranslated),
        *(f"fuzzy: {m}" for m in fuzzy),
    ]
    assert not report, (
        f"{len(report)} problem(s) in {language}/conveyor.po; run `make i18n` and translate:\n"
        + "\n".join(report[:60])
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_the_placeholders_of_their_message(language: str) -> None:
    wrong = []
    for entry in _catalogue(language):
        if not entry.id or not entry.string:
            continue
        ids = entry.id if isinstance(entry.id, tuple) else (entry.id,)
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        wanted = set().union(*(_fields(i) for i in ids))
        for text in strings:
            if text and _fields(text) != wanted:
                wrong.append(f"{entry.id!r}: {text!r} has {_fields(text)}, wanted {wanted}")
    assert not wrong, "\n".join(wrong)


def test_ukrainian_plurals_have_three_forms() -> None:
    catalogue = _catalogue("uk")
    assert catalogue.num_plurals == 3
    for entry in catalogue:
        if isinstance(entry.id, tuple) and entry.string:
            assert len(entry.string) == 3 and all(entry.string), entry.id


def test_no_message_is_marked_inside_an_f_string() -> None:
    # Babel reads an f-string as one token: `f"{_('Then')}"` is shown translated at run time only if
    # the catalogue happens to have the message, and the extraction above never sees it.
    import io
    import re
    import tokenize

    marked = re.compile(r"""\b(?:_|N_|ngettext)\(\s*[rbu]*["']""")
    found = []
    for package in ("builder", "engine"):
        for path in sorted((ROOT / package).rglob("*.py")):
            source = path.read_text(encoding="utf-8")
            for token in tokenize.generate_tokens(io.StringIO(source).readline):
                prefix = re.match(r"[A-Za-z]*", token.string).group(0).lower()
                if token.type == tokenize.STRING and "f" in prefix and marked.search(token.string):
                    found.append(f"{path.relative_to(ROOT)}:{token.start[0]}: {token.string[:60]}")
    assert not found, "\n".join(found)
