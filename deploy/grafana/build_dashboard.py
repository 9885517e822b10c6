"""Build ``deploy/grafana/hypercare.json``, Hypercare's Grafana dashboard, with grafanalib.

    python deploy/grafana/build_dashboard.py            # write hypercare.json
    python deploy/grafana/build_dashboard.py --check    # exit 1 when hypercare.json is not what this builds

Rows: ticket flow, SLA, checks, collectors, dual run, intake and notifications. Every query reads metrics
Hypercare exports or the recording rules of ``deploy/prometheus/hypercare.rules.yml``;
``tests/deploy/test_grafana_dashboard.py`` parses each with a PromQL parser and checks every metric against
a real ``/metrics`` scrape. The data source is the ``datasource`` variable (any Prometheus).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from grafanalib._gen import DashboardEncoder
from grafanalib.core import (
    Dashboard,
    GridPos,
    RowPanel,
    Stat,
    Table,
    Target,
    Template,
    Templating,
    Time,
    TimeSeries,
)

OUT = Path(__file__).with_name("hypercare.json")
OPEN = 'state=~"new|acknowledged|in_progress|waiting|reopened"'
"""The open states of ``hypercare_tickets``."""
DS = "${datasource}"
WIDTH = 24


def target(expr: str, legend: str = "", ref: str = "A", *, instant: bool = False) -> Target:
    return Target(expr=expr, legendFormat=legend, refId=ref, datasource=DS, instant=instant)


class Layout:
    """Panels left to right, rows top to bottom (grafanalib needs explicit grid positions)."""

    def __init__(self) -> None:
        self.y = 0
        self.x = 0
        self.height = 0

    def row(self, title: str) -> RowPanel:
        self.newline()
        panel = RowPanel(title=title, gridPos=GridPos(h=1, w=WIDTH, x=0, y=self.y))
        self.y += 1
        return panel

    def at(self, w: int, h: int = 8) -> GridPos:
        if self.x + w > WIDTH:
            self.newline()
        pos = GridPos(h=h, w=w, x=self.x, y=self.y)
        self.x += w
        self.height = max(self.height, h)
        return pos

    def newline(self) -> None:
        self.y += self.height
        self.x, self.height = 0, 0


def series(g: Layout, title: str, *targets: Target, w: int = 12, unit: str = "short") -> TimeSeries:
    return TimeSeries(title=title, dataSource=DS, targets=list(targets), gridPos=g.at(w), unit=unit)


def stat(g: Layout, title: str, expr: str, *, w: int = 6, unit: str = "none") -> Stat:
    return Stat(
        title=title,
        dataSource=DS,
        targets=[target(expr, instant=True)],
        gridPos=g.at(w, 4),
        format=unit,
        reduceCalc="lastNotNull",
    )


def build() -> Dashboard:
    g = Layout()
    panels = [
        g.row("Ticket flow"),
        stat(g, "Open P1", 'sum(hypercare_tickets_open{priority="P1"})'),
        stat(g, "Open P2", 'sum(hypercare_tickets_open{priority="P2"})'),
        stat(g, "Opened in 24 h", "sum(increase(hypercare_tickets_created_total[24h]))"),
        stat(g, "Resolved in 24 h", "sum(increase(hypercare_tickets_resolved_total[24h]))"),
        series(
            g,
            "Inflow and outflow (per hour)",
            target("hypercare:tickets_created:rate1h * 3600", "opened", "A"),
            target("hypercare:tickets_resolved:rate1h * 3600", "resolved", "B"),
        ),
        series(
            g,
            "Open tickets by priority",
            target("hypercare:tickets_open:sum_by_priority", "{{priority}}"),
        ),
        series(
            g,
            "Open tickets by queue",
            target(
                f"sum by (queue) (hypercare_tickets{{{OPEN}}})",
                "{{queue}}",
            ),
        ),
        series(
            g,
            "Open tickets by category",
            target(
                f"sum by (category) (hypercare_tickets{{{OPEN}}})",
                "{{category}}",
            ),
        ),
        g.row("SLA"),
        series(
            g,
            "Open tickets past their SLA",
            target("sum by (priority) (hypercare_tickets_sla_breached)", "{{priority}}"),
        ),
        Table(
            title="Breached by queue",
            dataSource=DS,
            targets=[target("sum by (queue, priority) (hypercare_tickets_sla_breached) > 0", instant=True)],
            gridPos=g.at(12),
        ),
        g.row("Checks"),
        series(
            g,
            "Failing checks by severity",
            target("hypercare:checks_failing:count_by_severity", "{{severity}} {{source}}"),
        ),
        Table(
            title="Failing checks now",
            dataSource=DS,
            targets=[target('hypercare_check_status{status="fail"} == 1', instant=True)],
            gridPos=g.at(12),
        ),
        series(
            g,
            "Money at risk",
            target("sum by (source, currency) (hypercare_check_amount_at_risk)", "{{source}} {{currency}}"),
        ),
        series(
            g,
            "Check duration",
            target("max by (check_id) (hypercare_check_duration_seconds)", "{{check_id}}"),
            unit="s",
        ),
        g.row("Collectors"),
        series(
            g,
            "Collector errors (per 15 min)",
            target("sum by (collector) (increase(hypercare_collector_errors_total[15m]))", "{{collector}}"),
        ),
        series(g, "Monitored databases up", target("hypercare_db_up", "{{source}}")),
        series(
            g,
            "Probe latency p95",
            target(
                "histogram_quantile(0.95, "
                "sum by (le, probe) (rate(hypercare_probe_duration_seconds_bucket[15m])))",
                "{{probe}}",
            ),
            unit="s",
        ),
        series(
            g,
            "Hypercare process",
            target("process_resident_memory_bytes", "resident memory {{instance}}"),
            unit="bytes",
        ),
        g.row("Dual run"),
        stat(g, "Cutover ready (1 go)", "min(hypercare_dualrun_ready)"),
        stat(g, "Unexplained differences", "sum(hypercare_dualrun_unexplained_differences)"),
        series(
            g,
            "Match ratio by entity",
            target("hypercare_dualrun_match_ratio", "{{comparison}} {{entity}}"),
            unit="percentunit",
        ),
        g.row("Intake and notifications"),
        series(
            g,
            "Alertmanager alerts by outcome (per 5 min)",
            target("hypercare:alertmanager_alerts:rate5m * 300", "{{outcome}}"),
        ),
        series(
            g,
            "Intake requests by status",
            target(
                'sum by (status) (rate(hypercare_http_requests_total{route="/api/v1/alertmanager"}[5m]))',
                "{{status}}",
            ),
            unit="reqps",
        ),
        series(g, "Notifications by status", target("hypercare_notifications", "{{status}}")),
        Table(
            title="Version",
            dataSource=DS,
            targets=[target("hypercare_build_info", instant=True)],
            gridPos=g.at(12),
        ),
    ]
    datasource = Template(
        name="datasource", type="datasource", query="prometheus", label="Prometheus", default=""
    )
    return Dashboard(
        title="Hypercare",
        uid="hypercare",
        tags=["hypercare"],
        timezone="browser",
        time=Time("now-24h", "now"),
        refresh="1m",
        templating=Templating(list=[datasource]),
        panels=panels,
    ).auto_panel_ids()


def render() -> str:
    return json.dumps(build().to_json_data(), cls=DashboardEncoder, indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is stale: run python {Path(__file__).as_posix()}", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
