"""The ticket queue over HTTP: the filtered list, one ticket, its occurrences, comments and audit trail,
and the actions acknowledge, resolve and comment. (State, assignment and priority changes are in
``tickets.api.lifecycle``.) Every error is a :class:`~tickets.api.schemas.Problem`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from core.vocabulary import Priority
from tickets import queries
from tickets.api.deps import (
    ActingUser,
    CurrentUser,
    ServiceDep,
    SessionDep,
    TicketId,
    authorize,
    bearer_for,
    current_principal,
)
from tickets.api.schemas import (
    AuditEntryPublic,
    AuditList,
    CommentRequest,
    Facets,
    OccurrenceList,
    OccurrencePublic,
    Problem,
    ResolveRequest,
    TicketDetailPublic,
    TicketList,
    TicketPublic,
)
from tickets.api.state import AppState, app_state
from tickets.cache import store_version
from tickets.errors import InvalidTransition, TicketNotFound
from tickets.models import Ticket, User
from tickets.queries import MAX_PAGE, MAX_TEXT, SortKey, StatusFilter, TicketDetail, TicketFilter

router = APIRouter(
    prefix="/api/v1/tickets",
    tags=["tickets"],
    responses={401: {"model": Problem, "description": "Missing, invalid or revoked bearer token."}},
)
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1)]
Name = Annotated[str | None, Query(min_length=1, max_length=64)]
_READ: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "No such ticket."}}
_CHANGES: dict[int | str, dict[str, Any]] = {
    **_READ,
    403: {"model": Problem, "description": "The user's role may not change tickets."},
    409: {"model": Problem, "description": "Not in a status allowing it."},
}
_FORBIDDEN: dict[str, Any] = {"model": Problem, "description": "The token may not read the ticket queue."}
READ_SCOPE = "tickets:read"
LIST_CACHE = "api-list"
ReadCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_for(READ_SCOPE))]
_BODY: dict[int | str, dict[str, Any]] = {400: {"model": Problem, "description": "Malformed JSON."}}


def _not_found(exc: TicketNotFound) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))


def _conflict(exc: InvalidTransition) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, str(exc))


def public(ticket: Ticket, assignee: str | None = None) -> TicketPublic:
    return TicketPublic.model_validate(ticket).model_copy(update={"assigned_to": assignee})


def _changed(session: SessionDep, ticket: Ticket) -> TicketPublic:
    name = None
    if ticket.assignee_id is not None:
        name = session.scalar(select(User.username).where(User.id == ticket.assignee_id))
    return public(ticket, name)


def _detail(detail: TicketDetail) -> TicketDetailPublic:
    base = public(detail.ticket, detail.assignee).model_dump()
    return TicketDetailPublic(
        **base,
        occurrences=[OccurrencePublic.model_validate(o) for o in detail.occurrences],
        audit=[AuditEntryPublic.model_validate(a) for a in detail.audit],
    )


@router.get("", response_model=TicketList, responses={403: _FORBIDDEN, 422: {"model": Problem}})
async def list_tickets(
    *,
    request: Request,
    credentials: ReadCredentials,
    status_: Annotated[StatusFilter | None, Query(alias="status")] = None,
    priority: Priority | None = None,
    queue: Name = None,
    assignee: Annotated[
        str | None, Query(min_length=1, max_length=64, description="A username, or `none` for unassigned.")
    ] = None,
    category: Name = None,
    source: Name = None,
    q: Annotated[
        str | None,
        Query(max_length=MAX_TEXT, description="Words in the title, check or fingerprint; `#12` is an id."),
    ] = None,
    sort: SortKey = "priority",
    limit: Limit = 50,
    offset: Offset = 0,
) -> Response:
    """Tickets matching every filter given, one page, with counts per status and per priority.

    ``status=open|closed`` selects a group. ``sort=priority`` (default) lists open tickets first, then P1
    first, then the most recently seen; ``sla_due`` the nearest SLA deadline first."""
    flt = TicketFilter(
        status=status_,
        priority=priority,
        queue=queue,
        assignee=assignee,
        category=category,
        source=source,
        text=" ".join(q.split()) if q else q,
    )
    state = app_state(request)
    # A cache hit is answered on the event loop: the token's user and the tickets version in one statement
    # (tickets/hot_reads.py). Anything else (a miss, a token to refuse or whose use is to be recorded) takes
    # the general path in a worker thread, which authorises, reads the version first and builds.
    if credentials is not None:
        who = await state.hot.token_user(credentials.credentials)
        if who is not None and who.allows(READ_SCOPE):
            key = (who.role, flt, sort, limit, offset)
            body = await state.caches.answer(
                LIST_CACHE,
                key,
                who.version,
                lead=lambda: run_in_threadpool(_list_page, state, credentials, flt, sort, limit, offset),
                hit=lambda cached: cached,
            )
            return Response(body, media_type="application/json")
    page = await run_in_threadpool(_list_page, state, credentials, flt, sort, limit, offset)
    return Response(page, media_type="application/json")


def _list_page(  # noqa: PLR0917  (the route's query, passed on)
    state: AppState,
    credentials: HTTPAuthorizationCredentials | None,
    flt: TicketFilter,
    sort: SortKey,
    limit: int,
    offset: int,
) -> bytes:
    with state.session_factory() as session:
        user = authorize(current_principal(session, credentials), (READ_SCOPE,)).user
        # The same answer for the same query at the same tickets version (tickets/cache.py): read the
        # version first, then serve the JSON filed under it or build it from the data read after it.
        version = store_version(session)
        cache = state.caches.get(LIST_CACHE)
        key = (user.role, flt, sort, limit, offset)

        def build() -> bytes:
            page = queries.list_tickets(session, flt, sort=sort, limit=limit, offset=offset, version=version)
            return (
                TicketList(
                    items=[public(t, page.assignees.get(t.id)) for t in page.items],
                    total=page.total,
                    limit=page.limit,
                    offset=page.offset,
                    facets=Facets(
                        by_status=dict(page.facets.by_status), by_priority=dict(page.facets.by_priority)
                    ),
                )
                .model_dump_json()
                .encode()
            )

        body: bytes = cache.get_or_build(key, version, build)
        return body


@router.get("/{ticket_id}", response_model=TicketDetailPublic, responses=_READ)
def get_ticket(ticket_id: TicketId, user: CurrentUser, session: SessionDep) -> TicketDetailPublic:
    """One ticket with its latest occurrences and its audit trail."""
    try:
        return _detail(queries.get_detail(session, ticket_id))
    except TicketNotFound as exc:
        raise _not_found(exc) from None


@router.get("/{ticket_id}/occurrences", response_model=OccurrenceList, responses=_READ)
def list_occurrences(
    ticket_id: TicketId, user: CurrentUser, session: SessionDep, limit: Limit = 50, offset: Offset = 0
) -> OccurrenceList:
    """The ticket's occurrences (each sighting of its exception), newest first."""
    try:
        page = queries.occurrences(session, ticket_id, limit=limit, offset=offset)
    except TicketNotFound as exc:
        raise _not_found(exc) from None
    items = [OccurrencePublic.model_validate(o) for o in page.items]
    return OccurrenceList(items=items, total=page.total, limit=page.limit, offset=page.offset)


