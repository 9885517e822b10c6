"""Portable SQL pieces the dashboard's queries share: the UTC day and hour of a timestamp, the seconds
between two timestamps, and the read-only engine on the store.

Both store engines are supported (SQLite, the embedded default, and PostgreSQL, production); each construct
compiles to the native form of each, so grouping and arithmetic stay in the database.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Engine, Float, String, bindparam, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from core.errors import StoreError
from core.settings import redact_url
from monitor.sources import read_only_url


class utc_day(FunctionElement[Any]):
    """The calendar day (UTC) of a timestamp column, as a DATE (PostgreSQL) or ``YYYY-MM-DD`` (SQLite)."""

    type = Date()
    inherit_cache = True
    name = "utc_day"


@compiles(utc_day)
def _utc_day_default(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)})"


@compiles(utc_day, "postgresql")
def _utc_day_pg(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(timezone('UTC', {compiler.process(element.clauses, **kw)}) AS DATE)"


class zone_day(FunctionElement[Any]):
    """The calendar day of a timestamp column in a time zone (:func:`day_in`), as ``utc_day`` gives it."""

    type = Date()
    inherit_cache = True
    name = "zone_day"


@compiles(zone_day)
def _zone_day_default(element: zone_day, compiler: SQLCompiler, **kw: Any) -> str:
    column, _zone, shift = list(element.clauses)
    return f"date({compiler.process(column, **kw)}, {compiler.process(shift, **kw)})"


@compiles(zone_day, "postgresql")
def _zone_day_pg(element: zone_day, compiler: SQLCompiler, **kw: Any) -> str:
    column, zone, _shift = list(element.clauses)
    return f"CAST(timezone({compiler.process(zone, **kw)}, {compiler.process(column, **kw)}) AS DATE)"


def day_in(column: Any, tz: str, at: datetime) -> Any:
    """The calendar day of ``column`` in the zone ``tz``: :class:`utc_day` for UTC; PostgreSQL converts with
    the zone's rules, SQLite shifts by the zone's offset at ``at`` (exact for zones without daylight saving,
    such as Asia/Shanghai and Asia/Taipei). The zone is rendered inline, so GROUP BY matches the SELECT."""
    if tz == "UTC":
        return utc_day(column)
    offset = ZoneInfo(tz).utcoffset(at.replace(tzinfo=None))
    minutes = 0 if offset is None else int(offset.total_seconds() // 60)
    return zone_day(
        column,
        bindparam(None, tz, type_=String(), literal_execute=True),
        bindparam(None, f"{minutes:+d} minutes", type_=String(), literal_execute=True),
    )


class utc_hour(FunctionElement[Any]):
    """The hour (UTC) a timestamp falls in, as text ``YYYY-MM-DD HH:00`` on both engines."""

    type = String()
    inherit_cache = True
    name = "utc_hour"


@compiles(utc_hour)
def _utc_hour_default(element: utc_hour, compiler: SQLCompiler, **kw: Any) -> str:
    return f"strftime('%Y-%m-%d %H:00', {compiler.process(element.clauses, **kw)})"


@compiles(utc_hour, "postgresql")
def _utc_hour_pg(element: utc_hour, compiler: SQLCompiler, **kw: Any) -> str:
    return f"to_char(timezone('UTC', {compiler.process(element.clauses, **kw)}), 'YYYY-MM-DD HH24:00')"


class seconds_between(FunctionElement[Any]):
    """``later - earlier`` in seconds (a float), NULL when either is NULL."""

    type = Float()
    inherit_cache = True
    name = "seconds_between"


@compiles(seconds_between)
def _seconds_default(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = list(element.clauses)
    return (
        f"((julianday({compiler.process(later, **kw)}) - julianday({compiler.process(earlier, **kw)}))"
        " * 86400.0)"
    )


@compiles(seconds_between, "postgresql")
def _seconds_pg(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = list(element.clauses)
    return (
        f"EXTRACT(EPOCH FROM ({compiler.process(later, **kw)} - {compiler.process(earlier, **kw)}))"
        "::double precision"
    )


def _sqlite_read_only(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA query_only = ON")  # on top of mode=ro
    cur.execute("PRAGMA busy_timeout = 10000")
    cur.close()


def read_only_engine(url: str, *, statement_timeout_s: float = 30.0) -> Engine:
    """An engine on the Hypercare store that cannot write.

    SQLite opens the file with ``mode=ro`` and ``query_only`` (the same means as a monitored source,
    :func:`monitor.sources.read_only_url`); PostgreSQL sessions start with ``default_transaction_read_only``
    and a statement timeout, so every transaction on the engine is read-only and time-bounded.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    try:
        ro_url = read_only_url(parsed)
    except FileNotFoundError:
        database = Path(parsed.database or "").resolve()
        raise StoreError(
            f"store {redact_url(url)} does not exist ({database}): "
            "run `hypercare db upgrade` or the demo first"
        ) from None
    if backend == "sqlite":
        engine = create_engine(ro_url)
        event.listen(engine, "connect", _sqlite_read_only)
        return engine
    connect_args: dict[str, Any] = {}
    if backend == "postgresql":
        timeout_ms = int(statement_timeout_s * 1000)
        connect_args["options"] = (
            f"-c default_transaction_read_only=on -c statement_timeout={timeout_ms}"
            " -c jit=off -c work_mem=32MB"  # short aggregate queries: no JIT start-up, sorts in memory
        )
        connect_args["application_name"] = "hypercare-dashboard"
        connect_args["connect_timeout"] = 10
    return create_engine(ro_url, pool_pre_ping=True, pool_size=4, connect_args=connect_args)
