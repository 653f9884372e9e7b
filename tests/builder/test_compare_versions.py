"""Compare on the Versions page: what changed between two versions, by name, in the owner's words;
nodes that only moved on the canvas are hidden until asked for; both versions are drawn side by side
with the changed nodes highlighted."""

from __future__ import annotations

from builder.compare import ADDED, CHANGED, differences
from engine.core.conveyor import Conveyor
from tests.builder.support import errors, session_app


def _save_changed_version(c: Conveyor) -> tuple[int, int]:
    doc = c.ruleset("techflow").to_document()
    before = max(v.version for v in c.versions("techflow"))
    paid = next(s for s in doc["stages"] if s["id"] == "paid")
    paid["position"] = {"x": 1234.0, "y": 56.0}  # dragged: position only
    idle = next(r for r in doc["rules"] if r["id"] == "incoming_idle_24h")
    idle["conditions"]["all"][1]["value"] = 12
    next(s for s in doc["stages"] if s["id"] == "proposal")["name"] = "Commercial proposal"
    doc["rules"].append(
        {
            "id": "contract_call",
            "name": "Contract: call",
            "conditions": {"all": [{"name": "stage", "operator": "equal_to", "value": "contract"}]},
            "actions": [{"name": "assign_manager", "params": {}}],
        }
    )
    info = c.save_ruleset(doc, comment="compare me")
    return before, info.version


def test_compare_names_things_and_tells_changed_rules_before_and_after(demo_db: Conveyor) -> None:
    a, b = _save_changed_version(demo_db)
    at = session_app("versions").run()
    assert not at.exception and not at.error, errors(at)
    assert at.selectbox(key="versions:techflow:a").value == a
    table = at.dataframe[-1].value  # the compare tab's table
    rows = {(r["What"], r["Name"], r["Change"]): r for r in table.to_dict("records")}
    idle = rows[("rule", "Incoming: 24 h without manager activity", "conditions")]
    assert idle[f"Before (v{a})"].startswith("the deal is in Incoming lead and after 24 h")
    assert "after 12 h without manager activity" in idle[f"After (v{b})"]
    renamed = rows[("stage", "Commercial proposal", "renamed")]
    assert renamed[f"Before (v{a})"] == "Proposal"
    added = rows[("rule", "Contract: call", "added")]
    assert added[f"After (v{b})"] == "In Contract → assign a manager"
    # Paid was only dragged: not listed until asked for, and the page says so.
    assert not any(r["Change"] == "moved on the canvas" for r in table.to_dict("records"))
    assert any("1 position-only change hidden" in c.value for c in at.caption)
    at.toggle(key="versions:techflow:positions").set_value(True).run()
    table = at.dataframe[-1].value
    assert ("stage", "Paid", "moved on the canvas") in {
        (r["What"], r["Name"], r["Change"]) for r in table.to_dict("records")
    }


def test_only_moved_nodes_read_as_the_same_funnel(demo_db: Conveyor) -> None:
    doc = demo_db.ruleset("techflow").to_document()
    doc["stages"][0]["position"] = {"x": -400.0, "y": 10.0}
    demo_db.save_ruleset(doc, comment="moved")
    at = session_app("versions").run()
    assert not at.exception and not at.error, errors(at)
    assert any("do the same. (1 node only moved on the canvas.)" in s.value for s in at.success)


def test_the_picture_highlights_the_changed_nodes_of_each_version(demo_db: Conveyor) -> None:
    a, b = _save_changed_version(demo_db)
    diff = differences(demo_db.ruleset("techflow", a), demo_db.ruleset("techflow", b))
    marks = diff.nodes(with_positions=False)
    assert marks == {
        "stage:proposal": CHANGED,
        "rule:incoming_idle_24h": CHANGED,
        "rule:contract_call": ADDED,
    }
    assert diff.nodes(with_positions=True)["stage:paid"] == CHANGED
    # the page draws both pictures (two agraph components) without an error
    at = session_app("versions").run()
    assert not at.exception and not at.error, errors(at)
    assert any(e.label == "Picture of both versions" and e.proto.expanded for e in at.expander)
    assert [m.value for m in at.markdown if m.value in (f"**v{a}**", f"**v{b}**")] == [
        f"**v{a}**",
        f"**v{b}**",
    ]
