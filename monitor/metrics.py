"""Prometheus exposition of what monitor/ observed, computed from the store at scrape time.

Labels are bounded sets (check id, source, probe), never entity keys. Names follow the Prometheus
conventions: base units, ``_seconds``, ``_ratio``, ``_timestamp_seconds``.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from monitor.models import CheckResultRow, MetricSampleRow

STATUSES = ("pass", "warn", "fail", "error")


class CheckResultsCollector(Collector):
    """The latest result of every check and probe, and the latest probe latencies."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory

    def describe(self) -> Iterator[Metric]:
        # Describing without touching the store keeps registration cheap and side-effect free.
        yield from self._families()

    def _families(self) -> tuple[GaugeMetricFamily, ...]:
        labels = ["check_id", "source"]
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
                "Money at risk found by the latest run, in the company currency",
                labels=labels,
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

    def collect(self) -> Iterator[Metric]:
        status, violations, amount, duration, last_run, probe = self._families()
        with self._factory() as session:
            latest = (
                select(func.max(CheckResultRow.id)).group_by(CheckResultRow.check_id, CheckResultRow.source)
            ).scalar_subquery()
            rows = session.scalars(select(CheckResultRow).where(CheckResultRow.id.in_(latest)))
            for row in rows:
                key = [row.check_id, row.source]
                for name in STATUSES:
                    status.add_metric([*key, name], 1.0 if row.status == name else 0.0)
                violations.add_metric(key, float(row.violations))
                amount.add_metric(key, float(row.amount_at_risk or 0))
                duration.add_metric(key, row.duration_s)
                last_run.add_metric(key, row.finished_at.timestamp())
            latest_probe = (
                select(func.max(MetricSampleRow.id))
                .where(MetricSampleRow.name == "hypercare_probe_duration_seconds")
                .group_by(MetricSampleRow.labels["probe"].as_string())
            ).scalar_subquery()
            for sample in session.scalars(
                select(MetricSampleRow).where(MetricSampleRow.id.in_(latest_probe))
            ):
                probe.add_metric(
                    [sample.labels.get("probe", ""), sample.labels.get("source", "")], sample.value
                )
        yield from (status, violations, amount, duration, last_run, probe)
