"""``conveyor.toml``: which provider carries each message channel, read once at start.

```toml
[channels.email]
provider = "smtp"
url = "smtp://127.0.0.1:8026"          # smtps:// for implicit TLS; STARTTLS with starttls = true
from = "sales@techflow.example"
username = "${SMTP_USER}"              # secrets only as references to environment variables
password = "${SMTP_PASSWORD}"
```

Secrets (passwords, tokens, signing secrets) must be written as ``${NAME}`` references; they are
resolved from the environment when the file is read, kept as ``SecretStr`` (never printed), and
never stored in the database. A channel that is not configured, or configured as
``provider = "record"``, has no provider: its messages are ``recorded``, not sent. Every mistake is
reported with the key it is at (``channels.email.form: unknown key …; did you mean 'from'?``).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    SecretStr,
    StrictBool,
    ValidationError,
)

from engine.document.suggestions import suggest
from engine.errors import ConveyorError

__all__ = [
    "CHANNEL_NAMES",
    "CONFIG_ENV",
    "ChannelConfig",
    "Config",
    "ConfigInvalid",
    "DigestConfig",
    "RecordChannel",
    "SmtpChannel",
    "TelegramChannel",
    "TwilioChannel",
    "WebhookChannel",
    "channel_names",
    "config_path",
    "load_config",
    "parse_config",
]

#: The environment variable naming the config file (``--config`` wins).
CONFIG_ENV = "CONVEYOR_CONFIG"
#: Channels a message can name: ``send_sms`` uses ``sms``, ``send_email`` ``email``, ``send_message`` its own.
CHANNEL_NAMES = ("sms", "email", "telegram", "viber", "whatsapp")
#: The file's sections.
SECTIONS = ("channels", "digest")
#: Keys whose values are secrets: only ``${ENV_VAR}`` references are accepted there.
SECRET_KEYS = frozenset({"password", "token", "auth_token", "secret"})

_REFERENCE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


class ConfigInvalid(ConveyorError):
    """The config file cannot be read or says something impossible; ``problems`` lists each, with its key."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(
            f"{source}: "
            + ("; ".join(problems) if len(problems) == 1 else "\n  " + "\n  ".join(problems))
        )


class _Channel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=False)

    #: Token bucket: messages a second on this channel, and how many may go at once after a quiet spell.
    rate_per_second: PositiveFloat | None = None
    burst: Annotated[int, Field(ge=1)] | None = None
    #: Seconds for each network wait of a call (default ``CONVEYOR_PROVIDER_TIMEOUT`` or 10).
    timeout: PositiveFloat | None = None


class RecordChannel(_Channel):
    provider: Literal["record"]


class SmtpChannel(_Channel):
    provider: Literal["smtp"]
    url: str
    from_: str = Field(alias="from")
    reply_to: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    starttls: StrictBool | None = None
    #: A CA bundle to trust for the server's certificate (a relay with a private CA); default: the system's.
    ca_file: str | None = None


class TelegramChannel(_Channel):
    provider: Literal["telegram"]
    token: SecretStr
    base_url: str = "https://api.telegram.org"
    parse_mode: Literal["HTML", "MarkdownV2"] | None = None


class TwilioChannel(_Channel):
    provider: Literal["twilio"]
    account_sid: str
    auth_token: SecretStr
    from_: str | None = Field(default=None, alias="from")
    messaging_service_sid: str | None = None
    base_url: str = "https://api.twilio.com"
    status_callback: str | None = None


class WebhookChannel(_Channel):
    provider: Literal["webhook"]
    url: str
    secret: SecretStr


ChannelConfig = Annotated[
    RecordChannel | SmtpChannel | TelegramChannel | TwilioChannel | WebhookChannel,
    Field(discriminator="provider"),
]
PROVIDERS = ("smtp", "telegram", "twilio", "webhook", "record")
_MODELS: dict[str, type[_Channel]] = {
    "record": RecordChannel,
    "smtp": SmtpChannel,
    "telegram": TelegramChannel,
    "twilio": TwilioChannel,
    "webhook": WebhookChannel,
}


class DigestConfig(BaseModel):
    """``[digest]``: each manager's daily list of tasks due today and overdue, at ``hour:minute`` in
    the display zone (``CONVEYOR_TZ``); ``enabled = false`` sends none."""

    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool = True
    hour: Annotated[int, Field(ge=0, le=23, strict=True)] = 9
    minute: Annotated[int, Field(ge=0, le=59, strict=True)] = 0


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channels: dict[str, ChannelConfig] = Field(default_factory=dict)
    digest: DigestConfig = Field(default_factory=DigestConfig)
    #: Where the settings came from (a path, or a description), for messages.
    source: str = Field(default="", exclude=True)

    def channel(self, name: str) -> _Channel | None:
        return self.channels.get(name)


