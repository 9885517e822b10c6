"""One collection pass: every check against its source, every HTTP probe; results stored for history."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from sqlalchemy import Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from monitor.checks import CheckSpec, run_check
from monitor.incremental import run_incremental_check
from monitor.models import CheckResultRow, CheckRun, MetricSampleRow, Source
from monitor.probes import run_probe
from monitor.reconcile import run_reconcile
from monitor.results import CheckResult, MetricSample, VolumeSeries
from monitor.settings import MonitorConfig, ProbeSettings
from monitor.sources import source_engine
from monitor.volumes import VolumeSpec, run_volume

log = logging.getLogger(__name__)
Progress = Callable[[str], None]


@dataclass
class Collection:
    results: list[CheckResult] = field(default_factory=list)
    samples: list[MetricSample] = field(default_factory=list)
    volumes: list[VolumeSeries] = field(default_factory=list)
    """The business-volume series the pass's watches read (the detectors judge them)."""

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)


def _unconfigured(spec: CheckSpec | VolumeSpec, now: datetime, reason: str | None) -> CheckResult:
    """The error result of a check or volume watch that could not run (its source is missing or down)."""
    return CheckResult(
        check_id=spec.result_id if isinstance(spec, VolumeSpec) else spec.id,
        source=spec.source,
        status="error",
        title=spec.title,
        category=spec.category,
        severity=spec.severity,
        started_at=now,
        finished_at=now,
        error=reason,
        runbook=spec.runbook,
        owner=spec.owner,
        tags=spec.tags,
    )


def collect(
    settings: MonitorConfig,
    checks: Sequence[CheckSpec],
    *,
    now: datetime | None = None,
    http_client: httpx.Client | None = None,
    progress: Progress | None = None,
    volumes: Sequence[VolumeSpec] = (),
) -> Collection:
    """Run every check, volume watch and probe once. Nothing here raises for a failing system: it
    becomes a result."""
    now = now or datetime.now(UTC)
    out = Collection()
    _run_checks(settings, checks, now, out, progress)
    engines: dict[str, Engine] = {}
    try:
        for spec in volumes:
            _record_volume(out, run_configured_volume(settings, spec, now=now, engines=engines), progress)
    finally:
        for engine in engines.values():
            engine.dispose()
    if settings.probes:
        client = http_client or httpx.Client(follow_redirects=False)
        try:
            for probe in settings.probes:
                result, samples = run_probe(probe, client)
                _record(out, result, samples, progress)
        finally:
            if http_client is None:
                client.close()
    return out


def _run_checks(
    settings: MonitorConfig,
    checks: Sequence[CheckSpec],
    now: datetime,
    out: Collection,
    progress: Progress | None,
) -> None:
    engines: dict[str, Engine] = {}
    try:
        for spec in checks:
            result = run_configured_check(settings, spec, now=now, engines=engines)
            _record(out, result, [_duration_sample(result)], progress)
    finally:
        for engine in engines.values():
            engine.dispose()


def run_configured_check(
    settings: MonitorConfig,
    spec: CheckSpec,
    *,
    now: datetime,
    engines: dict[str, Engine],
    timeout_s: float | None = None,
) -> CheckResult:
    """One check against its configured source, opening the source's engine into ``engines`` if needed.

    ``timeout_s`` caps the source's ``statement_timeout_s``. Never raises for a failing system."""
    source = settings.sources.get(spec.source)
    if source is None:
        return _unconfigured(spec, now, f"source '{spec.source}' is not configured under 'sources:'")
    if spec.source not in engines and (problem := _connect(spec.source, settings, engines)):
        return _unconfigured(spec, now, problem)
    limit = source.statement_timeout_s if timeout_s is None else min(timeout_s, source.statement_timeout_s)
    if spec.kind == "reconcile":  # reads two sources: open the other side's engine too
        for name in spec.sources:
            if name in settings.sources and name not in engines:
                _connect(name, settings, engines)
        return run_reconcile(spec, engines, now=now, timeout_s=limit)
    return run_check(spec, engines[spec.source], now=now, timeout_s=limit)


def check_collection(
    settings: MonitorConfig,
    spec: CheckSpec,
    *,
    now: datetime,
    timeout_s: float | None = None,
    store: sessionmaker[Session] | None = None,
) -> Collection:
    """One check as a collection of its own (the scheduler's unit of work), logged like a pass's.

    With ``store``, a check that declares ``incremental:`` reads only what changed since its last pass
    (:mod:`monitor.incremental`, its state kept in the store); without, every check reads in full."""
    engines: dict[str, Engine] = {}
    samples: list[MetricSample] = []
    try:
        source = settings.sources.get(spec.source)
        if spec.incremental is not None and store is not None and source is not None:
            problem = _connect(spec.source, settings, engines)
            if problem is not None:
                result = _unconfigured(spec, now, problem)
            else:
                limit = source.statement_timeout_s
                limit = limit if timeout_s is None else min(timeout_s, limit)
                outcome = run_incremental_check(spec, engines[spec.source], store, now=now, timeout_s=limit)
                result, samples = outcome.result, outcome.samples
        else:
            result = run_configured_check(settings, spec, now=now, engines=engines, timeout_s=timeout_s)
    finally:
        for engine in engines.values():
            engine.dispose()
    out = Collection()
    _record(out, result, [_duration_sample(result), *samples], None)
    return out


