"""The "My day" page driven with AppTest on the demo database: counters, done, the deal card."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.builder.support import plain, sign_in

ROOT = Path(__file__).resolve().parents[2]


def _app(root: str) -> None:
    # Runs inside AppTest: My day and the Deals page under one navigation, as the router has them.
    import sys

    if root not in sys.path:
        sys.path.insert(0, root)
    import streamlit as st

    from builder import state
    from builder.views import deals, my_day

    day = st.Page(my_day.render, title="My day", url_path="day", default=True)
    board = st.Page(deals.render, title="Deals", url_path="deals")
    state.register_pages({"day": day, "deals": board})
    st.navigation([day, board]).run()


def _app_test() -> AppTest:
    """Signed in as the owner (who picks whose day to see); a test may sign in as someone else."""
    return sign_in(AppTest.from_function(_app, args=(str(ROOT),), default_timeout=60))


def _no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _metrics(at: AppTest) -> dict[str, int]:
    return {m.label: int(m.value) for m in at.metric}


def test_my_day_counts_what_it_lists_and_follows_the_filters(demo_db):
    managers = [m for m in demo_db.deals.managers() if m.active]
    at = _app_test().run()
    _no_errors(at)
    team = _metrics(at)
    day = demo_db.day.of(None)
    assert team == {
        "Overdue": len(day.overdue),
        "Due today": len(day.today),
        "Deals that need me": len(day.deals),
    }
    assert team["Deals that need me"] > 0

    first = managers[0]
    at.selectbox(key="day_pick").set_value(first.id).run()
    _no_errors(at)
    mine = demo_db.day.of(first.id)
    assert _metrics(at)["Deals that need me"] == len(mine.deals)

    at.selectbox(key="day_pick").set_value(None).run()
    at.toggle(key="day_high").set_value(True).run()
    high = _metrics(at)
    assert high["Deals that need me"] == 0  # the deals list has no priority: high only hides it
    assert high["Overdue"] == len([t for t in day.overdue if t.priority == "high"])

    at.toggle(key="day_high").set_value(False).run()
    needle = day.deals[0].deal_title or day.deals[0].deal_key
    at.text_input(key="day_search").set_value(needle).run()
    found = _metrics(at)["Deals that need me"]
    assert 1 <= found <= len(day.deals)


def test_a_task_is_done_from_my_day_in_one_click(demo_db):
    day = demo_db.day.of(None)
    task = (day.overdue + day.today)[0]
    at = _app_test().run()

    at.button(key=f"day_done_{task.id}").click().run()

    _no_errors(at)
    assert next(t for t in demo_db.queries.tasks(task.deal_id) if t.id == task.id).status == "done"
    after = _metrics(at)
    assert after["Overdue"] + after["Due today"] == len(day.overdue) + len(day.today) - 1


def test_a_deal_that_needs_me_opens_its_deal_card_in_one_click(demo_db):
    needs = demo_db.day.of(None).deals[0]
    at = _app_test().run()

    at.button(key=f"day_open_d{needs.deal_id}").click().run()

    _no_errors(at)
    assert at.session_state["deals_selected"] == needs.deal_id
    text = plain(" ".join(m.value for m in at.markdown))
    assert (needs.deal_title or needs.deal_key) in text
    assert any(t.value == "💼 Deals" for t in at.title)


def test_the_deal_card_says_why_in_labels_and_lists_cancelled_tasks_apart(demo_db):
    cancelled = next(
        (d, t)
        for d in demo_db.reports.deal_board("techflow")["id"].tolist()
        for t in demo_db.queries.tasks(int(d))
        if t.status == "cancelled"
    )
    at = _app_test().run()
    at.button(key=f"day_open_d{demo_db.day.of(None).deals[0].deal_id}").click().run()  # to Deals
    at.selectbox(key="deals_selected").set_value(int(cancelled[0])).run()

    _no_errors(at)
    assert any(e.label.startswith("Cancelled (") for e in at.expander)
    text = plain(" ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption))
    assert "Why:" in text and "Stage: " in text and "hours_in_stage" not in text


def test_a_signed_in_manager_sees_their_own_day_without_a_picker(demo_db):
    from builder.session import KEY
    from tests.builder.support import signed_in

    me = signed_in("manager")
    assert me.manager_id is not None and not me.sees_team
    at = _app_test()
    at.session_state[KEY] = me
    at.run()

    _no_errors(at)
    assert not [s for s in at.selectbox if s.key == "day_pick"]
    mine = demo_db.day.of(me.manager_id)
    assert _metrics(at) == {
        "Overdue": len(mine.overdue),
        "Due today": len(mine.today),
        "Deals that need me": len(mine.deals),
    }
    team = demo_db.day.of(None)
    assert len(mine.deals) < len(team.deals)
