"""Known errors at intake: a new ticket matching a problem marked ``known_error`` (the same check, or the
same subject) is linked to it and gets its workaround at once, both audited. Called by the service when it
opens a ticket (tickets/service.py); the problem operations themselves are tickets/problem_records.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tickets import correlation
from tickets.agent_models import Problem, ProblemTicket
from tickets.models import Ticket, TicketAudit, Workaround

Audit = Callable[..., TicketAudit]
"""The service's audit: (ticket, actor, action, now, **detail)."""
KNOWN_ERROR = "known_error"
REVIEW_AFTER = timedelta(days=7)
"""When a workaround copied from a known error is due for review."""
ACTOR = "system"


def matching(session: Session, ticket: Ticket) -> Problem | None:
    """The oldest known error matching the ticket's check or one of its subjects, if any."""
    conditions = []
    if ticket.check_id:
        conditions.append(Problem.match_check_id == ticket.check_id)
    found = correlation.subjects(ticket.entity or {})
    if found:
        conditions.append(Problem.match_subject.in_(found))
    if not conditions:
        return None
    return session.scalars(
        select(Problem).where(Problem.status == KNOWN_ERROR, or_(*conditions)).order_by(Problem.id).limit(1)
    ).first()


def on_opened(session: Session, ticket: Ticket, now: datetime, audit: Audit) -> Problem | None:
    """Link a new ticket to its known error and record the known workaround on it."""
    problem = matching(session, ticket)
    if problem is None:
        return None
    link_row(session, problem, ticket, actor=ACTOR, now=now, audit=audit, automatic=True)
    if problem.workaround.strip():
        row = Workaround(
            ticket_id=ticket.id,
            what=problem.workaround.strip(),
            owner=problem.owner,
            since=now,
            review_on=(now + REVIEW_AFTER).date(),
            active=True,
            created_by=ACTOR,
        )
        session.add(row)
        session.flush()
        audit(
            ticket,
            ACTOR,
            "workaround_added",
            now,
            workaround_id=row.id,
            what=row.what,
            owner=row.owner,
            review_on=row.review_on.isoformat(),
            reason=f"known error: problem #{problem.id}",
        )
    return problem


def link_row(
    session: Session,
    problem: Problem,
    ticket: Ticket,
    *,
    actor: str,
    now: datetime,
    audit: Audit,
    automatic: bool = False,
) -> ProblemTicket:
    """Link (or re-link) the ticket to the problem; audited on the ticket."""
    row = session.scalars(select(ProblemTicket).where(ProblemTicket.ticket_id == ticket.id)).first()
    detail: dict[str, Any] = {"problem_id": problem.id, "title": problem.title, "automatic": automatic}
    if row is None:
        row = ProblemTicket(
            problem_id=problem.id,
            ticket_id=ticket.id,
            linked_by=actor[:64],
            automatic=automatic,
            linked_at=now,
        )
        session.add(row)
    elif row.problem_id == problem.id:
        return row
    else:
        detail["before"] = {"problem_id": row.problem_id}
        row.problem_id, row.linked_by, row.automatic, row.linked_at = problem.id, actor[:64], automatic, now
    session.flush()
    audit(ticket, actor, "problem_linked", now, **detail)
    return row
