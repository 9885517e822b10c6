"""The technical collectors: host, database health, integration probes, scheduled jobs.

The scheduler asks :func:`collector_names` what to run and runs each with :func:`run_collector`. Names:
``host``, ``db_health:<source>``, ``integration:<name>``, ``job:<name>``. A collector never raises for a
failing target: it returns an ``error`` check result (check id ``collector.<kind>...``) and logs the reason.
"""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.collectors.base import COLLECTOR_ERRORS, error_result, reason
from monitor.collectors.dbhealth import collect_db_health
from monitor.collectors.host import collect_host
from monitor.collectors.integration import collect_integration, trace_document
from monitor.collectors.jobs import collect_job
from monitor.results import CheckResult, MetricSample
from monitor.settings import MonitorConfig

__all__ = ["collector_names", "run_collector", "trace_document"]


def collector_names(settings: MonitorConfig) -> list[str]:
    """Every collector the settings ask for, e.g. ``["host", "db_health:erp", "job:nightly-close"]``."""
    c = settings.collectors
    names = ["host"] if c.host.enabled else []
    names += [f"db_health:{source}" for source in c.db_health.sources]
    names += [f"integration:{probe.name}" for probe in c.integrations]
    names += [f"job:{job.name}" for job in c.jobs]
    return names


def run_collector(
    name: str, settings: MonitorConfig, *, now: datetime
) -> tuple[list[CheckResult], list[MetricSample]]:
    """Run one collector by name. An unknown name raises ValueError (a programming or settings error);
    a failing target does not raise: it is an ``error`` result."""
    kind, _, arg = name.partition(":")
    c = settings.collectors
    started = datetime.now(UTC)
    try:
        if kind == "host" and not arg:
            return collect_host(c.host, now=now)
        if kind == "db_health" and arg in c.db_health.sources:
            source = settings.sources.get(arg)
            if source is None:
                problem = f"source '{arg}' is not configured under 'sources:'"
                return [error_result("db_health", arg, problem, started=started)], []
            return collect_db_health(arg, source, c.db_health, now=now)
        if kind == "integration":
            for probe in c.integrations:
                if probe.name == arg:
                    return collect_integration(probe, settings.sources.get(probe.source), now=now)
        if kind == "job":
            for job in c.jobs:
                if job.name == arg:
                    return collect_job(job, settings.sources.get(job.source), now=now)
    except COLLECTOR_ERRORS as exc:  # e.g. psutil reading /proc on a host that forbids it
        return [error_result(kind, arg or kind, reason(exc), started=started)], []
    raise ValueError(
        f"unknown collector '{name}'; configured: {', '.join(collector_names(settings)) or 'none'}"
    )
