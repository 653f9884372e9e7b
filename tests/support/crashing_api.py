"""A real API server (uvicorn, ``engine.api.app``) that kills itself with SIGKILL just before it runs
an SQL statement matching ``--crash-before``: a crash at a chosen point inside a request's
transaction, for tests of what such a crash leaves behind. Started as a subprocess by the tests::

    python -m tests.support.crashing_api --db URL --port N --crash-before '^INSERT INTO outbox'
"""

from __future__ import annotations

import argparse
import os
import re
import signal
from typing import Any

import uvicorn
from sqlalchemy import event

from engine.api.app import create_app
from engine.core.conveyor import Conveyor


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--crash-before", required=True, metavar="REGEX")
    args = parser.parse_args()
    conveyor = Conveyor(args.db)
    pattern = re.compile(args.crash_before, re.IGNORECASE)

    @event.listens_for(conveyor.engine, "before_cursor_execute")
    def crash(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if pattern.search(statement.lstrip()):
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no rollback: as a power cut would

    uvicorn.run(create_app(conveyor), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
