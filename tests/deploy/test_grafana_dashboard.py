"""deploy/grafana/hypercare.json is what deploy/grafana/build_dashboard.py (grafanalib) builds, covers the
areas an operator watches, and every query parses as PromQL and reads only metrics Hypercare exports (or the
recording rules shipped with it), checked against a real /metrics scrape."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import promql_parser

from tests.deploy.promql import DASHBOARD, ROOT, dashboard_exprs, missing, scrape


def test_the_dashboard_is_what_the_generator_builds() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "deploy/grafana/build_dashboard.py"), "--check"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_the_dashboard_has_a_row_per_area_and_a_prometheus_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows == ["Ticket flow", "SLA", "Checks", "Collectors", "Dual run", "Intake and notifications"]
    (variable,) = dashboard["templating"]["list"]
    assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for expr in dashboard_exprs():
        promql_parser.parse(expr)  # raises on a query Grafana would show as an error


def test_every_dashboard_query_reads_exported_metrics(store_url: str, tmp_path: Path) -> None:
    text = scrape(store_url, tmp_path)
    assert missing(dashboard_exprs(), text) == {}
