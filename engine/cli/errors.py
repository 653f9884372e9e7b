"""How the ``conveyor`` command reports trouble: one plain sentence, secrets masked, never a traceback."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import NoReturn, ParamSpec, TypeVar

import click

from engine.errors import ConveyorError, RuleSetInvalid
from engine.printable import printable
from storage.errors import StorageError
from storage.urls import redact


def _known_urls() -> list[str]:
    """Every URL this run was given (``--db``, ``CONVEYOR_DB``, ``CONVEYOR_PROVIDER``, the command line)."""
    urls = [os.environ.get("CONVEYOR_DB"), os.environ.get("CONVEYOR_PROVIDER")]
    ctx = click.get_current_context(silent=True)
    if ctx is not None and isinstance(ctx.find_root().obj, dict):
        urls.append(ctx.find_root().obj.get("db"))
    urls += [a.split("=", 1)[-1] for a in sys.argv[1:] if "://" in a]
    return [u for u in urls if u]


def safe(message: object) -> str:
    """A message for the terminal: the secrets of every known URL masked, control characters escaped."""
    return "\n".join(printable(line) for line in redact(str(message), _known_urls()).split("\n"))


class RedactSecrets(logging.Filter):
    """Masks the secrets of this run's URLs in every log line (a driver error may quote the DSN)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        safe = redact(message, _known_urls())
        if safe != message:
            record.msg, record.args = safe, None
        if record.exc_info and not record.exc_text:  # the formatter uses this text as it is
            record.exc_text = redact(
                logging.Formatter().formatException(record.exc_info), _known_urls()
            )
        return True


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {safe(message)}", err=True)
    sys.exit(code)


_P = ParamSpec("_P")
_R = TypeVar("_R")


def friendly(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Turn every error into one clear message and a non-zero exit code."""

    @wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            # Ctrl-C is the user's choice, not an error: one line, the shell's usual 128 + SIGINT.
            click.echo("interrupted", err=True)
            sys.exit(130)
        except RuleSetInvalid as exc:
            fail(str(exc), 1)
        except (ConveyorError, StorageError, ValueError) as exc:
            fail(str(exc), 1)
        except FileNotFoundError as exc:
            fail(f"no such file: {exc.filename}", 1)
        except OSError as exc:
            fail(f"{exc.strerror or exc}: {getattr(exc, 'filename', '') or ''}".rstrip(": "), 1)
        except Exception as exc:
            from sqlalchemy.exc import SQLAlchemyError

            if isinstance(exc, SQLAlchemyError):
                detail = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
                fail(f"database error: {detail}", 1)
            if os.environ.get("CONVEYOR_DEBUG"):
                raise
            fail(
                f"internal error: {type(exc).__name__}: {exc} (set CONVEYOR_DEBUG=1 for a traceback)",
                2,
            )

    return wrapper
