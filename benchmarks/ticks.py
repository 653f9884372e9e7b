"""Pages a tick writes on SQLite: WAL frames read back from the ``-wal`` file, each page named by ``dbstat``.

With automatic checkpoints off for the measurement, every page the tick's transactions wrote stays in
the write-ahead log as one frame (a page written twice in one transaction is one frame; written in two
transactions, two). Reading the frames' page numbers and mapping each to the table or index that owns it
(SQLite's ``dbstat`` table) says where a tick's writes go. The checkpoint that folds those frames into
the database file is timed apart: it is the rest of what the pages cost.

``conveyor bench`` reports these figures (``tick_pages_written`` …); ``python -m benchmarks.tick_runs``
repeats them on one kept database.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import struct
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

_WAL_HEADER = 32
_FRAME_HEADER = 24


def wal_frames(wal: str | Path) -> list[int]:
    """Page numbers of the valid frames in a WAL file, in the order they were written."""
    try:
        data = Path(wal).read_bytes()
    except FileNotFoundError:
        return []
    if len(data) < _WAL_HEADER:
        return []
    page_size = struct.unpack(">I", data[8:12])[0]
    salts = data[16:24]
    pages = []
    offset = _WAL_HEADER
    while offset + _FRAME_HEADER + page_size <= len(data):
        if data[offset + 8 : offset + 16] != salts:
            break  # a frame of an earlier generation of the log: the valid ones end here
        pages.append(struct.unpack(">I", data[offset : offset + 4])[0])
        offset += _FRAME_HEADER + page_size
    return pages


def page_owners(path: str | Path) -> dict[int, str]:
    """Which table or index each page of the database belongs to (``dbstat``; free pages unnamed)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = {}  # a UNIQUE of CREATE TABLE is "sqlite_autoindex_<table>_<n>": name its columns
        for name, table in con.execute(
            "SELECT name, tbl_name FROM sqlite_schema WHERE name LIKE 'sqlite_autoindex_%'"
        ):
            columns = ", ".join(row[2] for row in con.execute(f"PRAGMA index_info('{name}')"))
            names[name] = f"{table} unique ({columns})"
        return {
            pageno: names.get(name, name)
            for name, pageno in con.execute("SELECT name, pageno FROM dbstat")
        }
    finally:
        con.close()


@contextmanager
def checkpoints_off(engine: Engine) -> Iterator[None]:
    """Every connection of ``engine`` opened inside keeps its WAL (no automatic checkpoint)."""

    def _off(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")

    engine.dispose()  # pooled connections would keep the default
    event.listen(engine, "connect", _off)
    try:
        yield
    finally:
        event.remove(engine, "connect", _off)
        engine.dispose()


def checkpoint(path: str | Path) -> float:
    """Fold the WAL into the database file and truncate it; returns the seconds it took."""
    con = sqlite3.connect(str(path), isolation_level=None)
    try:
        con.execute("PRAGMA synchronous=FULL")
        t = time.perf_counter()
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return time.perf_counter() - t
    finally:
        con.close()


def tick_pages(conveyor: Any, path: str | Path) -> dict[str, Any]:
    """Tick once with checkpoints off and report the pages written, by table and index.

    ``tick_pages_written``: WAL frames (pages written) by the tick; ``tick_pages_distinct``: distinct
    pages; ``tick_pages_by_object``: distinct pages per table/index; ``tick_wal_s``: the tick's time
    with the pages left in the log; ``tick_checkpoint_s``: folding them into the database afterwards.
    """
    path = Path(path)
    checkpoint(path)
    with checkpoints_off(conveyor.engine):
        t = time.perf_counter()
        report = conveyor.tick()
        seconds = time.perf_counter() - t
        # Read while a connection is open: the last one to close checkpoints and removes the log.
        frames = wal_frames(f"{path}-wal")
        owners = page_owners(path)
        folded = checkpoint(path)
    by_object = Counter(owners.get(p, "(free or new)") for p in set(frames))
    return {
        "report": report,
        "tick_wal_s": seconds,
        "tick_pages_written": len(frames),
        "tick_pages_distinct": len(set(frames)),
        "tick_pages_by_object": dict(by_object.most_common()),
        "tick_checkpoint_s": folded,
    }


def pages_on_copy(path: str | Path, now: datetime) -> dict[str, Any]:
    """``tick_pages`` on a copy of the database at ``path`` (untouched), ticking at ``now``."""
    from engine.clock import VirtualClock
    from engine.core.conveyor import Conveyor

    work = Path(f"{path}.pages")
    shutil.copyfile(path, work)
    os.sync()  # the copy's write-back must not compete with the tick's fsyncs
    c = Conveyor(f"sqlite:///{work}", clock=VirtualClock(now))
    try:
        out = tick_pages(c, work)
    finally:
        c.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{work}{suffix}").unlink(missing_ok=True)
    out.pop("report")
    return out
