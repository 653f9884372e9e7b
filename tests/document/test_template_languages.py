"""Templates per language: ``{"uk": "…", "en": "…"}`` anywhere a template goes, each checked with its
JSON path; the funnel's ``language`` (or the deal's ``language`` field) chooses, English the fallback."""

from __future__ import annotations

import pytest

from engine.document.template import TemplateError, localized, render
from engine.document.validate import validate_document
from engine.errors import RuleSetInvalid
from tests.support.channels import messaging_funnel


def _problems(doc: dict) -> list[tuple[str, str]]:
    with pytest.raises(RuleSetInvalid) as caught:
        validate_document(doc)
    return [(p.path, p.message) for p in caught.value.problems]


@pytest.mark.parametrize(
    ("language", "expected"),
    [("uk", "Привіт"), ("en", "Hello"), ("de", "Hello"), (None, "Hello"), ("uk-UA", "Привіт")],
)
def test_the_language_chooses_the_text_and_english_is_the_fallback(language, expected):
    assert localized({"uk": "Привіт", "en": "Hello"}, language) == expected


def test_without_english_the_first_language_written_is_the_fallback():
    assert localized({"uk": "Привіт", "pl": "Cześć"}, "de") == "Привіт"
    assert render({"uk": "Привіт, {title}"}, {"title": "Acme"}, "en") == "Привіт, Acme"
    with pytest.raises(TemplateError):
        localized({}, "en")


def test_a_per_language_template_is_valid_and_each_text_is_checked_at_its_path():
    ok = messaging_funnel(
        [{"name": "send_sms", "params": {"text": {"uk": "Вітаємо, {title}", "en": "Hi {title}"}}}],
        language="uk",
    )
    assert validate_document(ok).language == "uk"
    bad = messaging_funnel(
        [
            {
                "name": "send_email",
                "params": {"subject": {"uk": "Вітаємо, {titel}", "EN": "Hi"}, "text": {"en": ""}},
            }
        ]
    )
    problems = _problems(bad)
    assert (
        "rules[0].actions[0].params.subject.uk",
        "template names unknown field '{titel}'; did you mean 'title'?",
    ) in problems
    assert (
        "rules[0].actions[0].params.subject.EN",
        "'EN' is not a language code (e.g. 'uk', 'en')",
    ) in problems
    assert ("rules[0].actions[0].params.text.en", "text is empty") in problems


def test_a_funnel_language_that_is_not_a_code_is_refused():
    assert ("language", "'Ukrainian' is not a language code (e.g. 'uk', 'en')") in _problems(
        messaging_funnel([{"name": "send_sms", "params": {"text": "Hi"}}], language="Ukrainian")
    )


def test_send_email_needs_a_subject_and_a_text():
    problems = _problems(messaging_funnel([{"name": "send_email", "params": {"text": "Hi"}}]))
    assert ("rules[0].actions[0].params", "'send_email' needs parameter 'subject'") in problems
