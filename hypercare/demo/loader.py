"""Fast bulk loading of generated rows into SQLite, PostgreSQL or MariaDB/MySQL.

Rows arrive as tuples in the tables' column order and are buffered per table. A flush writes a buffer with
the fastest means the engine offers: ``COPY ... FROM STDIN`` on PostgreSQL (psycopg), ``executemany`` on
SQLite and on MySQL/MariaDB (PyMySQL turns it into multi-row ``INSERT``s). Tables are created bare —
primary keys and checks only — and get their secondary indexes and, on server databases, their foreign
keys after the load, which is the usual way to load millions of rows quickly.

Values are converted once, by the generator, through :class:`Values`: money arrives as integer cents and is
written as an exact decimal string (PostgreSQL, MySQL) or the nearest float (SQLite stores NUMERIC as
REAL); SQLite gets dates and timestamps in the text format SQLAlchemy itself writes and compares with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    create_engine,
    event,
    inspect,
)
from sqlalchemy.engine import make_url
from sqlalchemy.schema import AddConstraint, CreateIndex, CreateTable

Row = tuple[Any, ...]


def _cents_text(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def _cents_float(cents: int) -> float:
    return cents / 100


def _same(value: Any) -> Any:
    return value


def _day_text(value: date) -> str:
    return value.isoformat()


def _stamp_text(value: datetime) -> str:
    return value.isoformat(sep=" ", timespec="microseconds")


@dataclass(frozen=True)
class Values:
    """Converters from generator values to what the target database driver should receive."""

    money: Callable[[int], Any]
    day: Callable[[date], Any]
    stamp: Callable[[datetime], Any]
    decimal: Callable[[str], Any]

    @classmethod
    def for_dialect(cls, name: str) -> Values:
        if name == "sqlite":
            return cls(_cents_float, _day_text, _stamp_text, float)
        return cls(_cents_text, _same, _same, _same)


def is_sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        return Path(parsed.database)
    return None


def _fast_sqlite(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA synchronous=OFF")
    cur.execute("PRAGMA journal_mode=MEMORY")
    cur.execute("PRAGMA cache_size=-131072")
    cur.close()


def build_engine(url: str) -> Engine:
    """An engine for building a demo database (SQLite gets build-time pragmas; the file is not kept open)."""
    path = is_sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)
        event.listen(engine, "connect", _fast_sqlite)
        return engine
    return create_engine(url, pool_pre_ping=True)


def replace_schema(conn: Connection, metadata: MetaData) -> None:
    """Drop this metadata's tables if present (a previous demo) and create them bare."""
    metadata.drop_all(conn, checkfirst=True)
    # SQLite cannot add constraints later, so its tables get their foreign keys (unenforced) right away.
    fks: list[ForeignKeyConstraint] | None = None if conn.dialect.name == "sqlite" else []
    for table in metadata.sorted_tables:
        conn.execute(CreateTable(table, include_foreign_key_constraints=fks))


def finish_schema(conn: Connection, metadata: MetaData) -> None:
    """Create the secondary indexes, then (server databases) the foreign keys; refresh planner stats."""
    for table in metadata.sorted_tables:
        for index in sorted(table.indexes, key=lambda ix: str(ix.name)):
            conn.execute(CreateIndex(index))
    if conn.dialect.name != "sqlite":
        for table in metadata.sorted_tables:
            for fk in sorted(table.foreign_key_constraints, key=lambda c: str(c.name)):
                conn.execute(AddConstraint(fk))
    if conn.dialect.name == "postgresql":
        for table in metadata.sorted_tables:
            pk = list(table.primary_key.columns)
            if len(pk) == 1 and isinstance(pk[0].type, Integer) and pk[0].autoincrement is not False:
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', '{pk[0].name}'), "
                    f"COALESCE((SELECT MAX({pk[0].name}) FROM {table.name}), 0) + 1, false)"
                )
    analyze(conn, metadata)


def analyze(conn: Connection, metadata: MetaData) -> None:
    """Planner statistics for this metadata's tables only. A bare database-wide ANALYZE would wait for
    the locks of another loader's open transaction on the same PostgreSQL database (ERP and finance
    system in one database), which this thread itself holds: a hang."""
    if conn.dialect.name in {"sqlite", "postgresql"}:
        names = ", ".join(conn.dialect.identifier_preparer.quote(t.name) for t in metadata.sorted_tables)
        conn.exec_driver_sql(f"ANALYZE {names}" if conn.dialect.name == "postgresql" else "ANALYZE")


class BulkLoader:
    """Per-table row buffers flushed in batches into one open transaction."""

    def __init__(self, conn: Connection, metadata: MetaData, batch_rows: int = 50_000) -> None:
        self.conn = conn
        self.metadata = metadata
        self.batch_rows = batch_rows
        self.values = Values.for_dialect(conn.dialect.name)
        self.buffers: dict[str, list[Row]] = {name: [] for name in metadata.tables}
        self.loaded: dict[str, int] = dict.fromkeys(metadata.tables, 0)
        self._statements: dict[str, str] = {}

    def flush_full(self) -> None:
        """Write every buffer that has reached the batch size."""
        for name, rows in self.buffers.items():
            if len(rows) >= self.batch_rows:
                self._write(name)

    def flush(self) -> None:
        for name, rows in self.buffers.items():
            if rows:
                self._write(name)

    def _write(self, name: str) -> None:
        rows = self.buffers[name]
        table = self.metadata.tables[name]
        columns = [c.name for c in table.columns]
        if len(rows[0]) != len(columns):
            raise ValueError(f"{name}: generated rows have {len(rows[0])} values for columns {columns}")
        if self.conn.dialect.name == "postgresql":
            self._copy(name, columns, rows)
        else:
            self.conn.exec_driver_sql(self._insert(name, columns), rows)
        self.loaded[name] += len(rows)
        self.buffers[name] = []

    def _insert(self, name: str, columns: list[str]) -> str:
        if name not in self._statements:
            quote = self.conn.dialect.identifier_preparer.quote
            mark = "?" if self.conn.dialect.paramstyle == "qmark" else "%s"
            self._statements[name] = (
                f"INSERT INTO {quote(name)} ({', '.join(quote(c) for c in columns)}) "
                f"VALUES ({', '.join([mark] * len(columns))})"
            )
        return self._statements[name]

    def _copy(self, name: str, columns: list[str], rows: list[Row]) -> None:
        quote = self.conn.dialect.identifier_preparer.quote
        raw = self.conn.connection.driver_connection
        if raw is None:  # pragma: no cover - a live connection always has its driver connection
            raise RuntimeError("no driver connection for COPY")
        with (
            raw.cursor() as cur,
            cur.copy(f"COPY {quote(name)} ({', '.join(quote(c) for c in columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)


def row_counts(conn: Connection, metadata: MetaData) -> dict[str, int]:
    present = set(inspect(conn).get_table_names())
    counts: dict[str, int] = {}
    quote = conn.dialect.identifier_preparer.quote
    for table in metadata.sorted_tables:
        if table.name in present:
            counts[table.name] = int(
                conn.exec_driver_sql(f"SELECT COUNT(*) FROM {quote(table.name)}").scalar_one()
            )
    return counts
