"""Prometheus exposition of what monitor/ observed, computed from the store at scrape time.

:class:`CheckResultsCollector` is a prometheus-client custom collector (``describe()`` without touching the
store, ``collect()`` reading it) registered on an injected registry. It exposes:

* the latest result of every check, probe and collector check: ``hypercare_check_status`` (1 for the
  current status), ``hypercare_check_violations``, ``hypercare_check_amount_at_risk``,
  ``hypercare_check_duration_seconds``, ``hypercare_check_last_run_timestamp_seconds``, labelled
  ``check_id``, ``source``, ``severity``, ``category`` (the amount also ``currency``, the source's)
  (from the catalog built by :func:`check_catalog`;
  ``unknown`` for a check no longer configured);
* ``hypercare_collector_errors_total{collector}``: error results stored so far, by collector kind (``host``,
  ``db_health``, ``integration``, ``job``, ``probe``, ``checks``). A counter computed from the store: it only
  goes down if history is pruned, which Prometheus reads as a counter reset;
* ``hypercare_probe_duration_seconds``: a histogram of HTTP probe latency computed from the stored samples
  (cumulative over the stored history, so every API process and the standalone collector agree, and a
  restart does not reset it), plus the gauge ``hypercare_probe_latency_seconds`` of the latest latency;
* the latest host, database, integration and job samples (names in
  :data:`monitor.collectors.catalog.PREFIXES`) newer than ``max_age_s``: gauges, or counters for ``_total``
  names. Older samples are left out, so a stopped collector's values disappear instead of looking current;
* ``hypercare_business_volume{watch,key,measure,source}``: the last complete bucket of each volume watch
  series (monitor/volumes.py), kept for :data:`VOLUME_MAX_AGE`. Its keys are bounded: document types,
  journals, companies, integrations, at most ``max_keys`` (50 by default) per watch.

Labels are bounded sets (check id, source, severity, category, probe, and names from the settings), never
entity keys. A store that cannot be read is logged and leaves these families out of that scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import case, func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from monitor import check_ids
from monitor.checks import CheckSpec, configured_checks
from monitor.collectors.catalog import METRIC_HELP, PREFIXES, metric_help
from monitor.models import CheckResultRow, MetricSampleRow
from monitor.settings import MonitorConfig
from monitor.volumes import VOLUME_METRIC, VolumeSpec, load_volumes

log = logging.getLogger(__name__)

STATUSES = ("pass", "warn", "fail", "error")
PROBE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
COLLECTOR_KINDS = ("host", "db_health", "integration", "job", "probe", "checks")
PROBE_METRIC = "hypercare_probe_duration_seconds"
VOLUME_MAX_AGE = timedelta(hours=26)
"""``hypercare_business_volume`` stays exposed this long after its watch last ran (watches run hourly or
daily: a day's volume is current for a day)."""


class CheckLabels(NamedTuple):
    severity: str
    category: str


def check_catalog(
    settings: MonitorConfig, specs: Iterable[CheckSpec] = (), volumes: Iterable[VolumeSpec] = ()
) -> dict[str, CheckLabels]:
    """Severity and category of every check id the settings, check definitions and volume watches produce.

    Collector check ids that depend on what is found (``db.*``, ``host.*``) are listed too; ids missing
    from the catalog are labelled by their prefix (:func:`labels_for`).
    """
    catalog = {spec.id: CheckLabels(spec.severity, spec.category) for spec in specs}
    for watch in volumes:  # the watch's run (could it read its source), not its anomalies
        catalog[watch.result_id] = CheckLabels(watch.severity, watch.category)
    for probe in settings.probes:
        catalog[check_ids.probe(probe.name)] = CheckLabels(probe.severity, "technical")
    c = settings.collectors
    for what in ("disk_usage", "memory", "process"):
        catalog[check_ids.host(what)] = CheckLabels(c.host.severity, "technical")
    for what in ("connections", "long_queries", "idle_in_transaction", "lock_waits", "cache_hit_ratio",
                 "replication_lag"):  # fmt: skip
        catalog[check_ids.db(what)] = CheckLabels(c.db_health.severity, "technical")
    catalog[check_ids.collector("db_health")] = CheckLabels(c.db_health.severity, "technical")
    for integration in c.integrations:
        for what in ("backlog", "oldest_age", "failed"):
            catalog[check_ids.integration(integration.name, what)] = CheckLabels(
                integration.severity, "technical"
            )
        catalog[check_ids.collector("integration", integration.name)] = CheckLabels(
            integration.severity, "technical"
        )
    for job in c.jobs:
        for what in ("stale", "failed", "duration"):
            catalog[check_ids.job(job.name, what)] = CheckLabels(job.severity, "process")
        catalog[check_ids.collector("job", job.name)] = CheckLabels(job.severity, "technical")
    return catalog


def settings_catalog(settings: MonitorConfig) -> dict[str, CheckLabels]:
    """The catalog of everything the configured packs, check files, probes and collectors produce."""

    checks = configured_checks(settings)
    volumes = load_volumes(settings.checks.packs, settings.checks.paths, [c.id for c in checks])
    return check_catalog(settings, checks, volumes)


def labels_for(check_id: str, catalog: Mapping[str, CheckLabels]) -> CheckLabels:
    if check_id in catalog:
        return catalog[check_id]
    kind = check_ids.kind(check_id)
    category = (
        "process" if kind == check_ids.JOB else "technical" if kind in check_ids.BUILTIN_KINDS else "unknown"
    )
    return CheckLabels("unknown", category)


def collector_kind(check_id: str) -> str:
    """Which collector an error result belongs to: ``collector.<kind>...``, ``probe.*``, else ``checks``."""
    collector = check_ids.collector_kind(check_id)
    if collector is not None:
        return collector
    return check_ids.PROBE if check_ids.kind(check_id) == check_ids.PROBE else "checks"


class CheckResultsCollector(Collector):
    """The latest check results, collector errors, probe latency and collector samples, read at scrape."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        catalog: Mapping[str, CheckLabels] | None = None,
        *,
        registry: CollectorRegistry | None = None,
        max_age_s: float = 3600.0,
        currencies: Mapping[str, str] | None = None,
    ) -> None:
        self._factory = factory
        self._catalog = dict(catalog or {})
        self._currencies = dict(currencies or {})
        """Source -> ISO 4217 code (``sources.<name>.currency``); ``EUR`` for a source not listed."""
        self._max_age = timedelta(seconds=max_age_s)
        if registry is not None:
            registry.register(self)

    def describe(self) -> Iterator[Metric]:
        # Describing without touching the store keeps registration cheap and side-effect free.
        yield from self._check_families()
        yield self._errors_family()
        yield self._histogram()
        for name in METRIC_HELP:
            yield self._sample_family(name)

    def collect(self) -> Iterator[Metric]:
        try:
            with self._factory() as session:
                families = [
                    *self._checks(session),
                    self._errors(session),
                    self._probe_histogram(session),
                    *self._samples(session),
                ]
        except SQLAlchemyError as exc:
            log.warning(
                "cannot read the store for /metrics: %s",
                type(exc).__name__,
                extra={"error": str(exc).splitlines()[0][:300]},
            )
            return
        yield from families

    # --- families --------------------------------------------------------------------------------------

    @staticmethod
    def _check_families() -> tuple[GaugeMetricFamily, ...]:
        labels = ["check_id", "source", "severity", "category"]
        return (
            GaugeMetricFamily(
                "hypercare_check_status",
                "Latest status of a check (1 for the current status)",
                labels=[*labels, "status"],
            ),
            GaugeMetricFamily(
                "hypercare_check_violations", "Offending rows found by the latest run", labels=labels
            ),
            GaugeMetricFamily(
                "hypercare_check_amount_at_risk",
                "Money at risk found by the latest run, in the source's company currency",
                labels=[*labels, "currency"],
            ),
            GaugeMetricFamily(
                "hypercare_check_duration_seconds", "Duration of the latest run", labels=labels
            ),
            GaugeMetricFamily(
                "hypercare_check_last_run_timestamp_seconds", "When the check last finished", labels=labels
            ),
            GaugeMetricFamily(
                "hypercare_probe_latency_seconds", "Latest HTTP probe latency", labels=["probe", "source"]
            ),
        )

    @staticmethod
    def _errors_family() -> CounterMetricFamily:
        return CounterMetricFamily(
            "hypercare_collector_errors_total",
            "Results with status error (the target could not be looked at), by collector",
            labels=["collector"],
        )

    @staticmethod
    def _histogram() -> HistogramMetricFamily:
        return HistogramMetricFamily(
            PROBE_METRIC, "HTTP probe latency over the stored history", labels=["probe", "source"]
        )

    @staticmethod
    def _sample_family(name: str) -> GaugeMetricFamily | CounterMetricFamily:
        if name.endswith("_total"):
            return CounterMetricFamily(name, metric_help(name))
        return GaugeMetricFamily(name, metric_help(name))

    # --- reading the store -----------------------------------------------------------------------------

    def _checks(self, session: Session) -> tuple[GaugeMetricFamily, ...]:
        families = self._check_families()
        status, violations, amount, duration, last_run, probe = families
        latest = (
            select(func.max(CheckResultRow.id)).group_by(CheckResultRow.check_id, CheckResultRow.source)
        ).scalar_subquery()
        for row in session.scalars(select(CheckResultRow).where(CheckResultRow.id.in_(latest))):
            key = [row.check_id, row.source, *labels_for(row.check_id, self._catalog)]
            for name in STATUSES:
                status.add_metric([*key, name], 1.0 if row.status == name else 0.0)
            violations.add_metric(key, float(row.violations))
            amount.add_metric([*key, self._currencies.get(row.source, "EUR")], float(row.amount_at_risk or 0))
            duration.add_metric(key, row.duration_s)
            last_run.add_metric(key, row.finished_at.timestamp())
        latest_probe = (
            select(func.max(MetricSampleRow.id))
            .where(MetricSampleRow.name == PROBE_METRIC)
            .group_by(MetricSampleRow.labels["probe"].as_string())
        ).scalar_subquery()
        for sample in session.scalars(select(MetricSampleRow).where(MetricSampleRow.id.in_(latest_probe))):
            probe.add_metric([sample.labels.get("probe", ""), sample.labels.get("source", "")], sample.value)
        return families

    def _errors(self, session: Session) -> CounterMetricFamily:
        counts = dict.fromkeys(COLLECTOR_KINDS, 0)
        rows = session.execute(
            select(CheckResultRow.check_id, func.count())
            .where(CheckResultRow.status == "error")
            .group_by(CheckResultRow.check_id)
        )
        for check_id, count in rows:
            kind = collector_kind(check_id)
            counts[kind] = counts.get(kind, 0) + int(count)
        family = self._errors_family()
        for kind, count in sorted(counts.items()):
            family.add_metric([kind], float(count))
        return family

    def _probe_histogram(self, session: Session) -> HistogramMetricFamily:
        probe = MetricSampleRow.labels["probe"].as_string()
        source = MetricSampleRow.labels["source"].as_string()
        value = MetricSampleRow.value
        buckets = [func.sum(case((value <= bound, 1), else_=0)) for bound in PROBE_BUCKETS]
        stmt = (
            select(probe, source, func.count(), func.sum(value), *buckets)
            .where(MetricSampleRow.name == PROBE_METRIC)
            .group_by(probe, source)
        )
        family = self._histogram()
        for name, src, count, total, *cumulative in session.execute(stmt):
            bucket_counts = [(_le(b), float(c or 0)) for b, c in zip(PROBE_BUCKETS, cumulative, strict=True)]
            family.add_metric(
                [name or "", src or ""], [*bucket_counts, ("+Inf", float(count))], sum_value=float(total or 0)
            )
        return family

    def _samples(self, session: Session) -> list[GaugeMetricFamily | CounterMetricFamily]:
        now = datetime.now(UTC)
        cutoff = now - self._max_age
        volume_cutoff = now - max(self._max_age, VOLUME_MAX_AGE)
        stmt = (
            select(MetricSampleRow)
            .where(or_(*(MetricSampleRow.name.startswith(p, autoescape=True) for p in PREFIXES)))
            .where(MetricSampleRow.ts >= min(cutoff, volume_cutoff))
            .order_by(MetricSampleRow.ts, MetricSampleRow.id)
        )
        latest: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
        for row in session.scalars(stmt):  # later rows overwrite earlier ones: the latest value wins
            if row.name != VOLUME_METRIC and row.ts < cutoff:
                continue
            labels = tuple(sorted((str(k), str(v)) for k, v in (row.labels or {}).items()))
            latest.setdefault(row.name, {})[labels] = row.value
        families: list[GaugeMetricFamily | CounterMetricFamily] = []
        for name in sorted(latest):
            by_labels = latest[name]
            label_names = sorted({k for labels in by_labels for k, _ in labels})
            family = (
                CounterMetricFamily(name, metric_help(name), labels=label_names)
                if name.endswith("_total")
                else GaugeMetricFamily(name, metric_help(name), labels=label_names)
            )
            for labels, value in by_labels.items():
                given = dict(labels)
                family.add_metric([given.get(k, "") for k in label_names], value)
            families.append(family)
        return families


def _le(bound: float) -> str:
    return repr(float(bound))
