"""Dual-run comparisons as scheduled work: one unit per configured comparison (``settings.dualrun``).

A unit runs its comparison and hands the :class:`~monitor.dualrun.model.ComparisonResult` over in a
:class:`DualRunCollection`; the pipeline (hypercare.pipeline.scheduler_processor) stores it and turns its
differences into tickets — monitor/ knows no tickets. A comparison that cannot run at all (a source down,
a broken file) becomes an error result (one technical event) and a ``dualrun_run`` row with status
``error``, so the cutover page shows the gap instead of a stale green.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from core.errors import HypercareError
from monitor import check_ids
from monitor.collect import Collection
from monitor.dualrun import config as config_loader
from monitor.dualrun import runner
from monitor.dualrun.model import ComparisonConfig, ComparisonResult
from monitor.dualrun.runner import Progress
from monitor.dualrun.sql import DualRunError
from monitor.dualrun.store import store_failure
from monitor.intervals import parse_interval
from monitor.results import CheckResult
from monitor.settings import MonitorConfig
from monitor.work import WorkUnit

log = logging.getLogger(__name__)
UNIT_PREFIX = "dualrun"


@dataclass(frozen=True, slots=True)
class DualRunFailure:
    comparison: str
    error: str
    started_at: datetime
    finished_at: datetime
    as_of: date | None = None


@dataclass
class DualRunCollection(Collection):
    """A unit's collection carrying its comparison's result (or why there is none)."""

    comparison: ComparisonResult | None = None
    failure: DualRunFailure | None = None


def record_dualrun_failure(session: Session, failure: DualRunFailure) -> None:
    store_failure(
        session,
        failure.comparison,
        failure.error,
        started_at=failure.started_at,
        finished_at=failure.finished_at,
        as_of=failure.as_of,
        trigger="scheduler",
    )


def scope_date(scope: str, now: datetime) -> date | None:
    """The ``--as-of`` day of a scheduled run: None (everything), today or yesterday (UTC)."""
    today = now.astimezone(UTC).date()
    return {"all": None, "today": today, "yesterday": today - timedelta(days=1)}[scope]


Runner = Callable[[MonitorConfig, ComparisonConfig, date | None], ComparisonResult]


def load_comparison(path: Path) -> ComparisonConfig:
    """Read and validate a comparison file (one ConfigError line naming file, entity and field)."""
    return config_loader.load_comparison(path)


def run_comparison(
    settings: MonitorConfig,
    config: ComparisonConfig,
    as_of: date | None,
    *,
    only: Sequence[str] = (),
    progress: Progress | None = None,
) -> ComparisonResult:
    """Run ``config`` (every enabled entity, or ``only``) with the engines against the configured sources."""
    legacy, new = config_loader.resolve_sources(config, settings)
    try:
        return runner.run_comparison(config, legacy, new, as_of=as_of, only=only, progress=progress)
    finally:
        legacy.engine.dispose()
        new.engine.dispose()


def dualrun_units(settings: MonitorConfig, *, runner: Runner = run_comparison) -> list[WorkUnit]:
    """One unit per comparison file in ``settings.dualrun.comparisons``; a bad file is a ConfigError."""
    conf = settings.dualrun
    if not conf.comparisons:
        return []
    interval = parse_interval(conf.schedule)
    units: list[WorkUnit] = []
    for path in conf.comparisons:
        config = load_comparison(path)

        def run(now: datetime, config: ComparisonConfig = config) -> Collection:
            return run_unit(settings, config, now, runner)

        units.append(
            WorkUnit(
                f"{UNIT_PREFIX}:{config.name}",
                "dualrun",
                config.new[:64],
                interval,
                conf.timeout_s,
                f"Dual run {config.name}",
                run,
                "data",
                conf.severity,
                "collector-error",
            )
        )
    return units


def run_unit(settings: MonitorConfig, config: ComparisonConfig, now: datetime, runner: Runner) -> Collection:
    """Run one comparison for the scheduler; a failure to run becomes an error result, never a crash."""
    as_of = scope_date(settings.dualrun.scope, now)
    started = datetime.now(UTC)
    try:
        result = runner(settings, config, as_of)
    except (HypercareError, DualRunError, SQLAlchemyError, OSError, ValueError) as exc:
        reason = f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:500]
        finished = datetime.now(UTC)
        log.warning("dual-run comparison failed", extra={"comparison": config.name, "error": reason})
        error = CheckResult(
            check_id=check_ids.dualrun(config.name),
            source=config.new[:64],
            status="error",
            title=f"Dual run {config.name}",
            category="data",
            severity=settings.dualrun.severity,
            started_at=started,
            finished_at=finished,
            error=reason,
            runbook="collector-error",
        )
        return DualRunCollection(
            results=[error], failure=DualRunFailure(config.name, reason, started, finished, as_of)
        )
    return DualRunCollection(comparison=result)
