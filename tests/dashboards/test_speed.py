"""What keeps the pages fast at 1M tickets without changing their numbers: MTTA/MTTR and their trend in one
pass, the backlog before a range as two index ranges, a page's queries started at once on the query threads,
and records built field by field (SQLite and PostgreSQL where a store is involved)."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from core.session import make_engine, session_factory, session_scope
from dashboards import data, ui
from dashboards.data import Filters
from dashboards.present import records
from dashboards.sql import read_only_engine
from hypercare.config import load_settings
from tests.dashboards.known_store import _ticket
from tests.queries import record_statements

H = timedelta(hours=1)


def _seed_response_times(url: str, now: datetime) -> None:
    """Ten P3 tickets acknowledged 1..10 h after creation, on three days (4 + 3 + 3); the even ones
    resolved 20 h after creation with 2 h of waiting (MTTR 18 h), #10 resolved 40 h after (MTTR 38 h)."""
    start = datetime.combine(now.date() - timedelta(days=5), datetime.min.time(), tzinfo=UTC)
    engine = make_engine(url)
    with session_scope(session_factory(engine)) as session:
        for n in range(1, 11):
            created = start + timedelta(days=(n - 1) // 4 if n <= 4 else 1 + (n - 5) // 3) + H
            resolved = None if n % 2 else created + (40 if n == 10 else 20) * H
            session.add(
                _ticket(
                    n,
                    now,
                    priority="P3",
                    created=created,
                    status="resolved" if resolved else "acknowledged",
                    acknowledged_at=created + n * H,
                    resolved_at=resolved,
                    sla_paused_s=2 * 3600.0 if resolved else 0.0,
                )
            )
    engine.dispose()


def test_mtta_mttr_and_trend_in_one_pass(store_url: str) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    _seed_response_times(store_url, now)
    engine = read_only_engine(store_url)
    f = Filters(now.date() - timedelta(days=13), now.date())
    statements = record_statements(engine)
    with engine.connect() as conn:
        mtta = data.response_times(conn, f, "MTTA")
        mttr = data.response_times(conn, f, "MTTR")
        assert data.mtta(conn, f) == mtta.durations and data.mttr(conn, f) == mttr.durations
        assert data.time_trend(conn, f) == mtta.trend + mttr.trend
    engine.dispose()
    assert len(statements) == 2 + 4  # one statement per measure, whatever the days and priorities
    p3 = {d.priority: d for d in mtta.durations}["P3"]
    # 1..10 h: mean 5.5, nearest rank 5 of 10 -> 5 h, rank 9 of 10 -> 9 h
    assert (p3.tickets, p3.mean_h, p3.median_h, p3.p90_h) == (10, 5.5, 5.0, 9.0)
    assert {d.priority: d.tickets for d in mtta.durations} == {"P1": 0, "P2": 0, "P3": 10, "P4": 0}
    # per day of acknowledgement: 1-4 h (day 0, acked the same day), 5-7 h, 8-10 h
    assert [(t.hours, t.tickets) for t in mtta.trend] == [(2.5, 4), (6.0, 3), (9.0, 3)]
    assert [t.day for t in mtta.trend] == sorted(t.day for t in mtta.trend)
    r3 = {d.priority: d for d in mttr.durations}["P3"]
    # 18, 18, 18, 18, 38 h: mean 22, rank 3 of 5 -> 18, rank 5 of 5 -> 38
    assert (r3.tickets, r3.mean_h, r3.median_h, r3.p90_h) == (5, 22.0, 18.0, 38.0)
    assert sum(t.tickets for t in mttr.trend) == 5 and all(t.measure == "MTTR" for t in mttr.trend)


def test_backlog_before_the_range_counts_open_and_later_resolved(store_url: str) -> None:
    """Open at the range's start: created before it, and still open or resolved on/after it."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    old = now - timedelta(days=30)
    engine = make_engine(store_url)
    with session_scope(session_factory(engine)) as session:
        session.add(_ticket(1, now, priority="P3", created=old))  # open: counts
        session.add(  # resolved inside the range: counts
            _ticket(2, now, priority="P3", created=old, status="resolved", resolved_at=now - 2 * H)
        )
        session.add(  # resolved before the range: does not
            _ticket(3, now, priority="P3", created=old, status="resolved", resolved_at=old + H)
        )
        session.add(_ticket(4, now, priority="P3", created=now - H))  # created inside: inflow
    engine.dispose()
    engine = read_only_engine(store_url)
    with engine.connect() as conn:
        days = data.flow(conn, Filters(now.date() - timedelta(days=6), now.date()))
    engine.dispose()
    assert (sum(d.inflow for d in days), sum(d.outflow for d in days)) == (1, 1)
    assert days[-1].backlog == 2 + 1 - 1


def test_a_pages_queries_run_at_the_same_time(store_url: str) -> None:
    """Two started queries that each wait for the other finish only if they run concurrently."""
    settings = load_settings()
    engine = read_only_engine(store_url)
    ctx = ui.Context(settings, store_url, engine, datetime.now(UTC))
    both = threading.Barrier(2, timeout=20)
    seen: list[str] = []

    def meet(name: str) -> str:
        both.wait()
        seen.append(name)
        return name

    key = (datetime.now(UTC).isoformat(),)  # a key of this test's own: no cached result
    first = ui.start(ctx, "speed_test_a", lambda c: meet("a"), *key)
    second = ui.start(ctx, "speed_test_b", lambda c: meet("b"), *key)
    assert (first.get(), second.get()) == ("a", "b")
    assert sorted(seen) == ["a", "b"]
    engine.dispose()


@dataclass(frozen=True)
class _Inner:
    when: date


@dataclass(frozen=True)
class _Row:
    at: datetime
    amount: Decimal
    inner: _Inner
    tags: list[str]
    n: int


def test_records_are_what_asdict_gave() -> None:
    row = _Row(
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), Decimal("12.50"), _Inner(date(2026, 1, 2)), ["x"], 3
    )
    [rec] = records([row])
    assert rec == {
        "at": "2026-01-02T03:04:05+00:00",
        "amount": 12.5,
        "inner": {"when": date(2026, 1, 2)},
        "tags": ["x"],
        "n": 3,
    }
    assert rec["inner"] == asdict(row)["inner"] and rec["tags"] is not row.tags  # copied, as asdict does
    assert records([{"a": Decimal("1.5")}]) == [{"a": 1.5}]
