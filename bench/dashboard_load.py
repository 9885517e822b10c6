"""Dashboard load: every page rendered against a big PostgreSQL store (1M tickets, 10M metric samples).

The store is generated inside PostgreSQL with ``generate_series`` (no rows travel through Python), migrated by
Alembic first (the dashboards' indexes come from migration 0009), then ANALYZEd. Each page is then rendered
through Streamlit's AppTest (the whole script: every query of the page, charts, tables) with an empty cache,
three times; the median is reported next to the target of 2 s. The query time of each page alone is measured
too: the sidebar's filter menus, then the page's query functions on ``dashboard.query_threads`` threads with a
connection each, as the page runs them (no Streamlit).

    python bench/dashboard_load.py                      # 1M tickets, 10M samples (~5-10 min to generate)
    python bench/dashboard_load.py --scale 0.02         # quick: 20k tickets, 200k samples
    python bench/dashboard_load.py --reuse              # keep the generated database (migrated to head)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.session import make_engine  # noqa: E402
from hypercare.store import upgrade  # noqa: E402

DEFAULT_URL = os.environ.get("HYPERCARE_TEST_DATABASE_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")
DB_NAME = "hc_bench_dashboard"
PAGES = ("overview", "tickets", "consistency", "performance", "integrations", "cutover")
TARGET_S = 2.0
console = Console()

TICKETS_SQL = """
INSERT INTO ticket (fingerprint, open_fingerprint, title, description, status, priority, impact, urgency,
  category, source, check_id, queue, labels, entity, occurrence_count, reopen_count, first_seen_at,
  last_seen_at, created_at, updated_at, acknowledged_at, resolved_at, closed_at, sla_response_due_at,
  sla_resolution_due_at, sla_elapsed_s, sla_paused_s, sla_state, escalation_level, amount_at_risk)
SELECT 'fp-' || g,
  CASE WHEN r.open THEN 'fp-' || g END,
  'Generated ticket ' || g, '',
  CASE WHEN r.open THEN (ARRAY['new','acknowledged','in_progress','waiting','reopened'])[1 + g % 5]
       ELSE (ARRAY['resolved','closed'])[1 + g % 2] END,
  r.prio, 'medium', 'medium',
  (ARRAY['data','process','technical','user'])[1 + (g / 7) % 4],
  (ARRAY['erp','finance','legacy','alertmanager'])[1 + (g / 3) % 4],
  'check.' || (g % 40),
  (ARRAY['finance','service','integration','hypercare'])[1 + (g / 11) % 4],
  jsonb_build_object('module', (ARRAY['gl','ar','ap','inv','fa'])[1 + g % 5]),
  '{}'::jsonb, 1, CASE WHEN g % 23 = 0 THEN 1 ELSE 0 END,
  r.created, r.created, r.created, r.created,
  CASE WHEN g % 10 <> 0 THEN r.created + (g % 120) * interval '1 minute' END,
  CASE WHEN NOT r.open THEN r.created + (g % 4000) * interval '1 minute' END,
  NULL,
  r.created + interval '1 hour',
  r.created + interval '27 hours',
  0, CASE WHEN g % 9 = 0 THEN 3600 ELSE 0 END, 'ok', 0,
  CASE WHEN g % 5 = 0 THEN (g % 100000) / 7.0 END
FROM generate_series(1, :n) AS g,
LATERAL (SELECT now() - (g::float / :n) * interval '90 days' AS created,
                (ARRAY['P1','P2','P3','P4'])[1 + (g % 17) % 4] AS prio,
                (g % 50 = 0) AS open) AS r
"""

SAMPLES_SQL = """
INSERT INTO metric_sample (name, labels, ts, value)
SELECT m.name, m.labels, now() - (g::float / :n) * interval '30 days', m.base + (g % 97) / 100.0
FROM generate_series(1, :n) AS g,
LATERAL (SELECT (ARRAY['hypercare_probe_duration_seconds','hypercare_probe_success',
                       'hypercare_host_cpu_usage_ratio','hypercare_host_memory_usage_ratio',
                       'hypercare_db_connections_usage_ratio','hypercare_integration_backlog_messages',
                       'hypercare_integration_oldest_message_age_seconds','hypercare_db_up',
                       'hypercare_integration_failed_messages',
                       'hypercare_host_disk_usage_ratio'])[1 + g % 10] AS name,
                jsonb_build_object('probe', 'probe-' || (g / 10) % 5, 'integration', 'iface-' || (g / 10) % 4,
                                   'source', (ARRAY['erp','finance'])[1 + (g / 50) % 2]) AS labels,
                CASE WHEN g % 10 = 1 THEN 0 ELSE 0.1 END AS base) AS m
