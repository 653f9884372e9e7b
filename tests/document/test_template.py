"""The safe message template: ``{name}`` placeholders over deal fields and nothing that could run code."""

from __future__ import annotations

import pytest

from engine.document.template import TemplateError, placeholders, render

VALUES = {
    "title": "Acme",
    "company_name": "Acme LLC",
    "amount": 1500.0,
    "invoice_number": "INV-0007",
    "tags": ["vip", "b2b"],
    "phone": None,
    "ratio": 0.5,
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Hello {title}", "Hello Acme"),
        (
            "{company_name}: pay {amount} UAH for {invoice_number}",
            "Acme LLC: pay 1500 UAH for INV-0007",
        ),
        ("{ title }", "Acme"),
        ("no placeholders at all", "no placeholders at all"),
        ("", ""),
        ("{{title}}", "{title}"),
        ("{{{title}}}", "{Acme}"),
        ("set {{ a }} and }}", "set { a } and }"),
        ("call {phone}!", "call !"),
        ("missing {not_there}.", "missing ."),
        ("tags: {tags}", "tags: vip, b2b"),
        ("ratio {ratio}", "ratio 0.5"),
        ("{title}{title}", "AcmeAcme"),
        ("Привіт, {title}!", "Привіт, Acme!"),
    ],
    ids=[
        "one-placeholder",
        "several",
        "spaces-inside-braces",
        "plain-text",
        "empty",
        "escaped-braces",
        "escape-around-placeholder",
        "lone-escapes",
        "none-renders-empty",
        "missing-renders-empty",
        "list-joined",
        "fraction-kept",
        "adjacent",
        "unicode-text",
    ],
)
def test_render_fills_placeholders(template: str, expected: str) -> None:
    assert render(template, VALUES) == expected


def test_placeholders_lists_names_in_order_without_escapes() -> None:
    assert placeholders("{{x}} {title} and {amount}, {title}") == ["title", "amount", "title"]


def test_render_does_not_reinterpret_substituted_values() -> None:
    # A value that looks like a template is printed as it is, never expanded a second time.
    assert render("note: {title}", {"title": "{amount.__class__}"}) == "note: {amount.__class__}"


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("{title.upper}", "placeholder '{title.upper}' is not a plain field name"),
        ("{title.__class__.__mro__}", "not a plain field name"),
        ("{tags[0]}", "placeholder '{tags[0]}' is not a plain field name"),
        ("{title!r}", "placeholder '{title!r}'"),
        ("{amount:>10}", "placeholder '{amount:>10}'"),
        ("{amount:.2f}", "not a plain field name"),
        ("{__class__}", "placeholder '{__class__}'"),
        ("{_private}", "not a plain field name"),
        ("{0}", "placeholder '{0}'"),
        ("{}", "placeholder '{}'"),
        ("{first name}", "not a plain field name"),
        ("{title()}", "not a plain field name"),
        ("Pay {amount UAH", "unmatched '{' at character 4 (write '{{' for a literal brace)"),
        ("Pay amount} UAH", "unmatched '}' at character 10 (write '}}' for a literal brace)"),
        ("{{title}", "unmatched '}'"),
        ("{title}}", "unmatched '}'"),
        ("{", "unmatched '{' at character 0"),
    ],
    ids=[
        "attribute",
        "dunder-chain",
        "indexing",
        "conversion",
        "format-spec",
        "format-precision",
        "dunder-name",
        "leading-underscore",
        "positional",
        "empty-placeholder",
        "space-in-name",
        "call",
        "unmatched-open",
        "unmatched-close",
        "escape-then-unmatched-close",
        "placeholder-then-unmatched-close",
        "lone-open",
    ],
)
def test_unsafe_or_broken_templates_are_refused(template: str, fragment: str) -> None:
    with pytest.raises(TemplateError) as info:
        placeholders(template)
    assert fragment in str(info.value)
    with pytest.raises(TemplateError):
        render(
            template, VALUES
        )  # render checks too: a bad template never reaches a client half-filled
