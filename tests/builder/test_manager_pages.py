"""The manager pages of the builder (deals, actions review, dry run, analytics) driven with AppTest.

Each test gets its own SQLite file holding the demo data; widgets are driven as a manager would and
the database is checked through the engine afterwards.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.outbox.dispatcher import run_until_idle
from storage import repositories as repo
from tests.builder.support import plain, sign_in
from tests.support.sessions import db_session

ROOT = Path(__file__).resolve().parents[2]


def _page_script(page: str, root: str) -> None:
    # Runs inside AppTest: the page module is imported from the project like the router does.
    import importlib
    import sys

    if root not in sys.path:
        sys.path.insert(0, root)
    importlib.import_module(f"builder.views.{page}").render()


def page(name: str, role: str = "owner") -> AppTest:
    """The page, signed in as the demo user of ``role`` (the owner sees every deal)."""
    return sign_in(
        AppTest.from_function(_page_script, args=(name, str(ROOT)), default_timeout=60), role
    )


def _no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("deals", "Acme Logistics"),
        ("actions_review", "Urgent: call Acme Logistics"),  # in the reader's language
        (
            "dry_run",
            "In Proposal, if Proposal attached → task “Call {title} to agree the proposal”",
        ),
        ("analytics", "Deals that reached each stage"),
    ],
    ids=["deals", "actions_review", "dry_run", "analytics"],
)
def test_each_manager_page_renders_the_demo_database(demo_db, name, expected):
    at = page(name).run()
    _no_errors(at)
    text = plain(" ".join([m.value for m in at.markdown] + [e.label for e in at.expander]))
    assert expected in text


@pytest.mark.parametrize("name", ["deals", "actions_review", "dry_run", "analytics"])
def test_manager_pages_on_an_empty_database_say_what_to_do(tmp_path, monkeypatch, name):
    monkeypatch.setenv("CONVEYOR_DB", f"sqlite:///{tmp_path / 'empty.db'}")
    at = page(name).run()
    _no_errors(at)
    if name == "actions_review":
        assert "Nothing waiting" in at.success[0].value
    else:
        assert "No funnel yet" in at.info[0].value


def test_marking_a_task_done_closes_it_and_counts_as_manager_activity(demo_db):
    queue = demo_db.reports.task_queue()
    task = queue.iloc[0]  # high priority first
    assert task["high"]
    before = demo_db.deal(int(task["deal_id"])).activity_seq

    at = page("actions_review").run()
    at.button(key=f"ar_done_{task['id']}").click().run()

    _no_errors(at)
    with db_session(demo_db) as s:
        row = repo.get_task(s, int(task["id"]))
        assert (row.status, row.done_at is not None) == ("done", True)
    assert demo_db.deal(int(task["deal_id"])).activity_seq == before + 1
    assert any("Done:" in s.value for s in at.success)
    assert f"ar_done_{task['id']}" not in [b.key for b in at.button]


def test_queue_filters_by_manager_and_overdue(demo_db):
    at = page("actions_review").run()
    at.selectbox(key="ar_manager").select("Iryna Bondarenko").run()
    at.toggle(key="ar_overdue").set_value(True).run()
    _no_errors(at)
    expected = demo_db.reports.task_queue(manager="Iryna Bondarenko", overdue_only=True)
    assert len(expected) >= 1
    shown = sorted(
        int(b.key.removeprefix("ar_done_")) for b in at.button if b.key.startswith("ar_done_")
    )
    assert shown == sorted(expected["id"].tolist())


def test_creating_a_deal_from_the_page_runs_its_rules(demo_db):
    at = page("deals").run()
    at.text_input(key="deals_new_title").input("ТОВ «Ромашка»")
    at.text_input(key="deals_new_phone").input("+380671112233")
    at.number_input(key="deals_new_amount").set_value(15000.0)
    at.text_input(key="deals_new_f_source").input("виставка")
    at.button(key="FormSubmitter:deals_new-Create deal").click().run()

    _no_errors(at)
    board = demo_db.reports.deal_board("techflow")
    row = board[board["title"] == "ТОВ «Ромашка»"].iloc[0]
    deal = demo_db.deal(int(row["id"]))
    assert (deal.stage, deal.amount, deal.fields["source"]) == ("incoming", 15000.0, "виставка")
    assert deal.manager_name  # assign_manager ran at once (dispatch_internal after the change)
    card = demo_db.reports.deal_card(deal.id)
    assert set(card.actions["action"]) == {"assign_manager", "create_task"}
    assert set(card.actions["status"]) == {"done"}
    # The rule writes the title in both languages: the suite reads English.
    assert card.tasks["title"].tolist() == ["Call the new lead ТОВ «Ромашка»"]
    # the new deal is opened on the page, its title shown as typed
    assert at.session_state["deals_selected"] == deal.id
    assert any("ТОВ «Ромашка»" in plain(h.value) for h in at.subheader)


def test_a_deal_without_a_title_is_not_created(demo_db):
    before = len(demo_db.reports.deal_board("techflow"))
    at = page("deals").run()
    at.button(key="FormSubmitter:deals_new-Create deal").click().run()
    assert not at.exception
    assert "title" in at.error[0].value
    assert len(demo_db.reports.deal_board("techflow")) == before


def test_a_refused_move_shows_the_guard_and_changes_nothing(demo_db):
    acme = demo_db.deal_id("D-1")  # in Proposal, counterparty fields empty
    at = page("deals").run()
    at.button(key=f"deals_open_{acme}").click().run()
    at.button(key=f"deals_move_{acme}_contract").click().run()

    assert not at.exception
    assert (
        "Cannot move into stage 'Contract': fill in Counterparty: company name, Counterparty: tax id (ЄДРПОУ),"
        " Counterparty: billing address first."
    ) in plain(at.error[0].value)
    assert demo_db.deal(acme).stage == "proposal"


def test_saving_fields_then_moving_goes_through_the_engine(demo_db):
    acme = demo_db.deal_id("D-1")
    at = page("deals").run()
    at.button(key=f"deals_open_{acme}").click().run()
    at.text_input(key=f"deals_f_{acme}_company_name").input("ТОВ «Акме Логістик»")
    at.text_input(key=f"deals_f_{acme}_tax_id").input("12345678")
    at.text_input(key=f"deals_f_{acme}_billing_address").input("Київ, вул. Хрещатик 1")
    at.button(key=f"FormSubmitter:deals_fields_{acme}-Save changes").click().run()
    _no_errors(at)
    assert demo_db.deal(acme).fields["company_name"] == "ТОВ «Акме Логістик»"

    at.button(key=f"deals_move_{acme}_contract").click().run()
    _no_errors(at)
    state = demo_db.deal(acme)
    assert state.stage == "contract"
    assert state.invoice_number  # the contract rule's generate_invoice ran at once
    history = demo_db.reports.deal_card(acme).events
    assert {"updated", "stage_moved", "invoice_generated"} <= set(history["kind"])


def test_deal_event_buttons_record_real_changes(demo_db):
    lviv = demo_db.deal_id("D-3")
    before = demo_db.deal(lviv)
    at = page("deals").run()
    at.button(key=f"deals_open_{lviv}").click().run()
    at.text_input(key=f"deals_call_note_{lviv}").input("Передзвонити у вівторок")
    at.button(key=f"FormSubmitter:deals_call_{lviv}-📞 Log a call").click().run()
    labels = [b.label for b in at.button if b.key and b.key.startswith("deals_ev_")]
    assert labels[:3] == [
        "Record: Proposal attached",
        "Record: Client opened the proposal",
        "Record: Client replied",
    ]
    at.button(key=f"deals_ev_client_replied_{lviv}").click().run()
    _no_errors(at)
    after = demo_db.deal(lviv)
    assert after.activity_seq == before.activity_seq + 1
    assert "client_replied" in after.signals  # a client's event: not manager activity
    events = demo_db.reports.deal_card(lviv).events
    assert "Call: Передзвонити у вівторок" in events["what"].tolist()


def test_dry_run_shows_values_and_writes_nothing(demo_db):
    before = demo_db.reports.row_counts()
    at = page("dry_run").run()
    at.button_group(key="dry_moment").set_value("+90 days").run()
    _no_errors(at)
    labels = [e.label for e in at.expander]
    assert any("would fire" in label or "already fired" in label for label in labels)

    at.button_group(key="dry_mode").set_value("Sample deal").run()
    at.selectbox(key="dry_s_stage").select("proposal").run()
    at.checkbox(
        key="dry_s_ev_proposal_attached"
    ).check().run()  # a declared event, offered by its label
    assert at.checkbox(key="dry_s_ev_proposal_attached").label == "Proposal attached"
    at.number_input(key="dry_s_ev_proposal_attached_h").set_value(50.0)
    at.number_input(key="dry_s_in_stage").set_value(60.0)
    at.button_group(key="dry_moment").set_value("now").run()
    _no_errors(at)
    fired = [plain(e.label) for e in at.expander if "would fire" in e.label]
    # headed by the rule in the owner's words
    assert any(
        "In Proposal, 48 h after Proposal attached and 48 h after entering" in label
        for label in fired
    )
    # the condition table shows the actual hours since the proposal was attached
    tables = [df.value for df in at.dataframe]
    assert any((t["Actual value"] == "50").any() for t in tables)
    assert demo_db.reports.row_counts() == before


def test_retry_puts_a_dead_action_back_in_the_queue(demo_db):
    deal = demo_db.create_deal("techflow", title="Bad phone Ltd", fields={"phone": "call me"})
    demo_db.move_deal(deal, "qualification")
    demo_db.update_deal(
        deal,
        {
            "budget": "yes",
            "authority": "yes",
            "need": "yes",
            "company_name": "Bad phone Ltd",
            "tax_id": "1",
            "billing_address": "Lviv",
        },
    )
    demo_db.move_deal(deal, "proposal")
    demo_db.move_deal(deal, "contract")
    run_until_idle(demo_db)
    dead = demo_db.reports.action_log(statuses=["dead"])
    sms = dead[(dead["deal_id"] == deal) & (dead["action"] == "send_sms")].iloc[0]
    assert "bad phone number" in sms["error"]

    at = page("actions_review").run()
    at.button(key=f"ar_retry_{sms['id']}").click().run()
    _no_errors(at)
    with db_session(demo_db) as s:
        row = repo.get_outbox(s, int(sms["id"]))
        assert (row.status, row.attempts) == ("pending", 0)
    assert f"ar_retry_{sms['id']}" not in [b.key for b in at.button]


def test_analytics_stuck_slider_narrows_the_list(demo_db):
    at = page("analytics").run()
    _no_errors(at)
    at.slider(key="an_stuck").set_value(24 * 30).run()
    _no_errors(at)
    assert any("0 open deals stuck" in m.value for m in at.markdown)


def test_user_text_is_shown_as_typed_not_as_markdown(demo_db):
    title = "**Big** [deal](javascript:alert(1)) :red[x] Угода №1"
    deal = demo_db.create_deal("techflow", title=title)
    at = page("deals").run()
    _no_errors(at)
    card = next(m.value for m in at.markdown if "Big" in m.value)
    assert (
        plain(card) == f"**{title}**"
    )  # our bold around the title, the title's own markup escaped
    assert "\\*\\*Big\\*\\* \\[deal\\]" in card
    at.button(key=f"deals_open_{deal}").click().run()
    assert any(plain(h.value) == title and h.value != title for h in at.subheader)
