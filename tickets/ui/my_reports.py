"""A reporter's "my reports" page: each report they filed, the status of its ticket, the replies the
support team sent them (never internal notes), and a rating form once the ticket is resolved."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from tickets import conversation, workarounds
from tickets.agent_models import TicketComment
from tickets.api.deps import SessionDep
from tickets.models import Report, Ticket, TicketRating, User
from tickets.ui.report import may
from tickets.ui.web import UiUser, render

router = APIRouter(include_in_schema=False)
PAGE = 100


@dataclass(frozen=True, slots=True)
class MyReport:
    report: Report
    ticket: Ticket | None
    replies: list[TicketComment]
    rating: TicketRating | None


def my_reports(session: Session, user: User) -> list[MyReport]:
    reports = list(
        session.scalars(
            select(Report).where(Report.reporter_id == user.id).order_by(Report.id.desc()).limit(PAGE)
        )
    )
    out = []
    for report in reports:
        ticket = session.get(Ticket, report.ticket_id) if report.ticket_id is not None else None
        replies = conversation.conversation(session, ticket.id, replies_only=True) if ticket else []
        rating = workarounds.rating_of(session, ticket.id) if ticket else None
        out.append(MyReport(report, ticket, replies, rating))
    return out


def reported_by(session: Session, user: User, ticket_id: int) -> bool:
    """Whether ``user`` filed a report carried by the ticket."""
    found = session.scalars(
        select(Report.id).where(Report.reporter_id == user.id, Report.ticket_id == ticket_id).limit(1)
    ).first()
    return found is not None


@router.get("/my-reports")
def my_reports_page(request: Request, user: UiUser, session: SessionDep) -> Response:
    if not may(user, "reports:write"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role '{user.role}' files no reports")
    return render(request, "my_reports.html", {"user": user, "items": my_reports(session, user)})
