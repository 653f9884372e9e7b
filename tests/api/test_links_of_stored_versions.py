"""A rule-set version stored before funnels declared their tracking links keeps its ``{proposal_link}``:
the upgrade declares the link it meant, and the downgrade takes the declaration out again."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from engine.core.conveyor import Conveyor
from storage.db import make_engine
from storage.migrate import alembic_config
from tests.conftest import SAMPLE_RULES


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}"
    return str(request.getfixturevalue("pg_url"))


def _migrate(url: str, revision: str, *, down: bool = False) -> None:
    engine = make_engine(url)
    try:
        cfg = alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            (command.downgrade if down else command.upgrade)(cfg, revision)
    finally:
        engine.dispose()


def _stored(url: str) -> dict:
    engine = make_engine(url)
    with engine.connect() as conn:
        text = conn.execute(sa.text("SELECT document FROM ruleset_versions")).scalar_one()
    engine.dispose()
    return json.loads(text)


def test_a_stored_version_from_before_declared_links_keeps_its_proposal_link(
    empty_database: str,
) -> None:
    url = empty_database
    _migrate(url, "0004")
    doc = json.loads((SAMPLE_RULES / "techflow.json").read_text(encoding="utf-8"))
    link = doc["events"][0].pop("link")  # what a 0004 database held: the engine knew the link
    doc["rules"][5]["actions"].append(
        {"name": "send_sms", "params": {"text": "Your proposal: {proposal_link}"}}
    )
    engine = make_engine(url)
    with engine.begin() as conn:
        t = datetime(2026, 11, 1, 9, 0)
        conn.execute(
            sa.text(
                "INSERT INTO funnels (id, name, active_version_id, created_at)"
                " VALUES ('techflow', 'TechFlow', 1, :t)"
            ),
            {"t": t},
        )
        conn.execute(
            sa.text(
                "INSERT INTO ruleset_versions (id, funnel_id, version, document, fingerprint, comment,"
                " author, created_at) VALUES (1, 'techflow', 1, :d, 'x', '', '', :t)"
            ),
            {"d": json.dumps(doc), "t": t},
        )
    engine.dispose()

    c = Conveyor(url)  # migrates to the head
    try:
        ruleset = c.ruleset("techflow")
        assert [e.name for e in ruleset.linked_events()] == ["proposal_attached"]
        assert ruleset.events[0].link is not None
        assert ruleset.events[0].link.model_dump() == link
        # the stored document validates as it is now (its template names a declared link)
        assert c.rulesets.validate(
            ruleset.to_json(), known_funnels=["project_work"]
        ).linked_events()
    finally:
        c.close()
    _migrate(url, "0004", down=True)
    assert "link" not in _stored(url)["events"][0]
