"""The ticket queue over HTTP: list, read, acknowledge, resolve, comment."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status

from hypercare.config import Priority
from tickets.api.deps import ActingUser, CurrentUser, ServiceDep, SessionDep
from tickets.api.schemas import (
    AuditEntryPublic,
    CommentRequest,
    OccurrencePublic,
    Problem,
    ResolveRequest,
    TicketDetailPublic,
    TicketList,
    TicketPublic,
)
from tickets.errors import InvalidTransition, TicketNotFound
from tickets.queries import MAX_PAGE, StatusFilter, TicketDetail

router = APIRouter(
    prefix="/api/v1/tickets",
    tags=["tickets"],
    responses={401: {"model": Problem}, 404: {"model": Problem}},
)
TicketId = Annotated[int, Path(ge=1, description="The ticket's id.")]
_CHANGES: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem},
    409: {"model": Problem, "description": "Not in a status allowing it."},
}


def _not_found(exc: TicketNotFound) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))


def _conflict(exc: InvalidTransition) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, str(exc))


def _detail(detail: TicketDetail) -> TicketDetailPublic:
    base = TicketPublic.model_validate(detail.ticket).model_dump()
    return TicketDetailPublic(
        **base,
        occurrences=[OccurrencePublic.model_validate(o) for o in detail.occurrences],
        audit=[AuditEntryPublic.model_validate(a) for a in detail.audit],
    )


@router.get("", response_model=TicketList)
def list_tickets(
    *,
    user: CurrentUser,
    service: ServiceDep,
    status_: Annotated[StatusFilter | None, Query(alias="status")] = None,
    priority: Priority | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> TicketList:
    """Tickets, open first, then by priority and last sighting. ``status=open|closed`` selects a group."""
    page = service.list_tickets(status=status_, priority=priority, limit=limit, offset=offset)
    return TicketList(
        items=[TicketPublic.model_validate(t) for t in page.items],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{ticket_id}", response_model=TicketDetailPublic)
def get_ticket(ticket_id: TicketId, user: CurrentUser, service: ServiceDep) -> TicketDetailPublic:
    """One ticket with its latest occurrences and its audit trail."""
    try:
        return _detail(service.get(ticket_id))
    except TicketNotFound as exc:
        raise _not_found(exc) from None


@router.post("/{ticket_id}/acknowledge", response_model=TicketPublic, responses=_CHANGES)
def acknowledge(
    ticket_id: TicketId, user: ActingUser, service: ServiceDep, session: SessionDep
) -> TicketPublic:
    """Acknowledge a new or reopened ticket (a no-op on one already being worked on)."""
    try:
        ticket = service.acknowledge(ticket_id, user.username)
    except TicketNotFound as exc:
        raise _not_found(exc) from None
    except InvalidTransition as exc:
        raise _conflict(exc) from None
    session.commit()
    return TicketPublic.model_validate(ticket)


@router.post("/{ticket_id}/resolve", response_model=TicketPublic, responses=_CHANGES)
def resolve(
    ticket_id: TicketId, body: ResolveRequest, user: ActingUser, service: ServiceDep, session: SessionDep
) -> TicketPublic:
    """Resolve an open ticket, with the reason."""
    try:
        ticket = service.resolve(ticket_id, user.username, body.reason)
    except TicketNotFound as exc:
        raise _not_found(exc) from None
    except InvalidTransition as exc:
        raise _conflict(exc) from None
    session.commit()
    return TicketPublic.model_validate(ticket)


@router.post(
    "/{ticket_id}/comments",
    response_model=AuditEntryPublic,
    status_code=status.HTTP_201_CREATED,
    responses=_CHANGES,
)
def comment(
    ticket_id: TicketId, body: CommentRequest, user: ActingUser, service: ServiceDep, session: SessionDep
) -> AuditEntryPublic:
    """Add a comment to the ticket's audit trail."""
    try:
        entry = service.comment(ticket_id, user.username, body.text)
    except TicketNotFound as exc:
        raise _not_found(exc) from None
    session.commit()
    return AuditEntryPublic.model_validate(entry)
