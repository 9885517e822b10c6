"""/metrics: the custom collector read against a real store, and the served output linted by promtool."""

from __future__ import annotations

import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from core.session import make_engine, session_factory, session_scope
from hypercare.app import build_app
from hypercare.config import Settings
from monitor.collect import Collection, store_collection
from monitor.collectors import run_collector
from monitor.metrics import CheckLabels, CheckResultsCollector, check_catalog
from monitor.results import CheckResult, MetricSample
from tests.servers import tool

NOW = datetime.now(UTC).replace(microsecond=0)


def result(check_id: str, status: str = "fail", **kw: object) -> CheckResult:
    base: dict[str, object] = {
        "check_id": check_id,
        "source": "erp",
        "status": status,
        "title": check_id,
        "category": "data",
        "severity": "P1",
        "started_at": NOW - timedelta(seconds=2),
        "finished_at": NOW,
    }
    return CheckResult(**{**base, **kw})  # type: ignore[arg-type]


def store(engine: Engine, results: list[CheckResult], samples: list[MetricSample]) -> None:
    with session_scope(session_factory(engine)) as session:
        store_collection(session, Collection(results=results, samples=samples))


def probe_sample(latency: float, probe: str = "login", ts: datetime = NOW) -> MetricSample:
    return MetricSample("hypercare_probe_duration_seconds", latency, {"probe": probe, "source": "erp"}, ts)


def test_latest_check_results_carry_severity_and_category(store_engine: Engine) -> None:
    store(
        engine := store_engine, [result("gl.unbalanced", violations=3, amount_at_risk=Decimal("12.50"))], []
    )
    store(engine, [result("gl.unbalanced", violations=2, amount_at_risk=Decimal("10.00"))], [])
    registry = CollectorRegistry()
    catalog = {"gl.unbalanced": CheckLabels("P1", "data")}
    CheckResultsCollector(session_factory(engine), catalog, registry=registry, currencies={"erp": "CNY"})
    key = {"check_id": "gl.unbalanced", "source": "erp", "severity": "P1", "category": "data"}
    assert registry.get_sample_value("hypercare_check_violations", key) == 2
    assert registry.get_sample_value("hypercare_check_amount_at_risk", {**key, "currency": "CNY"}) == 10.0
    assert registry.get_sample_value("hypercare_check_status", {**key, "status": "fail"}) == 1
    assert registry.get_sample_value("hypercare_check_status", {**key, "status": "pass"}) == 0
    assert registry.get_sample_value("hypercare_check_duration_seconds", key) == 2.0


def test_collector_errors_are_counted_by_collector(store_engine: Engine) -> None:
    errors = [
        result("collector.db_health", "error", error="down"),
        result("collector.integration.finance-outbox", "error", error="no such table"),
        result("gl.unbalanced", "error", error="timeout"),
    ]
    store(store_engine, errors, [])
    store(store_engine, [result("collector.db_health", "error", error="still down")], [])
    registry = CollectorRegistry()
    CheckResultsCollector(session_factory(store_engine), registry=registry)
    count = registry.get_sample_value
    assert count("hypercare_collector_errors_total", {"collector": "db_health"}) == 2
    assert count("hypercare_collector_errors_total", {"collector": "integration"}) == 1
    assert count("hypercare_collector_errors_total", {"collector": "checks"}) == 1
    assert count("hypercare_collector_errors_total", {"collector": "job"}) == 0
    # unknown to the catalog, a collector result is still labelled by what it is
    key = {"check_id": "collector.db_health", "source": "erp", "severity": "unknown", "category": "technical"}
    assert count("hypercare_check_status", {**key, "status": "error"}) == 1


def test_probe_latency_histogram_is_computed_from_stored_samples(store_engine: Engine) -> None:
    store(
        store_engine,
        [],
        [probe_sample(0.02), probe_sample(0.3), probe_sample(4.0), probe_sample(0.07, "post")],
    )
    registry = CollectorRegistry()
    CheckResultsCollector(session_factory(store_engine), registry=registry)
    labels = {"probe": "login", "source": "erp"}
    get = registry.get_sample_value
    assert get("hypercare_probe_duration_seconds_bucket", {**labels, "le": "0.025"}) == 1
    assert get("hypercare_probe_duration_seconds_bucket", {**labels, "le": "0.5"}) == 2
    assert get("hypercare_probe_duration_seconds_bucket", {**labels, "le": "5.0"}) == 3
    assert get("hypercare_probe_duration_seconds_bucket", {**labels, "le": "+Inf"}) == 3
    assert get("hypercare_probe_duration_seconds_count", labels) == 3
    assert get("hypercare_probe_duration_seconds_sum", labels) == pytest.approx(4.32)
    assert get("hypercare_probe_duration_seconds_count", {"probe": "post", "source": "erp"}) == 1


