"""What the shipped Prometheus rules and Grafana dashboard query, and what Hypercare really exports."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import promql_parser
import yaml
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from anomaly.events import Event
from core.session import make_engine, session_factory, session_scope
from hypercare.app import build_app
from hypercare.config import Settings
from monitor.collect import Collection, store_collection
from monitor.collectors import run_collector
from monitor.results import CheckResult, MetricSample
from tickets.service import TicketService

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy/prometheus/hypercare.rules.yml"
RULE_TESTS = ROOT / "deploy/prometheus/tests/hypercare.rules.test.yml"
DASHBOARD = ROOT / "deploy/grafana/hypercare.json"
PROMETHEUS_OWN = frozenset({"up"})
"""Series Prometheus itself makes for every target."""


def metric_names(expr: str) -> set[str]:
    """Every metric name a PromQL expression selects (parsed, not pattern-matched)."""
    names: set[str] = set()

    def walk(node: Any) -> None:
        kind = type(node).__name__
        if kind == "VectorSelector":
            if node.name:
                names.add(node.name)
            return
        if kind == "MatrixSelector":
            walk(node.vector_selector)
            return
        for attr in ("expr", "lhs", "rhs", "param"):
            child = getattr(node, attr, None)
            if child is not None and not isinstance(child, (str, int, float)):
                walk(child)
        for arg in getattr(node, "args", None) or ():
            walk(arg)

    walk(promql_parser.parse(expr))
    return names


def rule_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return groups


def recorded() -> set[str]:
    return {rule["record"] for group in rule_groups() for rule in group["rules"] if "record" in rule}


def rule_exprs() -> list[str]:
    return [str(rule["expr"]) for group in rule_groups() for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    dashboard = __import__("json").loads(DASHBOARD.read_text(encoding="utf-8"))
    return [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", []) if t.get("expr")]


def exported(text: str) -> set[str]:
    """Every series name a /metrics answer can hold: its samples' names, and for families without a sample
    now (a dual run not yet compared) the names their type implies."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(sample.name for sample in family.samples)
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_count", "_sum"),
            "summary": ("_count", "_sum"),
        }.get(family.type, ("",))
        names.update(family.name + suffix for suffix in suffixes)
    return names


NOW = datetime.now(UTC)


def scrape(store_url: str, tmp_path: Path) -> str:
    """A real /metrics of the served app with a check failing, collectors run, a probe and a ticket."""
    erp = tmp_path / "erp.db"
    sqlite3.connect(erp).close()
    settings = Settings(
        database_url=store_url,
        data_dir=tmp_path,
        sources={"erp": {"url": f"sqlite:///{erp}", "currency": "CNY"}},  # type: ignore[dict-item]
        collectors={"db_health": {"sources": ["erp"]}},  # type: ignore[arg-type]
    )
    engine = make_engine(store_url)
    collected = Collection()
    for name in ("host", "db_health:erp"):
        results, samples = run_collector(name, settings, now=NOW)
        collected.results += results
        collected.samples += samples
    collected.results.append(
        CheckResult(
            check_id="gl.unbalanced",
            source="erp",
            status="fail",
            title="Unbalanced entries",
            category="data",
            severity="P1",
            started_at=NOW,
            finished_at=NOW,
            violations=1,
            amount_at_risk=Decimal("5.00"),
        )
    )
    collected.samples.append(
        MetricSample("hypercare_probe_duration_seconds", 0.2, {"probe": "login", "source": "erp"}, NOW)
    )
    with session_scope(session_factory(engine)) as session:
        store_collection(session, collected)
    with session_scope(session_factory(engine)) as session:
        TicketService(session, settings).ingest(
            Event(
                fingerprint="gl-1", severity="P1", category="data", summary="x", source="erp", check_id="gl.x"
            )
        )
    try:
        with TestClient(build_app(settings, engine)) as client:
            client.post("/api/v1/alertmanager", json={})  # a refused delivery: the route's request series
            return client.get("/metrics").text
    finally:
        engine.dispose()


def missing(exprs: list[str], text: str) -> dict[str, set[str]]:
    known = exported(text) | recorded() | PROMETHEUS_OWN
    return {expr: names - known for expr in exprs if (names := metric_names(expr)) - known}


def all_selectors(exprs: list[str]) -> Iterator[str]:
    for expr in exprs:
        yield from metric_names(expr)
