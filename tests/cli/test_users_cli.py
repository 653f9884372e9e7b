"""``conveyor users`` in real processes: add with a password from stdin, list, disable, passwd, set,
unlock; a password is never printed, and mistakes are one plain sentence."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from engine.core.conveyor import Conveyor
from engine.errors import Unauthenticated
from tests.support.processes import cli_env

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Kx7-long-passphrase"


def conveyor(db: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", "--db", db, "users", *args],
        cwd=ROOT,
        env=cli_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_users_commands_manage_accounts_the_builder_signs_in_with(tmp_path):
    db = f"sqlite:///{tmp_path / 'users.db'}"
    added = conveyor(
        db, "add", "Olena", "--role", "manager", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert added.returncode == 0, added.stderr
    assert "user 'Olena' added (manager)" in added.stdout
    viewer = conveyor(
        db, "add", "Audit Desk", "--role", "viewer", "--no-password", "--email", "desk@example.com"
    )
    assert viewer.returncode == 0, viewer.stderr

    listed = conveyor(db, "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:3] == ["Olena", "manager", "active"]
    assert "desk@example.com" in lines[1] and "single sign-on only" in lines[1]

    c = Conveyor(db)
    try:
        assert c.users.sign_in("Olena", PASSWORD).actor.name == "Olena"
        assert conveyor(db, "disable", "Olena").returncode == 0
        try:
            c.users.sign_in("Olena", PASSWORD)
            raise AssertionError("a disabled user signed in")
        except Unauthenticated:
            pass
        assert conveyor(db, "enable", "Olena").returncode == 0
        new = conveyor(db, "passwd", "Olena", "--password-stdin", stdin="another-passphrase\n")
        assert new.returncode == 0, new.stderr
        assert c.users.sign_in("Olena", "another-passphrase").name == "Olena"
        assert conveyor(db, "set", "Olena", "--team").returncode == 0
        assert c.users.get("Olena").sees_team
        assert conveyor(db, "unlock", "Olena").returncode == 0
        trail = [(e.actor.split(":")[0], e.kind) for e in reversed(c.audit.entries())]
    finally:
        c.close()
    assert ("cli", "user_added") in trail and ("cli", "password_changed") in trail
    everything = "".join(r.stdout + r.stderr for r in (added, viewer, listed, new))
    assert PASSWORD not in everything and "another-passphrase" not in everything


def test_a_bad_user_command_is_one_sentence_without_a_traceback(tmp_path):
    db = f"sqlite:///{tmp_path / 'users.db'}"
    short = conveyor(db, "add", "x", "--role", "owner", "--password-stdin", stdin="short\n")
    assert short.returncode != 0
    assert "too short: at least 8 characters" in short.stderr
    assert "Traceback" not in short.stderr
    missing = conveyor(db, "disable", "ghost")
    assert missing.returncode != 0 and "no user named 'ghost'" in missing.stderr
    no_email = conveyor(db, "add", "y", "--role", "viewer", "--no-password")
    assert no_email.returncode != 0 and "--no-password needs --email" in no_email.stderr
