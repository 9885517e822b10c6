"""Scheduled-job monitors (SQL-defined): last run, duration against the job's own history, failures, and
jobs that stopped running.

The job's query returns its runs (``started_at``, ``finished_at`` NULL while running, ``status``), may use
``:since`` (now - lookback_s), and is run read-only.

Metrics (labels ``job`` from the settings and ``source``): ``hypercare_job_last_run_timestamp_seconds``,
``hypercare_job_last_duration_seconds``, ``hypercare_job_median_duration_seconds`` (of the previous
``history`` finished runs), ``hypercare_job_last_success`` (1/0), ``hypercare_job_running`` (1/0),
``hypercare_job_failed_runs`` (within the lookback).

Checks (category process): ``job.<name>.stale`` (no start within expected_interval_s: the job stopped),
``job.<name>.failed`` (the latest finished run did not succeed), ``job.<name>.duration`` (the latest run,
finished or still running, took duration_warn/fail_factor times its median). A query that cannot run, or
returns the wrong columns, is a ``collector.job.<name>`` error result.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from monitor import check_ids
from monitor.collectors.base import (
    COLLECTOR_ERRORS,
    CollectorOutput,
    as_utc,
    check,
    configured,
    error_result,
    grade,
    read_only,
    reason,
    sample,
)
from monitor.results import CheckResult, CheckStatus
from monitor.settings import JobMonitorSettings, SourceSettings
from monitor.sources import source_engine

COLUMNS = ("started_at", "finished_at", "status")


@dataclass(frozen=True)
class Run:
    started_at: datetime
    finished_at: datetime | None
    status: str

    def duration_s(self, now: datetime) -> float:
        return ((self.finished_at or now) - self.started_at).total_seconds()


def collect_job(job: JobMonitorSettings, source: SourceSettings | None, *, now: datetime) -> CollectorOutput:
    started = datetime.now(UTC)
    if source is None:
        problem = f"source '{job.source}' is not configured under 'sources:'"
        return [_error(job, problem, started)], []
    try:
        runs = _runs(job, source, now)
    except COLLECTOR_ERRORS as exc:
        return [_error(job, reason(exc), started)], []
    return assess_job(job, runs, now=now, started=started)


def _runs(job: JobMonitorSettings, source: SourceSettings, now: datetime) -> list[Run]:
    stmt = text(job.sql)
    params = {}
    if "since" in stmt.compile().params:
        params["since"] = (now - timedelta(seconds=job.lookback_s)).astimezone(UTC).replace(tzinfo=None)
    engine = source_engine(source.url.get_secret_value())
    try:
        with read_only(engine, source.statement_timeout_s) as conn:
            configured(conn, job.sql)
            result = conn.execute(stmt, params)
            columns = list(result.keys())
            missing = [c for c in COLUMNS if c not in columns]
            if missing:
                raise ValueError(f"job query returned no column(s) {missing}; it returned {columns}")
            rows = result.mappings().fetchmany(10_000)
    finally:
        engine.dispose()
    runs = []
    for row in rows:
        begun = as_utc(row["started_at"], "started_at")
        if begun is None:
            raise ValueError("job query returned a run without started_at")
        runs.append(Run(begun, as_utc(row["finished_at"], "finished_at"), str(row["status"] or "").lower()))
    return sorted(runs, key=lambda r: r.started_at, reverse=True)


def assess_job(
    job: JobMonitorSettings, runs: list[Run], *, now: datetime, started: datetime | None = None
) -> CollectorOutput:
    """Checks and metrics from the job's runs, newest first. Pure: no I/O."""
    started = started or datetime.now(UTC)
    labels = {"job": job.name, "source": job.source}
    ok = {s.lower() for s in job.success_statuses}
    last = runs[0] if runs else None
    finished_runs = [r for r in runs if r.finished_at is not None]
    last_finished = finished_runs[0] if finished_runs else None
    previous = [r.duration_s(now) for r in finished_runs if r is not last and r.status in ok][: job.history]
    median = statistics.median(previous) if previous else None
    failures = sum(1 for r in finished_runs if r.status not in ok)

    samples = [sample("hypercare_job_failed_runs", failures, labels, now)]
    if last is not None:
        samples += [
            sample("hypercare_job_last_run_timestamp_seconds", last.started_at.timestamp(), labels, now),
            sample("hypercare_job_last_duration_seconds", last.duration_s(now), labels, now),
            sample("hypercare_job_running", 1.0 if last.finished_at is None else 0.0, labels, now),
        ]
    if last_finished is not None:
        samples.append(
            sample("hypercare_job_last_success", 1.0 if last_finished.status in ok else 0.0, labels, now)
        )
    if median is not None:
        samples.append(sample("hypercare_job_median_duration_seconds", median, labels, now))

    def result(
        what: str, title: str, status: CheckStatus, measured: float, row: dict[str, Any]
    ) -> CheckResult:
        return check(
            check_ids.job(job.name, what),
            job.source,
            f"{title} ({job.name})",
            status=status,
            started=started,
            finished=datetime.now(UTC),
            severity=job.severity,
            measured=measured,
            offending=[{"job": job.name, **row}],
            runbook=job.runbook,
            owner=job.owner,
            tags=("collector", "job"),
        )

    since_start = (now - last.started_at).total_seconds() if last else float("inf")
    results = [
        result(
            "stale",
            "Job runs on schedule",
            "fail" if since_start > job.expected_interval_s else "pass",
            since_start if last else -1.0,
            {
                "last_started_at": last.started_at if last else None,
                "expected_interval_s": job.expected_interval_s,
            },
        )
    ]
    if last_finished is not None:
        failed = last_finished.status not in ok
        results.append(
            result(
                "failed",
                "Latest run succeeded",
                "fail" if failed else "pass",
                float(failures),
                {"status": last_finished.status, "started_at": last_finished.started_at},
            )
        )
    if last is not None and median:
        ratio = last.duration_s(now) / median
        results.append(
            result(
                "duration",
                "Run duration against the job's median",
                grade(ratio, job.duration_warn_factor, job.duration_fail_factor),
                ratio,
                {"duration_s": last.duration_s(now), "median_s": median, "running": last.finished_at is None},
            )
        )
    return [replace(r, category="process") for r in results], samples


def _error(job: JobMonitorSettings, problem: str, started: datetime) -> CheckResult:
    return error_result("job", job.source, problem, started=started, severity=job.severity, name=job.name)
