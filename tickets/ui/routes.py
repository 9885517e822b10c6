"""The server-rendered web UI for support teams: log in, the queue, one ticket, acknowledge and resolve.

Every change is a POST carrying the session's CSRF token, answered with a redirect (POST-redirect-GET).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Literal, cast

from fastapi import APIRouter, Form, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from core.db import utcnow
from core.i18n import choose_language, html_lang, translations
from core.localtime import display_zone
from core.vocabulary import Category, Priority
from tickets import queries, sessions
from tickets.api.deps import SessionDep, SettingsDep, TicketId
from tickets.api.state import AppState, app_state
from tickets.auth import login_attempt
from tickets.cache import store_version
from tickets.queries import MAX_TEXT, STATUS_FILTERS, SortKey, StatusFilter, TicketFilter
from tickets.throttle import ThrottleRules
from tickets.ui import (
    actions,
    agent_actions,
    daily_reports,
    links,
    my_reports,
    oncall_page,
    problem_pages,
    profile,
    queue_actions,
    report,
    runbook_actions,
)
from tickets.ui import ticket_page as ticket_pages
from tickets.ui.queue_actions import queue_extras
from tickets.ui.queue_rows import render_rows
from tickets.ui.report import may
from tickets.ui.views import (
    SORTS,
    ClockFacts,
    LiveClocks,
    check_title_for,
    queue_url,
    status_counts,
)
from tickets.ui.web import (
    SESSION_KEY,
    Csrf,
    check_csrf,
    client_address,
    cookie_session_id,
    csrf_token,
    display_zone_of,
    gettext_for,
    render,
    request_language,
    safe_next,
    templates,
    ui_user,
)

router = APIRouter(include_in_schema=False)

UiStatus = Literal["all", StatusFilter]
PAGE_SIZE = 100
_SLOT = f"hcslot{secrets.token_hex(8)}x"
"""Marks the places of a rendered queue page filled per request (unguessable: no ticket text holds it)."""


@dataclass(frozen=True, slots=True)
class QueuePage:
    """A rendered queue page as UTF-8 pieces with a slot between each two: a row's SLA clock (its index)
    or, for ``None``, the CSRF token. Filled per request without encoding the page again."""

    pieces: tuple[bytes, ...]
    slots: tuple[int | None, ...]
    clocks: LiveClocks

    @classmethod
    def split(cls, html: str, clocks: LiveClocks, ids: Sequence[int]) -> QueuePage:
        """``ids``: the tickets whose clocks ``clocks`` gives, in its order (a clock slot names its
        ticket: kept rows do not know their place on a page)."""
        parts = html.split(_SLOT)
        place = {str(ticket_id): n for n, ticket_id in enumerate(ids)}
        return cls(
            tuple(part.encode() for part in parts[::2]),
            tuple(None if name == "csrf" else place[name] for name in parts[1::2]),
            clocks,
        )

    def fill(self, csrf: str, now: datetime) -> bytes:
        cells = self.clocks.cells(now)
        token = csrf.encode()
        out = [self.pieces[0]]
        for slot, piece in zip(self.slots, self.pieces[1:], strict=True):
            out.append(token if slot is None else cells[slot].encode())
            out.append(piece)
        return b"".join(out)


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
    settings: SettingsDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    csrf: Csrf,
    next: Annotated[str, Form()] = "/tickets",
) -> Response:
    check_csrf(request, csrf)
    now = utcnow()
    address = client_address(request)
    rules = ThrottleRules.of(settings.security)
    result = login_attempt(session, username.strip(), password, address=address, rules=rules, now=now)
    user = result.user
    if user is None:
        session.commit()  # the failure counts and any lockout (rows of the store, shared by every process)
        error = result.message(now, gettext_for(request, None))
        context = {"next": safe_next(next), "error": error, "username": username}
        code = status.HTTP_429_TOO_MANY_REQUESTS if result.locked_until else status.HTTP_401_UNAUTHORIZED
        response = render(request, "login.html", context, status_code=code)
        if result.locked_until is not None:
            response.headers["Retry-After"] = str(
                max(1, int((result.locked_until - now).total_seconds()) + 1)
            )
        return response
    max_age = timedelta(seconds=settings.security.session_max_age_s)
    session_id = sessions.start(session, user, now=now, max_age=max_age, address=address)
    session.commit()  # the session, and a rehashed password (argon2 parameters upgraded on login)
    request.session.clear()  # a fresh cookie (and CSRF token) for the logged-in user
    request.session[SESSION_KEY] = session_id
    return _see_other(safe_next(next))


@router.post("/logout")
def logout(request: Request, session: SessionDep, csrf: Csrf) -> Response:
    check_csrf(request, csrf)
    session_id = cookie_session_id(request)
    if session_id is not None:
        sessions.end(session, session_id, now=utcnow())
        session.commit()
    request.session.clear()
    return _see_other("/login")


@router.get("/tickets")
async def ticket_queue(
    *,
    request: Request,
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
    params: QueueParams = {
        "status": status_,
        "priority": priority,
        "queue": queue.strip(),
        "assignee": assignee.strip(),
        "category": category,
        "source": source.strip(),
        "q": q.strip(),
        "sort": sort,
    }
    state = app_state(request)
    # A cache hit is answered on the event loop: the session's user and the tickets version in one statement
    # (tickets/hot_reads.py). Anything else (nobody logged in, a role without the queue, flash messages to
    # show, a miss) takes the general path in a worker thread, which reads the version first and builds.
    if not request.session.get("flash"):
        who = await state.hot.session_user(request.session.get(SESSION_KEY))
        if who is not None and who.allows("tickets:read"):
            language = choose_language(
                who.language, request.headers.get("accept-language"), state.settings.site.language
            )
            zone = display_zone(who.timezone, state.settings.site.timezone).key
            key = _queue_key(
                who.user_id, who.username, who.role, who.display_name, language, params, offset, zone
            )
            return await state.caches.answer(
                QUEUE_CACHE,
                key,
                who.version,
                lead=lambda: run_in_threadpool(_queue_page, request, state, params, offset),
                hit=lambda page: _queue_response(request, page, language),
            )
    return await run_in_threadpool(_queue_page, request, state, params, offset)


QueueParams = dict[str, str]
QUEUE_CACHE = "queue-page"


def _queue_key(  # noqa: PLR0917  (the parts of the key)
    user_id: int,
    username: str,
    role: str,
    display_name: str,
    language: str,
    params: QueueParams,
    offset: int,
    zone: str,
) -> tuple[object, ...]:
    return (user_id, username, role, display_name, language, tuple(params.items()), offset, zone)


def _queue_response(request: Request, page: QueuePage, language: str) -> Response:
    """The page with this request's CSRF token and the SLA clocks as they read now."""
    headers = {"Content-Language": html_lang(language), "Vary": "Accept-Language"}
    return HTMLResponse(page.fill(csrf_token(request), utcnow()), headers=headers)


