"""The server-rendered web UI for support teams: log in, the queue, one ticket, acknowledge and resolve.

Every change is a POST carrying the session's CSRF token, answered with a redirect (POST-redirect-GET).
"""

from __future__ import annotations

import secrets
from typing import Annotated, Literal, get_args

from fastapi import APIRouter, Form, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from anomaly.events import Category
from hypercare.config import PRIORITIES, Priority
from hypercare.db import utcnow
from tickets import queries
from tickets.api.deps import ServiceDep, SessionDep, SettingsDep, TicketId
from tickets.auth import authenticate
from tickets.cache import cache_for, store_version
from tickets.diagnostics import diagnostics_of
from tickets.errors import TicketNotFound
from tickets.lifecycle import Lifecycle
from tickets.queries import MAX_TEXT, STATUS_FILTERS, SortKey, TicketFilter
from tickets.runbook_steps import done_steps
from tickets.service import TRANSITIONS, WAITING_REASONS
from tickets.ui import actions, report, runbook_actions
from tickets.ui.actions import LINK_KINDS
from tickets.ui.report import may
from tickets.ui.views import (
    SORTS,
    ClockFacts,
    LiveClocks,
    audit_summary,
    diagnostics_view,
    evidence_view,
    queue_url,
    runbook_panel,
    sla_clock,
    status_counts,
)
from tickets.ui.web import (
    UiUser,
    can_act,
    check_csrf,
    csrf_token,
    render,
    safe_next,
    templates,
)

router = APIRouter(include_in_schema=False)
router.include_router(actions.router)
router.include_router(report.router)
router.include_router(runbook_actions.router)

UiStatus = Literal[
    "all", "open", "closed", "new", "acknowledged", "in_progress", "waiting", "reopened", "resolved"
]
PAGE_SIZE = 100
_SLOT = f"hcslot{secrets.token_hex(8)}x"
"""Marks the places of a rendered queue page filled per request (unguessable: no ticket text holds it)."""
QueuePage = tuple[tuple[str, ...], LiveClocks]
"""A rendered queue page split at its slots (odd items name them), and its rows' SLA clocks."""
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
    session.commit()  # keeps a rehashed password (argon2 parameters upgraded on login)
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
    session: SessionDep,
    status_: Annotated[UiStatus, Query(alias="status")] = "open",
    priority: Priority | Literal[""] = "",
    queue: Annotated[str, Query(max_length=64)] = "",
    assignee: Annotated[str, Query(max_length=64)] = "",
    category: Category | Literal[""] = "",
    source: Annotated[str, Query(max_length=64)] = "",
    q: Annotated[str, Query(max_length=MAX_TEXT)] = "",
    sort: SortKey = "priority",
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    if not may(user, "tickets:read"):  # a reporter files reports and sees no queue
        return _see_other("/report")
    params = {
        "status": status_,
        "priority": priority,
        "queue": queue.strip(),
        "assignee": assignee.strip(),
        "category": category,
        "source": source.strip(),
        "q": q.strip(),
        "sort": sort,
    }
    flt = TicketFilter(
        status=None if status_ == "all" else status_,
        priority=priority or None,
        queue=params["queue"] or None,
        assignee=user.username if params["assignee"] == "me" else params["assignee"] or None,
        category=category or None,
        source=params["source"] or None,
        text=params["q"] or None,
    )
    # The page at this tickets version, rendered once (tickets/cache.py): only the CSRF token and the SLA
    # clocks (which move with time) are filled in per request. A page with flash messages is not cached.
    flashes = request.session.pop("flash", [])
    version = store_version(session)
    cache = cache_for(session, "queue-page")
    key = (user.id, user.username, user.role, user.display_name, tuple(params.items()), offset)

    def build() -> QueuePage:
        page = queries.list_tickets(
            session, flt, sort=sort, limit=PAGE_SIZE, offset=offset, lean=True, version=version
        )
        context = {
            "request": request,
            "csrf": Markup(f"{_SLOT}csrf{_SLOT}"),  # noqa: S704  (our own marker)
            "flashes": flashes,
            "user": user,
            "page": page,
            "rows": [
                (t, page.assignees.get(t.id), Markup(f"{_SLOT}{n}{_SLOT}"))  # noqa: S704
                for n, t in enumerate(page.items)
            ],
            "params": params,
            "url": lambda **change: queue_url(params, **change),
            "statuses": ("all", *STATUS_FILTERS),
            "priorities": PRIORITIES,
            "categories": get_args(Category),
            "sorts": SORTS,
            "status_counts": status_counts(page.facets.by_status),
            "next_offset": offset + PAGE_SIZE if offset + PAGE_SIZE < page.total else None,
            "prev_offset": max(offset - PAGE_SIZE, 0) if offset else None,
        }
        html = templates().get_template("tickets.html").render(context)
        return tuple(html.split(_SLOT)), LiveClocks([ClockFacts.of(t) for t in page.items])

    cached = build() if flashes else cache.get_or_build(key, version, build)
    parts, live = cached
    csrf, clocks = csrf_token(request), live.cells(utcnow())
    return HTMLResponse(
        "".join(
            part if n % 2 == 0 else csrf if part == "csrf" else clocks[int(part)]
            for n, part in enumerate(parts)
        )
    )


@router.get("/tickets/{ticket_id}")
def ticket_page(
    request: Request, ticket_id: TicketId, user: UiUser, service: ServiceDep, settings: SettingsDep
) -> Response:
    if not may(user, "tickets:read"):
        return _see_other("/report")
    try:
        detail = service.get(ticket_id)
    except TicketNotFound as exc:
        context = {"user": user, "message": str(exc)}
        return render(request, "not_found.html", context, status_code=status.HTTP_404_NOT_FOUND)
    ticket = detail.ticket
    lifecycle = Lifecycle(service)
    latest = detail.latest
    return render(
        request,
        "ticket.html",
        {
            "user": user,
            "t": ticket,
            "detail": detail,
            "evidence": evidence_view(latest.evidence if latest else None),
            "audit": [(entry, audit_summary(entry.action, entry.detail)) for entry in detail.audit],
            "can_act": can_act(user),
            "runbook": runbook_panel(
                ticket.runbook_id,
                settings.runbooks_dir,
                done=done_steps(service.session, ticket_id, ticket.runbook_id or "")
                if can_act(user)
                else None,
            ),
            "diagnostics": diagnostics_view(diagnostics_of(service.session, ticket_id)),
            "clock": sla_clock(ticket, utcnow()),
            "transitions": [to for to in TRANSITIONS.get(ticket.status, ()) if to != "acknowledged"],
            "waiting_reasons": WAITING_REASONS,
            "priorities": PRIORITIES,
            "link_kinds": LINK_KINDS,
            "links": lifecycle.links(ticket_id),
            "watchers": lifecycle.watchers(ticket_id),
        },
    )
