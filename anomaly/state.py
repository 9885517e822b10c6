"""Metric anomaly detection inside the collection pipeline, with detector and alarm state in the store.

anomaly/ holds the detectors and stays free of I/O; this is the thin layer around them. Each watched
metric series (one per metric name and label set, ``anomaly.metrics``) has one row in
``anomaly_series_state`` holding its serialised :class:`~anomaly.ensemble.UnivariateEnsemble` and
:class:`~anomaly.alarms.AlarmProcessor`. A pass loads the rows of the series it saw, feeds them only the
points newer than the last one each series learnt from (streaming: a replayed or older point is ignored),
and saves them back in the pipeline's own transaction, so a restart or another worker continues where the
last pass stopped and a pass that rolls back has not half-learnt. The rows are locked (SELECT ... FOR
UPDATE) for the pass; a series' first row is created conflict-safe (:func:`create_rows`), so two workers
meeting a new series at once both go on, the second from the state the first saved.

An alarm becomes a technical event: its fingerprint is the detector and the series identity (never a
time), its evidence says which series and how far from normal, and its recovery is a resolve event. An
alarm on a probe's latency while that probe's own check fails in the same pass is *covered*: the check's
ticket already speaks for the incident, so neither the alarm's trigger nor its later resolve is emitted.
"""
# size: the streaming watch's state in the store: load, advance, save, for both detector kinds

from __future__ import annotations

import dataclasses
import functools
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Boolean, Executable, Integer, String, select
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from anomaly.alarms import AlarmProcessor
from anomaly.calendar import BusinessCalendar, CalendarError, load_calendar
from anomaly.ensemble import Score, UnivariateEnsemble
from anomaly.events import Event, fingerprint
from anomaly.groups import AlignedGroup, GroupAlarm, GroupStep
from anomaly.multivariate import ModelFit
from anomaly.settings import AnomalySettings
from anomaly.severity import Exposure, SeverityContext, adjust
from core.db import Base, JSONType, UTCDateTime, utcnow
from core.errors import ConfigError, StoreError
from monitor import check_ids
from monitor.results import CheckResult, MetricSample

log = logging.getLogger(__name__)

SHIPPED_CALENDARS = Path(__file__).resolve().parent.parent / "anomaly" / "calendars"
"""Calendars Hypercare ships; ``anomaly.calendar_file: cn-2026.yaml`` finds them by file name."""
DEFAULT_SOURCE = "hypercare"
"""Event source of a series without a ``source`` label (host metrics)."""
GROUP_METRIC = "multivariate"
"""``metric`` of a group's row in ``anomaly_series_state`` (no real metric is named so)."""
MEMBER_TTL_S = 86400
"""A series silent for longer leaves its group (the group then relearns without it)."""
_FITS: dict[str, ModelFit] = {}
"""Fitted multivariate models by a digest of their training rows: a pass that restores a group whose
model is already in this process skips the refit (same rows, same seed, same model)."""


class SeriesState(Base):
    """The streaming detectors' and the alarm's state of one metric series."""

    __tablename__ = "anomaly_series_state"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(32), unique=True)
    """fingerprint of (metric, labels): the series identity."""
    metric: Mapped[str] = mapped_column(String(128))
    series: Mapped[str] = mapped_column(String(500))
    """Readable identity: ``probe_duration_seconds{probe=erp-trial-balance}``."""
    source: Mapped[str] = mapped_column(String(64))
    labels: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    detector: Mapped[dict[str, Any]] = mapped_column(JSONType)
    alarm: Mapped[dict[str, Any]] = mapped_column(JSONType)
    points: Mapped[int] = mapped_column(Integer, default=0)
    alarm_active: Mapped[bool] = mapped_column(Boolean, default=False)
    last_ts: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """Time of the newest point learnt; older or equal points are not fed again."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def series_key(metric: str, labels: Mapping[str, str]) -> str:
    return fingerprint("series", metric, entity=dict(labels))


def series_name(metric: str, labels: Mapping[str, str]) -> str:
    """``hypercare_probe_duration_seconds`` + {probe, source} -> ``probe_duration_seconds{probe=...}``.

    The source is left out: it is the event's own field (and part of the alarm's fingerprint)."""
    shown = ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "source")
    name = metric.removeprefix("hypercare_")
    return f"{name}{{{shown}}}" if shown else name


def locked_rows(session: Session, keys: Iterable[str]) -> dict[str, SeriesState]:
    """The existing state rows of ``keys``, locked until the transaction ends (SELECT ... FOR UPDATE): a
    concurrent pass on the same series waits for this one's commit, then reads what it saved."""
    query = select(SeriesState).where(SeriesState.key.in_(sorted(keys))).with_for_update()
    return {row.key: row for row in session.scalars(query)}


