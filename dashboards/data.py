"""The dashboard's read side for tickets: typed query functions, each aggregating in SQL.

Every function takes a connection on the Hypercare store (read-only, :func:`dashboards.sql.read_only_engine`)
and a :class:`Filters`, issues a fixed number of queries whatever the number of tickets, and returns small
frozen dataclasses (a row per day, per priority, per bucket...). No ticket list is ever loaded whole.

KPI definitions follow the ERP domain catalog, section 4 (K1-K17); where the tickets code already defines a
notion it is reused: open means :data:`core.vocabulary.OPEN_STATUSES`, open counts per priority are
:func:`tickets.queries.open_counts` semantics (the API's ``facets.by_priority`` of ``status=open``), the
workaround register is :func:`tickets.workarounds.register`.

* Inflow (K1): tickets created per UTC day; outflow (K2): tickets whose ``resolved_at`` falls on the day.
* Backlog (K3): tickets open at the end of a day, ``created <= t < resolved``.
* Age buckets (K4): open tickets by days since creation, 0-2, 3-7, 8-14, >14.
* MTTA (K6): ``acknowledged_at - created_at`` of tickets first acknowledged in the range; MTTR (K7):
  ``resolved_at - created_at - time waiting`` of tickets resolved in the range; mean, median and p90
  (nearest rank), in hours.
* SLA compliance (K8/K9): response (resolution) clocks decided in the range -- done, or due without it: met
  when acknowledged (resolved) by the due time; a due time passed without it is a breach. A waiting
  ticket's resolution clock is paused, so it is not counted until it resolves.
* Reopen rate (K10): tickets created in the range that were resolved at least once, share reopened since.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, and_, case, func, literal, or_, select

from core.vocabulary import OPEN_STATUSES, Priority
from dashboards.sql import day_in, seconds_between
from monitor.models import Source
from tickets.models import Ticket

PRIORITIES: tuple[str, ...] = tuple(p.value for p in Priority)
"""The priorities as plain text, most urgent first: what the pages show, chart and key their tables by."""
HOUR = 3600.0
AGE_BUCKETS = ("0-2 d", "3-7 d", "8-14 d", ">14 d")


@dataclass(frozen=True, slots=True)
class Filters:
    """What every page is filtered by: a range of days (inclusive) of the zone ``tz`` (the site's,
    ``site.timezone``) and optional sources and queues (empty: all). Hashable, so it is part of the cache
    key."""

    start: date
    end: date
    sources: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()
    tz: str = "UTC"

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"the range ends ({self.end}) before it starts ({self.start})")

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time(0), tzinfo=ZoneInfo(self.tz)).astimezone(UTC)

    @property
    def end_at(self) -> datetime:
        """The instant after the last day (exclusive bound)."""
        after = datetime.combine(self.end + timedelta(days=1), time(0), tzinfo=ZoneInfo(self.tz))
        return after.astimezone(UTC)

    def day_of(self, column: Any) -> Any:
        """The day of ``column`` as the range counts days (in ``tz``), for GROUP BY."""
        return day_in(column, self.tz, self.start_at)

    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def last(self, days: int, today: date) -> Filters:
        """The same sources and queues over the ``days`` days ending ``today``."""
        return Filters(today - timedelta(days=days - 1), today, self.sources, self.queues, self.tz)


def ticket_scope(f: Filters) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if f.sources:
        clauses.append(Ticket.source.in_(f.sources))
    if f.queues:
        clauses.append(Ticket.queue.in_(f.queues))
    return clauses


def in_range(column: Any, f: Filters) -> ColumnElement[bool]:
    return and_(column >= f.start_at, column < f.end_at)


def _day(value: Any) -> date:
    """A day as the driver returns it (a date on PostgreSQL, ``YYYY-MM-DD`` on SQLite)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def hours(seconds: Any) -> float | None:
    return None if seconds is None else round(float(seconds) / HOUR, 2)


def ratio(num: int, den: int) -> float | None:
    return None if den == 0 else num / den


# --- filter menus ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FilterOptions:
    sources: tuple[str, ...]
    queues: tuple[str, ...]


def filter_options(conn: Connection, f: Filters) -> FilterOptions:
    """The sources (monitored systems, and sources of tickets created in the range or open) and the queues of
    those tickets. One pass over the range's and the open tickets (the ``created_at`` index and the partial
    index of open tickets serve it), for both menus."""
    recent = or_(in_range(Ticket.created_at, f), Ticket.status.in_(OPEN_STATUSES))
    pairs = conn.execute(select(Ticket.source, Ticket.queue).where(recent).distinct()).all()
    sources = {str(s) for s in conn.scalars(select(Source.name))} | {str(s) for s, _ in pairs}
    queues = sorted({str(q) for _, q in pairs})[:1000]
    return FilterOptions(tuple(sorted(sources)), tuple(queues))


