"""Read side of the ticket queue: the queue listing, one ticket with its history, open counts.

Each function issues a fixed number of queries whatever the number of rows (no N+1); the tests count them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from tickets.errors import TicketNotFound
from tickets.models import CLOSED_STATUSES, OPEN_STATUSES, Occurrence, Ticket, TicketAudit

StatusFilter = Literal[
    "open", "closed", "new", "acknowledged", "in_progress", "waiting", "reopened", "resolved"
]
"""A status, or ``open`` / ``closed`` for every status of that group."""
STATUS_FILTERS: tuple[str, ...] = get_args(StatusFilter)
MAX_PAGE = 500


@dataclass(frozen=True, slots=True)
class TicketPage:
    items: Sequence[Ticket]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True, slots=True)
class TicketDetail:
    ticket: Ticket
    occurrences: Sequence[Occurrence]
    """The most recent occurrences, newest first (``ticket.occurrence_count`` has the total)."""
    audit: Sequence[TicketAudit]
    """The audit trail, oldest first."""

    @property
    def latest(self) -> Occurrence | None:
        return self.occurrences[0] if self.occurrences else None


def _status_clause(status: str) -> ColumnElement[bool]:
    if status == "open":
        return Ticket.status.in_(OPEN_STATUSES)
    if status == "closed":
        return Ticket.status.in_(CLOSED_STATUSES)
    return Ticket.status == status


def list_tickets(
    session: Session,
    *,
    status: StatusFilter | None = None,
    priority: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> TicketPage:
    """Open tickets first, then by priority (P1 first), then the most recently seen. Two queries."""
    if status is not None and status not in STATUS_FILTERS:
        raise ValueError(f"unknown status filter {status!r}; expected one of {', '.join(STATUS_FILTERS)}")
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
    if offset < 0:
        raise ValueError("offset must not be negative")
    clauses: list[ColumnElement[bool]] = []
    if status is not None:
        clauses.append(_status_clause(status))
    if priority is not None:
        clauses.append(Ticket.priority == priority)
    total = session.scalar(select(func.count(Ticket.id)).where(*clauses)) or 0
    open_first = case((Ticket.status.in_(OPEN_STATUSES), 0), else_=1)
    items = session.scalars(
        select(Ticket)
        .where(*clauses)
        .order_by(open_first, Ticket.priority, Ticket.last_seen_at.desc(), Ticket.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return TicketPage(items=items, total=total, limit=limit, offset=offset)


def get_detail(
    session: Session, ticket_id: int, *, occurrence_limit: int = 100, audit_limit: int = 1000
) -> TicketDetail:
    """A ticket with its latest occurrences and its audit trail. Three queries."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise TicketNotFound(ticket_id)
    occurrences = session.scalars(
        select(Occurrence)
        .where(Occurrence.ticket_id == ticket_id)
        .order_by(Occurrence.id.desc())
        .limit(occurrence_limit)
    ).all()
    audit = session.scalars(
        select(TicketAudit)
        .where(TicketAudit.ticket_id == ticket_id)
        .order_by(TicketAudit.id)
        .limit(audit_limit)
    ).all()
    return TicketDetail(ticket=ticket, occurrences=occurrences, audit=audit)


def open_counts(session: Session) -> dict[str, int]:
    """Open tickets per priority (only priorities that have some). One indexed GROUP BY."""
    rows = session.execute(
        select(Ticket.priority, func.count(Ticket.id))
        .where(Ticket.status.in_(OPEN_STATUSES))
        .group_by(Ticket.priority)
    ).all()
    return {str(priority): int(count) for priority, count in rows}