def create_rows(session: Session, rows: Sequence[Mapping[str, Any]], now: datetime) -> None:
    """Insert a blank state row (nothing learnt: ``detector == {}``) for each of ``rows`` (their ``key``,
    ``metric``, ``series``, ``source``, ``labels``) unless one with that key exists.

    Conflict-safe: two workers meeting a new series at once both found no row to lock, and both insert it.
    ``ON CONFLICT DO NOTHING`` (MySQL: a no-op ``ON DUPLICATE KEY UPDATE``) makes the second insert wait
    for the first's commit and then skip the key instead of failing the pass on the unique key; the
    caller then locks the row (:func:`locked_rows`) and continues from the state the first worker saved.
    Only keys found missing are inserted (each conflicting insert would spend a value of the id sequence).
    Rows go in key order, so that two workers creating overlapping sets wait on each other, never in a
    cycle."""
    values = [
        {
            **row,
            "detector": {},
            "alarm": {},
            "points": 0,
            "alarm_active": False,
            "last_ts": None,
            "updated_at": now,
        }
        for row in sorted(rows, key=lambda r: str(r["key"]))
    ]
    if not values:
        return
    dialect = session.get_bind().dialect.name
    statement: Executable
    if dialect == "postgresql":
        statement = (
            postgresql.insert(SeriesState).values(values).on_conflict_do_nothing(index_elements=["key"])
        )
    elif dialect == "sqlite":
        statement = sqlite.insert(SeriesState).values(values).on_conflict_do_nothing(index_elements=["key"])
    elif dialect in {"mysql", "mariadb"}:  # not INSERT IGNORE: that would hide any other error too
        statement = mysql.insert(SeriesState).values(values).on_duplicate_key_update(id=SeriesState.id)
    else:
        raise StoreError(f"anomaly state: no conflict-safe insert for a {dialect} store")
    session.execute(statement)


# --- the business calendar of the severity rules and the detectors --------------------------------


def calendar_path(path: Path) -> Path:
    """The configured file, or the shipped calendar of that name when no such file exists."""
    if not path.exists() and not path.is_absolute() and (SHIPPED_CALENDARS / path.name).is_file():
        return SHIPPED_CALENDARS / path.name
    return path


@functools.lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int) -> BusinessCalendar:
    return load_calendar(Path(path))


def severity_context(settings: AnomalySettings) -> SeverityContext:
    """The calendar of ``anomaly.calendar_file`` (re-read when the file changes), with the public holidays
    and make-up workdays of ``anomaly.calendar_country`` when set; a bad file is a :class:`ConfigError`
    naming it."""
    country = settings.calendar_country
    if settings.calendar_file is None:
        return SeverityContext(calendar=_country_calendar(country)) if country else SeverityContext()
    path = calendar_path(settings.calendar_file)
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as exc:
        raise ConfigError(
            f"anomaly.calendar_file: {path}: cannot read the calendar ({exc.strerror})"
        ) from None
    try:
        calendar = _load(str(path), mtime)
    except CalendarError as exc:
        raise ConfigError(f"anomaly.calendar_file: {exc}") from None
    if country and calendar.country != country:
        calendar = _with_country(calendar, country)
    return SeverityContext(calendar=calendar)


@functools.lru_cache(maxsize=8)
def _country_calendar(country: str) -> BusinessCalendar:
    return BusinessCalendar(country=country)


@functools.lru_cache(maxsize=8)
def _with_country(calendar: BusinessCalendar, country: str) -> BusinessCalendar:
    return dataclasses.replace(calendar, country=country, _memo={}, _years={})


# --- streaming the series of a pass ------------------------------------------------------------------


@dataclass
class _Series:
    metric: str
    labels: dict[str, str]
    points: list[tuple[float, float]]


def _group(samples: Iterable[MetricSample], metrics: set[str], now: datetime) -> dict[str, _Series]:
    found: dict[str, _Series] = {}
    for sample in samples:
        if sample.name not in metrics or not math.isfinite(sample.value):
            continue
        key = series_key(sample.name, sample.labels)
        entry = found.setdefault(key, _Series(sample.name, dict(sample.labels), []))
        entry.points.append(((sample.ts or now).timestamp(), sample.value))
    for entry in found.values():
        entry.points.sort(key=lambda p: p[0])
    return found