# --- open tickets and backlog --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenTicket:
    id: int
    priority: str
    title: str
    status: str
    queue: str
    source: str
    age_h: float
    sla_state: str


def open_counts(conn: Connection, f: Filters) -> dict[str, int]:
    """Open tickets per priority (every priority, zero included), within the source and queue filters."""
    rows = conn.execute(
        select(Ticket.priority, func.count(Ticket.id))
        .where(Ticket.status.in_(OPEN_STATUSES), *ticket_scope(f))
        .group_by(Ticket.priority)
    ).all()
    counts = dict.fromkeys(PRIORITIES, 0)
    counts.update({str(p): int(n) for p, n in rows})
    return counts


def open_urgent(conn: Connection, f: Filters, now: datetime, *, limit: int = 200) -> list[OpenTicket]:
    """Open P1 and P2 tickets, oldest first, with their age."""
    age = seconds_between(literal(now, Ticket.created_at.type), Ticket.created_at)
    rows = conn.execute(
        select(
            Ticket.id,
            Ticket.priority,
            Ticket.title,
            Ticket.status,
            Ticket.queue,
            Ticket.source,
            age,
            Ticket.sla_state,
        )
        .where(
            Ticket.status.in_(OPEN_STATUSES),
            Ticket.priority.in_((Priority.P1, Priority.P2)),
            *ticket_scope(f),
        )
        .order_by(Ticket.priority, Ticket.created_at, Ticket.id)
        .limit(limit)
    ).all()
    return [OpenTicket(r[0], r[1], r[2], r[3], r[4], r[5], hours(r[6]) or 0.0, r[7]) for r in rows]


@dataclass(frozen=True, slots=True)
class FlowDay:
    day: date
    inflow: int
    outflow: int
    net: int
    backlog: int
    """Open at the end of the day."""


def flow(conn: Connection, f: Filters) -> list[FlowDay]:
    """Inflow, outflow and the backlog for every day of the range (days without tickets included). Three
    queries: created per day, resolved per day, and the backlog before the range. Without source or queue
    filters each is an index-only scan (``count(*)``, not ``count(id)``: the indexes on ``created_at`` and
    ``(resolved_at, created_at)`` hold every column the query reads)."""
    scope = ticket_scope(f)
    created = f.day_of(Ticket.created_at)
    resolved = f.day_of(Ticket.resolved_at)
    inflow = {
        _day(d): int(n)
        for d, n in conn.execute(
            select(created, func.count()).where(in_range(Ticket.created_at, f), *scope).group_by(created)
        )
    }
    outflow = {
        _day(d): int(n)
        for d, n in conn.execute(
            select(resolved, func.count())
            .where(Ticket.resolved_at.is_not(None), in_range(Ticket.resolved_at, f), *scope)
            .group_by(resolved)
        )
    }
    # open at the start: created before it and not resolved by then -- still open, or resolved since (two
    # disjoint counts, each a range of the (resolved_at, created_at) index, rather than one OR)
    still_open = select(func.count()).where(
        Ticket.resolved_at.is_(None), Ticket.created_at < f.start_at, *scope
    )
    resolved_since = select(func.count()).where(
        Ticket.resolved_at >= f.start_at, Ticket.created_at < f.start_at, *scope
    )
    before = int(conn.scalar(select(still_open.scalar_subquery() + resolved_since.scalar_subquery())) or 0)
    out: list[FlowDay] = []
    backlog = before
    for day in f.days():
        i, o = inflow.get(day, 0), outflow.get(day, 0)
        backlog += i - o
        out.append(FlowDay(day, i, o, i - o, backlog))
    return out


@dataclass(frozen=True, slots=True)
class AgeBucket:
    priority: str
    bucket: str
    tickets: int


def backlog_by_age(conn: Connection, f: Filters, now: datetime) -> list[AgeBucket]:
    """Open tickets by priority and age bucket (K4); every priority x bucket, zero included. One query."""
    age_d = seconds_between(literal(now, Ticket.created_at.type), Ticket.created_at) / 86400.0
    bucket = case(
        (age_d < 3, AGE_BUCKETS[0]),
        (age_d < 8, AGE_BUCKETS[1]),
        (age_d < 15, AGE_BUCKETS[2]),
        else_=AGE_BUCKETS[3],
    )
    rows = conn.execute(
        select(Ticket.priority, bucket.label("bucket"), func.count(Ticket.id))
        .where(Ticket.status.in_(OPEN_STATUSES), *ticket_scope(f))
        .group_by(Ticket.priority, "bucket")
    ).all()
    counts = {(str(p), str(b)): int(n) for p, b, n in rows}
    return [AgeBucket(p, b, counts.get((p, b), 0)) for p in PRIORITIES for b in AGE_BUCKETS]


