"""Stage and rule ids derived from names: Ukraine's national romanisation, unique, always valid."""

from __future__ import annotations

import pytest

from engine.document.ids import id_from_name, romanize, unique_id
from engine.document.validate import validate_document


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Демо-дзвінок", "demo_dzvinok"),
        ("Згода", "zghoda"),
        ("Юрій", "yurii"),
        ("Розгон", "rozghon"),
        ("Знам'янка", "znamianka"),
        ("Євгенія", "yevheniia"),
        ("Їжакевич", "yizhakevych"),
        ("Йосипівка", "yosypivka"),
        ("Стрий", "stryi"),
        ("Костянтин", "kostiantyn"),
        ("Щербухи", "shcherbukhy"),
        ("Ґалаґан", "galagan"),
        ("Харків", "kharkiv"),
        ("Цюрупинськ", "tsiurupynsk"),
        ("Подільськ", "podilsk"),
        ("Оплата  отримана!", "oplata_otrymana"),
        ("Cold call (90 days)", "cold_call_90_days"),
        ("Café crème", "cafe_creme"),
    ],
    ids=lambda v: v if isinstance(v, str) and v.isascii() else None,
)
def test_names_are_romanised_into_ids(name: str, expected: str) -> None:
    assert id_from_name(name) == expected


def test_start_of_word_spellings_follow_every_word_boundary() -> None:
    assert romanize("нова яма, стара яма") == "nova yama, stara yama"
    assert romanize("моя") == "moia"


def test_a_name_without_letters_or_starting_with_a_digit_gets_the_fallback_word() -> None:
    assert id_from_name("!!!", "stage") == "stage"
    assert (
        id_from_name("2-й дзвінок", "stage") == "stage_2_y_dzvinok"
    )  # й after a hyphen starts a word


def test_ids_are_unique_by_suffix() -> None:
    assert unique_id("Демо-дзвінок", ["demo_dzvinok"]) == "demo_dzvinok_2"
    assert unique_id("Демо-дзвінок", ["demo_dzvinok", "demo_dzvinok_2"]) == "demo_dzvinok_3"
    assert unique_id("Нове", []) == "nove"


def test_long_names_give_ids_the_validator_accepts() -> None:
    name = "Дуже довга назва етапу " * 10
    sid = id_from_name(name)
    assert len(sid) <= 63 and not sid.endswith("_")
    taken = [sid]
    other = unique_id(name, taken)
    assert other.endswith("_2") and len(other) <= 63
    doc = {
        "funnel": "f",
        "name": "F",
        "stages": [{"id": i, "name": name[:100]} for i in (sid, other)],
        "transitions": [{"from": sid, "to": other}],
    }
    validate_document(doc)  # raises when an id does not match the validator's pattern
