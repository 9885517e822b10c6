from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hypercare.config import Settings
from monitor.collectors import run_collector
from monitor.collectors.jobs import Run, assess_job
from monitor.settings import JobMonitorSettings

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SQL = "SELECT started_at, finished_at, status FROM job_run WHERE job = 'close' AND started_at >= :since"


def job(**kw: object) -> JobMonitorSettings:
    base: dict[str, object] = {
        "name": "nightly-close",
        "source": "erp",
        "sql": SQL,
        "expected_interval_s": 26 * 3600,
    }
    return JobMonitorSettings(**{**base, **kw})  # type: ignore[arg-type]


def nightly(days: int, minutes: float = 10, status: str = "success") -> list[Run]:
    """One run a night at 01:00 for ``days`` nights before NOW, newest first."""
    runs = []
    for d in range(1, days + 1):
        start = NOW.replace(hour=1) - timedelta(days=d - 1)
        runs.append(Run(start, start + timedelta(minutes=minutes), status))
    return runs


def statuses(results: list) -> dict[str, str]:  # type: ignore[type-arg]
    return {r.check_id: r.status for r in results}


def test_healthy_job_passes_and_reports_its_history() -> None:
    results, samples = assess_job(job(), nightly(8), now=NOW)
    assert statuses(results) == {
        "job.nightly-close.stale": "pass",
        "job.nightly-close.failed": "pass",
        "job.nightly-close.duration": "pass",
    }
    metrics = {s.name: s.value for s in samples}
    assert metrics["hypercare_job_median_duration_seconds"] == 600
    assert metrics["hypercare_job_last_duration_seconds"] == 600
    assert metrics["hypercare_job_last_success"] == 1 and metrics["hypercare_job_failed_runs"] == 0
    assert metrics["hypercare_job_last_run_timestamp_seconds"] == NOW.replace(hour=1).timestamp()
    assert all(r.category == "process" for r in results)


def test_job_that_stopped_running_is_stale() -> None:
    runs = [
        Run(r.started_at - timedelta(days=3), r.finished_at - timedelta(days=3), r.status) for r in nightly(5)
    ]  # type: ignore[operator]
    results, _ = assess_job(job(), runs, now=NOW)
    stale = next(r for r in results if r.check_id.endswith(".stale"))
    assert stale.status == "fail" and (stale.measured_value or 0) > 3 * 86400
    results, samples = assess_job(job(), [], now=NOW)
    assert statuses(results) == {"job.nightly-close.stale": "fail"}
    assert {s.name for s in samples} == {"hypercare_job_failed_runs"}


def test_failed_latest_run_fails_and_failures_are_counted() -> None:
    runs = nightly(6)
    runs[0] = Run(runs[0].started_at, runs[0].finished_at, "error")
    runs[2] = Run(runs[2].started_at, runs[2].finished_at, "error")
    results, samples = assess_job(job(), runs, now=NOW)
    failed = next(r for r in results if r.check_id.endswith(".failed"))
    assert failed.status == "fail" and failed.measured_value == 2
    assert failed.sample[0]["status"] == "error"
    assert {s.name: s.value for s in samples}["hypercare_job_last_success"] == 0


def test_duration_is_judged_against_the_jobs_own_median() -> None:
    runs = nightly(11)
    slow = Run(runs[0].started_at, runs[0].started_at + timedelta(minutes=25), "success")
    results, _ = assess_job(job(), [slow, *runs[1:]], now=NOW)
    duration = next(r for r in results if r.check_id.endswith(".duration"))
    assert duration.status == "warn" and duration.measured_value == 2.5
    hung = Run(NOW - timedelta(minutes=45), None, "running")
    results, samples = assess_job(job(), [hung, *runs], now=NOW)
    assert statuses(results)["job.nightly-close.duration"] == "fail"
    assert {s.name: s.value for s in samples}["hypercare_job_running"] == 1


def test_job_query_runs_read_only_against_the_source(tmp_path: Path) -> None:
    path = tmp_path / "erp.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE job_run (job TEXT, started_at TEXT, finished_at TEXT, status TEXT)")
    for run in nightly(5):
        db.execute(
            "INSERT INTO job_run VALUES ('close', ?, ?, ?)",
            (
                run.started_at.replace(tzinfo=None).isoformat(" "),
                run.finished_at.replace(tzinfo=None).isoformat(" "),
                run.status,
            ),  # type: ignore[union-attr]
        )
    db.execute("INSERT INTO job_run VALUES ('close', '2020-01-01 01:00:00', '2020-01-01 09:00:00', 'error')")
    db.commit()
    db.close()
    settings = Settings(
        sources={"erp": {"url": f"sqlite:///{path}"}},  # type: ignore[dict-item]
        collectors={"jobs": [job().model_dump()]},  # type: ignore[arg-type]
    )
    results, samples = run_collector("job:nightly-close", settings, now=NOW)
    assert statuses(results) == {
        "job.nightly-close.stale": "pass",
        "job.nightly-close.failed": "pass",  # the 2020 failure is outside the lookback (:since)
        "job.nightly-close.duration": "pass",
    }
    assert {s.labels["job"] for s in samples} == {"nightly-close"}


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT 1 AS started_at", "returned no column(s) ['finished_at', 'status']"),
        ("SELECT 'soon' AS started_at, NULL AS finished_at, 'ok' AS status", "expected a timestamp"),
        ("SELECT * FROM nope", "no such table"),
    ],
)
def test_bad_job_query_is_an_error_result(tmp_path: Path, sql: str, message: str) -> None:
    path = tmp_path / "erp.db"
    sqlite3.connect(path).close()
    settings = Settings(
        sources={"erp": {"url": f"sqlite:///{path}"}},  # type: ignore[dict-item]
        collectors={"jobs": [job(sql=sql).model_dump()]},  # type: ignore[arg-type]
    )
    (err,), samples = run_collector("job:nightly-close", settings, now=NOW)
    assert err.status == "error" and err.check_id == "collector.job.nightly-close"
    assert message in (err.error or "") and samples == []