def run_configured_volume(
    settings: MonitorConfig,
    spec: VolumeSpec,
    *,
    now: datetime,
    engines: dict[str, Engine],
    timeout_s: float | None = None,
) -> Collection:
    """One volume watch against its configured source: its run result, series and gauge samples."""
    source = settings.sources.get(spec.source)
    problem = None
    if source is None:
        problem = f"source '{spec.source}' is not configured under 'sources:'"
    elif spec.source not in engines:
        problem = _connect(spec.source, settings, engines)
    if source is None or problem is not None:
        return Collection([_unconfigured(spec, now, problem)])
    limit = source.statement_timeout_s if timeout_s is None else min(timeout_s, source.statement_timeout_s)
    run = run_volume(spec, engines[spec.source], now=now, timeout_s=limit)
    return Collection([run.result], [*run.samples, _duration_sample(run.result)], run.series)


def volume_collection(
    settings: MonitorConfig, spec: VolumeSpec, *, now: datetime, timeout_s: float | None = None
) -> Collection:
    """One volume watch as a collection of its own (the scheduler's unit of work)."""
    engines: dict[str, Engine] = {}
    try:
        found = run_configured_volume(settings, spec, now=now, engines=engines, timeout_s=timeout_s)
    finally:
        for engine in engines.values():
            engine.dispose()
    out = Collection()
    _record_volume(out, found, None)
    return out


def _record_volume(out: Collection, found: Collection, progress: Progress | None) -> None:
    for result in found.results:
        _record(out, result, [], progress)
    out.samples.extend(found.samples)
    out.volumes.extend(found.volumes)


def probe_collection(probe: ProbeSettings, client: httpx.Client) -> Collection:
    """One HTTP probe as a collection of its own."""
    out = Collection()
    result, samples = run_probe(probe, client)
    _record(out, result, samples, None)
    return out


def _connect(name: str, settings: MonitorConfig, engines: dict[str, Engine]) -> str | None:
    """Open the source's engine into ``engines``; the reason it cannot be opened, if so."""
    try:
        engines[name] = source_engine(settings.sources[name].url.get_secret_value())
    except (FileNotFoundError, ValueError) as exc:
        return str(exc)
    return None


def _record(
    out: Collection, result: CheckResult, samples: list[MetricSample], progress: Progress | None
) -> None:
    _log_result(result)
    out.results.append(result)
    out.samples.extend(samples)
    if progress:
        progress(result.check_id)


def _duration_sample(result: CheckResult) -> MetricSample:
    return MetricSample(
        "hypercare_check_duration_seconds",
        result.duration_s,
        {"check_id": result.check_id, "source": result.source},
        result.finished_at,
    )


def _log_result(result: CheckResult) -> None:
    level = logging.WARNING if result.status == "error" else logging.INFO
    log.log(
        level,
        "check %s on %s: %s",
        result.check_id,
        result.source,
        result.status,
        extra={
            "check_id": result.check_id,
            "source": result.source,
            "status": result.status,
            "violations": result.violations,
            "severity": result.severity,
            "error": result.error,
        },
    )


def store_collection(session: Session, collection: Collection, *, trigger: str = "manual") -> CheckRun:
    """Persist a pass: the run, each result and the metric samples. The caller commits."""
    run = CheckRun(
        trigger=trigger,
        passed=collection.count("pass"),
        failed=collection.count("fail") + collection.count("warn"),
        errored=collection.count("error"),
        finished_at=max((r.finished_at for r in collection.results), default=datetime.now(UTC)),
    )
    if collection.results:
        run.started_at = min(r.started_at for r in collection.results)
    session.add(run)
    session.flush()
    _touch_sources(session, {r.source for r in collection.results}, run.finished_at or datetime.now(UTC))
    session.add_all(
        CheckResultRow(
            run_id=run.id,
            check_id=r.check_id,
            source=r.source,
            status=r.status,
            violations=r.violations,
            measured_value=r.measured_value,
            amount_at_risk=r.amount_at_risk,
            sample=r.sample,
            error=r.error,
            duration_s=r.duration_s,
            started_at=r.started_at,
            finished_at=r.finished_at,
        )
        for r in collection.results
    )
    session.add_all(
        MetricSampleRow(name=s.name, labels=s.labels, value=s.value, ts=s.ts or run.finished_at)
        for s in collection.samples
    )
    session.flush()
    return run


def _touch_sources(session: Session, names: set[str], seen: datetime) -> None:
    """Create missing source rows and stamp ``last_seen_at``; safe when workers store at the same time."""
    if not names:
        return
    ordered = sorted(names)
    dialect = session.get_bind().dialect.name
    if dialect in {"postgresql", "sqlite"}:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        session.execute(
            insert(Source)
            .values([{"name": n} for n in ordered])
            .on_conflict_do_nothing(index_elements=["name"])
        )
    else:
        known = set(session.scalars(select(Source.name).where(Source.name.in_(ordered))))
        session.add_all(Source(name=n) for n in ordered if n not in known)
        session.flush()
    session.execute(
        update(Source)
        .where(Source.name.in_(ordered))
        .values(last_seen_at=seen)
        .execution_options(synchronize_session=False)
    )
