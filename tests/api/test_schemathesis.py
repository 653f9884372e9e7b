"""schemathesis against our /openapi.json on a real uvicorn server: no input gives a 500.

Bounded (a few dozen examples per operation, deterministic) so it takes a minute or two; SQLite only
(the error model does not depend on the backend, and the behaviour suites run on both).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.api.conftest import Api


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_no_generated_request_gets_a_500(api: Api, tmp_path: Path) -> None:
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert cli, "schemathesis is a dev dependency (pip install -e '.[dev]')"
    report = tmp_path / "schemathesis.txt"
    out = subprocess.run(
        [
            cli,
            "run",
            f"{api.url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "30",
            "--phases",
            "examples,coverage,fuzzing",
            "--generation-deterministic",
            # One worker: Python 3.11's ast.parse is not thread-safe, and
            # Hypothesis parses lambdas' sources while describing strategies: two threads crashed
            # schemathesis itself with "AST constructor recursion depth mismatch".
            "--workers",
            "1",
            "--header",
            f"Authorization: Bearer {api.keys['owner']}",
            "--request-timeout",
            "30",
            "--suppress-health-check",
            "all",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false"},
    )
    report.write_text(out.stdout + out.stderr, encoding="utf-8")
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
