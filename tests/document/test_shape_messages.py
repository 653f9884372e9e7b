"""Pydantic's shape messages go through the interface language (engine.document.checks.messages): in
English they read exactly as pydantic words them, and each is looked up in the catalogue."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from engine.document.checks import messages
from engine.document.checks.messages import shape_message
from engine.document.ruleset import RuleSet
from engine.document.validate import validate_document
from engine.errors import RuleSetInvalid

BROKEN = {
    "enum": lambda d: d["stages"][0].update(kind="opn"),
    "label_type": lambda d: d["stages"][1].update(name=5),
    "label_empty": lambda d: d["stages"][2].update(name={}),
    "label_text": lambda d: d["stages"][3].update(name={"uk": 3}),
    "list_type": lambda d: d["rules"][2].update(actions="x"),
    "string_type": lambda d: d["stages"][0].update(id=5),
}


def _errors(doc: dict, breaks) -> list:
    bad = copy.deepcopy(doc)
    breaks(bad)
    with pytest.raises(ValidationError) as caught:
        RuleSet.model_validate(bad)
    return caught.value.errors()


@pytest.mark.parametrize("kind", list(BROKEN), ids=list(BROKEN))
def test_in_english_a_shape_message_reads_as_pydantic_words_it(sample_doc, kind):
    errs = [e for e in _errors(sample_doc, BROKEN[kind]) if e["type"] == kind]
    assert errs, kind
    for err in errs:
        assert shape_message(err) == err["msg"]


def test_our_own_wording_for_unknown_and_missing_keys(sample_doc):
    def breaks(d):
        d["stages"][0]["colour"] = "red"
        del d["stages"][1]["name"]

    found = {shape_message(e) for e in _errors(sample_doc, breaks)}
    assert {"unknown key 'colour'", "required key 'name' is missing"} <= found


def test_every_shape_message_is_looked_up_in_the_readers_language(sample_doc, monkeypatch):
    monkeypatch.setattr(messages, "_", lambda text: "«" + text + "»")
    bad = copy.deepcopy(sample_doc)
    bad["stages"][0]["kind"] = "opn"
    bad["stages"][1]["colour"] = "red"
    with pytest.raises(RuleSetInvalid) as caught:
        validate_document(bad)
    texts = [p.message for p in caught.value.problems]
    assert any(t.startswith("«Input should be") for t in texts), texts
    assert "«unknown key 'colour'»" in texts, texts


@pytest.fixture
def sample_doc():
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "sample_rules"
    path = next(p for p in sorted(root.glob("*.json")) if "techflow" in p.name)
    return json.loads(path.read_text(encoding="utf-8"))
