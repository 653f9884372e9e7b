"""What a new user's first trial of the builder ran into, each checked through Streamlit's AppTest.

The funnel picker keeps one choice across the owner pages (also after an import), /designer is a real
address, times are in the display zone, and the Rule editor's variables come in a sensible order.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.core import reports
from engine.core.conveyor import Conveyor
from storage import repositories as repo
from tests.builder.support import (
    by_label,
    go,
    plain,
    served_builder,
    session_app,
    sign_in_in_browser,
)
from tests.support.sessions import db_read_session

ROOT = Path(__file__).resolve().parents[2]
_app, _go, _by_label, _plain = session_app, go, by_label, plain


def _clean(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert not at.error, "\n".join(e.value for e in at.error)


def test_imported_funnel_stays_picked_on_every_owner_page(demo_db: Conveyor) -> None:
    doc = json.loads((ROOT / "sample_rules" / "techflow.json").read_text(encoding="utf-8"))
    doc["funnel"], doc["name"] = "techflow_kyiv", "TechFlow Kyiv"
    at = _app("versions").run()
    _clean(at)
    assert at.selectbox(key="owner_funnel").value == "techflow"
    _by_label(at.text_area, "…or paste the JSON here").input(
        json.dumps(doc, ensure_ascii=False)
    ).run()
    _by_label(at.button, "Save imported version").click().run()
    _clean(at)
    assert [v.version for v in demo_db.versions("techflow_kyiv")] == [1]
    # The picker shows the imported funnel, here and on every owner page after it.
    assert at.selectbox(key="owner_funnel").value == "techflow_kyiv"
    for page in ("designer", "rule_editor", "versions", "designer"):
        _go(at, page)
        _clean(at)
        assert at.selectbox(key="owner_funnel").value == "techflow_kyiv", page
    # A choice made on one page holds on the others (it used to fall back to "Project work").
    at.selectbox(key="owner_funnel").select("techflow").run()
    for page in ("rule_editor", "versions", "designer", "versions"):
        _go(at, page)
        _clean(at)
        assert at.selectbox(key="owner_funnel").value == "techflow", page
    assert at.session_state["owner_funnel_choice"] == "techflow"
    at.selectbox(key="owner_funnel").select("project_work").run()
    _go(at, "designer")
    assert at.selectbox(key="owner_funnel").value == "project_work"
    assert "Project work" in at.markdown[-1].value or any(
        s.value == "Project work" for s in at.subheader
    )


@pytest.fixture
def served(demo_template: Path, tmp_path: Path) -> Iterator[str]:
    """`streamlit run builder/app.py` on a free localhost port over a copy of the demo database."""
    path = tmp_path / "served.db"
    shutil.copyfile(demo_template, path)
    with served_builder(f"sqlite:///{path}", tmp_path / "streamlit.log") as base:
        yield base


def test_a_link_to_slash_designer_opens_the_designer_and_the_root_still_does(served: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            for n, path in enumerate(("/designer", "/")):
                page.goto(served + path)
                if n == 0:  # then the session cookie keeps the demo owner signed in
                    sign_in_in_browser(page)
                page.get_by_role("heading", name="Funnel designer").wait_for(timeout=30000)
                assert page.url == served + "/designer", path
                assert page.get_by_text("Page not found").count() == 0, path
            # No "Deploy" button for the people using the app (client.toolbarMode = "viewer").
            assert page.get_by_role("button", name="Deploy").count() == 0
        finally:
            browser.close()


def test_versions_show_the_display_zone_and_distinct_version_pickers(
    demo_db: Conveyor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CONVEYOR_TZ", raising=False)  # the default display zone, Europe/Kyiv
    doc = demo_db.ruleset("techflow").to_document()
    doc["description"] = "second version"
    demo_db.save_ruleset(doc, comment="v2", author="test")
    at = _app("versions").run()
    _clean(at)
    table = at.dataframe[0].value
    assert "Saved at (Europe/Kyiv)" in table.columns and "Saved at (UTC)" not in table.columns
    saved = {v.version: v.created_at for v in demo_db.versions("techflow")}
    assert list(table["Saved at (Europe/Kyiv)"]) == [
        reports.to_display(saved[n]) for n in table["Version"]
    ]
    # Kyiv is 2-3 hours ahead of UTC: the shown time is not the stored UTC one.
    assert table["Saved at (Europe/Kyiv)"].iloc[0] != saved[table["Version"].iloc[0]].strftime(
        "%Y-%m-%d %H:%M"
    )
    labels = [w.label for w in at.selectbox if w.label.startswith("Version")]
    assert len(labels) == len(set(labels)) == 2, labels


def test_rule_editor_lists_variables_stage_then_times_then_builtins_then_events_then_fields_in_document_order(
    demo_db: Conveyor,
) -> None:
    at = _app("rule_editor").run()
    _clean(at)
    variable = next(w for w in at.selectbox if w.label == "Variable")
    shown = list(variable.options)
    rs = demo_db.ruleset("techflow")
    fields = [f.label or f.name for f in rs.fields]
    assert shown[0] == "Stage"
    hours = [
        i
        for i, label in enumerate(shown)
        if label.startswith("Hours") and not label.startswith("Hours since:")
    ]
    assert (
        hours == list(range(1, 1 + len(hours))) and len(hours) == 3
    )  # right after Stage, together
    assert (
        shown[-len(fields) :] == fields
    )  # the funnel's own fields last, as the document lists them
    # Each declared event by the owner's label, with its "hours since" beside it, in document order.
    events = [text for e in rs.events for text in (e.label, f"Hours since: {e.label}")]
    assert shown[1 + len(hours) : -len(fields)] == ["Has a manager", "Amount", *events]
    assert "Client opened the proposal" in events


def test_deal_card_messages_have_friendly_headers_and_the_send_status(demo_db: Conveyor) -> None:
    from engine.outbox.dispatcher import run_until_idle

    run_until_idle(demo_db)  # no provider configured: the demo's SMS is recorded, and says so
    with db_read_session(demo_db) as s:
        messages = repo.list_messages(s)
    assert messages and {m.status for m in messages} == {"recorded"}
    # a manager's own message (engine/outbox/manager_messages.py) has no deal: open a client's one
    client_message = next(m for m in messages if m.deal_id is not None)
    at = _app("deals")
    at.session_state["deals_selected"] = client_message.deal_id
    at.run()
    _clean(at)
    table = next(d for d in at.dataframe if "channel" in d.value.columns)
    assert list(table.value["status"]) == ["📝 recorded (no provider for this channel)"] * len(
        table.value
    )
    config = json.loads(table.proto.columns)
    assert {k: v["label"] for k, v in config.items() if k in table.value.columns} == {
        "created_at": "When",
        "channel": "Channel",
        "to": "To",
        "text": "Text",
        "status": "Status",
        "sent_at": "Sent at",
        "gateway_id": "Gateway id",
        "error": "Gateway's answer",
    }


def test_stage_editor_lists_every_required_field_of_the_entry_guard(demo_db: Conveyor) -> None:
    at = _app("designer").run()
    _by_label(at.selectbox, "Edit").select("stage:contract").run()
    _clean(at)
    guard = demo_db.ruleset("techflow").stage("contract").guard.required_fields
    labels = {f.name: f.label or f.name for f in demo_db.ruleset("techflow").fields}
    assert len(guard) == 3
    shown = next(c.value for c in at.caption if c.value.startswith("Required to enter:"))
    for name in guard:
        assert _plain(labels[name]) in _plain(shown), (name, shown)


def test_rule_labels_in_the_graph_are_larger_and_wrap_instead_of_being_cut_short(
    demo_db: Conveyor,
) -> None:
    from builder.components import RuleData, graph_elements
    from engine.document.labels import label
    from engine.document.validate import rule_data

    rs = demo_db.ruleset("techflow")
    doc = rs.to_document()
    rd = RuleData(
        rule_data(rs),
        [s["id"] for s in doc["stages"]],
        {s["id"]: s["name"] for s in doc["stages"]},
        ["techflow", "project_work"],
        [f["name"] for f in doc["fields"]],
    )
    nodes, _ = graph_elements(doc, rd)
    rules = [n.to_dict() for n in nodes if n.id.startswith("rule:")]
    assert rules and all(
        r["font"]["size"] >= 16 and r["widthConstraint"]["maximum"] <= 200 for r in rules
    )
    names = [
        label(r.get("name")) or r["id"] for r in doc["rules"]
    ]  # the funnel names them per language
    # Names up to 30 characters are shown whole (vis-network wraps them onto two lines).
    assert any(24 < len(n) <= 30 and n in [r["label"] for r in rules] for n in names)


def test_one_funnel_choice_is_shared_by_owner_and_manager_pages(demo_db: Conveyor) -> None:
    at = _app("deals").run()
    _clean(at)
    assert at.selectbox(key="deals_funnel").value == "techflow"  # the funnel with the most deals
    at.selectbox(key="deals_funnel").select("project_work").run()
    for page, key in (
        ("analytics", "an_funnel"),
        ("dry_run", "dry_funnel"),
        ("designer", "owner_funnel"),
        ("deals", "deals_funnel"),
    ):
        _go(at, page)
        _clean(at)
        assert at.selectbox(key=key).value == "project_work", page
    # Back to TechFlow from an owner page; a left-over value of another page's picker is not a pick.
    _go(at, "versions")
    at.selectbox(key="owner_funnel").select("techflow").run()
    for page, key in (
        ("deals", "deals_funnel"),
        ("analytics", "an_funnel"),
        ("rule_editor", "owner_funnel"),
    ):
        _go(at, page)
        _clean(at)
        assert at.selectbox(key=key).value == "techflow", page
