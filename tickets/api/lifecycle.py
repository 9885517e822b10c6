"""Lifecycle routes: status changes with a reason, assignment, priority changes with a reason, watchers,
links, the SLA view, notification delivery status, workarounds and their register, ratings, silences.

Thin: every rule lives in tickets.lifecycle, tickets.workarounds, tickets.silences and tickets.sla.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, status
from sqlalchemy import select

from tickets import silences, sla, workarounds
from tickets.api.deps import (
    ActingUser,
    CurrentUser,
    PrincipalDep,
    ServiceDep,
    SessionDep,
    SettingsDep,
    T,
    TicketId,
    run_service,
)
from tickets.api.lifecycle_schemas import (
    Assignment,
    ClockPublic,
    LinkPublic,
    LinkRequest,
    NotificationPublic,
    PriorityChange,
    RatingCreate,
    RatingPublic,
    RegisterEntry,
    SilenceCreate,
    SilencePublic,
    SlaPublic,
    StatusChange,
    Watcher,
    WorkaroundCreate,
    WorkaroundPublic,
    WorkaroundUpdate,
)
from tickets.api.schemas import Problem, TicketPublic
from tickets.lifecycle import Lifecycle, UnknownUser
from tickets.models import NotificationOutbox, Silence, Ticket, User

router = APIRouter(prefix="/api/v1", tags=["lifecycle"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "The user's role may not do this."},
    404: {"model": Problem, "description": "No such ticket (or user, workaround, silence)."},
    409: {"model": Problem, "description": "Not in a status allowing it."},
}


def _run(change: Callable[[], T]) -> T:
    """Run a service call, mapping its errors to 404 / 409 / 422 with their message."""
    return run_service(
        change,
        not_found=(UnknownUser, workarounds.WorkaroundNotFound),
        conflict=(workarounds.AlreadyRated,),
    )


def _public(session: SessionDep, ticket: Ticket) -> TicketPublic:
    name = None
    if ticket.assignee_id is not None:
        name = session.scalar(select(User.username).where(User.id == ticket.assignee_id))
    return TicketPublic.model_validate(ticket).model_copy(update={"assigned_to": name})


@router.post("/tickets/{ticket_id}/status", response_model=TicketPublic, responses=_ERRORS)
def change_status(
    ticket_id: TicketId, body: StatusChange, user: ActingUser, service: ServiceDep, session: SessionDep
) -> TicketPublic:
    """Move the ticket along its lifecycle; an illegal move is a 409 naming the current status."""
    ticket = _run(
        lambda: Lifecycle(service).change_status(
            ticket_id, user.username, body.status, reason=body.reason, waiting_reason=body.waiting_reason
        )
    )
    session.commit()
    return _public(session, ticket)


@router.post("/tickets/{ticket_id}/priority", response_model=TicketPublic, responses=_ERRORS)
def change_priority(
    ticket_id: TicketId, body: PriorityChange, user: ActingUser, service: ServiceDep, session: SessionDep
) -> TicketPublic:
    """Change the priority, with a reason; the SLA keeps the time already used and paused."""
    ticket = _run(
        lambda: Lifecycle(service).change_priority(ticket_id, user.username, body.priority, body.reason)
    )
    session.commit()
    return _public(session, ticket)


@router.post("/tickets/{ticket_id}/assign", response_model=TicketPublic, responses=_ERRORS)
def assign(
    ticket_id: TicketId, body: Assignment, user: ActingUser, service: ServiceDep, session: SessionDep
) -> TicketPublic:
    ticket = _run(lambda: Lifecycle(service).assign(ticket_id, user.username, body.assignee))
    session.commit()
    return _public(session, ticket)


@router.get("/tickets/{ticket_id}/watchers", response_model=list[str], responses=_ERRORS)
def watchers(ticket_id: TicketId, user: CurrentUser, service: ServiceDep) -> list[str]:
    _run(lambda: service.locked(ticket_id))
    return Lifecycle(service).watchers(ticket_id)


@router.post("/tickets/{ticket_id}/watchers", response_model=list[str], responses=_ERRORS)
def add_watcher(
    ticket_id: TicketId, body: Watcher, user: ActingUser, service: ServiceDep, session: SessionDep
) -> list[str]:
    names = _run(lambda: Lifecycle(service).watch(ticket_id, user.username, body.username))
    session.commit()
    return names


@router.delete("/tickets/{ticket_id}/watchers/{username}", response_model=list[str], responses=_ERRORS)
def remove_watcher(
    ticket_id: TicketId,
    username: Annotated[str, Path(min_length=1, max_length=64)],
    user: ActingUser,
    service: ServiceDep,
    session: SessionDep,
) -> list[str]:
    names = _run(lambda: Lifecycle(service).watch(ticket_id, user.username, username, watching=False))
    session.commit()
    return names


@router.get("/tickets/{ticket_id}/links", response_model=list[LinkPublic], responses=_ERRORS)
def links(ticket_id: TicketId, user: CurrentUser, service: ServiceDep) -> list[LinkPublic]:
    _run(lambda: service.locked(ticket_id))
    return [LinkPublic.model_validate(link) for link in Lifecycle(service).links(ticket_id)]


@router.post(
    "/tickets/{ticket_id}/links",
    response_model=LinkPublic,
    status_code=status.HTTP_201_CREATED,
    responses=_ERRORS,
)
def link(
    ticket_id: TicketId, body: LinkRequest, user: ActingUser, service: ServiceDep, session: SessionDep
) -> LinkPublic:
    created = _run(lambda: Lifecycle(service).link(ticket_id, user.username, body.other_id, body.kind))
    session.commit()
    return LinkPublic.model_validate(created)


@router.get("/tickets/{ticket_id}/sla", response_model=SlaPublic, responses=_ERRORS)
def sla_view(ticket_id: TicketId, user: CurrentUser, service: ServiceDep) -> SlaPublic:
    """Both SLA clocks as of now: target, business seconds used, due date and state."""
    ticket = _run(lambda: service.locked(ticket_id))
    view = sla.evaluate(ticket, service.settings, service.now())

    def clock(c: sla.Clock) -> ClockPublic:
        return ClockPublic(target_s=c.target_s, used_s=c.used_s, due_at=c.due_at, state=c.state)

    return SlaPublic(
        state=view.state,
        response=clock(view.response),
        resolution=clock(view.resolution),
        paused_s=ticket.sla_paused_s,
        waiting_reason=ticket.waiting_reason,
        escalation_level=ticket.escalation_level,
    )


@router.get("/tickets/{ticket_id}/notifications", response_model=list[NotificationPublic], responses=_ERRORS)
def notifications(
    ticket_id: TicketId, user: CurrentUser, service: ServiceDep, session: SessionDep
) -> list[NotificationPublic]:
    """The ticket's notifications and their delivery status (failures with apprise's reason, redacted)."""
    _run(lambda: service.locked(ticket_id))
    rows = session.scalars(
        select(NotificationOutbox)
        .where(NotificationOutbox.ticket_id == ticket_id)
        .order_by(NotificationOutbox.id)
    )
    return [NotificationPublic.model_validate(row) for row in rows]


@router.get("/tickets/{ticket_id}/workarounds", response_model=list[WorkaroundPublic], responses=_ERRORS)
def ticket_workarounds(ticket_id: TicketId, user: CurrentUser, service: ServiceDep) -> list[WorkaroundPublic]:
    _run(lambda: service.locked(ticket_id))
    return [
        WorkaroundPublic.model_validate(w) for w in workarounds.workarounds_of(service.session, ticket_id)
    ]


@router.post(
    "/tickets/{ticket_id}/workarounds",
    response_model=WorkaroundPublic,
    status_code=status.HTTP_201_CREATED,
    responses=_ERRORS,
)
def add_workaround(
    ticket_id: TicketId, body: WorkaroundCreate, user: ActingUser, service: ServiceDep, session: SessionDep
) -> WorkaroundPublic:
    row = _run(
        lambda: workarounds.add_workaround(
            service,
            ticket_id,
            user.username,
            what=body.what,
            owner=body.owner,
            review_on=body.review_on,
            since=body.since,
        )
    )
    session.commit()
    return WorkaroundPublic.model_validate(row)


@router.patch("/workarounds/{workaround_id}", response_model=WorkaroundPublic, responses=_ERRORS)
def update_workaround(
    workaround_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    body: WorkaroundUpdate,
    user: ActingUser,
    service: ServiceDep,
    session: SessionDep,
) -> WorkaroundPublic:
    """Change a workaround; ``active: false`` ends it."""
    row = _run(
        lambda: workarounds.update_workaround(
            service,
            workaround_id,
            user.username,
            what=body.what,
            owner=body.owner,
            review_on=body.review_on,
            active=body.active,
        )
    )
    session.commit()
    return WorkaroundPublic.model_validate(row)


@router.get("/workarounds", response_model=list[RegisterEntry], responses={403: _ERRORS[403]})
def workaround_register(user: CurrentUser, session: SessionDep) -> list[RegisterEntry]:
    """The register of active workarounds, soonest review first."""
    return [
        RegisterEntry(
            **WorkaroundPublic.model_validate(w).model_dump(),
            ticket_title=t.title,
            ticket_priority=t.priority,
            ticket_status=t.status,
        )
        for w, t in workarounds.register(session)
    ]


@router.get("/tickets/{ticket_id}/rating", response_model=RatingPublic | None, responses=_ERRORS)
def get_rating(ticket_id: TicketId, user: CurrentUser, service: ServiceDep) -> RatingPublic | None:
    _run(lambda: service.locked(ticket_id))
    found = workarounds.rating_of(service.session, ticket_id)
    return None if found is None else RatingPublic.model_validate(found)


@router.post(
    "/tickets/{ticket_id}/rating",
    response_model=RatingPublic,
    status_code=status.HTTP_201_CREATED,
    responses=_ERRORS,
)
def rate(
    ticket_id: TicketId, body: RatingCreate, principal: PrincipalDep, service: ServiceDep, session: SessionDep
) -> RatingPublic:
    """The reporter rates a resolved ticket 1-5 (an agent may record it on their behalf)."""
    if not (principal.allows("reports:write") or principal.allows("tickets:write")):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "rating needs scope 'reports:write' or 'tickets:write'"
        )
    username = principal.user.username
    found = _run(
        lambda: workarounds.rate(
            service,
            ticket_id,
            username,
            score=body.score,
            comment=body.comment,
            on_behalf_of=body.on_behalf_of,
        )
    )
    session.commit()
    return RatingPublic.model_validate(found)


@router.get("/silences", response_model=list[SilencePublic], responses={403: _ERRORS[403]})
def list_silences(user: CurrentUser, service: ServiceDep, session: SessionDep) -> list[SilencePublic]:
    """Active and future silences."""
    rows = session.scalars(select(Silence).where(Silence.ends_at > service.now()).order_by(Silence.starts_at))
    return [SilencePublic.model_validate(row) for row in rows]


@router.post(
    "/silences", response_model=SilencePublic, status_code=status.HTTP_201_CREATED, responses=_ERRORS
)
def create_silence(
    body: SilenceCreate, user: ActingUser, service: ServiceDep, session: SessionDep, settings: SettingsDep
) -> SilencePublic:
    """Mute notifications of matching tickets between starts_at and ends_at (tickets are still recorded).

    Each role may silence each priority for so long (settings ``security.silence_max_hours``; a silence
    without ``priorities`` can mute P1): a longer one is a 403 naming the limit."""
    try:
        row = _run(
            lambda: silences.create(
                session,
                matchers=body.matchers,
                starts_at=body.starts_at,
                ends_at=body.ends_at,
                created_by=user.username,
                role=user.role,
                limits=settings.security.silence_max_hours,
                comment=body.comment,
                now=service.now(),
            )
        )
    except silences.SilenceNotAllowed as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    session.commit()
    return SilencePublic.model_validate(row)


@router.delete("/silences/{silence_id}", response_model=SilencePublic, responses=_ERRORS)
def expire_silence(
    silence_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    user: ActingUser,
    service: ServiceDep,
    session: SessionDep,
) -> SilencePublic:
    """End a silence now (it stays on record)."""
    row = silences.expire(session, silence_id, service.now(), actor=user.username)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"silence {silence_id} not found")
    session.commit()
    return SilencePublic.model_validate(row)
