"""Delivery-test helpers: a config file written and read as the engine reads it, and a funnel whose
deals get one message on each channel when they are created."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.clock import Clock
from engine.config import load_config
from engine.outbox.channels import ChannelRouter, channels_from_config


def router_from_toml(
    tmp_path: Path, text: str, env: Mapping[str, str] | None = None, clock: Clock | None = None
) -> ChannelRouter:
    """The router the engine would build from ``text``; its rate limits follow ``clock`` when given."""
    path = tmp_path / "conveyor.toml"
    path.write_text(text, encoding="utf-8")
    kwargs = {"monotonic": lambda: clock.now().timestamp()} if clock is not None else {}
    return channels_from_config(
        load_config(path, env or {}),
        env={"CONVEYOR_PROVIDER_TIMEOUT": "5", **(env or {})},
        **kwargs,
    )


#: A bot token the Telegram test peers accept (not a secret: no such bot exists).
BOT_TOKEN = "123456:AAE-test-token_0123456789abcdef"


def telegram_router(tmp_path: Path, base_url: str) -> ChannelRouter:
    """A router whose ``telegram`` channel speaks the Bot API at ``base_url`` (a local test peer)."""
    return router_from_toml(
        tmp_path,
        f'[channels.telegram]\nprovider = "telegram"\ntoken = "${{TELEGRAM_BOT_TOKEN}}"\n'
        f'base_url = "{base_url}"\n',
        {"TELEGRAM_BOT_TOKEN": BOT_TOKEN},
    )


def messaging_funnel(
    actions: list[dict[str, Any]], *, language: str | None = None, funnel_id: str = "outreach"
) -> dict[str, Any]:
    """A funnel of two stages whose rule sends ``actions`` to every deal created in ``start``."""
    doc: dict[str, Any] = {
        "format": "conveyor.ruleset/1",
        "funnel": funnel_id,
        "name": funnel_id.title(),
        "fields": [
            {"name": "language", "type": "select", "options": ["uk", "en"]},
            {"name": "telegram_chat_id", "type": "text"},
        ],
        "stages": [{"id": "start", "name": "Start"}, {"id": "next", "name": "Next"}],
        "initial_stage": "start",
        "rules": [
            {
                "id": "welcome",
                "name": "Welcome",
                "repeat": "once_per_deal",
                "conditions": {
                    "all": [{"name": "stage", "operator": "equal_to", "value": "start"}]
                },
                "actions": actions,
            }
        ],
    }
    if language:
        doc["language"] = language
    return doc