def _identity(key: str, entry: _Series) -> dict[str, Any]:
    """What a series' new state row is created with (:func:`create_rows`)."""
    source = (entry.labels.get("source") or DEFAULT_SOURCE)[:64]
    series = series_name(entry.metric, entry.labels)[:500]
    return {"key": key, "metric": entry.metric, "series": series, "source": source, "labels": entry.labels}


def _related_check(labels: Mapping[str, str]) -> tuple[str, str] | None:
    """The check that already judges this series (a probe's latency: the probe's own check)."""
    probe = labels.get("probe")
    return (check_ids.probe(probe), labels.get("source", "")) if probe else None


@dataclass
class _Stream:
    """One series during a pass: its detectors, its alarm and where it stopped learning."""

    key: str
    entry: _Series
    row: SeriesState
    """Its state row, locked (blank when the series is new: see :func:`create_rows`)."""
    series: str
    source: str
    ensemble: UnivariateEnsemble
    alarm: AlarmProcessor
    covered: bool
    last: float
    covered_now: bool
    runbook: str | None

    def new_points(self) -> list[tuple[float, float]]:
        """Points newer than the last one learnt (a replayed or older point is not fed again)."""
        out, last = [], self.last
        for ts, value in self.entry.points:
            if ts > last:
                out.append((ts, value))
                last = ts
        return out


@dataclass
class _GroupPlan:
    key: str
    name: str
    source: str
    members: dict[str, str]
    """series name -> series key, in name order."""
    warm: bool
    """Every member had learnt past its warm-up when the pass began (a group row may be created)."""
    alarmed: set[str]
    """Members (not in this pass) whose alarm is active in the store."""


