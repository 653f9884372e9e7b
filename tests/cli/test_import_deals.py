"""``conveyor import-deals``: a Ukrainian spreadsheet's CSV (BOM, semicolons, a quoted line break)
mapped onto a funnel; every bad row named by line and column; a dry run and a strict run write
nothing; a second run skips what the first imported; the exit code says whether any row was bad."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, SAMPLE_RULES
from tests.support.database import rows
from tests.support.processes import cli_env

CSV = (
    "\ufeffНазва;Телефон;budget;Етап;Примітки;key\n"
    '"Ромашка, ТОВ";+380501;yes;;x;K-1\n'
    "Бета;+380502;maybe;qualifcation;;K-2\n"
    "Гамма;;no;qualification;;K-3\n"
    "\n"
    '"Дельта\nз переносом";;;;;K-1\n'
)
MAP = "Назва=title,Телефон=phone,Етап=stage,Примітки=-"


def _cli(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", "--db", db, *args],
        cwd=ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _setup(tmp_path: Path) -> tuple[str, Path]:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    for name in ("project_work", "techflow"):
        assert _cli(db, "import", str(SAMPLE_RULES / f"{name}.json")).returncode == 0
    path = tmp_path / "leads.csv"
    path.write_bytes(CSV.encode("utf-8"))
    return db, path


def test_import_deals_reports_every_bad_row_and_imports_the_good_ones(tmp_path: Path) -> None:
    db, path = _setup(tmp_path)
    dry = _cli(db, "import-deals", str(path), "--funnel", "techflow", "--map", MAP, "--dry-run")
    assert dry.returncode == 1
    assert (
        "line 3, column 'budget': field 'budget': 'maybe' is not one of its options" in dry.stderr
    )
    assert "line 3, column 'Етап': unknown stage 'qualifcation'" in dry.stderr
    assert "did you mean 'qualification'" in dry.stderr
    assert "line 6, column 'key': key 'K-1' is given again (first on line 2)" in dry.stderr
    assert "Dry run: nothing was written; 2 deals would be imported" in dry.stdout
    assert "Traceback" not in dry.stderr
    assert rows(db, "SELECT count(*) FROM deals")[0][0] == 0

    strict = _cli(db, "import-deals", str(path), "--funnel", "techflow", "--map", MAP, "--strict")
    assert strict.returncode == 1 and "Strict: nothing was imported" in strict.stdout
    assert rows(db, "SELECT count(*) FROM deals")[0][0] == 0

    done = _cli(db, "import-deals", str(path), "--funnel", "techflow", "--map", MAP)
    assert done.returncode == 1  # two rows were bad
    assert "Imported 2 deals into 'techflow'" in done.stdout
    assert rows(db, "SELECT key, title, phone, stage FROM deals ORDER BY key") == [
        ("K-1", "Ромашка, ТОВ", "+380501", "incoming"),
        ("K-3", "Гамма", "", "qualification"),
    ]
    fired = {r[0] for r in rows(db, "SELECT rule_id FROM firings")}
    assert fired == {"assign_new_lead", "qualification_no"}
    assert rows(db, "SELECT count(*) FROM audit_log WHERE kind = 'deals_imported'")[0][0] == 1

    again = _cli(db, "import-deals", str(path), "--funnel", "techflow", "--map", MAP)
    assert "2 already imported (skipped)" in again.stdout
    assert rows(db, "SELECT count(*) FROM deals")[0][0] == 2


def test_an_unknown_column_is_named_and_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    db, path = _setup(tmp_path)
    unmapped = _cli(db, "import-deals", str(path), "--funnel", "techflow", "--dry-run")
    assert "line 1, column 'Назва': no field takes this column" in unmapped.stderr
    bad_map = _cli(db, "import-deals", str(path), "--funnel", "techflow", "--map", "Назва=titel")
    assert bad_map.returncode == 1 and "did you mean 'title'" in bad_map.stderr
    latin = tmp_path / "latin.csv"
    latin.write_bytes("title\nCaf\xe9\n".encode("latin-1"))
    refused = _cli(db, "import-deals", str(latin), "--funnel", "techflow")
    assert refused.returncode == 1
    assert "latin.csv is not UTF-8 text: line 2" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_file_none_of_whose_columns_goes_to_a_field_is_refused(tmp_path: Path) -> None:
    # Without this, every row would become an empty deal: nothing of the file would be imported.
    db, _path = _setup(tmp_path)
    foreign = tmp_path / "foreign.csv"
    foreign.write_text("Назва,Телефон\nACME,+380501234567\n", encoding="utf-8")
    refused = _cli(db, "import-deals", str(foreign), "--funnel", "techflow")
    assert refused.returncode == 1
    assert "no column of the file goes to a field of funnel 'techflow'" in refused.stderr
    assert "(its columns: Назва, Телефон)" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert rows(db, "SELECT count(*) FROM deals")[0][0] == 0
