"""The server-rendered web UI for support teams: log in, the queue, one ticket, acknowledge and resolve.

Every change is a POST carrying the session's CSRF token, answered with a redirect (POST-redirect-GET).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, HTTPException, Query, Request, status
from fastapi.responses import RedirectResponse, Response

from hypercare.config import PRIORITIES, Priority
from tickets.api.deps import ServiceDep, SessionDep, SettingsDep
from tickets.auth import authenticate
from tickets.errors import InvalidTransition, TicketNotFound
from tickets.queries import STATUS_FILTERS
from tickets.ui.views import audit_summary, evidence_view, runbook_panel
from tickets.ui.web import (
    UiUser,
    can_act,
    check_csrf,
    flash,
    render,
    require_acting,
    safe_next,
)

router = APIRouter(include_in_schema=False)

UiStatus = Literal[
    "all", "open", "closed", "new", "acknowledged", "in_progress", "waiting", "reopened", "resolved"
]
PAGE_SIZE = 100
Csrf = Annotated[str, Form(alias="csrf")]


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status.HTTP_303_SEE_OTHER)


@router.get("/")
def index() -> RedirectResponse:
    return _see_other("/tickets")


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", {"next": safe_next(next), "error": None, "username": ""})


@router.post("/login")
def login(
    *,
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    csrf: Csrf,
    next: Annotated[str, Form()] = "/tickets",
) -> Response:
    check_csrf(request, csrf)
    user = authenticate(session, username.strip(), password)
    if user is None:
        context = {"next": safe_next(next), "error": "Wrong username or password.", "username": username}
        return render(request, "login.html", context, status_code=status.HTTP_401_UNAUTHORIZED)
    request.session.clear()  # a fresh session (and CSRF token) for the logged-in user
    request.session["uid"] = user.id
    return _see_other(safe_next(next))


@router.post("/logout")
def logout(request: Request, csrf: Csrf) -> Response:
    check_csrf(request, csrf)
    request.session.clear()
    return _see_other("/login")


@router.get("/tickets")
def ticket_queue(
    *,
    request: Request,
    user: UiUser,
    service: ServiceDep,
    status_: Annotated[UiStatus, Query(alias="status")] = "open",
    priority: Priority | Literal[""] = "",
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    page = service.list_tickets(
        status=None if status_ == "all" else status_,
        priority=priority or None,
        limit=PAGE_SIZE,
        offset=offset,
    )
    return render(
        request,
        "tickets.html",
        {
            "user": user,
            "page": page,
            "status": status_,
            "priority": priority,
            "statuses": ("all", *STATUS_FILTERS),
            "priorities": PRIORITIES,
            "next_offset": offset + PAGE_SIZE if offset + PAGE_SIZE < page.total else None,
            "prev_offset": max(offset - PAGE_SIZE, 0) if offset else None,
        },
    )


@router.get("/tickets/{ticket_id}")
def ticket_page(
    request: Request, ticket_id: int, user: UiUser, service: ServiceDep, settings: SettingsDep
) -> Response:
    try:
        detail = service.get(ticket_id)
    except TicketNotFound as exc:
        context = {"user": user, "message": str(exc)}
        return render(request, "not_found.html", context, status_code=status.HTTP_404_NOT_FOUND)
    latest = detail.latest
    return render(
        request,
        "ticket.html",
        {
            "user": user,
            "t": detail.ticket,
            "detail": detail,
            "evidence": evidence_view(latest.evidence if latest else None),
            "audit": [(entry, audit_summary(entry.action, entry.detail)) for entry in detail.audit],
            "can_act": can_act(user),
            "runbook": runbook_panel(detail.ticket.runbook_id, settings.runbooks_dir),
        },
    )


def _change(request: Request, ticket_id: int, message: str) -> Response:
    flash(request, message)
    return _see_other(f"/tickets/{ticket_id}")


@router.post("/tickets/{ticket_id}/acknowledge")
def acknowledge(
    *, request: Request, ticket_id: int, user: UiUser, service: ServiceDep, session: SessionDep, csrf: Csrf
) -> Response:
    check_csrf(request, csrf)
    require_acting(user)
    try:
        service.acknowledge(ticket_id, user.username)
    except TicketNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except InvalidTransition as exc:
        return _change(request, ticket_id, f"Not acknowledged: {exc}.")
    session.commit()
    return _change(request, ticket_id, f"Ticket #{ticket_id} acknowledged.")


@router.post("/tickets/{ticket_id}/resolve")
def resolve(
    *,
    request: Request,
    ticket_id: int,
    user: UiUser,
    service: ServiceDep,
    session: SessionDep,
    csrf: Csrf,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    check_csrf(request, csrf)
    require_acting(user)
    if not reason.strip():
        return _change(request, ticket_id, "Not resolved: say why the ticket is resolved.")
    try:
        service.resolve(ticket_id, user.username, reason)
    except TicketNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except InvalidTransition as exc:
        return _change(request, ticket_id, f"Not resolved: {exc}.")
    session.commit()
    return _change(request, ticket_id, f"Ticket #{ticket_id} resolved.")


@router.post("/tickets/{ticket_id}/comment")
def comment(
    *,
    request: Request,
    ticket_id: int,
    user: UiUser,
    service: ServiceDep,
    session: SessionDep,
    csrf: Csrf,
    text: Annotated[str, Form(max_length=10000)] = "",
) -> Response:
    check_csrf(request, csrf)
    require_acting(user)
    if not text.strip():
        return _change(request, ticket_id, "Nothing to add: the comment was empty.")
    try:
        service.comment(ticket_id, user.username, text)
    except TicketNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    session.commit()
    return _change(request, ticket_id, "Comment added.")
