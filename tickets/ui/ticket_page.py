"""The ticket page, cached per ticket: a write to one ticket rebuilds that ticket's page and no other.

A rendered page is filed under the ticket's **page version** (tickets/cache.py: the ticket's own counter
plus the epoch that writes touching every page move), the reader (user, role, language, zone: what the
page shows differs by them) and nothing else. A request reads the version first (on the event loop, in the
same statement as its user: tickets/hot_reads.py), then looks the page up; a miss builds it in a worker
thread after reading the version again, so what is filed is at least as new as its version: never stale.

What moves with time rather than with writes is handled per request or bounds the entry's life:

* the CSRF token and the SLA clock are filled into slots of the cached page on every request;
* a page is kept only until its first time-bound part would read differently (:attr:`TicketPage.until`):
  the next midnight (a workaround's review turning overdue, the review date offered), and the start or end
  of a silence it lists;
* a runbook directory edited on disk reloads its runbooks: the page keeps the runbook it showed and is not
  served once the library holds another.

A page with flash messages, or for a request the event loop cannot answer completely, takes the general
path, which gives the answer it always gave.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from fastapi import Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup, escape
from starlette.concurrency import run_in_threadpool

from core.db import utcnow
from core.i18n import Gettext, choose_language, html_lang, translations
from core.localtime import display_zone
from core.vocabulary import Priority, TicketStatus
from runbooks.library import Runbook, RunbookError, load_runbooks
from runbooks.models import diagnostics_of
from runbooks.steps import done_steps
from tickets.api.state import AppState
from tickets.cache import page_version
from tickets.errors import TicketNotFound
from tickets.hot_reads import Who
from tickets.lifecycle import Lifecycle
from tickets.models import User
from tickets.service import TRANSITIONS, WAITING_REASONS, TicketService
from tickets.ui.actions import LINK_KINDS
from tickets.ui.agent_views import agent_context
from tickets.ui.report import may
from tickets.ui.views import (
    FOREVER,
    ClockFacts,
    audit_summary,
    check_title_for,
    clock_until,
    diagnostics_view,
    evidence_view,
    runbook_panel,
    sla_clock,
)
from tickets.ui.web import (
    can_act,
    csrf_token,
    display_zone_of,
    render,
    request_language,
    templates,
    ui_user,
)

TICKET_CACHE = "ticket-page"
_SLOT = f"hcslot{secrets.token_hex(8)}x"
"""Marks the places filled per request (unguessable: no ticket text holds it)."""
_CSRF, _CLOCK = "csrf", "clock"


@dataclass(slots=True)
class TicketPage:
    """A rendered ticket page as UTF-8 pieces with the CSRF token and the SLA clock between them."""

    pieces: tuple[bytes, ...]
    slots: tuple[str, ...]
    clock: ClockFacts
    gettext: Gettext
    until: datetime
    """When a time-bound part of the page (not the clock) would first read differently."""
    runbook: Runbook | None
    """The runbook the page shows, as the library held it (None: none shown)."""
    _cell: tuple[bytes, datetime, datetime] | None = None

    @classmethod
    def split(cls, html: str, **facts: Any) -> TicketPage:
        parts = html.split(_SLOT)
        return cls(tuple(part.encode() for part in parts[::2]), tuple(parts[1::2]), **facts)

    def current(self, now: datetime, runbook: Runbook | None) -> bool:
        """Whether the page still reads as it did when it was built, but for what is filled in."""
        return now < self.until and runbook is self.runbook and runbook is not _UNREADABLE

    def fill(self, csrf: str, now: datetime) -> bytes:
        token = csrf.encode()
        clock = self._clock_cell(now)
        out = [self.pieces[0]]
        for slot, piece in zip(self.slots, self.pieces[1:], strict=True):
            out.append(token if slot == _CSRF else clock)
            out.append(piece)
        return b"".join(out)

    def _clock_cell(self, now: datetime) -> bytes:
        cell = self._cell  # one read: another thread may replace it meanwhile
        if cell is not None and cell[1] <= now < cell[2]:
            return cell[0]
        clock = sla_clock(self.clock, now, self.gettext)
        html = f'<span class="clock {escape(clock.css)}" id="sla-clock">{escape(clock.text)}</span>'
        self._cell = (html.encode(), now, clock_until(self.clock, now))
        return self._cell[0]


def cache_key(who: Who | User, language: str, zone: str, ticket_id: int) -> tuple[object, ...]:
    """What a cached page depends on besides its version: the ticket and who reads it, in which language
    and zone."""
    user_id = who.user_id if isinstance(who, Who) else who.id
    return (ticket_id, user_id, who.username, who.role, who.display_name, language, zone)


_UNREADABLE: Any = object()
"""What :func:`shown_runbook` gives for a runbook directory it cannot read: no kept page is current with it
(the page built then shows the runbook panel's own error)."""


def shown_runbook(state: AppState, runbook_id: str | None) -> Runbook | None:
    """The runbook a page of a ticket linking ``runbook_id`` shows, as the library holds it now (re-read
    when a file of the runbook directory changed)."""
    if not runbook_id:
        return None
    try:
        return load_runbooks(state.settings.runbooks_dir).get(runbook_id)
    except RunbookError:
        return _UNREADABLE  # type: ignore[no-any-return]


def _current(state: AppState, page: TicketPage, now: datetime) -> bool:
    """Whether a kept page may be served at ``now`` (its runbook as the library holds it now)."""
    if page.runbook is _UNREADABLE:
        return False
    return page.current(now, shown_runbook(state, page.runbook.id if page.runbook else None))


async def answer(request: Request, state: AppState, who: Who, ticket_id: int) -> Response:
    """The page for a reader the event loop identified: from the cache when it is filed under the page
    version and still current, else through the general path (once for all the requests missing it)."""
    language = choose_language(
        who.language, request.headers.get("accept-language"), state.settings.site.language
    )
    zone = display_zone(who.timezone, state.settings.site.timezone).key

    def hit(page: TicketPage) -> Response | None:
        now = utcnow()
        return _response(request, page, language, now) if _current(state, page, now) else None

    return await state.caches.answer(
        TICKET_CACHE,
        cache_key(who, language, zone, ticket_id),
        who.page_version,
        lead=lambda: run_in_threadpool(general_path, request, state, ticket_id),
        hit=hit,
    )


def _response(request: Request, page: TicketPage, language: str, now: datetime) -> Response:
    headers = {"Content-Language": html_lang(language), "Vary": "Accept-Language"}
    return HTMLResponse(page.fill(csrf_token(request), now), headers=headers)


def general_path(request: Request, state: AppState, ticket_id: int) -> Response:
    """Who asks from the store, the page version, then the page from the cache or built (and filed)."""
    with state.session_factory() as session:
        user = ui_user(request, session)
        if not may(user, "tickets:read"):  # a reporter files reports and sees no queue
            return RedirectResponse("/report", status.HTTP_303_SEE_OTHER)
        service = TicketService(session, state.settings)
        version = page_version(session, ticket_id)
        flashes = request.session.pop("flash", [])
        language = request_language(request, user)
        zone = display_zone_of(request, user)
        key = cache_key(user, language, zone.key, ticket_id)
        cache = state.caches.get(TICKET_CACHE)
        now = utcnow()
        if not flashes:
            found = cache.get(key, version)
            if found is not None and _current(state, found, now):
                return _response(request, found, language, now)
        try:
            detail = service.get(ticket_id)
        except TicketNotFound as exc:
            context = {"user": user, "message": str(exc), "flashes": flashes}
            return render(request, "not_found.html", context, status_code=status.HTTP_404_NOT_FOUND)
        page = _build(request, state, service, detail, user, language, zone, flashes)
        if not flashes:
            cache.put(key, version, page)
        return _response(request, page, language, now)


def _build(  # noqa: PLR0917  (the parts of a page)
    request: Request,
    state: AppState,
    service: TicketService,
    detail: Any,
    user: Any,
    language: str,
    zone: Any,
    flashes: list[Any],
) -> TicketPage:
    ticket = detail.ticket
    ticket_id = ticket.id
    lifecycle = Lifecycle(service)
    latest = detail.latest
    gettext = translations(language).gettext
    runbook = shown_runbook(state, ticket.runbook_id)
    acting = can_act(user)
    agent = agent_context(service, ticket, user)
    context = {
        "request": request,
        "csrf": Markup(f"{_SLOT}{_CSRF}{_SLOT}"),  # noqa: S704  (our own marker)
        "flashes": flashes,
        "zone": zone,
        "site": state.settings.site,
        "user": user,
        "t": ticket,
        "detail": detail,
        "evidence": evidence_view(latest.evidence if latest else None),
        "audit": [(entry, audit_summary(entry.action, entry.detail)) for entry in detail.audit],
        "can_act": acting,
        "check_title": check_title_for(state.ports, language)(ticket.check_id),
        "runbook": runbook_panel(
            ticket.runbook_id,
            state.settings.runbooks_dir,
            done=done_steps(service.session, ticket_id, ticket.runbook_id or "") if acting else None,
            language=language,
        ),
        "diagnostics": diagnostics_view(diagnostics_of(service.session, ticket_id)),
        "clock_slot": Markup(f"{_SLOT}{_CLOCK}{_SLOT}"),  # noqa: S704
        "transitions": [to for to in TRANSITIONS.get(ticket.status, ()) if to != TicketStatus.ACKNOWLEDGED],
        "waiting_reasons": WAITING_REASONS,
        "priorities": list(Priority),
        "link_kinds": LINK_KINDS,
        "links": lifecycle.links(ticket_id),
        "watchers": lifecycle.watchers(ticket_id),
        **agent,
    }
    html = templates(language).get_template("ticket.html").render(context)
    return TicketPage.split(
        html,
        clock=ClockFacts.of(ticket),
        gettext=gettext,
        until=_until(service.now(), agent["ticket_silences"]),
        runbook=runbook,
    )


def _until(now: datetime, shown_silences: list[Any]) -> datetime:
    """The first moment a time-bound part of the page reads differently: the next midnight (UTC: the
    page's "today"), or a listed silence starting or ending."""
    midnight = datetime.combine(now.date() + timedelta(days=1), time(), tzinfo=UTC)
    bounds = [midnight]
    for silence in shown_silences:
        bounds.extend(moment for moment in (silence.starts_at, silence.ends_at) if moment and moment > now)
    return min(bounds, default=FOREVER)
