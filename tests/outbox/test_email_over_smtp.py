"""E-mail through a real SMTP server (aiosmtpd on 127.0.0.1): the rendered subject and body arrive,
in the client's language, with a Message-ID that is the same on every attempt; STARTTLS and AUTH;
a refused recipient ends dead with the server's answer, a server that is down is retried."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from engine.outbox.dispatcher import dispatch_messages
from storage import repositories as repo
from tests.support.channels import messaging_funnel, router_from_toml
from tests.support.gateways import smtp_server
from tests.support.processes import free_port
from tests.support.sessions import db_session

WELCOME = {
    "name": "send_email",
    "params": {
        "subject": {"uk": "Вітаємо, {title}!", "en": "Welcome, {title}!"},
        "text": {
            "uk": "Дякуємо за звернення до TechFlow. Угода {key}.",
            "en": "Thanks for contacting TechFlow. Deal {key}.",
        },
    },
}


def _email_config(port: int, extra: str = "") -> str:
    return (
        f'[channels.email]\nprovider = "smtp"\nurl = "smtp://127.0.0.1:{port}"\n'
        f'from = "sales@techflow.example"\nreply_to = "olena@techflow.example"\n{extra}'
    )


def _only_message(conveyor, deal: int):
    with db_session(conveyor) as s:
        [m] = repo.list_messages(s, deal)
        [row] = [a for a, _f in repo.list_outbox(s, deal_id=deal) if a.kind == "message"]
        return m, row


def test_an_email_arrives_with_its_rendered_subject_and_body_in_the_clients_language(
    conveyor, tmp_path
):
    conveyor.save_ruleset(messaging_funnel([WELCOME], language="en"))
    with smtp_server() as (port, box):
        conveyor.provider = router_from_toml(tmp_path, _email_config(port))
        uk = conveyor.create_deal(
            "outreach", title="Acme", fields={"email": "client@acme.example", "language": "uk"}
        )
        en = conveyor.create_deal("outreach", title="Globex", fields={"email": "it@globex.example"})
        done = dispatch_messages(conveyor)
    assert sorted(e.status for e in done) == ["done", "done"]
    by_to = {m["to"][0]: m for m in box.messages}
    mail = by_to["client@acme.example"]["message"]
    assert mail["Subject"] == "Вітаємо, Acme!"
    assert (
        mail.get_content().strip()
        == f"Дякуємо за звернення до TechFlow. Угода {conveyor.deal(uk).key}."
    )
    assert mail["From"] == "sales@techflow.example" and mail["Reply-To"] == "olena@techflow.example"
    assert (
        by_to["it@globex.example"]["message"]["Subject"] == "Welcome, Globex!"
    )  # the funnel's language
    m, row = _only_message(conveyor, uk)
    assert m.status == "sent" and m.provider == "smtp"
    assert m.provider_ref in ("Q0001", "Q0002")  # the server's queue id
    assert mail["Message-ID"] == f"<{row.idempotency_key}@techflow.example>"
    assert _only_message(conveyor, en)[0].status == "sent"


def test_a_refused_recipient_is_dead_with_the_servers_answer(conveyor, tmp_path):
    conveyor.save_ruleset(messaging_funnel([WELCOME]))
    with smtp_server() as (port, box):
        box.reject.add("nobody@acme.example")
        conveyor.provider = router_from_toml(tmp_path, _email_config(port))
        deal = conveyor.create_deal(
            "outreach", title="Acme", fields={"email": "nobody@acme.example"}
        )
        [result] = dispatch_messages(conveyor)
    assert result.status == "dead"
    assert "550" in result.error and "mailbox unavailable" in result.error
    m, _row = _only_message(conveyor, deal)
    assert m.status == "dead" and box.messages == []


def test_an_email_to_a_server_that_is_down_is_retried_then_sent_once_with_the_same_message_id(
    conveyor, tmp_path, clock
):
    conveyor.save_ruleset(messaging_funnel([WELCOME]))
    port = free_port()
    conveyor.provider = router_from_toml(tmp_path, _email_config(port))
    deal = conveyor.create_deal("outreach", title="Acme", fields={"email": "client@acme.example"})
    [first] = dispatch_messages(conveyor)
    assert first.status == "failed" and "unreachable" in first.error
    m, row = _only_message(conveyor, deal)
    assert m.status == "failed"
    with smtp_server(port=port) as (_port, box):
        clock.set(row.next_attempt_at)
        [second] = dispatch_messages(conveyor)
    assert second.status == "done"
    [mail] = box.messages
    assert mail["message"]["Message-ID"] == f"<{row.idempotency_key}@techflow.example>"


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[str, str]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


def test_starttls_and_auth_with_credentials_from_the_environment(conveyor, tmp_path, certificate):
    conveyor.save_ruleset(messaging_funnel([WELCOME]))
    env = {"SMTP_USER": "sales", "SMTP_PASSWORD": "s3cret-pass"}
    extra = f'username = "${{SMTP_USER}}"\npassword = "${{SMTP_PASSWORD}}"\nca_file = "{certificate[0]}"\n'
    with smtp_server(tls_cert=certificate, auth=("sales", "s3cret-pass")) as (port, box):
        conveyor.provider = router_from_toml(tmp_path, _email_config(port, extra), env)
        conveyor.create_deal("outreach", title="Acme", fields={"email": "client@acme.example"})
        [result] = dispatch_messages(conveyor)
    assert result.status == "done", result.error
    [mail] = box.messages
    assert mail["tls"] and mail["authenticated"]


def test_wrong_smtp_credentials_are_refused_by_the_server_and_end_dead(
    conveyor, tmp_path, certificate
):
    conveyor.save_ruleset(messaging_funnel([WELCOME]))
    env = {"SMTP_USER": "sales", "SMTP_PASSWORD": "wrong"}
    extra = f'username = "${{SMTP_USER}}"\npassword = "${{SMTP_PASSWORD}}"\nca_file = "{certificate[0]}"\n'
    with smtp_server(tls_cert=certificate, auth=("sales", "s3cret-pass")) as (port, box):
        conveyor.provider = router_from_toml(tmp_path, _email_config(port, extra), env)
        conveyor.create_deal("outreach", title="Acme", fields={"email": "client@acme.example"})
        [result] = dispatch_messages(conveyor)
    assert result.status == "dead" and "535" in result.error
    assert "wrong" not in result.error and box.messages == []