"""

CHECKS_SQL = """
INSERT INTO check_run (started_at, finished_at, trigger, passed, failed, errored)
SELECT now() - g * interval '15 minutes', now() - g * interval '15 minutes', 'bench', 0, 0, 0
FROM generate_series(1, :runs) AS g;
INSERT INTO check_result (run_id, check_id, source, status, violations, measured_value, amount_at_risk,
  sample, error, duration_s, started_at, finished_at)
SELECT r.id, 'check.' || c, 'erp', CASE WHEN (r.id + c) % 13 = 0 THEN 'fail' ELSE 'pass' END,
  CASE WHEN (r.id + c) % 13 = 0 THEN 3 ELSE 0 END, NULL, NULL, '[]'::jsonb, NULL, 0.1,
  r.started_at, r.finished_at
FROM check_run r, generate_series(0, 39) AS c;
"""


def migrate(url: str) -> None:
    """A reused store brought to the head revision (indexes of later migrations built), then vacuumed: the
    visibility map lets the covering index of metric samples answer index-only."""
    engine = make_engine(url)
    started = time.perf_counter()
    upgrade(engine)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("ticket", "metric_sample", "check_result"):
            conn.execute(text(f"VACUUM ANALYZE {table}"))
    engine.dispose()
    console.print(f"migrated and vacuumed in {time.perf_counter() - started:.1f}s")


def _admin_url(url: str) -> str:
    return make_url(url).set(database="postgres").render_as_string(hide_password=False)


def generate(url: str, tickets: int, samples: int) -> None:
    admin = create_engine(_admin_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{DB_NAME}"'))
    admin.dispose()
    engine = make_engine(url)
    upgrade(engine)
    steps: list[tuple[str, str, dict[str, Any]]] = [
        (f"{tickets:,} tickets", TICKETS_SQL, {"n": tickets}),
        (f"{samples:,} metric samples", SAMPLES_SQL, {"n": samples}),
        (
            "check results (30 days x 96 runs x 40 checks)",
            CHECKS_SQL,
            {"runs": max(96, min(2880, tickets // 300))},
        ),
    ]
    for label, sql, params in steps:
        started = time.perf_counter()
        with engine.begin() as conn:
            for statement in sql.split(";"):
                if statement.strip():
                    conn.execute(text(statement), params)
        console.print(f"generated {label} in {time.perf_counter() - started:.1f}s")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("ticket", "metric_sample", "check_result"):
            conn.execute(text(f"VACUUM ANALYZE {table}"))
        conn.execute(text("ANALYZE"))
    engine.dispose()


def render_times(url: str, repeat: int) -> dict[str, list[float]]:
    """Seconds to render each page via AppTest, the Streamlit cache cleared before every run."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ["HYPERCARE_DATABASE_URL"] = url
    os.environ.pop("HYPERCARE_CONFIG", None)
    os.environ.setdefault(
        "HYPERCARE_DASHBOARD__GO_LIVE_DATE", (datetime.now(UTC) - timedelta(days=60)).date().isoformat()
    )
    times: dict[str, list[float]] = {p: [] for p in PAGES}
    warm = AppTest.from_file(str(ROOT / "dashboards" / "app.py"), default_timeout=120)
    warm.session_state["hypercare_user"] = "bench (manager)"
    warm.run()  # imports, engine, schema check: not part of a page's render
    for _ in range(repeat):
        for page in PAGES:
            st.cache_data.clear()
            started = time.perf_counter()
            warm.switch_page(f"pages/{page}.py").run()
            elapsed = time.perf_counter() - started
            if warm.exception:
                raise SystemExit(f"page {page} failed: {warm.exception[0].value}")
            times[page].append(elapsed)
    return times