class MetricWatch:
    """Streams a pass's metric samples through each series' detectors; returns the alarms' events."""

    def __init__(self, settings: AnomalySettings, context: SeverityContext | None = None) -> None:
        self.settings = settings
        self.context = context or SeverityContext()

    def _ensemble(self, metric: str, series: str, state: SeriesState | None) -> UnivariateEnsemble:
        cfg = self.settings
        band = cfg.fixed_thresholds.get(series) or cfg.fixed_thresholds.get(metric)
        low, high = (band.low, band.high) if band is not None else (None, None)
        calendar = self.context.calendar
        if state is None:
            return UnivariateEnsemble(
                warmup_points=cfg.warmup_points,
                fixed_low=low,
                fixed_high=high,
                calendar=calendar,
                slot_minutes=cfg.slot_minutes,
                rebaseline_points=cfg.rebaseline_points,
            )
        ensemble = UnivariateEnsemble.from_state(state.detector, calendar=calendar)
        # Warm-up length and fixed band follow the configuration as it is now.
        ensemble.warmup_points, ensemble.fixed_low, ensemble.fixed_high = cfg.warmup_points, low, high
        return ensemble

    def _alarm(self, series: str, source: str, *, group: bool = False) -> AlarmProcessor:
        """A series' alarm; a group's never starts on one point (``min_duration_points`` in a row)."""
        cfg = self.settings
        return AlarmProcessor(
            series,
            source,
            on=cfg.alarm_on,
            off=cfg.alarm_off,
            instant=1.0 if group else cfg.alarm_instant,
            min_duration=cfg.min_duration_points,
            clear_points=cfg.clear_points,
            severity=cfg.alarm_severity,
        )

    def observe(
        self,
        session: Session,
        samples: Sequence[MetricSample],
        results: Sequence[CheckResult] = (),
        *,
        now: datetime | None = None,
    ) -> list[Event]:
        """Feed the new points of every watched series; save their state (the caller commits)."""
        now = now or datetime.now(UTC)
        grouped = _group(samples, set(self.settings.metrics), now)
        if not grouped:
            return []
        rows = locked_rows(session, grouped)
        missing = [key for key in grouped if key not in rows]
        if missing:  # a new series (maybe new to another worker's pass too): created conflict-safe, locked
            create_rows(session, [_identity(key, grouped[key]) for key in missing], now)
            rows.update(locked_rows(session, missing))
        failing = {(r.check_id, r.source) for r in results if r.status == "fail"}
        runbooks = {(r.check_id, r.source): r.runbook for r in results}
        streams: dict[str, _Stream] = {}
        for key in sorted(grouped):
            entry, row = grouped[key], rows[key]
            learnt = row if row.detector else None  # a blank row just created: nothing learnt yet
            related = _related_check(entry.labels)
            series = series_name(entry.metric, entry.labels)
            source = (entry.labels.get("source") or DEFAULT_SOURCE)[:64]
            alarm = self._alarm(series, source)
            covered = False
            if learnt is not None:
                alarm.restore(learnt.alarm)
                covered = bool(learnt.alarm.get("covered", False))
            last = (
                learnt.last_ts.timestamp() if learnt is not None and learnt.last_ts is not None else -math.inf
            )
            streams[key] = _Stream(
                key,
                entry,
                row,
                series,
                source,
                self._ensemble(entry.metric, series, learnt),
                alarm,
                covered,
                last,
                related is not None and related in failing,
                runbooks.get(related) if related is not None else None,
            )
        events: list[Event] = []
        done: set[str] = set()
        for plan in self._plan_groups(session, streams, now):
            members = [streams[k] for k in plan.members.values() if k in streams]
            events.extend(self._feed_group(session, plan, members, now))
            done.update(s.key for s in members)
        for key, stream in streams.items():
            if key not in done:
                for ts, value in stream.new_points():
                    event = self._step(stream, ts, value, group_speaks=False)[1]
                    if event is not None:
                        events.append(event)
            self._save(session, stream, now)
        session.flush()
        return events

    # --- one series ---------------------------------------------------------------------------------

    def _step(self, s: _Stream, ts: float, value: float, *, group_speaks: bool) -> tuple[Score, Event | None]:
        """Score one point, feed the alarm; the event to emit, if any (covered alarms emit nothing)."""
        s.last = ts
        score = s.ensemble.update(ts, value)
        event = s.alarm.update(datetime.fromtimestamp(ts, UTC), score)
        if event is None:
            return score, None
        if event.action == "trigger":
            s.covered = s.covered_now or group_speaks
        if s.covered:
            log.info(
                "metric alarm covered by its failing check or its group's alarm",
                extra={"series": s.series, "source": s.source, "action": event.action},
            )
            if event.action == "resolve":
                s.covered = False
            return score, None
        log.info(
            "metric alarm %s on %s",
            event.action,
            s.series,
            extra={
                "series": s.series,
                "source": s.source,
                "action": event.action,
                "fingerprint": event.fingerprint,
            },
        )
        evidence = {
            "metric": s.entry.metric,
            "labels": s.entry.labels,
            "points_learnt": s.ensemble.n,
            "warming_up": s.ensemble.n <= s.ensemble.warmup_points,
        }
        return score, self._enrich(event, evidence, s.runbook)

    def _save(self, session: Session, s: _Stream, now: datetime) -> None:
        row = s.row
        row.detector = s.ensemble.to_state()
        row.alarm = {**s.alarm.to_state(), "covered": s.covered}
        row.points, row.alarm_active = s.ensemble.n, s.alarm.active
        row.last_ts = datetime.fromtimestamp(s.last, UTC) if math.isfinite(s.last) else None
        row.updated_at = now

    def _enrich(self, event: Event, evidence: dict[str, Any], runbook: str | None) -> Event:
        update: dict[str, Any] = {"evidence": {**event.evidence, **evidence}, "runbook": runbook}
        if event.action == "trigger":
            cfg = self.settings
            exposure = Exposure(check_id=event.labels.get("series", ""), when=event.occurred_at)
            severity, reasons = adjust(cfg.alarm_severity, exposure, cfg, self.context)
            update["severity"] = severity
            update["severity_reasons"] = (
                f"{cfg.alarm_severity} as configured for metric alarms (anomaly.alarm_severity)",
                *reasons,
            )
        return event.model_copy(update=update)

    # --- related series of one source ----------------------------------------------------------------

    def _group_name(self, metric: str, source: str) -> str | None:
        mv = self.settings.multivariate
        if not mv.groups:
            return source
        for group in mv.groups:
            if metric in group.metrics and (not group.sources or source in group.sources):
                return group.name
        return None

    def _plan_groups(
        self, session: Session, streams: Mapping[str, _Stream], now: datetime
    ) -> list[_GroupPlan]:
        """The groups this pass touches, each with all its members (those in the store too)."""
        mv = self.settings.multivariate
        if not mv.enabled or not streams:
            return []
        sources = sorted({s.source for s in streams.values()})
        known: dict[tuple[str, str], dict[str, tuple[str, int, bool]]] = {}
        fresh_after = now.timestamp() - MEMBER_TTL_S
        stored = session.execute(
            select(
                SeriesState.key,
                SeriesState.metric,
                SeriesState.series,
                SeriesState.source,
                SeriesState.points,
                SeriesState.alarm_active,
                SeriesState.last_ts,
            ).where(SeriesState.source.in_(sources), SeriesState.metric.in_(self.settings.metrics))
        )
        for key, metric, series, source, points, active, last_ts in stored:
            name = self._group_name(metric, source)
            if name is not None and last_ts is not None and last_ts.timestamp() >= fresh_after:
                known.setdefault((name, source), {})[series] = (key, points, active)
        for s in streams.values():
            name = self._group_name(s.entry.metric, s.source)
            if name is not None:
                points = s.row.points
                known.setdefault((name, s.source), {})[s.series] = (s.key, points, False)
        plans = []
        for (name, source), found in sorted(known.items()):
            members = dict(sorted(found.items())[: mv.max_series])
            if len(members) < 2 or not any(k in streams for k, _, _ in members.values()):
                continue
            plans.append(
                _GroupPlan(
                    fingerprint("group", name, source),
                    name,
                    source,
                    {series: key for series, (key, _, _) in members.items()},
                    all(points > self.settings.warmup_points for _, points, _ in members.values()),
                    {series for series, (key, _, active) in members.items() if active and key not in streams},
                )
            )
        return plans

    def _new_group(self, plan: _GroupPlan) -> AlignedGroup:
        mv = self.settings.multivariate
        return AlignedGroup(
            f"group:{plan.name}",
            list(plan.members),
            align_seconds=mv.align_seconds,
            stale_seconds=mv.stale_seconds,
            window=mv.window,
            train_size=mv.train_size,
            refit_every=mv.refit_every,
            min_train=mv.min_train,
            n_estimators=mv.n_estimators,
            threshold=mv.threshold,
            model=mv.model,
        )

    def _feed_group(
        self, session: Session, plan: _GroupPlan, members: list[_Stream], now: datetime
    ) -> list[Event]:
        """Feed the group's members in time order and score each aligned slot (see anomaly/groups.py)."""
        name = f"group:{plan.name}"
        row = locked_rows(session, [plan.key]).get(plan.key)
        if row is None and plan.warm:  # the group is new: its row created conflict-safe, then locked
            identity = {"key": plan.key, "metric": GROUP_METRIC, "series": name[:500], "source": plan.source}
            create_rows(session, [identity | {"labels": {"group": plan.name}}], now)
            row = locked_rows(session, [plan.key])[plan.key]
        alarm = GroupAlarm(self._alarm(name, plan.source, group=True))
        events: list[Event] = []
        group = self._new_group(plan)
        if row is not None and row.detector:
            alarm.alarm.restore(row.alarm)
            alarm.covered = bool(row.alarm.get("covered", False))
            if list(row.detector.get("members", [])) == list(plan.members):
                group = AlignedGroup.from_state(row.detector, fits=_FITS)
            else:
                log.info("group membership changed: relearning", extra={"group": name, "source": plan.source})
                if alarm.speaks:
                    reason = Score(0.0, "multivariate", 0.0, note="group membership changed, relearning")
                    events.append(alarm.alarm._event("resolve", now, reason))
                alarm = GroupAlarm(self._alarm(name, plan.source, group=True))
        elif row is None:  # not warm: nothing to learn yet, the members alone
            for stream in members:
                for ts, value in stream.new_points():
                    event = self._step(stream, ts, value, group_speaks=False)[1]
                    events.extend([event] if event is not None else [])
            return events

        def scored(step: GroupStep | None) -> None:
            if step is None:
                return
            alarmed = bool(plan.alarmed) or any(m.alarm.active or m.covered_now for m in members)
            event = alarm.update(step, members_alarmed=alarmed)
            if event is None:
                return
            mv = step.multivariate
            evidence = {
                "metric": GROUP_METRIC,
                "members": list(plan.members),
                "contributions": [
                    {"series": c.series, "deviation": round(c.deviation, 2), "residual": c.residual}
                    for c in mv.contributions[:5]
                ],
                "multivariate_score": round(mv.score, 4),
                "model": group.forest.model,
                "points_learnt": group.forest.n,
                "warming_up": False,
            }
            log.info(
                "group alarm %s on %s",
                event.action,
                name,
                extra={"series": name, "source": plan.source, "action": event.action},
            )
            events.append(self._enrich(event, evidence, None))

        timeline = sorted((ts, m.series, value, m) for m in members for ts, value in m.new_points())
        for ts, series, value, stream in timeline:
            scored(group.close_before(ts))
            score, event = self._step(stream, ts, value, group_speaks=alarm.speaks)
            if event is not None:
                events.append(event)
            scored(group.observe(series, ts, score, warm=stream.ensemble.n > stream.ensemble.warmup_points))
        row.detector = group.to_state()
        row.alarm = {**alarm.alarm.to_state(), "covered": alarm.covered}
        row.points, row.alarm_active = group.forest.n, alarm.alarm.active
        if group.closed is not None:
            row.last_ts = datetime.fromtimestamp(group.closed * group.align_seconds, UTC)
        row.updated_at = now
        return events
