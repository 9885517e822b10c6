"""The dashboard's read side for the service KPIs of tickets: SLA compliance (K8/K9) and breaches, reopen
rate (K10), Pareto of inflow (K11), queues, user-error tickets by module (K16), the workaround register (K17)
and reporters' satisfaction. Definitions: :mod:`dashboards.data`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Connection, and_, case, func, literal, or_, select
from sqlalchemy.orm import Session

from core.vocabulary import OPEN_STATUSES, Priority, TicketStatus
from dashboards.data import PRIORITIES, Filters, hours, in_range, ratio, ticket_scope
from dashboards.sql import seconds_between
from tickets.models import Ticket, TicketRating
from tickets.workarounds import register

ParetoDimension = Literal["category", "check_id", "source"]


# --- SLA ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SlaCompliance:
    priority: str
    response_due: int
    response_met: int
    resolution_due: int
    resolution_met: int

    @property
    def response_ratio(self) -> float | None:
        return ratio(self.response_met, self.response_due)

    @property
    def resolution_ratio(self) -> float | None:
        return ratio(self.resolution_met, self.resolution_due)


def _clock(done: Any, due: Any, now: datetime, paused: ColumnElement[bool] | None = None) -> _Clock:
    """An SLA clock's outcome: decided once done (acknowledged / resolved) or once due without it (unless
    paused); decided at the time it was done, else at the due time; met when done by the due time."""
    overdue = due <= now if paused is None else and_(due <= now, ~paused)
    return _Clock(
        decided=or_(done.is_not(None), overdue),
        decided_at=func.coalesce(done, due),
        met=and_(done.is_not(None), done <= due),
        done=done,
        due=due,
    )


@dataclass(frozen=True)
class _Clock:
    decided: ColumnElement[bool]
    decided_at: Any
    met: ColumnElement[bool]
    done: Any
    due: Any

    def decided_in(self, f: Filters) -> ColumnElement[bool]:
        """``decided_at`` in the range, spelled so an index on either timestamp serves it."""
        return and_(
            self.decided,
            or_(
                and_(self.done.is_not(None), in_range(self.done, f)),
                and_(self.done.is_(None), in_range(self.due, f)),
            ),
        )


def _clocks(now: datetime) -> tuple[tuple[str, Any, _Clock], ...]:
    return (
        (
            "response",
            Ticket.sla_response_due_at,
            _clock(Ticket.acknowledged_at, Ticket.sla_response_due_at, now),
        ),
        (
            "resolution",
            Ticket.sla_resolution_due_at,
            _clock(
                Ticket.resolved_at, Ticket.sla_resolution_due_at, now, Ticket.status == TicketStatus.WAITING
            ),
        ),
    )


def sla_compliance(conn: Connection, f: Filters, now: datetime) -> list[SlaCompliance]:
    """Response (K8) and resolution (K9) SLA compliance per priority, over the clocks decided in the range.
    One query (one pass over the tickets for both clocks)."""
    (_, r_due, resp), (_, s_due, res) = _clocks(now)
    r_in = and_(r_due.is_not(None), resp.decided_in(f))
    s_in = and_(s_due.is_not(None), res.decided_in(f))

    def count(cond: ColumnElement[bool]) -> Any:
        return func.sum(case((cond, 1), else_=0))

    rows = conn.execute(
        select(
            Ticket.priority,
            count(r_in),
            count(and_(r_in, resp.met)),
            count(s_in),
            count(and_(s_in, res.met)),
        )
        .where(or_(r_in, s_in), *ticket_scope(f))
        .group_by(Ticket.priority)
    ).all()
    counts: dict[str, list[int]] = {p: [0, 0, 0, 0] for p in PRIORITIES}
    for priority, *values in rows:
        if str(priority) in counts:
            counts[str(priority)] = [int(v or 0) for v in values]
    return [SlaCompliance(p, *counts[p]) for p in PRIORITIES]


def combined(rows: Iterable[SlaCompliance], priorities: Sequence[str] = PRIORITIES) -> SlaCompliance:
    """The compliance of several priorities together (e.g. P1-P2 for the exit criterion)."""
    chosen = [r for r in rows if r.priority in priorities]
    return SlaCompliance(
        "+".join(priorities),
        sum(r.response_due for r in chosen),
        sum(r.response_met for r in chosen),
        sum(r.resolution_due for r in chosen),
        sum(r.resolution_met for r in chosen),
    )


@dataclass(frozen=True, slots=True)
class Breach:
    id: int
    priority: str
    title: str
    queue: str
    clock: str
    """``response`` or ``resolution``."""
    due_at: datetime
    late_h: float


def sla_breaches(conn: Connection, f: Filters, now: datetime, *, limit: int = 200) -> list[Breach]:
    """Tickets whose response or resolution fell due in the range and was missed, latest first."""
    scope = ticket_scope(f)
    out: list[Breach] = []
    for name, due, clock in _clocks(now):
        done = Ticket.acknowledged_at if name == "response" else Ticket.resolved_at
        late = seconds_between(func.coalesce(done, literal(now, Ticket.created_at.type)), due)
        rows = conn.execute(
            select(Ticket.id, Ticket.priority, Ticket.title, Ticket.queue, due, late)
            .where(due.is_not(None), clock.decided_in(f), ~clock.met, *scope)
            .order_by(due.desc())
            .limit(limit)
        ).all()
        out.extend(Breach(r[0], r[1], r[2], r[3], name, r[4], hours(r[5]) or 0.0) for r in rows)
    return sorted(out, key=lambda b: b.due_at, reverse=True)[:limit]


# --- reopen, Pareto, queues, modules ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ratio:
    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        return ratio(self.numerator, self.denominator)


def reopen_rate(conn: Connection, f: Filters) -> Ratio:
    """K10 over tickets created in the range: reopened / resolved at least once. One query."""
    was_resolved = or_(Ticket.resolved_at.is_not(None), Ticket.reopen_count > 0)
    row = conn.execute(
        select(func.count(Ticket.id), func.sum(case((Ticket.reopen_count > 0, 1), else_=0))).where(
            in_range(Ticket.created_at, f), was_resolved, *ticket_scope(f)
        )
    ).one()
    return Ratio(int(row[1] or 0), int(row[0] or 0))


@dataclass(frozen=True, slots=True)
class ParetoRow:
    value: str
    tickets: int
    share: float
    cumulative: float


def pareto(conn: Connection, f: Filters, dimension: ParetoDimension, *, limit: int = 10) -> list[ParetoRow]:
    """Inflow in the range by category, check or source, largest first, with cumulative share (K11)."""
    column = {"category": Ticket.category, "check_id": Ticket.check_id, "source": Ticket.source}[dimension]
    key = func.coalesce(column, "(none)")
    count = func.count(Ticket.id)
    # one pass: the total of every group (a window over the groups, before the limit) rides on each row
    rows = conn.execute(
        select(key, count.label("n"), func.sum(count).over().label("total"))
        .where(in_range(Ticket.created_at, f), *ticket_scope(f))
        .group_by(key)
        .order_by(count.desc(), key)
        .limit(limit)
    ).all()
    out: list[ParetoRow] = []
    running = 0
    total = int(rows[0][2]) if rows else 0
    for value, n, _ in rows:
        running += int(n)
        out.append(ParetoRow(str(value), int(n), int(n) / total, running / total))
    return out


@dataclass(frozen=True, slots=True)
class QueueRow:
    queue: str
    inflow: int
    resolved: int
    open: int
    open_p1_p2: int


def by_queue(conn: Connection, f: Filters) -> list[QueueRow]:
    """Per queue: created and resolved in the range, open now (and open P1/P2). One query."""
    is_open = Ticket.status.in_(OPEN_STATUSES)
    rows = conn.execute(
        select(
            Ticket.queue,
            func.sum(case((in_range(Ticket.created_at, f), 1), else_=0)),
            func.sum(
                case((and_(Ticket.resolved_at.is_not(None), in_range(Ticket.resolved_at, f)), 1), else_=0)
            ),
            func.sum(case((is_open, 1), else_=0)),
            func.sum(case((and_(is_open, Ticket.priority.in_((Priority.P1, Priority.P2))), 1), else_=0)),
        )
        .where(
            or_(in_range(Ticket.created_at, f), in_range(Ticket.resolved_at, f), is_open), *ticket_scope(f)
        )
        .group_by(Ticket.queue)
        .order_by(Ticket.queue)
    ).all()
    out = [QueueRow(str(q), int(a or 0), int(b or 0), int(c or 0), int(d or 0)) for q, a, b, c, d in rows]
    return [r for r in out if r.inflow or r.resolved or r.open]


@dataclass(frozen=True, slots=True)
class ModuleRow:
    module: str
    tickets: int
    open: int


def user_errors_by_module(conn: Connection, f: Filters) -> list[ModuleRow]:
    """User-error tickets (category ``user``: how-to, training needed) created in the range, per ERP
    module (the ``module`` label a report or check sets). One query."""
    module = func.coalesce(Ticket.labels["module"].as_string(), "(unknown)")
    rows = conn.execute(
        select(
            module.label("module"),
            func.count(Ticket.id),
            func.sum(case((Ticket.status.in_(OPEN_STATUSES), 1), else_=0)),
        )
        .where(Ticket.category == "user", in_range(Ticket.created_at, f), *ticket_scope(f))
        .group_by("module")
        .order_by(func.count(Ticket.id).desc(), "module")
    ).all()
    return [ModuleRow(str(m), int(n), int(o or 0)) for m, n, o in rows]


# --- workarounds and satisfaction ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActiveWorkaround:
    id: int
    ticket_id: int
    priority: str
    what: str
    owner: str
    age_d: float
    review_on: date
    overdue: bool
    ticket_status: str
    in_place: bool
    """Its ticket is still open: the workaround is what keeps the business running. One left active on a
    resolved ticket is no longer in place (the fix landed); it waits to be ended in the register."""


def active_workarounds(session: Session, f: Filters, now: datetime) -> list[ActiveWorkaround]:
    """The active workaround register (:func:`tickets.workarounds.register`, the API's
    ``GET /api/v1/workarounds``) within the source and queue filters (K17). The exit criterion counts the
    rows :attr:`ActiveWorkaround.in_place` (:func:`in_place`)."""
    out = []
    for w, t in register(session):
        if (f.sources and t.source not in f.sources) or (f.queues and t.queue not in f.queues):
            continue
        age = round((now - w.since).total_seconds() / 86400, 1)
        out.append(
            ActiveWorkaround(
                w.id,
                t.id,
                t.priority,
                w.what,
                w.owner,
                age,
                w.review_on,
                w.review_on < now.date(),
                t.status,
                t.status in OPEN_STATUSES,
            )
        )
    return out


def in_place(rows: Iterable[ActiveWorkaround]) -> list[ActiveWorkaround]:
    """The workarounds still in place: active, on an open ticket."""
    return [w for w in rows if w.in_place]


@dataclass(frozen=True, slots=True)
class Satisfaction:
    ratings: int
    mean: float | None
    by_score: Mapping[int, int]


def satisfaction(conn: Connection, f: Filters) -> Satisfaction:
    """Reporters' ratings (1-5) given in the range. One query."""
    rows = conn.execute(
        select(TicketRating.score, func.count(TicketRating.id))
        .join(Ticket, Ticket.id == TicketRating.ticket_id)
        .where(in_range(TicketRating.rated_at, f), *ticket_scope(f))
        .group_by(TicketRating.score)
    ).all()
    by_score = dict.fromkeys(range(1, 6), 0)
    by_score.update({int(s): int(n) for s, n in rows})
    total = sum(by_score.values())
    mean = None if total == 0 else round(sum(s * n for s, n in by_score.items()) / total, 2)
    return Satisfaction(total, mean, by_score)