def query_times(url: str, repeat: int) -> dict[str, list[float]]:
    """Seconds of the page's queries alone (no Streamlit): the filter menus, then the page's query functions
    at once on ``dashboard.query_threads`` threads, a connection each, as the page starts them."""
    from sqlalchemy.orm import Session

    from dashboards import data, data_monitor, data_service
    from dashboards.data_cutover import load_dualrun
    from dashboards.data_overview import exit_criteria
    from dashboards.sql import read_only_engine
    from hypercare.config import load_settings

    settings = load_settings()
    engine = read_only_engine(url)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    f = data.Filters(now.date() - timedelta(days=13), now.date())
    Q = Callable[[Any], Any]

    def pareto(dimension: data_service.ParetoDimension) -> Q:
        return lambda c: data_service.pareto(c, f, dimension)

    pages: dict[str, list[Q]] = {
        "overview": [
            lambda c: data.open_counts(c, f),
            lambda c: data.flow(c, f),
            lambda c: data.open_urgent(c, f, now),
            lambda c: data_service.sla_compliance(c, f.last(7, now.date()), now),
            lambda c: exit_criteria(
                c, settings, f, now, pack_of={}, dualrun=load_dualrun(c, settings, f, now)
            ),
        ],
        "tickets": [
            lambda c: data.flow(c, f),
            lambda c: data_service.reopen_rate(c, f),
            lambda c: data_service.satisfaction(c, f),
            lambda c: data.backlog_by_age(c, f, now),
            lambda c: data_service.sla_compliance(c, f, now),
            lambda c: data.response_times(c, f, "MTTA"),
            lambda c: data.response_times(c, f, "MTTR"),
            lambda c: data_service.sla_breaches(c, f, now),
            pareto("category"),
            pareto("check_id"),
            pareto("source"),
            lambda c: data_service.by_queue(c, f),
            lambda c: data_service.user_errors_by_module(c, f),
            lambda c: data_service.active_workarounds(Session(bind=c), f, now),
        ],
        "consistency": [
            lambda c: data_monitor.check_pass_rates(c, f, {}),
            lambda c: data_monitor.check_summaries(c, f, {}),
            lambda c: data_monitor.open_money_at_risk(c, f),
        ],
        "performance": [
            lambda c: data_monitor.metric_series(c, f, data_monitor.PROBE_LATENCY, "probe"),
            lambda c: data_monitor.metric_series(c, f, data_monitor.PROBE_SUCCESS, "probe"),
            lambda c: data_monitor.metric_series(c, f, "hypercare_host_cpu_usage_ratio", "source"),
            lambda c: data_monitor.anomalies(c, f),
            lambda c: data_monitor.latest_values(c, f, data_monitor.HOST_METRICS),
            lambda c: data_monitor.latest_values(c, f, data_monitor.DB_METRICS),
        ],
        "integrations": [
            lambda c: data_monitor.interfaces(c, f),
            lambda c: data_monitor.metric_series(c, f, data_monitor.INTEGRATION_BACKLOG, "integration"),
            lambda c: data_monitor.metric_series(c, f, data_monitor.INTEGRATION_FAILED, "integration"),
            lambda c: data_monitor.failing_checks(c, f, "integration."),
        ],
        "cutover": [lambda c: load_dualrun(c, settings, f, now)],
    }

    def run(fn: Q) -> Any:
        with engine.connect() as conn:
            return fn(conn)

    times: dict[str, list[float]] = {p: [] for p in PAGES}
    with ThreadPoolExecutor(max_workers=settings.dashboard.query_threads) as pool:
        for _ in range(repeat):
            for page, fns in pages.items():
                started = time.perf_counter()
                run(lambda c: data.filter_options(c, f))
                list(pool.map(run, fns))
                times[page].append(time.perf_counter() - started)
    engine.dispose()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default=DEFAULT_URL, help="a PostgreSQL server (its database is replaced)")
    parser.add_argument("--scale", type=float, default=1.0, help="1 = 1M tickets and 10M samples")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reuse", action="store_true", help="keep the database generated by the last run")
    args = parser.parse_args()
    url = make_url(args.url).set(database=DB_NAME).render_as_string(hide_password=False)
    tickets, samples = int(1_000_000 * args.scale), int(10_000_000 * args.scale)
    if args.reuse:
        migrate(url)
    else:
        generate(url, tickets, samples)
    with create_engine(url).connect() as conn:
        counts = {
            t: conn.scalar(text(f"SELECT count(*) FROM {t}"))
            for t in ("ticket", "metric_sample", "check_result")
        }
    console.print(f"store: {counts}; load average {os.getloadavg()[0]:.1f}")
    queries = query_times(url, args.repeat)
    renders = render_times(url, args.repeat)
    table = Table(title=f"Dashboard pages, median of {args.repeat} (target < {TARGET_S:.0f} s per page)")
    for col in ("page", "queries (s)", "full render, AppTest (s)", "within target"):
        table.add_column(col)
    for page in PAGES:
        q, r = statistics.median(queries[page]), statistics.median(renders[page])
        table.add_row(page, f"{q:.3f}", f"{r:.3f}", "yes" if r < TARGET_S else "[red]NO[/]")
    console.print(table)
    console.print(f"load average now: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
