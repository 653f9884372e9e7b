"""Secrets in URLs never reach output, logs or errors: real ``conveyor`` processes given URLs with passwords.

The PostgreSQL server here trusts every connection, so a URL with any password connects: that shows
the success paths (``init``, ``status``, ``demo``, ``engine``); a database that does not exist, a
malformed URL and a mistyped provider URL show the error paths.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Pw-s3cret-Zq81"
TOKEN = "123456789:AAHsecretTokenValue42xyz"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    return {**env, "PYTHONPATH": str(ROOT), "CONVEYOR_TZ": "UTC", **extra}


def conveyor(*args: str, timeout: float = 180, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        cwd=ROOT,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _with_password(url: str, password: str = PASSWORD) -> str:
    return make_url(url).set(password=password).render_as_string(hide_password=False)


def _assert_no_secret(result: subprocess.CompletedProcess | tuple[str, str], *secrets: str) -> None:
    out, err = (
        (result.stdout, result.stderr)
        if isinstance(result, subprocess.CompletedProcess)
        else result
    )
    assert "Traceback" not in err, err
    for secret in secrets or (PASSWORD,):
        assert secret not in out, out
        assert secret not in err, err


def test_init_status_and_demo_on_postgresql_never_print_the_password(pg_url):
    url = _with_password(pg_url)
    init = conveyor("--db", url, "init", "--load", "sample_rules")
    assert init.returncode == 0, init.stderr
    assert (
        f"database ready: {make_url(pg_url).render_as_string(hide_password=True)}"
        in init.stdout.replace("postgres:***@", "postgres@")
    )
    _assert_no_secret(init)
    status = conveyor("status", "--db", url)  # the URL after the command name, too
    assert status.returncode == 0 and "actions:" in status.stdout
    _assert_no_secret(status)
    demo = conveyor("demo", "--load-only", CONVEYOR_DB=url)
    assert demo.returncode == 0, demo.stderr
    assert "database: postgresql+psycopg://postgres:***@" in demo.stdout
    _assert_no_secret(demo)


def test_a_running_engine_never_logs_the_password(pg_url, tmp_path):
    url = _with_password(pg_url)
    assert conveyor("--db", url, "init").returncode == 0
    log = tmp_path / "engine.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "engine.cli",
                "-v",
                "--db",
                url,
                "engine",
                "--tick-seconds",
                "1",
            ],
            cwd=ROOT,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=sink,
            text=True,
        )
    try:
        # Until it started and ran a few ticks and heartbeats (bounded: a loaded machine starts slowly).
        deadline = time.monotonic() + 90
        while (
            proc.poll() is None
            and time.monotonic() < deadline
            and log.read_text().count("tick:") < 2
        ):
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = log.read_text()
    assert proc.returncode == 0, err
    assert "started" in err
    _assert_no_secret((out, err))


@pytest.mark.parametrize(
    "command",
    [
        ["init"],
        ["status"],
        ["engine", "--tick-seconds", "1"],
        ["demo", "--load-only"],
        ["actions"],
        ["versions", "techflow"],
    ],
    ids=lambda c: c[0],
)
def test_a_database_that_cannot_be_opened_is_reported_without_the_password(command):
    missing = f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:5432/conveyor_no_such_db_h3"
    result = conveyor("--db", missing, *command, timeout=120)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("error: ")
    _assert_no_secret(result)


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:notaport/test",
        f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:5432/test?sslmode={PASSWORD}",
        f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:5432/test?options={PASSWORD}",
    ],
    ids=["bad-port", "bad-sslmode", "bad-options"],
)
def test_a_malformed_database_url_is_reported_without_its_secrets(url):
    result = conveyor("--db", url, "init", timeout=120)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ")
    _assert_no_secret(result)


@pytest.mark.parametrize(
    "provider",
    [
        f"htps://api.telegram.org/bot{TOKEN}/sendMessage",
        f"telegram://bot{TOKEN}@api.telegram.org/",
        f"gateway.example/send?api_key={TOKEN}",
    ],
    ids=["mistyped-scheme", "unknown-scheme", "no-scheme"],
)
def test_a_mistyped_provider_url_is_reported_without_its_token(tmp_path, provider):
    db = f"sqlite:///{tmp_path / 'c.db'}"
    for command in (["init"], ["engine", "--tick-seconds", "1"]):
        result = conveyor("--db", db, *command, CONVEYOR_PROVIDER=provider, timeout=120)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert "unknown message provider" in result.stderr
        _assert_no_secret(result, TOKEN, TOKEN.split(":")[1])


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql+psycopg://u:p%40ss@db:5432/c?sslmode=require",
            "postgresql+psycopg://u:***@db:5432/c?sslmode=***",
        ),
        ("sqlite:////var/lib/conveyor.db", "sqlite:////var/lib/conveyor.db"),
    ],
    ids=["postgresql", "sqlite"],
)
def test_database_urls_are_masked_with_hide_password(url, shown):
    from storage.urls import mask_database_url

    assert mask_database_url(url) == shown


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://user:tok@gw.example/hook?key=abc&to=1",
            "https://user:***@gw.example/hook?key=***&to=***",
        ),
        (
            f"https://api.telegram.org/bot{TOKEN}/sendMessage",
            "https://api.telegram.org/bot***/sendMessage",
        ),
        ("https://gw.example/v1/AbCdEf0123456789XyZw42/send", "https://gw.example/v1/***/send"),
        ("http://gw.example/send", "http://gw.example/send"),
    ],
    ids=["userinfo-and-query", "telegram-bot-token", "token-segment", "plain"],
)
def test_provider_urls_are_masked(url, shown):
    from storage.urls import mask_url

    assert mask_url(url) == shown


def test_redact_removes_the_secrets_of_known_urls_from_a_driver_message():
    from storage.urls import redact

    url = f"postgresql+psycopg://postgres:{PASSWORD}@db/c"
    text = redact(f'invalid dsn "host=db password={PASSWORD}" from {url}', [url])
    assert PASSWORD not in text and "postgres:***@db/c" in text


@pytest.mark.parametrize(
    "args",
    [
        [
            f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1/test",
            "init",
        ],  # forgot --db: "No such command"
        [
            "engine",
            f"--tick-seconds=postgresql://postgres:{PASSWORD}@127.0.0.1/test",
        ],  # a URL given to the wrong option
    ],
    ids=["no-such-command", "invalid-option-value"],
)
def test_a_usage_error_quoting_a_url_masks_its_password(args):
    result = conveyor(*args, timeout=60)
    assert result.returncode == 2
    assert "postgres:***@127.0.0.1" in result.stderr
    _assert_no_secret(result)
