"""Event intake: anomaly/'s events (and any producer speaking the same model) become tickets."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from tickets.api.deps import EventWriter, ServiceDep, SessionDep
from tickets.api.diagnostics import DiagnoserDep
from tickets.api.schemas import EventAccepted, EventIn, Problem

router = APIRouter(prefix="/api/v1", tags=["events"])


@router.post(
    "/events",
    response_model=EventAccepted,
    status_code=status.HTTP_200_OK,
    responses={
        201: {"model": EventAccepted, "description": "A new ticket was opened."},
        400: {"model": Problem, "description": "Malformed JSON."},
        401: {"model": Problem},
        403: {"model": Problem},
    },
)
def post_event(
    *,
    event: EventIn,
    user: EventWriter,
    service: ServiceDep,
    session: SessionDep,
    response: Response,
    diagnoser: DiagnoserDep,
) -> EventAccepted:
    """Ingest one event: 201 when it opened a ticket, 200 for any other outcome. A ticket it opened or
    reopened gets its runbook linked and the runbook's diagnostics run after the answer
    (`GET /api/v1/tickets/{ticket_id}/diagnostics`)."""
    result = service.ingest(event)
    session.commit()
    diagnoser.add(result.outcome, result.ticket.id if result.ticket else None)
    diagnoser.schedule()
    if result.outcome == "opened":
        response.status_code = status.HTTP_201_CREATED
    return EventAccepted(
        event_id=result.event.id,
        ticket_id=result.ticket.id if result.ticket else None,
        outcome=result.outcome,
    )
