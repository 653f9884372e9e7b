"""``conveyor users set NAME --notify channel:address`` in a real process: a manager's channel is set
on a channel the config file configures; a bad address or an unconfigured channel is one sentence
naming the field, without a traceback, and nothing is saved."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from engine.core.conveyor import Conveyor
from tests.support.processes import cli_env

ROOT = Path(__file__).resolve().parents[2]
CONFIG = (
    '[channels.telegram]\nprovider = "telegram"\ntoken = "${TELEGRAM_BOT_TOKEN}"\n'
    'base_url = "http://127.0.0.1:9"\n'
)


def _users(db: str, config: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**cli_env(), "TELEGRAM_BOT_TOKEN": "123:abc"}
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", "--db", db, "--config", str(config), "users", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_users_set_notify_sets_a_managers_telegram_chat_and_refuses_what_is_not_one(tmp_path):
    db = f"sqlite:///{tmp_path / 'notify.db'}"
    config = tmp_path / "conveyor.toml"
    config.write_text(CONFIG, encoding="utf-8")
    added = _users(
        db,
        config,
        "add",
        "Olena",
        "--role",
        "manager",
        "--no-password",
        "--email",
        "o@techflow.example",
    )
    assert added.returncode == 0, added.stderr
    ok = _users(db, config, "set", "Olena", "--notify", "telegram:12345")
    assert ok.returncode == 0, ok.stderr
    assert "manager 'Olena' is notified on: telegram:12345" in ok.stdout
    for preference, error in (
        ("email:olena@techflow.example", "notify: the channel 'email' is not configured"),
        ("telegram:olena", "notify: 'olena' is not a Telegram chat id"),
    ):
        refused = _users(db, config, "set", "Olena", "--notify", preference)
        assert refused.returncode != 0 and error in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
    c = Conveyor(db)
    try:
        assert str(c.manager_channels.get("Olena")) == "telegram:12345"  # nothing saved
    finally:
        c.close()
