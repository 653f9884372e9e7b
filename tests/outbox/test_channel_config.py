"""``conveyor.toml``: channels mapped to providers once; secrets only by reference to the environment,
never printed; every mistake named by its key; the sample the demo runs with records everything."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import ConfigInvalid, load_config, parse_config
from engine.outbox.channels import channels_from_config
from engine.outbox.dispatcher import dispatch_internal, dispatch_messages
from storage import repositories as repo
from tests.support.sessions import db_session

ROOT = Path(__file__).resolve().parents[2]
COUNTERPARTY = {"company_name": "Acme LLC", "tax_id": "12345678", "billing_address": "Kyiv"}


def _problems(data: dict, env: dict | None = None) -> str:
    with pytest.raises(ConfigInvalid) as caught:
        parse_config(data, env or {})
    return str(caught.value)


def test_the_sample_config_records_every_channel(conveyor):
    router = channels_from_config(load_config(ROOT / "conveyor.toml", {}))
    assert set(router.describe().values()) == {"record"}
    conveyor.provider = router
    deal = conveyor.create_deal(
        "techflow",
        title="Acme",
        stage="contract",
        fields={"phone": "+380501234567", "amount": 1000, **COUNTERPARTY},
    )
    dispatch_internal(conveyor)
    [result] = dispatch_messages(conveyor)
    assert result.status == "done"
    with db_session(conveyor) as s:
        [m] = repo.list_messages(s, deal)
    assert (
        m.status == "recorded" and m.provider == "record" and m.provider_ref is None
    )  # not "sent"


def test_a_channel_with_no_provider_is_recorded_too():
    router = channels_from_config(
        parse_config(
            {
                "channels": {
                    "email": {
                        "provider": "smtp",
                        "url": "smtp://127.0.0.1:1",
                        "from": "a@b.example",
                    }
                }
            },
            {},
        )
    )
    assert router.provider_name("email") == "smtp" and router.provider_name("telegram") == "record"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"channels": {"email": {"provider": "smtp", "url": "smtp://x", "form": "a@b.example"}}},
            "channels.email.form: unknown key for provider 'smtp'; did you mean 'from'?",
        ),
        (
            {"channels": {"email": {"provider": "smpt", "url": "smtp://x"}}},
            "channels.email.provider: 'smpt' is not a provider; did you mean 'smtp'?",
        ),
        (
            {"channels": {"emial": {"provider": "record"}}},
            "channels.emial: unknown channel 'emial'; did you mean 'email'?",
        ),
        (
            {"channels": {"sms": {"provider": "twilio", "account_sid": "AC1", "from": "+1"}}},
            "channels.sms.auth_token: required",
        ),
        ({"channels": {"sms": {"url": "https://x"}}}, "channels.sms.provider: missing"),
        ({"chanels": {}}, "chanels: unknown section; did you mean 'channels'?"),
        (
            {"channels": {"telegram": {"provider": "telegram", "token": "${NO_SUCH_VAR}"}}},
            "channels.telegram.token: the environment variable NO_SUCH_VAR is not set",
        ),
        (
            {
                "channels": {
                    "sms": {
                        "provider": "webhook",
                        "url": "https://x",
                        "secret": "${S}",
                        "rate_per_second": -1,
                    }
                }
            },
            "channels.sms.rate_per_second: Input should be greater than 0",
        ),
        ({"digest": {"hours": 9}}, "digest.hours: unknown key; did you mean 'hour'?"),
        ({"digest": {"hour": 24}}, "digest.hour: Input should be less than or equal to 23"),
    ],
    ids=[
        "unknown-key",
        "unknown-provider",
        "unknown-channel",
        "missing-secret",
        "no-provider",
        "unknown-section",
        "unset-variable",
        "negative-rate",
        "digest-unknown-key",
        "digest-hour-out-of-range",
    ],
)
def test_mistakes_are_named_by_their_key(data, expected):
    assert expected in _problems(data, {"S": "x"})


def test_a_secret_written_in_clear_is_refused_without_echoing_it():
    text = _problems(
        {"channels": {"telegram": {"provider": "telegram", "token": "123:SECRET-IN-CLEAR"}}}
    )
    assert "channels.telegram.token: a secret is never written in the file" in text
    assert "SECRET-IN-CLEAR" not in text


def test_resolved_secrets_are_never_printed():
    config = parse_config(
        {
            "channels": {
                "sms": {
                    "provider": "twilio",
                    "account_sid": "AC1",
                    "from": "+15005550006",
                    "auth_token": "${TWILIO_AUTH_TOKEN}",
                }
            }
        },
        {"TWILIO_AUTH_TOKEN": "tok-very-secret-42"},
    )
    router = channels_from_config(config, env={})
    shown = f"{config!r} {config} {config.model_dump()} {router!r} {router.route('sms').provider!r}"
    assert "tok-very-secret-42" not in shown
    assert config.channels["sms"].auth_token.get_secret_value() == "tok-very-secret-42"


def test_a_file_that_is_not_toml_names_the_file_and_line(tmp_path):
    path = tmp_path / "conveyor.toml"
    path.write_text('[channels.email\nprovider = "smtp"\n')
    with pytest.raises(ConfigInvalid, match=r"conveyor.toml: not valid TOML: .*line 1"):
        load_config(path, {})


def test_an_smtp_url_with_a_password_in_it_is_refused(tmp_path):
    config = parse_config(
        {
            "channels": {
                "email": {
                    "provider": "smtp",
                    "url": "smtp://u:pw@127.0.0.1:25",
                    "from": "a@b.example",
                }
            }
        },
        {},
    )
    with pytest.raises(
        ConfigInvalid, match="channels.email: put the SMTP user and password in 'username'"
    ):
        channels_from_config(config, env={})
