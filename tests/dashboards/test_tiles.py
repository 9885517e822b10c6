"""Every tile is computed from the rows of the table below it (one definition, dashboards/data_health.py and
data_overview.py), on a store of known data, SQLite and PostgreSQL: the contradictions of issue 17 pinned
(integrations counted while only their tickets are open, anomalies counted with the probe failures of their
table, latency per probe and not a mean of unlike probes, the burn-down's sign in words, the go-live day
against the days of data, workarounds left on resolved tickets)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from core.session import make_engine, session_factory, session_scope
from dashboards import data, data_health, data_monitor, data_service
from dashboards.data import Filters, FlowDay
from dashboards.data_cutover import NO_DUALRUN
from dashboards.data_overview import burn_down, burn_down_text, exit_criteria, go_live_status
from dashboards.sql import read_only_engine
from hypercare.config import load_settings
from monitor.models import MetricSampleRow
from tests.dashboards.known_store import Known
from tickets.models import Ticket, Workaround


def _range(known: Known, days: int = 14) -> Filters:
    return Filters(known.now.date() - timedelta(days=days - 1), known.now.date())


def _write(store_url: str, *rows: Any, statements: tuple[Any, ...] = ()) -> None:
    engine = make_engine(store_url)
    with session_scope(session_factory(engine)) as session:
        session.add_all(rows)
        for statement in statements:
            session.execute(statement)
    engine.dispose()


def test_integration_tickets_make_an_interface_without_metrics(known: Known, store_url: str) -> None:
    """ "Interfaces 0 / Failed messages 0" while integration tickets are open: with no integration metric at
    all, the interface of the open ticket is still counted and the unknown figures are None, not 0."""
    _write(
        store_url,
        statements=(
            update(Ticket).where(Ticket.fingerprint == "fp-3").values(check_id="integration.stuck_messages"),
        ),
    )
    engine = read_only_engine(store_url)
    f = _range(known)
    with engine.connect() as conn:
        status = data_health.integration_status(
            conn, Filters(f.start, f.end, sources=("finance",)), known.now
        )
    engine.dispose()
    # the metrics are the erp source's: within "finance" only the ticket is known
    assert [(r.interface, r.open_tickets, r.backlog, r.failed_messages) for r in status.rows] == [
        ("integration.stuck_messages", 1, None, None)
    ]
    assert status.failed_messages is None and status.backlog is None and not status.metrics_collected
    assert len(status.tickets) == sum(r.open_tickets for r in status.rows) == 1


def test_integration_tiles_agree_with_the_interface_table(known: Known, store_url: str) -> None:
    engine = read_only_engine(store_url)
    with engine.connect() as conn:
        status = data_health.integration_status(conn, _range(known), known.now)
        criteria = {
            c.name: c
            for c in exit_criteria(
                conn, load_settings(), _range(known), known.now, pack_of={}, dualrun=NO_DUALRUN
            )
        }
    engine.dispose()
    [row] = status.rows
    assert (row.interface, row.backlog, row.oldest_age_s, row.failed_messages, row.open_tickets) == (
        "finance-out",
        12.0,
        5400.0,
        2.0,
        1,
    )
    assert status.failed_messages == sum(r.failed_messages or 0 for r in status.rows) == 2.0
    assert [t.id for t in status.tickets] and status.tickets[0].interface == "finance-out"
    crit = criteria["Interfaces flowing"]
    assert crit.ok is False and crit.value == "oldest message 90 min; 1 open integration ticket(s)"


def test_anomaly_tiles_count_the_rows_of_their_table(known: Known, store_url: str) -> None:
    """ "Anomalies 0" above a table with a probe failure: both kinds are tiles over the one table."""
    engine = read_only_engine(store_url)
    with engine.connect() as conn:
        marks = data_monitor.anomalies(conn, _range(known))
    engine.dispose()
    counts = data_health.count_by_kind(marks)
    assert counts == {"anomaly": 1, "probe failure": 1}
    assert sum(counts.values()) == len(marks)


def test_latency_is_per_probe_with_its_p95(known: Known, store_url: str) -> None:
    """ "Mean latency 999 ms" averaging a 5 ms probe with a 1,993 ms one: each probe has its own row."""
    fast = {"probe": "health", "source": "erp"}
    _write(
        store_url,
        *(
            MetricSampleRow(
                name=data_monitor.PROBE_LATENCY, labels=fast, ts=known.now - timedelta(minutes=m), value=0.005
            )
            for m in range(1, 21)
        ),
        *(
            MetricSampleRow(
                name=data_monitor.PROBE_LATENCY,
                labels={"probe": "post-invoice", "source": "erp"},
                ts=known.now - timedelta(minutes=m),
                value=1.0 + m / 10,  # 1.1 .. 3.0 s: p95 (rank 19 of 20) is 2.9 s
            )
            for m in range(1, 21)
        ),
    )
    engine = read_only_engine(store_url)
    with engine.connect() as conn:
        rows = data_health.probe_latency(conn, _range(known))
    engine.dispose()
    by = {r.probe: r for r in rows}
    assert (by["health"].runs, by["health"].p95_ms, by["health"].max_ms) == (20, 5.0, 5.0)
    assert (by["post-invoice"].p95_ms, by["post-invoice"].max_ms) == (2900.0, 3000.0)
    assert (by["erp-api"].runs, by["erp-api"].p95_ms, by["erp-api"].mean_ms) == (2, 400.0, 300.0)
    assert data_health.slowest(rows) == by["post-invoice"]
    assert [r.probe for r in rows] == ["post-invoice", "erp-api", "health"]


def test_error_tile_is_the_total_of_the_per_probe_table(known: Known, store_url: str) -> None:
    engine = read_only_engine(store_url)
    with engine.connect() as conn:
        success = data_monitor.metric_series(conn, _range(known), data_monitor.PROBE_SUCCESS, "probe")
    engine.dispose()
    rows = data_health.probe_errors(success)
    assert [(r.probe, r.runs, r.failed) for r in rows] == [("erp-api", 4, 1)]
    total = data_health.total_errors(rows)
    assert (total.runs, total.failed, total.error_rate) == (4, 1, 0.25)
    # the chart's points carry the same failures (the failing hour is a bar with a non-zero error rate)
    points = data_monitor.error_rate(success)
    assert round(sum(p.mean * p.samples for p in points)) == total.failed
    assert sum(p.samples for p in points) == total.runs and max(p.mean for p in points) > 0


def test_burn_down_words_follow_the_sign() -> None:
    today = known_day = FlowDay(day=date(2026, 12, 7), inflow=5, outflow=2, net=3, backlog=9)
    growing = burn_down([today])
    assert growing.daily_burn == -3.0
    assert burn_down_text(growing) == "Backlog **9**, growing by 3.0 a day (last 7 days): no exit in sight."
    shrinking = burn_down([FlowDay(known_day.day, 1, 4, -3, 9)])
    assert burn_down_text(shrinking).startswith("Backlog **9**, shrinking by 3.0 a day")
    assert "flat" in burn_down_text(burn_down([FlowDay(known_day.day, 2, 2, 0, 9)]))


def test_go_live_day_says_how_many_days_have_data(known: Known, store_url: str) -> None:
    """ "Go-live day 21" with one day of data: the day counts from go-live, the caveat says what the data
    covers (the known store's first ticket is 20 days old: 21 days of data)."""
    engine = read_only_engine(store_url)
    today = known.now.date()
    with engine.connect() as conn:
        recent = go_live_status(conn, today - timedelta(days=9), today)
        early = go_live_status(conn, today - timedelta(days=30), today)
        unset = go_live_status(conn, None, today)
        ahead = go_live_status(conn, today + timedelta(days=3), today)
    engine.dispose()
    assert (recent.text(), recent.caveat()) == ("10", None)
    assert early.text() == "31"
    assert early.caveat() == f"data since {(today - timedelta(days=20)).isoformat()}: 21 of 31 days"
    assert (unset.text(), unset.caveat()) == ("not set", None)
    assert ahead.text() == "in 3 d"


def test_a_workaround_left_on_a_resolved_ticket_does_not_turn_the_criterion_red(
    known: Known, store_url: str
) -> None:
    """ "Manual workarounds retired" turned red after a workaround was added and its ticket resolved: one
    on a resolved ticket is no longer in place; it is named apart, and the register still lists it."""
    engine = make_engine(store_url)
    with session_scope(session_factory(engine)) as session:
        t2 = session.query(Ticket).filter_by(fingerprint="fp-2").one()
        t2.status, t2.resolved_at, t2.open_fingerprint = "resolved", known.now, None
        w = session.query(Workaround).filter_by(ticket_id=t2.id).one()
        wid = w.id
    engine.dispose()
    ro = read_only_engine(store_url)
    with ro.connect() as conn:
        register = data_service.active_workarounds(Session(bind=conn), _range(known), known.now)
        criteria = {
            c.name: c
            for c in exit_criteria(
                conn, load_settings(), _range(known), known.now, pack_of={}, dualrun=NO_DUALRUN
            )
        }
    ro.dispose()
    assert [(r.id, r.in_place, r.ticket_status) for r in register] == [(wid, False, "resolved")]
    assert data_service.in_place(register) == []
    crit = criteria["Manual workarounds retired"]
    assert crit.ok is True and crit.value == "0 in place; 1 on resolved tickets still to end"


def test_open_counts_tile_is_the_urgent_table(known: Known, store_url: str) -> None:
    engine = read_only_engine(store_url)
    with engine.connect() as conn:
        counts = data.open_counts(conn, _range(known))
        urgent = data.open_urgent(conn, _range(known), known.now)
    engine.dispose()
    assert counts["P1"] == sum(1 for u in urgent if u.priority == "P1")
    assert counts["P2"] == sum(1 for u in urgent if u.priority == "P2")
