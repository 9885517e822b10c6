"""Problem records: the one root cause behind many incidents. Agents open a problem from a ticket, link
more tickets to it, write down the root cause, and mark it a known error with its workaround (new matching
tickets then get it at intake: tickets/known_errors.py). Every change to a ticket is audited on it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tickets.agent_models import Problem, ProblemTicket
from tickets.errors import TicketError
from tickets.known_errors import KNOWN_ERROR, link_row
from tickets.models import Ticket
from tickets.service import TicketService

STATUSES = ("open", KNOWN_ERROR, "resolved")


class ProblemNotFound(TicketError):
    def __init__(self, problem_id: int) -> None:
        super().__init__(f"problem {problem_id} not found")
        self.problem_id = problem_id


def _text(value: str, what: str, limit: int) -> str:
    value = value.strip()
    if not value:
        raise ValueError(f"a problem needs {what}")
    if len(value) > limit:
        raise ValueError(f"{what} is at most {limit} characters")
    return value


def create(
    service: TicketService, actor: str, *, title: str, owner: str, ticket_id: int | None = None
) -> Problem:
    """A new open problem, owned by ``owner``; ``ticket_id`` is linked to it."""
    now = service.now()
    problem = Problem(
        title=_text(title, "a title", 300),
        owner=_text(owner, "an owner", 64),
        status="open",
        root_cause="",
        workaround="",
        created_by=actor[:64],
        created_at=now,
        updated_at=now,
    )
    service.session.add(problem)
    service.session.flush()
    if ticket_id is not None:
        link(service, problem.id, ticket_id, actor)
    return problem


def get(session: Session, problem_id: int) -> Problem:
    problem = session.get(Problem, problem_id)
    if problem is None:
        raise ProblemNotFound(problem_id)
    return problem


def link(service: TicketService, problem_id: int, ticket_id: int, actor: str) -> ProblemTicket:
    problem = get(service.session, problem_id)
    ticket = service.locked(ticket_id)
    return link_row(service.session, problem, ticket, actor=actor, now=service.now(), audit=service.audit)


def update(
    service: TicketService,
    problem_id: int,
    actor: str,
    *,
    root_cause: str | None = None,
    status: str | None = None,
    workaround: str | None = None,
    match_check_id: str | None = None,
    match_subject: str | None = None,
) -> Problem:
    """Change the problem; a known error needs its workaround and what new tickets it matches."""
    problem = get(service.session, problem_id)
    if status is not None and status not in STATUSES:
        raise ValueError(f"a problem's status is one of {', '.join(STATUSES)}, got {status!r}")
    if root_cause is not None:
        problem.root_cause = root_cause.strip()
    if workaround is not None:
        problem.workaround = workaround.strip()
    if match_check_id is not None:
        problem.match_check_id = match_check_id.strip()[:128] or None
    if match_subject is not None:
        problem.match_subject = match_subject.strip()[:300] or None
    if status is not None:
        problem.status = status
    if problem.status == KNOWN_ERROR and not problem.workaround:
        raise ValueError("a known error needs its workaround")
    if problem.status == KNOWN_ERROR and not (problem.match_check_id or problem.match_subject):
        raise ValueError("a known error needs the check or subject new tickets are matched on")
    problem.updated_at = service.now()
    now = service.now()
    for ticket in tickets_of(service.session, problem.id):
        service.audit(ticket, actor, "problem_changed", now, problem_id=problem.id, status=problem.status)
    service.session.flush()
    return problem


def tickets_of(session: Session, problem_id: int) -> list[Ticket]:
    return list(
        session.scalars(
            select(Ticket)
            .join(ProblemTicket, ProblemTicket.ticket_id == Ticket.id)
            .where(ProblemTicket.problem_id == problem_id)
            .order_by(Ticket.id)
        )
    )


def problem_of(session: Session, ticket_id: int) -> Problem | None:
    return session.scalars(
        select(Problem)
        .join(ProblemTicket, ProblemTicket.problem_id == Problem.id)
        .where(ProblemTicket.ticket_id == ticket_id)
    ).first()


@dataclass(frozen=True, slots=True)
class ProblemRow:
    problem: Problem
    incidents: int


def listing(session: Session, *, open_only: bool = False) -> list[ProblemRow]:
    counts = (
        select(ProblemTicket.problem_id, func.count().label("n"))
        .group_by(ProblemTicket.problem_id)
        .subquery()
    )
    query = select(Problem, func.coalesce(counts.c.n, 0)).outerjoin(counts, counts.c.problem_id == Problem.id)
    if open_only:
        query = query.where(Problem.status != "resolved")
    return [ProblemRow(p, int(n)) for p, n in session.execute(query.order_by(Problem.id.desc()).limit(500))]
