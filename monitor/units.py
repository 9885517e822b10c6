"""Units of scheduled work: what `hypercare collect` runs (checks, probes, collectors, source pings) and
how often. The schedule syntax (``[every] N s|m|h|d``) is defined here, once; settings and packs use it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from monitor import collectors, leases
from monitor.checks import CheckSpec
from monitor.collect import Collection, check_collection, probe_collection, volume_collection
from monitor.dualrun.schedule import dualrun_units
from monitor.intervals import ScheduleError, parse_interval
from monitor.probes import probe_check_id
from monitor.settings import MonitorConfig
from monitor.sources import source_engine
from monitor.volumes import VolumeSpec
from monitor.work import WorkUnit

READS_SOURCE = frozenset({"check", "volume", "collector"})
"""Unit kinds that query a monitored source (an error of theirs may mean the source is down)."""


def next_due(started: datetime, interval: timedelta, jitter_ratio: float, rng: random.Random) -> datetime:
    """When a unit that started at ``started`` is due again: interval x (1 +/- up to jitter_ratio)."""
    return started + interval * (1 + rng.uniform(-jitter_ratio, jitter_ratio))


@dataclass(frozen=True)
class UnitOutcome:
    unit: WorkUnit
    collection: Collection
    source_down: str | None = None
    """Why the unit's source does not answer, when it does not (its error results raise no events)."""


def ping_source(settings: MonitorConfig, name: str) -> str | None:
    """Why the source cannot be reached, or None when ``SELECT 1`` answers."""
    configured = settings.sources.get(name)
    if configured is None:
        return f"source '{name}' is not configured"
    try:
        engine = source_engine(configured.url.get_secret_value())
    except (FileNotFoundError, ValueError) as exc:
        return str(exc)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None)
        return (str(orig if orig is not None else exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    finally:
        engine.dispose()
    return None


def build_units(
    settings: MonitorConfig,
    checks: Sequence[CheckSpec],
    *,
    http_client: httpx.Client,
    volumes: Sequence[VolumeSpec] = (),
    store: sessionmaker[Session] | None = None,
) -> list[WorkUnit]:
    """Every check, volume watch, probe, collector and database source as a unit; a bad ``schedule`` is a
    ScheduleError. With ``store``, incremental checks keep their state there (:mod:`monitor.incremental`)."""
    conf = settings.scheduler
    default = parse_interval(conf.default_interval)
    units: list[WorkUnit] = []
    for spec in checks:
        try:
            interval = parse_interval(spec.schedule) if spec.schedule else default
        except ScheduleError as exc:
            raise ScheduleError(f"check {spec.id} (pack {spec.pack or '-'}): {exc}") from None

        def run_check(now: datetime, spec: CheckSpec = spec) -> Collection:
            return check_collection(settings, spec, now=now, timeout_s=conf.unit_timeout_s, store=store)

        units.append(
            WorkUnit(
                f"check:{spec.id}",
                "check",
                spec.source,
                interval,
                conf.unit_timeout_s,
                spec.title,
                run_check,
                spec.category,
                spec.severity,
                spec.runbook,
            )
        )
    for watch in volumes:
        interval = parse_interval(watch.schedule) if watch.schedule else default

        def run_watch(now: datetime, watch: VolumeSpec = watch) -> Collection:
            return volume_collection(settings, watch, now=now, timeout_s=conf.unit_timeout_s)

        units.append(
            WorkUnit(
                f"volume:{watch.result_id}",
                "volume",
                watch.source,
                interval,
                conf.unit_timeout_s,
                watch.title,
                run_watch,
                watch.category,
                watch.severity,
                watch.runbook,
            )
        )
    for probe in settings.probes:

        def run_probe(_now: datetime, probe: Any = probe) -> Collection:
            return probe_collection(probe, http_client)

        units.append(
            WorkUnit(
                f"probe:{probe_check_id(probe)}",
                "probe",
                probe.source,
                default,
                min(probe.timeout_s + 5, conf.unit_timeout_s),
                f"HTTP probe {probe.name}",
                run_probe,
                "technical",
                probe.severity,
                probe.runbook,
            )
        )
    for name in collectors.collector_names(settings):

        def run_collector(now: datetime, name: str = name) -> Collection:
            results, samples = collectors.run_collector(name, settings, now=now)
            return Collection(list(results), list(samples))

        units.append(
            WorkUnit(
                f"collector:{name}",
                "collector",
                _collector_source(settings, name),
                default,
                conf.unit_timeout_s,
                f"Collector {name}",
                run_collector,
            )
        )
    units.extend(dualrun_units(settings))
    pinged = {u.source for u in units if u.kind in READS_SOURCE and u.source in settings.sources}
    for source in sorted(pinged):

        def no_run(_now: datetime) -> Collection:
            return Collection()

        units.append(
            WorkUnit(leases.source_key(source), "source", source, default, 30.0, f"Source {source}", no_run)
        )
    return units


def _collector_source(settings: MonitorConfig, name: str) -> str:
    """The monitored source a collector reads (it shares that source's concurrency limit and outage)."""
    kind, _, arg = name.partition(":")
    if kind == "db_health":
        return arg
    c = settings.collectors
    named = {f"integration:{i.name}": i.source for i in c.integrations} | {
        f"job:{j.name}": j.source for j in c.jobs
    }
    return named.get(name, kind)[:64]
