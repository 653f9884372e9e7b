"""Ctrl-C is one line, ``interrupted``, and exit code 130: no traceback, also in the middle of ``simulate``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli.errors import friendly


def _cli_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CONVEYOR_DB", "CONVEYOR_DEBUG", "CONVEYOR_TZ")
    }
    env["PYTHONWARNINGS"] = "error"
    return env


def test_friendly_turns_ctrl_c_into_one_line_and_exit_130(
    capsys: pytest.CaptureFixture[str],
) -> None:
    @friendly
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as info:
        interrupted()
    assert info.value.code == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_ctrl_c_during_simulate_prints_no_traceback(tmp_path: Path) -> None:
    fifo = tmp_path / "scenario.jsonl"
    os.mkfifo(fifo)
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "simulate", fifo],
        cwd=tmp_path,
        env=_cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Opening the FIFO for writing returns once the command has opened it, inside the command itself;
        # it then waits for scenario lines that never come.
        writer = os.open(fifo, os.O_WRONLY)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        os.close(writer)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "interrupted"
