"""``conveyor api --proxy-headers``: behind a reverse proxy the website form's rate limit counts per
client address from X-Forwarded-For; without the flag the header is ignored (a client cannot pick
its own address), as it is from a proxy not listed in ``--forwarded-allow-ips``.

On SQLite only: what is proved here is which address uvicorn hands the form, and three real
processes per backend cost a minute; the counter itself runs on both backends in
test_forms_and_links.py."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from engine.core.conveyor import Conveyor
from tests.conftest import SAMPLE_RULES
from tests.support.processes import free_port, listening, start_cli, wait_until


@contextmanager
def _api(db: str, log: Path, *flags: str) -> Iterator[str]:
    """``conveyor api`` as a real process with ``flags``: its URL."""
    port = free_port()
    proc = start_cli("--db", db, "api", "--port", str(port), *flags, log=log)
    try:
        wait_until(lambda: proc.poll() is not None or listening(port), 60, "conveyor api", log)
        assert proc.poll() is None, log.read_text(errors="replace")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _codes(url: str, token: str, addresses: list[str]) -> list[int]:
    with httpx.Client(base_url=url, timeout=30) as c:
        return [
            c.post(
                "/forms/techflow",
                data={"form_token": token, "title": f"Lead from {address}"},
                headers={"X-Forwarded-For": address},
            ).status_code
            for address in addresses
        ]


def test_the_form_rate_limit_keys_on_the_forwarded_address_only_with_proxy_headers(
    tmp_path: Path,
) -> None:
    backend = f"sqlite:///{tmp_path / 'conveyor.db'}"
    setup = Conveyor(backend)
    setup.load_rules_dir(SAMPLE_RULES)
    setup.deals.add_manager("Olena")
    token = setup.forms.create("techflow", rate_per_hour=2).token
    setup.close()
    with _api(backend, tmp_path / "plain.log") as url:
        # every request is the proxy's (127.0.0.1): the third is over the limit, whatever it claims
        assert _codes(url, token, ["203.0.113.1", "203.0.113.2", "203.0.113.3"]) == [201, 201, 429]
    trusted = ("--proxy-headers", "--forwarded-allow-ips", "127.0.0.1")
    with _api(backend, tmp_path / "proxied.log", *trusted) as url:
        assert _codes(url, token, ["203.0.113.4", "203.0.113.5", "203.0.113.6"]) == [201] * 3
        assert _codes(url, token, ["203.0.113.6", "203.0.113.6"]) == [201, 429]
    untrusted = ("--proxy-headers", "--forwarded-allow-ips", "192.0.2.10")
    with _api(backend, tmp_path / "untrusted.log", *untrusted) as url:
        # the connection is not from a trusted proxy: 127.0.0.1 again, long over its limit
        assert _codes(url, token, ["203.0.113.7"]) == [429]