def _queue_page(request: Request, state: AppState, params: QueueParams, offset: int) -> Response:
    with state.session_factory() as session:
        user = ui_user(request, session)
        if not may(user, "tickets:read"):  # a reporter files reports and sees no queue
            return _see_other("/report")
        sort = cast(SortKey, params["sort"])
        flt = TicketFilter(
            status=None if params["status"] == "all" else params["status"],
            priority=params["priority"] or None,
            queue=params["queue"] or None,
            assignee=user.username if params["assignee"] == "me" else params["assignee"] or None,
            category=params["category"] or None,
            source=params["source"] or None,
            text=params["q"] or None,
        )
        # The page at this tickets version, rendered once (tickets/cache.py): only the CSRF token and the
        # SLA clocks (which move with time) are filled in per request. A page with flash messages is not
        # cached.
        flashes = request.session.pop("flash", [])
        version = store_version(session)
        cache = state.caches.get(QUEUE_CACHE)
        language = request_language(request, user)
        zone = display_zone_of(request, user)
        key = _queue_key(
            user.id, user.username, user.role, user.display_name, language, params, offset, zone.key
        )
        gettext = translations(language).gettext

        def build() -> QueuePage:
            extras = queue_extras(session, user)
            check_title = check_title_for(state.ports, language)
            page = queries.list_tickets(
                session, flt, sort=sort, limit=PAGE_SIZE, offset=offset, lean=True, version=version
            )
            context = {
                "request": request,
                "csrf": Markup(f"{_SLOT}csrf{_SLOT}"),  # noqa: S704  (our own marker)
                "flashes": flashes,
                "user": user,
                "zone": zone,
                "site": state.settings.site,
                "page": page,
                "rows": page.items,
                "rows_html": render_rows(
                    templates(language).get_template("_queue_row.html"),
                    page.items,
                    page.assignees,
                    slot=lambda ticket_id: Markup(f"{_SLOT}{ticket_id}{_SLOT}"),  # noqa: S704
                    language=language,
                    zone=zone,
                    site=state.settings.site,
                    can_act=extras["can_act"],
                    check_title=check_title,
                ),
                "params": params,
                "url": lambda **change: queue_url(params, **change),
                "statuses": ("all", *STATUS_FILTERS),
                "priorities": list(Priority),
                "categories": list(Category),
                "check_title": check_title,
                "sorts": SORTS,
                "status_counts": status_counts(page.facets.by_status),
                "next_offset": offset + PAGE_SIZE if offset + PAGE_SIZE < page.total else None,
                "prev_offset": max(offset - PAGE_SIZE, 0) if offset else None,
                **extras,
            }
            html = templates(language).get_template("tickets.html").render(context)
            clocks = LiveClocks([ClockFacts.of(t) for t in page.items], gettext, zone)
            return QueuePage.split(html, clocks, [t.id for t in page.items])

        cached = build() if flashes else cache.get_or_build(key, version, build)
        return _queue_response(request, cached, language)


@router.get("/tickets/{ticket_id}")
async def ticket_page(request: Request, ticket_id: TicketId) -> Response:
    """One ticket. A cache hit is answered on the event loop (the user and the page version in one
    statement); anything else takes the general path in a worker thread (tickets/ui/ticket_page.py)."""
    state = app_state(request)
    if not request.session.get("flash"):
        who = await state.hot.session_user(request.session.get(SESSION_KEY), ticket_id)
        if who is not None and who.allows("tickets:read"):
            return await ticket_pages.answer(request, state, who, ticket_id)
    return await run_in_threadpool(ticket_pages.general_path, request, state, ticket_id)


# Included after the pages above: a request is matched against the routes in order, and the queue and
# ticket pages are what a support team loads all day (no path here overlaps another).
router.include_router(queue_actions.router)  # /tickets/bulk before /tickets/{id}/... (no overlap)
router.include_router(actions.router)
router.include_router(report.router)
router.include_router(runbook_actions.router)
router.include_router(daily_reports.router)
router.include_router(profile.router)
router.include_router(links.router)  # GET/POST /act/<token>: one-click links of notifications
router.include_router(oncall_page.router)  # GET /oncall
router.include_router(agent_actions.router)
router.include_router(my_reports.router)
router.include_router(problem_pages.router)
