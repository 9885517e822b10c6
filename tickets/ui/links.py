"""The one-click links of notifications (tickets/action_links.py): ``GET /act/<token>`` shows what the link
will do, its form's button ``POST``s it. No login: the signed, expiring, single-use link is the permission,
and whoever uses it is audited as the target the notification went to. A tampered, expired or used link,
or one whose ticket has moved on, gets an error page saying which."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Form, Path, Request, status
from fastapi.responses import Response

from core.i18n import N_, Gettext
from tickets import action_links
from tickets.action_links import Link, LinkError, LinkExpired, LinkUsed
from tickets.api.deps import ServiceDep, SessionDep, SettingsDep
from tickets.errors import TicketError, TicketNotFound
from tickets.service import TicketService
from tickets.settings import TicketsConfig
from tickets.ui.web import client_address, gettext_for, render, render_error

router = APIRouter(include_in_schema=False)
Token = Annotated[str, Path(min_length=10, max_length=400, pattern=r"^[A-Za-z0-9_=.-]+$")]
TITLES = {
    "acknowledge": N_("Acknowledge ticket #%(id)s"),
    "resolve": N_("Resolve ticket #%(id)s"),
    "silence": N_("Silence ticket #%(id)s"),
}
WHAT = {
    "acknowledge": N_("Acknowledge ticket #%(id)s: you take it, and its escalation stops."),
    "resolve": N_("Resolve ticket #%(id)s with the reason you give below."),
    "silence": N_(
        "Silence the notifications of ticket #%(id)s (and of tickets matching it) for %(hours)s h."
    ),
}
"""What each link does, as :func:`tickets.action_links.describe` says it, in the reader's language."""
DONE = {
    "acknowledge": N_("Ticket #%(id)s acknowledged."),
    "resolve": N_("Ticket #%(id)s resolved."),
    "silence": N_("Notifications of ticket #%(id)s silenced for %(hours)s h (silence %(silence)s)."),
}
"""What a used link did, as :func:`tickets.action_links.use` says it, in the reader's language."""
SILENCE_ID = re.compile(r"\(silence (\d+)\)")
REFUSALS = (
    N_("This link has already been used; each link works once."),
    N_(
        "This link is not valid: it was changed, cut short or signed with a key that has since been "
        "replaced. Open the ticket from the queue instead."
    ),
    N_("resolving needs a reason: say what fixed it"),
)
"""tickets.action_links' refusals, marked for the catalogs: the error page shows them translated."""
EXPIRED = re.compile(r"^This link expired at (\d{4}-\d\d-\d\d \d\d:\d\d) UTC\.")


def _done(_: Gettext, link: Link, settings: TicketsConfig, done: str) -> str:
    """``done`` (action_links.use's English words) in the reader's language; as is if unrecognised."""
    silence = SILENCE_ID.search(done)
    if link.action not in DONE or (link.action == "silence" and silence is None):
        return done
    facts = {
        "id": link.ticket_id,
        "hours": f"{settings.notifications.link_silence_h:g}",
        "silence": silence.group(1) if silence else "",
    }
    return _(DONE[link.action]) % facts


def _error(request: Request, exc: Exception) -> Response:
    code = status.HTTP_410_GONE if isinstance(exc, LinkExpired | LinkUsed) else status.HTTP_400_BAD_REQUEST
    if isinstance(exc, TicketNotFound):
        code = status.HTTP_404_NOT_FOUND
    elif isinstance(exc, TicketError):
        code = status.HTTP_409_CONFLICT
    expired = EXPIRED.match(str(exc)) if isinstance(exc, LinkExpired) else None
    if expired:
        _ = gettext_for(request, None)
        message = _("This link expired at %(when)s UTC. Open the ticket from the queue instead.")
        return render_error(request, code, message % {"when": expired.group(1)})
    return render_error(request, code, str(exc))


def _checked(service: TicketService, settings: TicketsConfig, token: str) -> Link:
    link = action_links.verify(action_links.link_key(settings), token, service.now())
    if action_links.used(service, link) is not None:
        raise LinkUsed("This link has already been used; each link works once.")
    return link


@router.get("/act/{token}")
def show(*, request: Request, token: Token, service: ServiceDep, settings: SettingsDep) -> Response:
    """What the link will do, and a button to do it (a GET changes nothing: link previews fetch it)."""
    try:
        link = _checked(service, settings, token)
        ticket = service.get(link.ticket_id).ticket
    except (LinkError, TicketError) as exc:
        return _error(request, exc)
    _ = gettext_for(request, None)
    facts = {"id": ticket.id, "hours": f"{settings.notifications.link_silence_h:g}"}
    context = {
        "title": _(TITLES[link.action]) % facts,
        "link": link,
        "ticket": ticket,
        "what": _(WHAT[link.action]) % facts
        if link.action in WHAT
        else action_links.describe(link, ticket, settings),
        "actor": action_links.actor(settings, link),
        "token": token,
    }
    return render(request, "link.html", context)


@router.post("/act/{token}")
def act(
    *,
    request: Request,
    token: Token,
    service: ServiceDep,
    session: SessionDep,
    settings: SettingsDep,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Do what the link says, once; the page says what was done."""
    try:
        link = _checked(service, settings, token)
        done = action_links.use(service, link, reason=reason, address=client_address(request))
    except (LinkError, TicketError, ValueError) as exc:
        session.rollback()
        return _error(request, exc)
    session.commit()
    _ = gettext_for(request, None)
    context = {"title": _("Done"), "done": _done(_, link, settings, done), "ticket_id": link.ticket_id}
    return render(request, "link_done.html", context)
