"""Core statements compiled once by SQLAlchemy for a dialect, then run on the DBAPI cursor of the same transaction.

For the page's hottest path only (every save): SQLAlchemy still writes the SQL, quotes the names and converts each
value with the column types' own processors, but the per-call execution machinery (about 80 µs a statement on this
machine, four times SQLite's own work) is skipped, as SQLAlchemy's performance notes advise for hot loops."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement

Processor = Callable[[Any], Any] | None


class RawStatement:
    """One statement's SQL for one dialect, its parameters in the driver's order, and each value's converter."""

    def __init__(self, statement: ClauseElement, dialect: Dialect, column_keys: Sequence[str] | None = None) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(column_keys) if column_keys else None)
        if any(bind.expanding for bind in compiled.binds.values()):
            raise ValueError("expanding parameters (IN lists) need SQLAlchemy's own execution")
        self.sql = str(compiled)
        self.positional = bool(compiled.positional)
        names = list(compiled.positiontup) if self.positional else list(compiled.binds)
        # A parameter's name in the caller's mapping is its bindparam key; the compiled name may differ (e.g. a
        # column's name for an INSERT), so both are kept.
        self._params: list[tuple[str, str, Processor]] = []
        for name in names:
            bind = compiled.binds[name]
            self._params.append((name, bind.key, bind.type.dialect_impl(dialect).bind_processor(dialect)))
        self._results: list[Processor] = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in getattr(statement, "selected_columns", ())]

    def parameters(self, values: Mapping[str, Any]) -> tuple | dict:
        """values (by bindparam key) converted for the driver: a tuple in order, or a dict by compiled name."""
        converted = [(name, process(values[key]) if process else values[key]) for name, key, process in self._params]
        return tuple(value for _, value in converted) if self.positional else dict(converted)

    def execute(self, cursor, values: Mapping[str, Any] | None = None) -> None:
        """Run it once on cursor with values."""
        cursor.execute(self.sql, self.parameters(values or {}))

    def execute_many(self, cursor, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run it once per mapping of rows (an executemany)."""
        cursor.executemany(self.sql, [self.parameters(row) for row in rows])

    def rows(self, cursor, values: Mapping[str, Any] | None = None) -> list[tuple]:
        """Run a SELECT and return its rows, each value converted by its column's type."""
        self.execute(cursor, values)
        fetched = cursor.fetchall()
        if not any(self._results):
            return [tuple(row) for row in fetched]
        return [tuple(process(value) if process else value for process, value in zip(self._results, row))
                for row in fetched]


class RawStatements:
    """Named statements compiled lazily for whichever dialect a transaction runs on (SQLite or PostgreSQL)."""

    def __init__(self, **statements: ClauseElement | tuple[ClauseElement, Sequence[str]]) -> None:
        self._statements = statements
        self._compiled: dict[tuple[str, str], RawStatement] = {}

    def get(self, name: str, dialect: Dialect) -> RawStatement:
        """The statement called name, compiled for dialect (once)."""
        key = (name, dialect.name)
        compiled = self._compiled.get(key)
        if compiled is None:
            statement = self._statements[name]
            statement, columns = statement if isinstance(statement, tuple) else (statement, None)
            compiled = self._compiled[key] = RawStatement(statement, dialect, columns)
        return compiled


def dbapi_cursor(session) -> tuple[Any, Dialect]:
    """The DBAPI cursor of the session's own connection and transaction, and its dialect."""
    connection = session.connection()
    return connection.connection.cursor(), connection.dialect
