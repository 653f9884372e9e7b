"""Commands that only read work on a SQLite file nobody may write, and never write a current database.

The suite runs as root, for whom ``chmod`` stops nothing; so each command runs under ``setpriv``
with the capabilities that bypass file permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER)
dropped from its bounding set: it is then an ordinary owner, and a 0444 file in a 0555 folder is
really read-only for it (checked first, so the test cannot pass on a machine where it is not).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.core.conveyor import Conveyor
from engine.outbox.dispatcher import run_until_idle

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_RULES = ROOT / "sample_rules"
UNPRIVILEGED = (
    ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]
    if os.geteuid() == 0
    else []
)


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")},
        "PYTHONPATH": str(ROOT),
        "CONVEYOR_TZ": "UTC",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return subprocess.run(
        [*UNPRIVILEGED, sys.executable, "-m", "engine.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture
def read_only_db(tmp_path: Path):
    """A database with the sample funnels, a deal and its done actions; then the file 0444, its folder 0555."""
    if UNPRIVILEGED and not shutil.which("setpriv"):
        pytest.skip("setpriv is needed to drop root's permission bypass")
    folder = tmp_path / "ro"
    folder.mkdir()
    url = f"sqlite:///{folder / 'conveyor.db'}"
    c = Conveyor(url)
    c.load_rules_dir(SAMPLE_RULES)
    c.add_manager("Olena", "+380501110001")
    c.create_deal(
        "techflow", key="ACME-1", title="Acme", fields={"phone": "+380501112233", "amount": 1000}
    )
    run_until_idle(c)
    c.close()
    (folder / "conveyor.db").chmod(0o444)
    folder.chmod(0o555)
    probe = subprocess.run(
        [*UNPRIVILEGED, "sh", "-c", f"echo x >> '{folder / 'conveyor.db'}'; touch '{folder}/x'"],
        capture_output=True,
        text=True,
    )
    assert sorted(p.name for p in folder.iterdir()) == ["conveyor.db"], (
        "the folder must really be read-only"
    )
    assert "ermission denied" in probe.stderr, "the file must really be read-only for the commands"
    before = _digest(folder)
    yield url, folder, before
    folder.chmod(stat.S_IRWXU)
    (folder / "conveyor.db").chmod(0o644)


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["versions", "techflow"],
        ["actions", "--status", "done"],
        ["actions", "--status", "done", "--deal", "ACME-1"],
        ["export", "techflow"],
        ["export", "techflow", "--format", "business-rules"],
    ],
    ids=lambda c: "-".join(c),
)
def test_reading_commands_answer_on_a_read_only_sqlite_file_in_a_read_only_folder(
    read_only_db, command
):
    url, folder, before = read_only_db
    result = _cli("--db", url, *command)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout.strip()
    if command[0] == "actions":
        assert "ACME-1" in result.stdout
    if command[0] == "versions":
        assert "* v1" in result.stdout
    if command[0] == "status":
        assert "actions:" in result.stdout and "done " in result.stdout
    assert _digest(folder) == before  # nothing written, no -wal or -shm left behind


def test_a_write_on_a_read_only_database_fails_with_a_clear_message(read_only_db):
    url, folder, before = read_only_db
    result = _cli("--db", url, "activate", "techflow", "1")
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert _digest(folder) == before


def test_a_read_only_database_with_an_old_schema_is_refused_with_a_clear_message(tmp_path):
    if UNPRIVILEGED and not shutil.which("setpriv"):
        pytest.skip("setpriv is needed to drop root's permission bypass")
    folder = tmp_path / "old"
    folder.mkdir()
    url = f"sqlite:///{folder / 'conveyor.db'}"
    Conveyor(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0001'"))
    engine.dispose()
    (folder / "conveyor.db").chmod(0o444)
    folder.chmod(0o555)
    try:
        before = _digest(folder)
        result = _cli("--db", url, "status")
        assert result.returncode == 1
        assert "is read-only and its schema is out of date" in result.stderr
        assert "conveyor init" in result.stderr and "Traceback" not in result.stderr
        assert _digest(folder) == before
    finally:
        folder.chmod(stat.S_IRWXU)
        (folder / "conveyor.db").chmod(0o644)


def test_reading_commands_take_no_write_lock_on_a_current_database(tmp_path):
    """While another connection holds the write lock, the reads still answer (no BEGIN IMMEDIATE, no migration)."""
    url = f"sqlite:///{tmp_path / 'conveyor.db'}"
    c = Conveyor(url)
    c.load_rules_dir(SAMPLE_RULES)
    c.close()
    import sqlite3

    holder = sqlite3.connect(tmp_path / "conveyor.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a writer in the middle of its transaction
    try:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")},
            "PYTHONPATH": str(ROOT),
            "CONVEYOR_TZ": "UTC",
        }
        for command in (["status"], ["versions", "techflow"], ["actions"], ["export", "techflow"]):
            # A write would wait for the lock up to the 30 s busy timeout and then fail; the timeout here
            # is far longer than any read takes, and shorter than that busy timeout.
            result = subprocess.run(
                [sys.executable, "-m", "engine.cli", "--db", url, *command],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=25,
            )
            assert result.returncode == 0, (command, result.stderr)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
