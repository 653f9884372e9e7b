"""The change path's hot statements, compiled once per dialect and run on the driver's own cursor.

Why: a change runs four or five small statements, and SQLAlchemy's per-execution layer (cache-key
lookup, execution context, parameter and result set-up) cost ~0.2 ms each against ~0.03 ms for the
driver's execute itself. A ``Statement`` is still a Core statement: it is compiled by SQLAlchemy, once
per dialect, and its values go through SQLAlchemy's own bind and result processors (``UTCDateTime``,
JSON, booleans), so what is stored and read back is byte for byte what ``Connection.execute`` would
store and read (``tests/storage/test_statements.py`` compares both paths on both databases). It runs on
the connection it is given, so it shares that connection's transaction and savepoints (a group
commit's, a session's). ``before_cursor_execute`` / ``after_cursor_execute`` listeners still see every
statement (without an execution context); driver errors are raised as SQLAlchemy's exceptions, and a
lost connection is invalidated, as ``Connection.execute`` does. With ``echo`` on, statements go through
``Connection.exec_driver_sql`` so they are logged.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

__all__ = ["Statement", "run_driver_sql"]


class _Compiled:
    """One statement compiled for one dialect: its SQL and how to turn values into driver parameters."""

    def __init__(self, stmt: ClauseElement, dialect: Dialect, column_keys: Sequence[str] | None):
        compiled = cast(
            SQLCompiler,
            stmt.compile(dialect=dialect, column_keys=list(column_keys or ()) or None),
        )
        if compiled.insert_prefetch or compiled.update_prefetch:
            # Python-side column defaults are filled in by SQLAlchemy's execution context: a statement
            # that needs them is not one for this module (give every such column a value).
            raise ValueError(f"statement needs Python-side defaults: {compiled.string}")
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError(f"statement has expanding parameters: {compiled.string}")
        self.sql: str = compiled.string
        self.positional: bool = bool(compiled.positional)
        by_name = {name: bp for bp, name in compiled.bind_names.items()}
        order = list(compiled.positiontup or ()) if self.positional else list(by_name)
        escaped = dict(compiled.escaped_bind_names or {})
        #: (parameter name, name sent to the driver, bind processor, value when not given, required)
        self.binds: list[tuple[str, str, Any, Any, bool]] = []
        for name in order:
            bp = by_name[name]
            processor = bp.type.dialect_impl(dialect).bind_processor(dialect)
            self.binds.append(
                (name, escaped.get(name, name), processor, bp.effective_value, bool(bp.required))
            )
        columns = getattr(stmt, "selected_columns", None)
        self.result_types = [c.type for c in columns] if columns is not None else []
        self.result_processors: list[Any] | None = None

    def parameters(self, values: Mapping[str, Any]) -> Any:
        """The driver's parameters for ``values``: a tuple (qmark) or a dict (pyformat)."""
        out = []
        for name, _sent, processor, default, required in self.binds:
            v = values[name] if required else values.get(name, default)
            out.append(v if processor is None else processor(v))
        if self.positional:
            return tuple(out)
        return {sent: v for (_name, sent, *_rest), v in zip(self.binds, out, strict=True)}

    def processors(self, dialect: Dialect, description: Any) -> list[Any]:
        # Not kept on self: the dialect is this object's weak key (a strong reference would keep it).
        found = self.result_processors
        if found is None:  # per statement: the driver's column types do not change between runs
            found = [
                t.dialect_impl(dialect).result_processor(dialect, d[1])
                for t, d in zip(self.result_types, description, strict=True)
            ]
            self.result_processors = found
        return found


class Statement:
    """A Core statement run with the driver's cursor on a SQLAlchemy connection (see the module).

    ``column_keys``: for an INSERT or UPDATE, the columns the parameters give (as ``execute`` would
    compile it for those parameters); every other column is left to the database. Values are given
    as a mapping by bind name; missing required ones raise ``KeyError``.
    """

    def __init__(self, stmt: ClauseElement, *, column_keys: Sequence[str] | None = None):
        self._stmt = stmt
        self._column_keys = tuple(column_keys or ())
        self._compiled: weakref.WeakKeyDictionary[Dialect, _Compiled] = weakref.WeakKeyDictionary()

    def compiled(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect)
        if found is None:
            found = self._compiled[dialect] = _Compiled(self._stmt, dialect, self._column_keys)
        return found

    def sql(self, dialect: Dialect) -> str:
        """The SQL sent to the driver for ``dialect``."""
        return self.compiled(dialect).sql

    def execute(self, conn: Connection, values: Mapping[str, Any]) -> None:
        """Run the statement (an INSERT, UPDATE or DELETE) on ``conn``'s transaction."""
        compiled = self.compiled(conn.dialect)
        cursor = _run(conn, compiled.sql, compiled.parameters(values))
        if cursor is not None:
            cursor.close()

    def first(self, conn: Connection, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """Run a SELECT on ``conn``'s transaction: its first row, values as SQLAlchemy returns them."""
        compiled = self.compiled(conn.dialect)
        parameters = compiled.parameters(values)
        if (
            conn.engine.echo
        ):  # logged as SQLAlchemy logs it: through its execution, same SQL and values
            result = conn.exec_driver_sql(compiled.sql, parameters)
            try:
                description = result.cursor.description
                row = result.fetchone()
            finally:
                result.close()
        else:
            cursor = _run(conn, compiled.sql, parameters)
            try:
                row = cursor.fetchone()
                description = cursor.description
            finally:
                cursor.close()
        if row is None:
            return None
        return tuple(
            (p(v) if p is not None else v)
            for p, v in zip(compiled.processors(conn.dialect, description), row, strict=True)
        )


def run_driver_sql(conn: Connection, sql: str) -> None:
    """One parameterless statement (``BEGIN IMMEDIATE``) on the driver's cursor, seen by listeners."""
    cursor = _run(conn, sql, ())
    if cursor is not None:
        cursor.close()


def _run(conn: Connection, sql: str, parameters: Any) -> Any:
    if conn.engine.echo:  # logged as SQLAlchemy logs it; listeners then see it from there
        conn.exec_driver_sql(sql, parameters)
        return None
    dbapi_connection = conn.connection.dbapi_connection
    if dbapi_connection is None:
        raise RuntimeError("the connection has no driver connection")
    cursor = dbapi_connection.cursor()
    dispatch = conn.dispatch
    driver_error = conn.dialect.loaded_dbapi.Error
    try:
        for fn in dispatch.before_cursor_execute:
            fn(conn, cursor, sql, parameters, None, False)
        cursor.execute(sql, parameters)
        for fn in dispatch.after_cursor_execute:
            fn(conn, cursor, sql, parameters, None, False)
    except driver_error as exc:
        cursor.close()
        _raise(conn, exc, sql, parameters, cursor)
    except BaseException:
        cursor.close()
        raise
    return cursor


def _raise(conn: Connection, exc: Exception, sql: str, parameters: Any, cursor: Any) -> None:
    """As ``Connection.execute`` raises a driver error: wrapped, the connection invalidated if lost."""
    dialect = conn.dialect
    base = dialect.loaded_dbapi.Error
    lost = bool(dialect.is_disconnect(cast(Any, exc), conn.connection.dbapi_connection, cursor))
    if lost:
        conn.invalidate(exc)
    raise DBAPIError.instance(
        sql, parameters, exc, base, connection_invalidated=lost, dialect=dialect
    ) from exc
