"""Where an entity's rows come from on one side, and how to read them: read-only, time-bounded, in UTC.

Connections reuse the monitor's machinery (:func:`monitor.sources.source_engine` opens SQLite read-only;
:func:`monitor.checks.make_read_only` makes the transaction read-only with a statement timeout). On top of it
every dual-run session reads time in UTC (PostgreSQL ``TIME ZONE 'UTC'``, MariaDB ``time_zone='+00:00'``)
so ``timestamp with time zone`` / ``TIMESTAMP`` columns render the same everywhere, and PostgreSQL renders
dates in ISO (``DateStyle``) so a ``date::text`` is the canonical ``YYYY-MM-DD``.

Checksum queries on PostgreSQL (``fetch(..., checksum=True)``) tell the planner, for their transaction
only, that expressions are expensive (``cpu_operator_cost`` 20x the default; a row's SHA-256 costs about a
microsecond, the planner's default assumes a few nanoseconds). PostgreSQL estimates a
``GROUP BY (id - lo) / size`` to have as many groups as rows; at the default cost it then aggregates,
hashing included, in one process (or gathers every row to hash it in the leader), twice as slow on 2 cores
(measured 4.1 s vs 2.0 s at 1M rows). With the real price it aggregates partially in the parallel workers.
The raised costs would also trigger JIT optimisation and inlining (about 0.5 s of compiling per process),
so those two are switched off; plain expression JIT stays as configured.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, Date, Engine, bindparam, create_engine, event, text
from sqlalchemy.engine import URL

from monitor.checks import make_read_only
from monitor.dualrun.model import ColumnSpec, EntityConfig, PeriodSpec, SideConfig
from monitor.dualrun.normalise import (
    Dialect,
    Native,
    Side,
    canonical,
    dialect_of,
    native_of,
    register_sqlite_functions,
    source_expression,
)
from monitor.readonly import render_expression, render_query
from monitor.sources import read_only_url, source_engine

__all__ = ["DualRunError", "Period", "Source", "SourceQuery", "dualrun_engine", "period_of"]


class DualRunError(Exception):
    """A comparison cannot run as configured; the message names the entity/side and the reason."""


def dualrun_engine(url: str | URL) -> Engine:
    """A read-only source engine; SQLite connections get the hashing functions the canonical SQL uses.

    PostgreSQL and MariaDB engines keep a small pool for the length of a comparison (a comparison runs
    several queries per side; a new MariaDB connection costs ~30 ms, a PostgreSQL one ~10 ms);
    :func:`monitor.dualrun.runner.run_comparison` disposes of it at the end, so no connection idles on a
    monitored database between runs (the monitor's "connect briefly and let go")."""
    parsed = read_only_url(url)
    if parsed.get_backend_name() in {"postgresql", "mysql", "mariadb"}:
        connect_args: dict[str, object] = {"connect_timeout": 10}  # as monitor.sources.source_engine
        if parsed.get_backend_name() == "postgresql":
            connect_args["application_name"] = "hypercare-monitor"
        return create_engine(parsed, pool_size=4, max_overflow=4, connect_args=connect_args)
    engine = source_engine(url)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _functions(dbapi_conn: Any, _record: Any) -> None:
            register_sqlite_functions(dbapi_conn)

    return engine


@dataclass(frozen=True)
class Source:
    """One side of a comparison: a named source, its engine and its statement timeout."""

    role: Side
    name: str
    engine: Engine
    timeout_s: float = 30.0

    @property
    def dialect(self) -> Dialect:
        return dialect_of(self.engine.dialect.name)

    def quote(self, name: str) -> str:
        return str(self.engine.dialect.identifier_preparer.quote(name))

    @contextmanager
    def connect(self, *, checksum: bool = False) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            try:
                make_read_only(conn, self.timeout_s)
                if self.dialect == "postgresql":
                    conn.exec_driver_sql("SET LOCAL TIME ZONE 'UTC'")
                    conn.exec_driver_sql("SET LOCAL DateStyle = 'ISO, YMD'")
                    if checksum:
                        conn.exec_driver_sql("SET LOCAL cpu_operator_cost = 0.05")
                        conn.exec_driver_sql("SET LOCAL jit_optimize_above_cost = -1")
                        conn.exec_driver_sql("SET LOCAL jit_inline_above_cost = -1")
                elif self.dialect == "mysql":
                    conn.exec_driver_sql("SET SESSION time_zone = '+00:00'")
                yield conn
            finally:
                conn.rollback()  # a comparison never writes


@dataclass(frozen=True)
class Period:
    label: str
    start: date
    end: date
    """Exclusive."""


def period_of(spec: PeriodSpec | None, as_of: date | None) -> Period | None:
    if spec is None or as_of is None:
        return None
    if spec.grain == "day":
        return Period(as_of.isoformat(), as_of, as_of + timedelta(days=1))
    start = as_of.replace(day=1)
    days = calendar.monthrange(as_of.year, as_of.month)[1]
    return Period(f"{as_of:%Y-%m}", start, start + timedelta(days=days))


@dataclass(frozen=True)
class SourceQuery:
    """The FROM/WHERE of one entity (or line set) on one side, with its bound parameters."""

    source: Source
    side: SideConfig
    period_column: ColumnSpec | None = None
    period: Period | None = None
    as_of: date | None = None
    extra: tuple[str, ...] = field(default=())
    natives: dict[str, Native] = field(default_factory=dict, compare=False, repr=False)
    """Column name -> its type in the source, filled by :meth:`describe` (empty: not known)."""

    @property
    def dialect(self) -> Dialect:
        return self.source.dialect

    def canon(self, column: ColumnSpec, *, mapped: bool = True, lean: bool = False) -> str:
        """The column's canonical text. ``lean``: skip conversions the source type makes unnecessary (for
        the text that is hashed inside the database; values fetched into Python keep the full form, which
        always comes back as a string)."""
        native = self.natives.get(column.name) if lean else None
        return canonical(
            column, self.source.role, self.dialect, self.source.quote, mapped=mapped, native=native
        )

    def describe(self, columns: Sequence[ColumnSpec], conn: Connection | None = None) -> None:
        """Read the columns' source types from a zero-row query's cursor description (SQLite: the declared
        types of a table's columns, which its driver does not report)."""
        if not columns:
            return
        if conn is None:
            with self.source.connect() as own:
                self.describe(columns, own)
            return
        if self.dialect == "sqlite":
            self._describe_sqlite(columns, conn)
            return
        exprs = ", ".join(self.raw(c) for c in columns)
        result = self.execute(conn, f"SELECT {exprs} {self.from_clause()} WHERE 1 = 0")
        description = result.cursor.description if result.cursor is not None else None
        result.close()
        if description is None or len(description) != len(columns):
            return
        for column, entry in zip(columns, description, strict=True):
            self.natives[column.name] = native_of(self.dialect, entry)

    def _describe_sqlite(self, columns: Sequence[ColumnSpec], conn: Connection) -> None:
        """Only integer columns (declared ``INTEGER``/``INT``...) are recorded: they allow key ranges."""
        table = self.side.table
        if table is None or "." in table:
            return
        declared = {
            str(row[1]).lower(): str(row[2]).upper()
            for row in conn.exec_driver_sql(f"PRAGMA table_info({self.source.quote(table)})")
        }
        for column in columns:
            name = column.side(self.source.role)
            if ColumnSpec.is_identifier(name) and "INT" in declared.get(name.lower(), ""):
                self.natives[column.name] = Native("integer")

    def raw(self, column: ColumnSpec) -> str:
        return source_expression(column, self.source.role, self.dialect, self.source.quote)

    def from_clause(self) -> str:
        if self.side.table is not None:
            name = ".".join(self.source.quote(part) for part in self.side.table.split("."))
            return f"FROM {name} src"
        query = self.side.query or ""  # SideConfig holds a table or a query
        return f"FROM ({render_query(query, self.dialect)}) src"

    def conditions(self) -> list[str]:
        """The side's filter (rendered from its syntax tree, never pasted) and the period's bounds."""
        found = [f"({render_expression(self.side.filter, self.dialect)})"] if self.side.filter else []
        if self.period_column is not None and self.period is not None:
            raw = self.raw(self.period_column)
            found.append(f"{raw} >= :hc_period_start AND {raw} < :hc_period_end")
        return [*found, *self.extra]

    def where(self, *more: str) -> str:
        parts = [*self.conditions(), *more]
        return f"WHERE {' AND '.join(parts)}" if parts else ""

    def params(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if self.as_of is not None:
            values["as_of"] = self.as_of
        if self.period is not None:
            values["hc_period_start"] = self.period.start
            values["hc_period_end"] = self.period.end
        return values

    def execute(self, conn: Connection, sql: str, values: Mapping[str, Any] | None = None) -> Any:
        stmt = text(sql)
        present = set(stmt.compile().params)
        params = {**self.params(), **(values or {})}
        missing = present - set(params)
        if missing:
            raise DualRunError(f"SQL uses undefined parameter(s) {sorted(missing)}")
        binds = [
            bindparam(n, params[n], type_=Date() if isinstance(params[n], date) else None) for n in present
        ]
        return conn.execute(stmt.bindparams(*binds))

    def fetch(
        self, sql: str, values: Mapping[str, Any] | None = None, *, checksum: bool = False
    ) -> list[tuple[Any, ...]]:
        with self.source.connect(checksum=checksum) as conn:
            return [tuple(row) for row in self.execute(conn, sql, values)]


def entity_query(
    entity: EntityConfig, source: Source, as_of: date | None, period: Period | None
) -> SourceQuery:
    side = entity.legacy if source.role == "legacy" else entity.new
    column = None
    if entity.period is not None:
        by_name = {c.name: c for c in (*entity.key, *entity.columns, *entity.group_by)}
        column = by_name[entity.period.column]
    return SourceQuery(source, side, column, period, as_of)


def key_text(values: Sequence[Any]) -> tuple[str, ...]:
    return tuple("" if v is None else str(v) for v in values)
