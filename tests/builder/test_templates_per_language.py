"""The rule editor edits a message given per language ({"uk": …, "en": …}) one box per language, and
saving keeps every language: viewing or editing the rule never flattens it into one text."""

from __future__ import annotations

from engine.core.conveyor import Conveyor
from tests.builder.support import by_label, errors, session_app


def test_the_invoice_sms_shows_a_box_per_language_and_saving_keeps_both(demo_db: Conveyor) -> None:
    at = session_app("rule_editor").run()
    by_label(at.selectbox, "Rule").select("contract_invoice_sms").run()
    assert not at.exception and not at.error, errors(at)
    boxes = {w.label: w for w in at.text_input if w.label.startswith("Text (")}
    assert set(boxes) == {"Text (uk)", "Text (en)"}
    assert "сплатіть" in boxes["Text (uk)"].value and "please pay" in boxes["Text (en)"].value
    boxes["Text (uk)"].input(
        "{company_name}: сплатіть {amount} грн, рахунок {invoice_number}"
    ).run()
    at.text_input(key="owner_comment:rules").input("shorter Ukrainian SMS").run()
    at.button(key="owner_save:rules").click().run()
    assert not at.exception and not at.error, errors(at)
    [sms] = [
        a
        for a in demo_db.ruleset("techflow").rule("contract_invoice_sms").actions
        if a.name == "send_sms"
    ]
    assert (
        sms.params["text"]["uk"]
        == "{company_name}: сплатіть {amount} грн, рахунок {invoice_number}"
    )
    assert sms.params["text"]["en"].startswith("{company_name}: please pay")
