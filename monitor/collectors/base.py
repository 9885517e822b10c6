"""What every collector shares: read-only query execution, result building, error results, parsing.

A collector never raises for a failing target: :func:`error_result` turns the reason into a check result
with status ``error`` (check id ``collector.<kind>``), and :func:`log_error` writes the log line with context.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from core.jsonable import jsonable
from monitor import check_ids
from monitor.checks import make_read_only
from monitor.readonly import require_read_only_sql
from monitor.results import CheckResult, CheckStatus, MetricSample

log = logging.getLogger(__name__)

CollectorOutput = tuple[list[CheckResult], list[MetricSample]]
COLLECTOR_ERRORS = (SQLAlchemyError, OSError, ValueError, TypeError)
"""What a failing target raises: driver and connection errors, missing files, unexpected values."""


@contextmanager
def read_only(engine: Engine, timeout_s: float) -> Iterator[Connection]:
    """A connection whose transaction is read-only and time-bounded; rolled back on exit, never committed."""
    with engine.connect() as conn:
        try:
            make_read_only(conn, timeout_s)
            yield conn
        finally:
            conn.rollback()


def configured(conn: Connection, sql: str) -> str:
    """A query of the settings (integration, job, trace), judged by the read-only allow-list in this
    connection's dialect before it is sent; refused, it raises :class:`~monitor.readonly.ReadOnlyRefusal`
    (a ValueError, so the collector reports an error result naming the reason)."""
    require_read_only_sql(sql, conn.dialect.name)
    return sql


def scalar(conn: Connection, sql: str, params: Mapping[str, Any] | None = None) -> Any:
    """The first column of the first row (None when there is no row)."""
    row = conn.execute(text(sql), dict(params or {})).first()
    return None if row is None else row[0]


def as_float(value: Any, what: str) -> float:
    """A query's numeric answer as a float, or ValueError naming what was expected."""
    if value is None:
        return 0.0
    if isinstance(value, bool | int | float | Decimal):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        raise ValueError(f"{what} returned {value!r}, expected a number") from None


def as_utc(value: Any, what: str) -> datetime | None:
    """A timestamp from a query (datetime, ISO text from SQLite, or a date) as aware UTC; naive is UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{what} returned {value!r}, expected a timestamp") from None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    if not isinstance(value, datetime):
        raise ValueError(f"{what} returned {value!r}, expected a timestamp")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def reason(exc: BaseException) -> str:
    """One readable line: the driver's message when there is one, never a URL with its password."""
    orig = getattr(exc, "orig", None)
    line = str(orig if orig is not None else exc).strip()
    line = line.splitlines()[0] if line else type(exc).__name__
    return f"{type(orig if orig is not None else exc).__name__}: {line}"[:500]


def check(
    check_id: str,
    source: str,
    title: str,
    *,
    status: CheckStatus,
    started: datetime,
    finished: datetime,
    severity: str,
    measured: float | None = None,
    offending: list[dict[str, Any]] | None = None,
    runbook: str | None = None,
    owner: str | None = None,
    error: str | None = None,
    tags: tuple[str, ...] = ("collector",),
) -> CheckResult:
    """A technical check result; ``offending`` rows become the sample and the entities (one per row)."""
    rows = offending or []
    return CheckResult(
        check_id=check_id,
        source=source,
        status=status,
        title=title,
        category="technical",
        severity=severity,
        started_at=started,
        finished_at=finished,
        violations=len(rows) if status in {"warn", "fail"} else 0,
        measured_value=measured,
        sample=[{k: jsonable(v, float_digits=6) for k, v in r.items()} for r in rows[:20]]
        if status != "pass"
        else [],
        entities=[{k: str(v) for k, v in r.items() if k in _KEYS} for r in rows] if status != "pass" else [],
        error=error,
        runbook=runbook,
        owner=owner,
        tags=tags,
    )


_KEYS = {"mount", "process", "pid", "metric", "job", "integration"}


def grade(value: float, warn: float | None, fail: float | None, *, below: bool = False) -> CheckStatus:
    """pass/warn/fail of a value against thresholds (``below``: lower is worse, as for a hit ratio)."""

    def over(limit: float | None) -> bool:
        if limit is None:
            return False
        return value <= limit if below else value >= limit

    if over(fail):
        return "fail"
    if over(warn):
        return "warn"
    return "pass"


def error_result(
    kind: str, source: str, problem: str, *, started: datetime, severity: str = "P2", name: str | None = None
) -> CheckResult:
    """The collector could not look at its target: an ``error`` result, ``collector.<kind>[.<name>]``."""
    check_id = check_ids.collector(kind, name)
    log_error(kind, source, problem, name=name)
    return check(
        check_id,
        source,
        f"{kind.replace('_', ' ')} collector" + (f" {name}" if name else "") + f" on {source}",
        status="error",
        started=started,
        finished=datetime.now(UTC),
        severity=severity,
        error=problem,
        runbook="collector-error",
    )


def log_error(kind: str, source: str, problem: str, *, name: str | None = None) -> None:
    log.warning(
        "collector %s on %s failed: %s",
        kind,
        source,
        problem,
        extra={"collector": kind, "source": source, "target": name, "error": problem},
    )


def sample(name: str, value: float, labels: Mapping[str, str], ts: datetime) -> MetricSample:
    return MetricSample(name, float(value), dict(labels), ts)
