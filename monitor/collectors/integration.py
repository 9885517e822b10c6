"""Integration probes (SQL-defined): backlog, age of the oldest unprocessed message, failures in a window;
and the trace of one business document across systems.

Metrics (labels ``integration`` from the settings and ``source``):
``hypercare_integration_backlog_messages``, ``hypercare_integration_oldest_message_age_seconds``,
``hypercare_integration_failed_messages`` (within the window; a gauge, not a counter).

Checks (category technical): ``integration.<name>.backlog`` (backlog_warn/fail),
``integration.<name>.oldest_age`` (oldest_age_warn/fail_s), ``integration.<name>.failed`` (failed_fail
within window_s). A query that cannot run is a ``collector.integration.<name>`` error result.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text

from monitor import check_ids
from monitor.collectors.base import (
    COLLECTOR_ERRORS,
    CollectorOutput,
    as_float,
    as_utc,
    check,
    configured,
    error_result,
    grade,
    read_only,
    reason,
    sample,
    scalar,
)
from monitor.results import CheckResult
from monitor.settings import IntegrationProbeSettings, MonitorConfig, SourceSettings
from monitor.sources import source_engine

log = logging.getLogger(__name__)


def collect_integration(
    probe: IntegrationProbeSettings, source: SourceSettings | None, *, now: datetime
) -> CollectorOutput:
    started = datetime.now(UTC)
    if source is None:
        problem = f"source '{probe.source}' is not configured under 'sources:'"
        return [_error(probe, problem, started)], []
    try:
        engine = source_engine(source.url.get_secret_value())
        try:
            backlog, oldest, failed = _measure(probe, engine, source.statement_timeout_s, now)
        finally:
            engine.dispose()
    except COLLECTOR_ERRORS as exc:
        return [_error(probe, reason(exc), started)], []
    labels = {"integration": probe.name, "source": probe.source}
    samples = [sample("hypercare_integration_backlog_messages", backlog, labels, now)]
    results = [
        _result(
            probe,
            "backlog",
            title="Unprocessed messages",
            value=backlog,
            warn=probe.backlog_warn,
            fail=probe.backlog_fail,
            started=started,
            row={"backlog": backlog},
        ),
    ]
    if probe.oldest_sql is not None:
        age = max((now - oldest).total_seconds(), 0.0) if oldest else 0.0
        samples.append(sample("hypercare_integration_oldest_message_age_seconds", age, labels, now))
        results.append(
            _result(
                probe,
                "oldest_age",
                title="Age of the oldest unprocessed message",
                value=age,
                warn=probe.oldest_age_warn_s,
                fail=probe.oldest_age_fail_s,
                started=started,
                row={"oldest_age_s": age, "oldest_at": oldest},
            )
        )
    if failed is not None:
        samples.append(sample("hypercare_integration_failed_messages", failed, labels, now))
        results.append(
            _result(
                probe,
                "failed",
                title=f"Failed messages in the last {probe.window_s:g}s",
                value=failed,
                warn=None,
                fail=probe.failed_fail,
                started=started,
                row={"failed": failed, "window_s": probe.window_s},
            )
        )
    return results, samples


def _measure(
    probe: IntegrationProbeSettings, engine: Engine, timeout_s: float, now: datetime
) -> tuple[float, datetime | None, float | None]:
    since = (now - timedelta(seconds=probe.window_s)).astimezone(UTC).replace(tzinfo=None)
    with read_only(engine, timeout_s) as conn:

        def ask(sql: str) -> Any:
            return scalar(conn, configured(conn, sql), _used(sql, since))

        backlog = as_float(ask(probe.backlog_sql), "backlog_sql")
        oldest = as_utc(ask(probe.oldest_sql), "oldest_sql") if probe.oldest_sql else None
        failed = as_float(ask(probe.failed_sql), "failed_sql") if probe.failed_sql else None
    return backlog, oldest, failed


def _used(sql: str, since: datetime) -> dict[str, Any]:
    """Bind ``:since`` only where the query names it (drivers reject unknown parameters)."""
    return {"since": since} if "since" in text(sql).compile().params else {}


def _result(
    probe: IntegrationProbeSettings,
    what: str,
    *,
    title: str,
    value: float,
    warn: float | None,
    fail: float | None,
    started: datetime,
    row: dict[str, Any],
) -> CheckResult:
    runbook = "integration-message-failed" if what == "failed" else "integration-message-stuck"
    return check(
        check_ids.integration(probe.name, what),
        probe.source,
        f"{title} ({probe.name})",
        status=grade(value, warn, fail),
        started=started,
        finished=datetime.now(UTC),
        severity=probe.severity,
        measured=value,
        offending=[{"integration": probe.name, **row}],
        runbook=probe.runbook or runbook,
        owner=probe.owner,
    )


def _error(probe: IntegrationProbeSettings, problem: str, started: datetime) -> CheckResult:
    return error_result(
        "integration", probe.source, problem, started=started, severity=probe.severity, name=probe.name
    )


def trace_document(settings: MonitorConfig, business_key: str) -> list[dict[str, Any]]:
    """Where is document ``business_key`` across the systems: each configured trace query's rows.

    Returns one dict per row found, with ``trace`` (the query's name) and ``source`` added; a query that
    cannot run yields one row with ``trace_error`` instead, so one system being down does not hide the others.
    """
    found: list[dict[str, Any]] = []
    for query in settings.collectors.trace:
        source = settings.sources.get(query.source)
        if source is None:
            problem = f"source '{query.source}' is not configured under 'sources:'"
            found.append({"trace": query.name, "source": query.source, "trace_error": problem})
            continue
        try:
            engine = source_engine(source.url.get_secret_value())
            try:
                with read_only(engine, source.statement_timeout_s) as conn:
                    stmt = text(configured(conn, query.sql))
                    rows = conn.execute(stmt, {"key": business_key}).mappings().fetchmany(100)
                    found += [{"trace": query.name, "source": query.source, **dict(r)} for r in rows]
            finally:
                engine.dispose()
        except COLLECTOR_ERRORS as exc:
            problem = reason(exc)
            log.warning(
                "trace query %s on %s failed: %s",
                query.name,
                query.source,
                problem,
                extra={"trace": query.name, "source": query.source, "error": problem},
            )
            found.append({"trace": query.name, "source": query.source, "trace_error": problem})
    return found
