"""Showing URLs without their secrets: database URLs, gateway URLs and texts that may embed either.

Every URL that reaches output, a log line or an error message goes through ``mask_database_url``
(SQLAlchemy's ``render_as_string(hide_password=True)``, query values hidden too) or ``mask_url``
(any other URL: the userinfo password, query values and token-like path segments such as
Telegram's ``/bot<token>/``). ``redact`` removes the secrets of known URLs from any text, for
driver messages that quote a DSN.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, unquote, urlsplit, urlunsplit

__all__ = ["MASK", "mask_database_url", "mask_url", "redact", "url_secrets"]

MASK = "***"

#: ``scheme://user:password@`` anywhere in a text (also in URLs we cannot parse).
_USERINFO_PASSWORD = re.compile(
    r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^\s/@:]*:)(?P<secret>[^\s/@]+)@"
)
#: ``?key=value`` / ``&key=value`` query pairs.
_QUERY_VALUE = re.compile(r"(?P<head>[?&][^\s=&#?]+=)(?P<secret>[^\s&#]+)")
#: A path segment that looks like a credential: Telegram's ``bot123456:AAE…``, or a long random mix.
_BOT_TOKEN = re.compile(r"^bot\d+:[A-Za-z0-9_\-]+$")
_LONG_TOKEN = re.compile(r"^(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9_\-:.~%]{20,}$")
#: Secrets shorter than this are masked only where they stand in a URL, not wherever they occur.
_MIN_FREE_SECRET = 4


def _token_like(segment: str) -> bool:
    return bool(_BOT_TOKEN.match(segment) or _LONG_TOKEN.match(segment))


def _mask_segment(segment: str) -> str:
    if _BOT_TOKEN.match(segment):
        return f"bot{MASK}"
    return MASK if _LONG_TOKEN.match(segment) else segment


def _regex_mask(text: str) -> str:
    text = _USERINFO_PASSWORD.sub(lambda m: m["head"] + MASK + "@", text)
    return _QUERY_VALUE.sub(lambda m: m["head"] + MASK, text)


def mask_url(url: str) -> str:
    """``url`` for showing: userinfo password, query values, fragment and token-like path segments masked."""
    if not isinstance(url, str):
        url = str(url)
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return _regex_mask(url)
    if not parts.scheme or not parts.netloc and "://" not in url:
        return _regex_mask(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        if colon:
            userinfo = f"{user}:{MASK}"
        elif _token_like(unquote(user)) or len(user) >= 16:
            userinfo = MASK  # a bare token used as the user name
        netloc = f"{userinfo}@{hostport}"
    path = "/".join(_mask_segment(s) for s in parts.path.split("/"))
    query = "&".join(
        f"{k}={MASK}" if sep else k
        for k, sep, _v in (pair.partition("=") for pair in parts.query.split("&") if pair)
    )
    fragment = MASK if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, path, query, fragment))


def mask_database_url(url: object) -> str:
    """A SQLAlchemy URL for showing: ``render_as_string(hide_password=True)``, query values masked."""
    from sqlalchemy.engine import URL, make_url

    try:
        parsed = url if isinstance(url, URL) else make_url(str(url))
        if parsed.query:
            parsed = parsed.set(query={k: MASK for k in parsed.query})
        shown = parsed.render_as_string(hide_password=True)
        return shown.replace(quote_plus(MASK), MASK).replace(quote(MASK, safe=""), MASK)
    except Exception:  # noqa: BLE001 - not parsable as a database URL: mask it as any URL
        return mask_url(str(url))


def url_secrets(url: str | None) -> list[str]:
    """The secret parts of ``url`` (password, query values, tokens), raw and percent-decoded."""
    if not url:
        return []
    url = str(url)
    found: set[str] = set()
    for m in _USERINFO_PASSWORD.finditer(url):
        found.add(m["secret"])
    for m in _QUERY_VALUE.finditer(url):
        found.add(m["secret"])
    try:
        parts = urlsplit(url)
        if parts.password:
            found.add(parts.password)
        if parts.username and "@" in parts.netloc and ":" not in parts.netloc.rpartition("@")[0]:
            if _token_like(unquote(parts.username)) or len(parts.username) >= 16:
                found.add(parts.username)
        for segment in parts.path.split("/"):
            if _token_like(segment):
                found.add(segment)
                if segment.startswith("bot"):
                    found.add(segment[3:])
        if parts.fragment:
            found.add(parts.fragment)
    except ValueError:
        pass
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        if parsed.password:
            found.add(str(parsed.password))
        for value in parsed.query.values():
            found.update([value] if isinstance(value, str) else value)
    except Exception:  # noqa: BLE001 - not a database URL
        pass
    out: set[str] = set()
    for s in found:
        if s:
            out.add(s)
            out.add(unquote(s))
            out.add(quote(unquote(s), safe=""))
    return sorted((s for s in out if s), key=len, reverse=True)


def redact(text: str, urls: Iterable[str | None] = ()) -> str:
    """``text`` with the secrets of ``urls`` (and any ``scheme://user:password@``) replaced by ``***``."""
    text = str(text)
    for url in urls:
        if not url:
            continue
        url = str(url)
        if url in text:
            text = text.replace(
                url,
                mask_url(url) if "://" in url and not _is_database(url) else mask_database_url(url),
            )
        for secret in url_secrets(url):
            if len(secret) >= _MIN_FREE_SECRET:
                text = text.replace(secret, MASK)
    return _USERINFO_PASSWORD.sub(lambda m: m["head"] + MASK + "@", text)


def _is_database(url: str) -> bool:
    scheme = url.split("://", 1)[0].lower()
    return scheme.split("+", 1)[0] in {
        "sqlite",
        "postgresql",
        "postgres",
        "mysql",
        "mariadb",
        "oracle",
        "mssql",
    }