def config_path(option: str | None, env: Mapping[str, str] | None = None) -> Path | None:
    """The config file: ``--config``, else ``$CONVEYOR_CONFIG``, else none (every channel recorded)."""
    value = option or (os.environ if env is None else env).get(CONFIG_ENV) or None
    return Path(value) if value else None


def channel_names(path: Path | None) -> list[str]:
    """The channels ``path`` configures, read without resolving its secrets (a page that only needs
    to know which channels exist runs without the gateways' environment); [] without a file."""
    if path is None:
        return []
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return []
    channels = data.get("channels", {})
    return [c for c in channels if c in CHANNEL_NAMES] if isinstance(channels, Mapping) else []


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read and check ``path``; raises ``ConfigInvalid`` naming the file and each offending key."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigInvalid(
            source, [f"cannot read the config file: {exc.strerror or exc}"]
        ) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigInvalid(source, ["not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigInvalid(source, [f"not valid TOML: {exc}"]) from None
    return parse_config(data, env, source=source)


def parse_config(
    data: Mapping[str, Any], env: Mapping[str, str] | None = None, *, source: str = "config"
) -> Config:
    env = os.environ if env is None else env
    problems: list[str] = []
    for key in data:
        if key not in SECTIONS:
            problems.append(
                f"{key}: unknown section{suggest(key, list(SECTIONS))} (known: {', '.join(SECTIONS)})"
            )
    channels = data.get("channels", {})
    if not isinstance(channels, Mapping):
        problems.append(
            "channels: must be a table of channels ([channels.sms], [channels.email], …)"
        )
        channels = {}
    resolved: dict[str, Any] = {}
    for name, table in channels.items():
        where = f"channels.{name}"
        if name not in CHANNEL_NAMES:
            problems.append(
                f"{where}: unknown channel '{name}'{suggest(name, CHANNEL_NAMES)}"
                f" (channels: {', '.join(CHANNEL_NAMES)})"
            )
            continue
        if not isinstance(table, Mapping):
            problems.append(f"{where}: must be a table with a 'provider' key")
            continue
        resolved[name] = {
            key: _resolve(f"{where}.{key}", key, value, env, problems)
            for key, value in table.items()
        }
    if problems:
        raise ConfigInvalid(source, problems)
    try:
        digest = data.get("digest", {})
        config = Config.model_validate({"channels": resolved, "digest": digest})
    except ValidationError as exc:
        raise ConfigInvalid(source, [_problem(err, resolved) for err in exc.errors()]) from None
    config.source = source
    return config


def _resolve(where: str, key: str, value: Any, env: Mapping[str, str], problems: list[str]) -> Any:
    """``${NAME}`` → the environment's value; a secret written in clear is refused (without echoing it)."""
    if not isinstance(value, str):
        if key in SECRET_KEYS:
            problems.append(
                f'{where}: write a reference to an environment variable, e.g. "${{{key.upper()}}}"'
            )
        return value
    match = _REFERENCE.match(value.strip())
    if match is None:
        if key in SECRET_KEYS:
            problems.append(
                f"{where}: a secret is never written in the file: put it in an environment variable"
                f' and write its name, e.g. {key} = "${{CONVEYOR_{key.upper()}}}"'
            )
        return value
    name = match.group(1)
    if name not in env or env[name] == "":
        problems.append(f"{where}: the environment variable {name} is not set")
        return None
    return env[name]


def _problem(err: Any, resolved: Mapping[str, Any]) -> str:
    loc = [str(p) for p in err.get("loc", ())]
    # pydantic puts the discriminator's value after the channel name: channels.email.smtp.url
    if len(loc) >= 3 and loc[0] == "channels" and loc[2] in _MODELS:
        provider = loc.pop(2)
    else:
        provider = None
    where = ".".join(loc)
    kind = err.get("type", "")
    if kind == "union_tag_invalid":
        tag = err.get("ctx", {}).get("tag", "")
        return f"{where}.provider: '{tag}' is not a provider{suggest(tag, PROVIDERS)} (providers: {', '.join(PROVIDERS)})"
    if kind == "union_tag_not_found":
        return f"{where}.provider: missing (providers: {', '.join(PROVIDERS)})"
    if kind == "extra_forbidden" and provider:
        key = loc[-1]
        known = [f.alias or n for n, f in _MODELS[provider].model_fields.items()]
        return f"{where}: unknown key for provider '{provider}'{suggest(key, known)} (keys: {', '.join(known)})"
    if kind == "extra_forbidden" and loc[:1] == ["digest"]:
        known = list(DigestConfig.model_fields)
        return f"{where}: unknown key{suggest(loc[-1], known)} (keys: {', '.join(known)})"
    if kind == "missing":
        return f"{where}: required"
    # Never echo a value: it may be a resolved secret.
    return f"{where}: {err.get('msg', 'invalid')}"