def test_latest_collector_samples_are_exposed_and_stale_ones_left_out(store_engine: Engine) -> None:
    old = NOW - timedelta(hours=3)
    samples = [
        MetricSample("hypercare_db_connections", 40, {"source": "erp"}, NOW - timedelta(minutes=5)),
        MetricSample("hypercare_db_connections", 42, {"source": "erp"}, NOW),
        MetricSample("hypercare_db_connections", 7, {"source": "finance"}, NOW),
        MetricSample("hypercare_db_deadlocks_total", 3, {"source": "erp"}, NOW),
        MetricSample(
            "hypercare_integration_backlog_messages", 9, {"integration": "outbox", "source": "erp"}, old
        ),
        MetricSample("hypercare_unrelated_metric", 1, {}, NOW),
    ]
    store(store_engine, [], samples)
    registry = CollectorRegistry()
    CheckResultsCollector(session_factory(store_engine), registry=registry, max_age_s=3600)
    get = registry.get_sample_value
    assert get("hypercare_db_connections", {"source": "erp"}) == 42
    assert get("hypercare_db_connections", {"source": "finance"}) == 7
    assert get("hypercare_db_deadlocks_total", {"source": "erp"}) == 3
    assert get("hypercare_integration_backlog_messages", {"integration": "outbox", "source": "erp"}) is None
    assert get("hypercare_unrelated_metric", {}) is None


def test_catalog_labels_checks_probes_and_collectors() -> None:
    settings = Settings(
        probes=[{"name": "login", "url": "http://erp/login", "severity": "P1"}],  # type: ignore[list-item]
        collectors={
            "jobs": [
                {
                    "name": "close",
                    "source": "erp",
                    "sql": "SELECT 1",
                    "expected_interval_s": 60,
                    "severity": "P3",
                }
            ]
        },  # type: ignore[arg-type]
    )
    catalog = check_catalog(settings)
    assert catalog["probe.login"] == CheckLabels("P1", "technical")
    assert catalog["job.close.stale"] == CheckLabels("P3", "process")
    assert catalog["db.connections"].category == "technical"


def test_served_metrics_pass_promtool(store_url: str, tmp_path: Path) -> None:
    promtool = tool("promtool", "prometheus")
    erp = tmp_path / "erp.db"
    sqlite3.connect(erp).close()
    settings = Settings(
        database_url=store_url,
        data_dir=tmp_path,
        sources={"erp": {"url": f"sqlite:///{erp}"}},  # type: ignore[dict-item]
        collectors={"db_health": {"sources": ["erp", "gone"]}},  # type: ignore[arg-type]
    )
    engine = make_engine(store_url)
    collected = Collection()
    for name in ("host", "db_health:erp", "db_health:gone"):
        results, samples = run_collector(name, settings, now=NOW)
        collected.results += results
        collected.samples += samples
    collected.samples += [probe_sample(0.04), probe_sample(1.2)]
    collected.results.append(result("gl.unbalanced", violations=1, amount_at_risk=Decimal("5.00")))
    store(engine, collected.results, collected.samples)
    with TestClient(build_app(settings, engine)) as client:
        text = client.get("/metrics").text
    engine.dispose()
    for expected in (
        "hypercare_host_memory_total_bytes ",
        'hypercare_db_up{source="erp"} 1.0',
        'hypercare_collector_errors_total{collector="db_health"} 1.0',
        'hypercare_probe_duration_seconds_bucket{le="0.05",probe="login",source="erp"} 1.0',
        "# TYPE hypercare_host_network_receive_bytes_total counter",
        'hypercare_check_duration_seconds{category="technical",check_id="host.memory",severity="',
    ):
        assert expected in text, expected
    lint = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_business_volumes_are_gauges_of_the_last_complete_bucket_kept_for_a_day(store_engine: Engine) -> None:
    labels = {"watch": "sales.volume.invoices", "key": "out", "measure": "count", "source": "erp"}
    samples = [
        MetricSample("hypercare_business_volume", 61, labels, NOW - timedelta(hours=3)),
        MetricSample("hypercare_business_volume", 5, {**labels, "key": "in"}, NOW - timedelta(hours=5)),
        MetricSample("hypercare_business_volume", 9, {**labels, "key": "old"}, NOW - timedelta(days=2)),
    ]
    store(store_engine, [result("volume.sales.volume.invoices", status="pass")], samples)
    registry = CollectorRegistry()
    catalog = check_catalog(Settings(), volumes=[])  # the watch's run result is labelled like a check
    CheckResultsCollector(session_factory(store_engine), catalog, registry=registry, max_age_s=3600)
    get = registry.get_sample_value
    assert get("hypercare_business_volume", labels) == 61  # hourly watches: older than max_age_s, kept
    assert get("hypercare_business_volume", {**labels, "key": "in"}) == 5
    assert get("hypercare_business_volume", {**labels, "key": "old"}) is None