def _audit_list(
    session: SessionDep, ticket_id: int, action: str | None, limit: int, offset: int
) -> AuditList:
    try:
        page = queries.audit_trail(session, ticket_id, action=action, limit=limit, offset=offset)
    except TicketNotFound as exc:
        raise _not_found(exc) from None
    items = [AuditEntryPublic.model_validate(a) for a in page.items]
    return AuditList(items=items, total=page.total, limit=page.limit, offset=page.offset)


@router.get("/{ticket_id}/audit", response_model=AuditList, responses=_READ)
def list_audit(
    ticket_id: TicketId, user: CurrentUser, session: SessionDep, limit: Limit = 100, offset: Offset = 0
) -> AuditList:
    """The ticket's audit trail, oldest first: who changed what, when, from what to what, and why."""
    return _audit_list(session, ticket_id, None, limit, offset)


@router.get("/{ticket_id}/comments", response_model=AuditList, responses=_READ)
def list_comments(
    ticket_id: TicketId, user: CurrentUser, session: SessionDep, limit: Limit = 100, offset: Offset = 0
) -> AuditList:
    """The ticket's comments, oldest first (audit entries whose action is ``commented``)."""
    return _audit_list(session, ticket_id, "commented", limit, offset)


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
    return _changed(session, ticket)


@router.post("/{ticket_id}/resolve", response_model=TicketPublic, responses={**_CHANGES, **_BODY})
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
    return _changed(session, ticket)


@router.post(
    "/{ticket_id}/comments",
    response_model=AuditEntryPublic,
    status_code=status.HTTP_201_CREATED,
    responses={**_CHANGES, **_BODY},
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
