"""The My notifications page: a manager's channel and address are set through a small form, checked
by the core (a bad address is refused naming the field, nothing saved), and the latest messages to
the manager are listed with their states."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from engine.core.conveyor import Conveyor

CONFIG = (
    '[channels.telegram]\nprovider = "telegram"\ntoken = "${TELEGRAM_BOT_TOKEN}"\n\n'
    '[channels.email]\nprovider = "smtp"\nurl = "smtp://127.0.0.1:8026"\nfrom = "c@techflow.example"\n'
)


def _app() -> AppTest:
    return AppTest.from_string(
        "from builder.views import notifications\nnotifications.render()\n", default_timeout=60
    )


def _configure(tmp_path, monkeypatch) -> None:
    path = tmp_path / "conveyor.toml"
    path.write_text(CONFIG, encoding="utf-8")
    monkeypatch.setenv("CONVEYOR_CONFIG", str(path))


def test_a_manager_sets_a_telegram_chat_and_it_is_saved(demo_db: Conveyor, tmp_path, monkeypatch):
    _configure(tmp_path, monkeypatch)
    at = _app().run()
    assert not at.exception
    manager = at.selectbox(key="notify_manager").value
    assert at.selectbox(key="notify_channel").options == [
        "Only in the builder",
        "Telegram",
        "E-mail",
    ]
    at.selectbox(key="notify_channel").set_value("telegram")
    at.text_input(key="notify_address").set_value("123456789")
    at.button[0].click().run()
    assert not at.exception and not at.error
    assert any("telegram:123456789" in s.value for s in at.success)
    assert str(demo_db.manager_channels.get(manager)) == "telegram:123456789"


def test_an_address_that_is_not_one_is_refused_naming_the_field_and_nothing_is_saved(
    demo_db: Conveyor, tmp_path, monkeypatch
):
    _configure(tmp_path, monkeypatch)
    at = _app().run()
    manager = at.selectbox(key="notify_manager").value
    at.selectbox(key="notify_channel").set_value("email")
    at.text_input(key="notify_address").set_value("olena-at-techflow")
    at.button[0].click().run()
    assert not at.exception
    [error] = at.error
    assert "notify: 'olena-at-techflow' is not an e-mail address" in error.value
    assert demo_db.manager_channels.get(manager).channel is None


def test_without_a_config_file_only_the_builder_is_offered(demo_db: Conveyor, monkeypatch):
    monkeypatch.delenv("CONVEYOR_CONFIG", raising=False)
    at = _app().run()
    assert not at.exception
    assert at.selectbox(key="notify_channel").options == ["Only in the builder"]
    assert any("No channel is configured" in c.value for c in at.caption)


def test_a_signed_in_manager_sees_and_sets_only_their_own(demo_db: Conveyor, tmp_path, monkeypatch):
    from builder.session import KEY

    _configure(tmp_path, monkeypatch)
    demo_db.users.add("Marta", "manager", "Kx7-long-passphrase")
    signed = demo_db.users.sign_in("Marta", "Kx7-long-passphrase")
    app = _app()
    app.session_state[KEY] = signed
    at = app.run()
    assert not at.exception
    assert not [s for s in at.selectbox if s.key == "notify_manager"]  # no picking someone else
    at.selectbox(key="notify_channel").set_value("email")
    at.text_input(key="notify_address").set_value("marta@techflow.example")
    at.button[0].click().run()
    assert not at.exception and not at.error
    assert str(demo_db.manager_channels.get("Marta")) == "email:marta@techflow.example"


def test_the_owner_is_warned_which_managers_are_told_only_in_the_builder(
    demo_db: Conveyor, tmp_path, monkeypatch
):
    _configure(tmp_path, monkeypatch)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:AAE-test-token_0123456789abcdef")
    demo_db.manager_channels.set("Olena Kovalenko", "telegram:700")
    at = _app().run()
    assert not at.exception
    [warning] = at.warning
    assert "Petro Shevchenko" in warning.value and "Iryna Bondarenko" in warning.value
    assert "Olena Kovalenko" not in warning.value  # she has a configured channel
