"""The dashboard's query functions on a store of known data, on SQLite and PostgreSQL: each KPI is the number
worked out by hand in known_store.py."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.session import make_engine, session_factory, session_scope
from dashboards import data, data_monitor, data_service
from dashboards.data import Filters
from dashboards.data_cutover import NO_DUALRUN
from dashboards.data_overview import burn_down, exit_criteria, net_flow_streak
from dashboards.sql import read_only_engine
from hypercare.config import load_settings
from tests.dashboards.known_store import Known, _ticket
from tests.queries import record_statements
from tickets.models import Ticket


def _range(known: Known, days: int = 14, **kw: object) -> Filters:
    today = known.now.date()
    return Filters(today - timedelta(days=days - 1), today, **kw)  # type: ignore[arg-type]


def test_ticket_kpis_are_the_known_figures(known: Known, store_url: str) -> None:
    engine = read_only_engine(store_url)
    f = _range(known)
    with engine.connect() as conn:
        assert data.open_counts(conn, f) == {"P1": 1, "P2": 2, "P3": 1, "P4": 1}
        days = data.flow(conn, f)
        assert len(days) == 14
        assert (sum(d.inflow for d in days), sum(d.outflow for d in days)) == (6, 2)
        # before the range: #6 (resolved 18 days ago) is not open, #7 is -> 1; then +6 -2
        assert days[-1].backlog == 5
        urgent = data.open_urgent(conn, f, known.now)
        assert [(u.priority, u.title) for u in urgent] == [
            ("P1", "Ticket 1"),
            ("P2", "Ticket 3"),
            ("P2", "Ticket 2"),
        ]
        assert urgent[0].age_h == 2.0
        ages = {(a.priority, a.bucket): a.tickets for a in data.backlog_by_age(conn, f, known.now)}
        assert ages[("P1", "0-2 d")] == 1
        assert ages[("P2", "3-7 d")] == 1 and ages[("P2", "8-14 d")] == 1
        assert ages[("P3", ">14 d")] == 1 and ages[("P4", "0-2 d")] == 1
        assert sum(ages.values()) == 5
        mtta = {r.priority: r for r in data.mtta(conn, f)}
        assert (mtta["P2"].tickets, mtta["P2"].mean_h, mtta["P2"].median_h, mtta["P2"].p90_h) == (
            2,
            1.25,
            0.5,
            2.0,
        )
        assert (mtta["P3"].tickets, mtta["P3"].mean_h) == (2, 1.5)
        assert mtta["P1"].tickets == 0 and mtta["P1"].mean_h is None
        mttr = {r.priority: r for r in data.mttr(conn, f)}
        assert (mttr["P3"].tickets, mttr["P3"].mean_h, mttr["P3"].median_h, mttr["P3"].p90_h) == (
            2,
            14.0,
            10.0,
            18.0,
        )
        sla = {r.priority: r for r in data_service.sla_compliance(conn, f, known.now)}
        assert (sla["P1"].response_due, sla["P1"].response_met) == (1, 0)
        assert (
            sla["P2"].response_due,
            sla["P2"].response_met,
            sla["P2"].resolution_due,
            sla["P2"].resolution_met,
        ) == (2, 1, 1, 0)
        assert (sla["P3"].response_ratio, sla["P3"].resolution_ratio) == (1.0, 1.0)
        assert (sla["P4"].response_due, sla["P4"].response_met, sla["P4"].resolution_due) == (1, 0, 0)
        week = data_service.combined(data_service.sla_compliance(conn, _range(known, 7), known.now))
        assert (week.response_met, week.response_due, week.resolution_met, week.resolution_due) == (
            3,
            5,
            2,
            3,
        )
        breaches = data_service.sla_breaches(conn, f, known.now)
        assert sorted((b.clock, b.title) for b in breaches) == [
            ("resolution", "Ticket 2"),
            ("response", "Ticket 1"),
            ("response", "Ticket 3"),
            ("response", "Ticket 8"),
        ]
        reopen = data_service.reopen_rate(conn, f)
        assert (reopen.numerator, reopen.denominator) == (1, 2)
        cats = data_service.pareto(conn, f, "category")
        assert [(c.value, c.tickets) for c in cats] == [("user", 3), ("data", 2), ("process", 1)]
        assert cats[-1].cumulative == 1.0
        queues = {q.queue: q for q in data_service.by_queue(conn, f)}
        assert (queues["finance"].inflow, queues["finance"].resolved, queues["finance"].open) == (4, 2, 2)
        assert (queues["service"].inflow, queues["service"].open) == (1, 2)
        modules = [(m.module, m.tickets, m.open) for m in data_service.user_errors_by_module(conn, f)]
        assert modules == [("ar", 2, 1), ("ap", 1, 0)]
        sat = data_service.satisfaction(conn, f)
        assert (sat.ratings, sat.mean, sat.by_score[4], sat.by_score[2]) == (2, 3.0, 1, 1)
        workarounds = data_service.active_workarounds(Session(bind=conn), f, known.now)
        assert [(w.what, w.age_d) for w in workarounds] == [("Post the drift by hand", 4.0)]
    engine.dispose()


def test_filters_narrow_to_a_source_and_a_queue(known: Known, store_url: str) -> None:
    engine = read_only_engine(store_url)
    with engine.connect() as conn:
        finance = _range(known, sources=("finance",))
        assert data.open_counts(conn, finance) == {"P1": 0, "P2": 1, "P3": 0, "P4": 1}
        service = _range(known, queues=("service",))
        assert data.open_counts(conn, service) == {"P1": 0, "P2": 0, "P3": 1, "P4": 1}
        assert data_service.active_workarounds(Session(bind=conn), service, known.now) == []
        short = _range(known, 2)
        assert sum(d.inflow for d in data.flow(conn, short)) in (
            2,
            3,
        )  # #1 (2 h ago) and #8 (1 d ago) at least
    engine.dispose()


def test_monitor_kpis_are_the_known_figures(known: Known, store_url: str) -> None:
    engine = read_only_engine(store_url)
    f = _range(known)
    with engine.connect() as conn:
        rates = data_monitor.check_pass_rates(conn, f, {})
        assert {r.check_id for r in rates} == {"gl.balance", "ar.drift"}  # the probe is not a data check
        assert (sum(r.executed for r in rates), sum(r.passed for r in rates)) == (5, 2)
        summaries = data_monitor.check_summaries(conn, f, {"gl.balance": "ledger"})
        assert [(s.check_id, s.pack, s.last_status, s.failed) for s in summaries] == [
            ("ar.drift", "(custom)", "fail", 2),
            ("gl.balance", "ledger", "pass", 1),
        ]
        assert data_monitor.latest_pass_ratio(summaries) == 0.5
        money = data_monitor.open_money_at_risk(conn, f)
        assert sum(m.amount for m in money) == Decimal("1250.50")
        latency = data_monitor.metric_series(conn, f, data_monitor.PROBE_LATENCY, "probe")
        assert {p.series for p in latency} == {"erp-api"}
        assert sum(p.samples for p in latency) == 2 and max(p.max for p in latency) == 0.4
        success = data_monitor.metric_series(conn, f, data_monitor.PROBE_SUCCESS, "probe")
        runs = sum(p.samples for p in success)
        ok = sum(p.mean * p.samples for p in success)
        assert (runs, round(ok)) == (4, 3)
        marks = data_monitor.anomalies(conn, f)
        assert sorted(m.kind for m in marks) == ["anomaly", "probe failure"]
        ifaces = data_monitor.interfaces(conn, f)
        assert [(i.integration, i.backlog, i.oldest_age_s, i.failed) for i in ifaces] == [
            ("finance-out", 12.0, 5400.0, 2.0)
        ]
        host = data_monitor.latest_values(conn, f, data_monitor.HOST_METRICS)
        assert [(h.name, h.labels, h.value) for h in host] == [
            ("hypercare_host_cpu_usage_ratio", "source=erp", 0.5)
        ]
    engine.dispose()


def test_exit_criteria_and_burn_down(known: Known, store_url: str) -> None:
    settings = load_settings()
    engine = read_only_engine(store_url)
    f = _range(known)
    with engine.connect() as conn:
        criteria = {
            c.name: c for c in exit_criteria(conn, settings, f, known.now, pack_of={}, dualrun=NO_DUALRUN)
        }
        days = data.flow(conn, f)
    engine.dispose()
    assert criteria["No open P1, few open P2"].ok is False
    assert criteria["No open P1, few open P2"].value == "P1 1, P2 2"
    assert criteria["Reopen rate (14 d)"].value == "50.0 % (1/2)"
    assert criteria["Data consistency"].ok is False
    assert criteria["Interfaces flowing"].ok is False  # 90 min > 60 min
    assert criteria["Manual workarounds retired"].value == "1 in place"
    assert criteria["Dual run"].ok is None
    assert net_flow_streak(days) == 0 or days[-1].net <= 0
    bd = burn_down(days)
    assert bd.backlog == 5


def test_queries_are_a_fixed_number_whatever_the_rows(known: Known, store_url: str) -> None:
    """No N+1: the flow of 14 days is three statements."""
    engine = read_only_engine(store_url)
    statements = record_statements(engine)
    with engine.connect() as conn:
        data.flow(conn, _range(known))
    engine.dispose()
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 3


def test_the_dashboard_engine_cannot_write(known: Known, store_url: str) -> None:
    import pytest
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    engine = read_only_engine(store_url)
    with engine.connect() as conn, pytest.raises(DBAPIError):
        conn.execute(text("UPDATE ticket SET title = 'x'"))
    engine.dispose()


def test_csv_download_is_what_the_table_shows() -> None:
    import csv
    import io

    from dashboards.data_service import ParetoRow
    from dashboards.present import to_csv

    blob = to_csv([ParetoRow("user", 3, 0.5, 0.5), ParetoRow("données", 3, 0.5, 1.0)])
    assert blob.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(blob.decode("utf-8-sig"))))
    assert rows == [
        {"value": "user", "tickets": "3", "share": "0.5", "cumulative": "0.5"},
        {"value": "données", "tickets": "3", "share": "0.5", "cumulative": "1.0"},
    ]
    assert to_csv([], ["a", "b"]).decode("utf-8-sig").strip() == "a,b"


def test_days_are_the_site_zones_days(known: Known, store_url: str) -> None:
    """A range of Shanghai days counts a ticket on its Shanghai day (20:00 UTC is 04:00 the next day there),
    and every day's inflow is the count of tickets created on that local day."""
    yesterday = known.now.date() - timedelta(days=1)
    late = datetime.combine(yesterday, time(20, 0), tzinfo=UTC)
    engine = make_engine(store_url)
    with session_scope(session_factory(engine)) as session:
        session.add(_ticket(99, known.now, priority="P4", created=late))
    with session_scope(session_factory(engine)) as session:
        created = list(session.scalars(select(Ticket.created_at)))
    engine.dispose()
    shanghai = ZoneInfo("Asia/Shanghai")
    today = known.now.astimezone(shanghai).date()
    f = Filters(today - timedelta(days=13), today, tz="Asia/Shanghai")
    assert f.start_at == datetime.combine(f.start, time(0), tzinfo=shanghai)
    local_days = Counter(c.astimezone(shanghai).date() for c in created)
    ro = read_only_engine(store_url)
    with ro.connect() as conn:
        days = data.flow(conn, f)
        utc_days = data.flow(conn, Filters(yesterday - timedelta(days=1), yesterday))
    ro.dispose()
    assert [d.day for d in days] == f.days()
    assert {d.day: d.inflow for d in days} == {day: local_days.get(day, 0) for day in f.days()}
    assert {d.day: d.inflow for d in days}[late.astimezone(shanghai).date()] >= 1
    assert utc_days[-1].inflow == sum(1 for c in created if c.astimezone(UTC).date() == yesterday)