# --- response and resolution times ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Durations:
    priority: str
    tickets: int
    mean_h: float | None
    median_h: float | None
    p90_h: float | None


@dataclass(frozen=True, slots=True)
class TrendPoint:
    day: date
    priority: str
    measure: str
    """``MTTA`` or ``MTTR``."""
    hours: float | None
    tickets: int


@dataclass(frozen=True, slots=True)
class ResponseTimes:
    """One measure (MTTA or MTTR) over a range: per priority, and per day and priority."""

    durations: list[Durations]
    trend: list[TrendPoint]


def _repair_time() -> Any:
    return seconds_between(Ticket.resolved_at, Ticket.created_at) - func.coalesce(Ticket.sla_paused_s, 0.0)


def response_times(conn: Connection, f: Filters, measure: str) -> ResponseTimes:
    """MTTA (time to the first acknowledgement, K6, of tickets acknowledged in the range) or MTTR (time to
    resolve, K7, time spent waiting excluded, of tickets resolved in the range): mean, median and p90
    (nearest rank) per priority, and the mean per day and priority. One query, one pass over the range (the
    index on ``acknowledged_at`` / ``resolved_at``): the window functions rank each priority's tickets, the
    grouping by (priority, day) carries both the trend and, per priority, the sums and the ranked values."""
    if measure == "MTTA":
        when, duration = Ticket.acknowledged_at, seconds_between(Ticket.acknowledged_at, Ticket.created_at)
    elif measure == "MTTR":
        when, duration = Ticket.resolved_at, _repair_time()
    else:
        raise ValueError(f"unknown measure {measure!r}: MTTA or MTTR")
    inner = (
        select(
            Ticket.priority.label("priority"),
            f.day_of(when).label("day"),
            duration.label("d"),
            func.row_number().over(partition_by=Ticket.priority, order_by=duration).label("rn"),
            func.count().over(partition_by=Ticket.priority).label("n"),
        )
        .where(when.is_not(None), in_range(when, f), *ticket_scope(f))
        .subquery()
    )

    def rank(pct: int) -> Any:
        # ceil(n * pct / 100) in integer arithmetic, the same on both engines; one row of the priority has it
        return func.max(case((inner.c.rn == (inner.c.n * pct + 99) // 100, inner.c.d)))

    rows = conn.execute(
        select(
            inner.c.priority,
            inner.c.day,
            func.count(),
            func.sum(inner.c.d),
            func.avg(inner.c.d),
            rank(50),
            rank(90),
        ).group_by(inner.c.priority, inner.c.day)
    ).all()
    sums: dict[str, list[Any]] = {}  # priority -> [tickets, sum, p50, p90]
    trend: list[TrendPoint] = []
    for priority, day, n, total, mean, p50, p90 in rows:
        acc = sums.setdefault(str(priority), [0, 0.0, None, None])
        acc[0] += int(n)
        acc[1] += float(total or 0.0)
        acc[2] = p50 if p50 is not None else acc[2]
        acc[3] = p90 if p90 is not None else acc[3]
        trend.append(TrendPoint(_day(day), str(priority), measure, hours(mean), int(n)))
    durations = []
    for p in PRIORITIES:
        found = sums.get(p)
        if found is None:
            durations.append(Durations(p, 0, None, None, None))
        else:
            n, total, p50, p90 = found
            durations.append(Durations(p, n, hours(total / n), hours(p50), hours(p90)))
    trend.sort(key=lambda t: (t.day, t.priority))
    return ResponseTimes(durations, trend)


def mtta(conn: Connection, f: Filters) -> list[Durations]:
    """Time to the first acknowledgement (K6) of tickets acknowledged in the range, per priority."""
    return response_times(conn, f, "MTTA").durations


def mttr(conn: Connection, f: Filters) -> list[Durations]:
    """Time to resolve (K7), time spent waiting excluded, of tickets resolved in the range, per priority."""
    return response_times(conn, f, "MTTR").durations


def time_trend(conn: Connection, f: Filters) -> list[TrendPoint]:
    """Mean MTTA per day of acknowledgement and MTTR per day of resolution, per priority. Two queries."""
    return response_times(conn, f, "MTTA").trend + response_times(conn, f, "MTTR").trend
