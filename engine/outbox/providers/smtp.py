"""The e-mail provider: SMTP (stdlib ``smtplib``), plain, STARTTLS or implicit TLS, with auth.

``smtp://host:port`` speaks plain SMTP, upgraded with STARTTLS when ``starttls`` is on (the default
whenever a user name is configured: credentials never travel in clear); ``smtps://host:port`` is
TLS from the first byte. Each message gets a ``Message-ID`` made from its idempotency key, the same
on every attempt, so a receiving system can drop a duplicate; SMTP cannot say what it delivered,
so a message cut off by a crash is sent again (at least once). The server's final answer to
``DATA`` ("250 2.0.0 Ok: queued as 4Xk…") gives the gateway's id.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import urlsplit

from engine.errors import PermanentSendError, TransientSendError
from engine.outbox.providers.base import OutgoingMessage, Receipt
from engine.outbox.providers.http import printable

__all__ = ["SmtpProvider", "message_id"]

_QUEUED = re.compile(r"queued as\s+(\S+)", re.IGNORECASE)
_KEY_CHARS = re.compile(r"[^A-Za-z0-9.\-_]")


def message_id(idempotency_key: str, domain: str) -> str:
    """``<conveyor-12-1@techflow.example>``: one Message-ID per action, on every attempt."""
    return f"<{_KEY_CHARS.sub('-', idempotency_key)}@{domain}>"


class SmtpProvider:
    name = "smtp"

    def __init__(
        self,
        url: str,
        *,
        sender: str,
        reply_to: str | None = None,
        username: str | None = None,
        password: str | None = None,
        starttls: bool | None = None,
        timeout: float = 10.0,
        tls_context: ssl.SSLContext | None = None,
    ):
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(f"an SMTP url starts with smtp:// or smtps://, not {parts.scheme}://")
        if parts.password or parts.username:
            raise ValueError(
                "put the SMTP user and password in 'username' and 'password' (environment"
                " references), not in the url"
            )
        self.host = parts.hostname or "localhost"
        self.implicit_tls = parts.scheme == "smtps"
        self.port = parts.port or (465 if self.implicit_tls else 25)
        self.sender = sender
        self.reply_to = reply_to
        self._username = username
        self._password = password
        self.starttls = (bool(username) and not self.implicit_tls) if starttls is None else starttls
        self.timeout = timeout
        self._tls = tls_context or ssl.create_default_context()
        self.domain = sender.rpartition("@")[2] or "conveyor.local"

    def __repr__(self) -> str:
        return f"SmtpProvider({'smtps' if self.implicit_tls else 'smtp'}://{self.host}:{self.port})"

    def build(self, message: OutgoingMessage) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.to
        if self.reply_to:
            mail["Reply-To"] = self.reply_to
        mail["Subject"] = message.subject or ""
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = (
            message_id(message.idempotency_key, self.domain)
            if message.idempotency_key
            else make_msgid(domain=self.domain)
        )
        mail["X-Conveyor-Deal"] = message.deal
        mail.set_content(message.text)
        return mail

    def _connect(self) -> smtplib.SMTP:
        if self.implicit_tls:
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self._tls)
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout)

    def send(self, message: OutgoingMessage) -> Receipt:
        mail = self.build(message)
        where = f"{self.host}:{self.port}"
        try:
            with self._connect() as smtp:
                smtp.ehlo()
                if self.starttls:
                    smtp.starttls(context=self._tls)
                    smtp.ehlo()
                if self._username:
                    smtp.login(self._username, self._password or "")
                code, answer = smtp.mail(self.sender)
                if code != 250:
                    raise smtplib.SMTPSenderRefused(code, answer, self.sender)
                code, answer = smtp.rcpt(message.to)
                if code not in (250, 251):
                    raise smtplib.SMTPRecipientsRefused({message.to: (code, answer)})
                code, answer = smtp.data(mail.as_bytes())
                if code != 250:
                    raise smtplib.SMTPDataError(code, answer)
        except smtplib.SMTPRecipientsRefused as exc:
            code, answer = next(iter(exc.recipients.values()))
            self._refused(code, answer, f"refused the recipient {printable(message.to, 200)}")
        except smtplib.SMTPResponseException as exc:
            self._refused(exc.smtp_code, exc.smtp_error, "refused the message")
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentSendError(
                f"SMTP server {where}: {exc} (check starttls and the url's scheme)"
            ) from None
        except TimeoutError:
            raise TransientSendError(
                f"SMTP server {where} timed out after {self.timeout:g} s"
            ) from None
        except (smtplib.SMTPException, ssl.SSLError, ConnectionError, OSError) as exc:
            raise TransientSendError(
                f"SMTP server {where} unreachable: {printable(str(exc)) or type(exc).__name__}"
            ) from None
        text = answer.decode(errors="replace") if isinstance(answer, bytes) else str(answer)
        queued = _QUEUED.search(text)
        return Receipt(printable(queued.group(1) if queued else str(mail["Message-ID"]), 200))

    def _refused(self, code: int, answer: bytes | str, what: str) -> None:
        text = printable(
            answer.decode(errors="replace") if isinstance(answer, bytes) else str(answer)
        )
        msg = f"SMTP server {self.host}:{self.port} {what}: {code} {text}".rstrip()
        if 500 <= code < 600:
            raise PermanentSendError(msg)
        raise TransientSendError(msg)  # 4xx: try again later (greylisting, a full queue)

    def delivered(self, idempotency_key: str) -> bool | None:
        return None  # SMTP cannot say what it delivered
