"""The ticket page's actions: acknowledge, resolve, comment, change status or priority (with a reason),
assign, link to another ticket. Each is a POST carrying the session's CSRF token, answered with a redirect
back to the ticket (POST-redirect-GET) and a flash message saying what happened or why it did not."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, cast

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import RedirectResponse, Response

from tickets import conversation
from tickets.api.deps import ServiceDep, SessionDep, TicketId
from tickets.api.schemas import visible_text
from tickets.errors import TicketError, TicketNotFound
from tickets.i18n import word
from tickets.lifecycle import Lifecycle, LinkKind
from tickets.models import User
from tickets.ui.web import Csrf, UiUser, check_csrf, flash, flash_error, gettext_for, require_acting

router = APIRouter(include_in_schema=False)
Reason = Annotated[str, Form(max_length=2000)]
LINK_KINDS = ("relates", "duplicates", "caused_by")
MAX_ID = 2**31 - 1


def back(request: Request, ticket_id: int, message: str, *, failure: bool = False) -> Response:
    """Back to the ticket with ``message`` (a ``failure`` is shown red, as an alert)."""
    (flash_error if failure else flash)(request, message)
    return RedirectResponse(f"/tickets/{ticket_id}", status.HTTP_303_SEE_OTHER)


def run(
    request: Request,
    session: SessionDep,
    ticket_id: int,
    *,
    failed: str,
    change: Callable[[], Any],
    done: str,
    facts: Mapping[str, object] | None = None,
) -> Response:
    """Run one change of the ticket page: commit and say ``done``, or roll back and say, as a failure, why
    not (``failed``: a translated text with a ``%(reason)s`` placeholder, filled with ``facts`` too). A
    ticket of the URL that does not exist is a 404."""
    try:
        change()
    except TicketNotFound as exc:
        session.rollback()
        if exc.ticket_id == ticket_id:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
        return back(request, ticket_id, failed % {**(facts or {}), "reason": exc}, failure=True)
    except (TicketError, ValueError, PermissionError) as exc:
        session.rollback()
        return back(request, ticket_id, failed % {**(facts or {}), "reason": exc}, failure=True)
    session.commit()
    return back(request, ticket_id, done)


def _act(
    request: Request,
    session: SessionDep,
    user: User,
    ticket_id: int,
    csrf: str,
    *,
    failed: str,
    change: Callable[[], Any],
    done: str,
    refuse: str | None = None,
    facts: Mapping[str, object] | None = None,
) -> Response:
    """:func:`run` for ``user`` after the CSRF and role checks (``refuse``: the form is incomplete, so
    nothing is tried). The messages come translated into the user's language."""
    check_csrf(request, csrf)
    require_acting(user)
    if refuse:
        return back(request, ticket_id, refuse, failure=True)
    return run(request, session, ticket_id, failed=failed, change=change, done=done, facts=facts)


@router.post("/tickets/{ticket_id}/acknowledge")
def acknowledge(
    *,
    request: Request,
    ticket_id: TicketId,
    user: UiUser,
    service: ServiceDep,
    session: SessionDep,
    csrf: Csrf,
) -> Response:
    _ = gettext_for(request, user)
    return _act(
        request,
        session,
        user,
        ticket_id,
        csrf,
        failed=_("Not acknowledged: %(reason)s."),
        change=lambda: service.acknowledge(ticket_id, user.username),
        done=_("Ticket #%(id)s acknowledged.") % {"id": ticket_id},
    )


@router.post("/tickets/{ticket_id}/resolve")
def resolve(
    *,
    request: Request,
    ticket_id: TicketId,
    user: UiUser,
    service: ServiceDep,
    session: SessionDep,
    csrf: Csrf,
    reason: Reason = "",
) -> Response:
    _ = gettext_for(request, user)
    return _act(
        request,
        session,
        user,
        ticket_id,
        csrf,
        refuse=None if reason.strip() else _("Not resolved: say why the ticket is resolved."),
        failed=_("Not resolved: %(reason)s."),
        change=lambda: service.resolve(ticket_id, user.username, reason),
        done=_("Ticket #%(id)s resolved.") % {"id": ticket_id},
    )


@router.post("/tickets/{ticket_id}/comment")
def comment(
    *,
    request: Request,
    ticket_id: TicketId,
    user: UiUser,
    service: ServiceDep,
    session: SessionDep,
    csrf: Csrf,
    text: Annotated[str, Form(max_length=10000)] = "",
) -> Response:
    check_csrf(request, csrf)
    require_acting(user)
    try:
        text = visible_text(text)
    except ValueError as exc:  # the API's rule and answer: a 422 naming the field (as a page here)
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"text: {exc}") from None
    _ = gettext_for(request, user)
    return _act(
        request,
        session,
        user,
        ticket_id,
        csrf,
        failed=_("Not commented: %(reason)s."),
        change=lambda: conversation.add_comment(service, ticket_id, user.username, text),  # an internal note
        done=_("Comment added."),
    )


@router.post("/tickets/{ticket_id}/status")
def change_status(
    *,
    request: Request,
    ticket_id: TicketId,
    user: UiUser,
    service: ServiceDep,
    session: SessionDep,
    csrf: Csrf,
    to: Annotated[str, Form(max_length=16)],
    reason: Reason = "",
    waiting_reason: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    _ = gettext_for(request, user)
    facts = {"status": word(_, to), "id": ticket_id}
    return _act(
        request,
        session,
        user,
        ticket_id,
        csrf,
        refuse=None if reason.strip() else _("Not moved to %(status)s: say why.") % facts,
        failed=_("Not moved to %(status)s: %(reason)s."),
        facts=facts,
        change=lambda: Lifecycle(service).change_status(
            ticket_id, user.username, to, reason=reason, waiting_reason=waiting_reason or None
        ),
        done=_("Ticket #%(id)s moved to %(status)s.") % facts,
    )


@router.post("/tickets/{ticket_id}/priority")
def change_priority(
    *,
    request: Request,
    ticket_id: TicketId,
    user: UiUser,
    service: ServiceDep,
    session: SessionDep,
    csrf: Csrf,
    priority: Annotated[str, Form(max_length=2)],
    reason: Reason = "",
) -> Response:
    _ = gettext_for(request, user)
    return _act(
        request,
        session,
        user,
        ticket_id,
        csrf,
        refuse=None if reason.strip() else _("Priority not changed: say why."),
        failed=_("Not changed: %(reason)s."),
        change=lambda: Lifecycle(service).change_priority(ticket_id, user.username, priority, reason),
        done=_("Priority set to %(priority)s.") % {"priority": priority},
    )


@router.post("/tickets/{ticket_id}/assign")
def assign(
    *,
    request: Request,
    ticket_id: TicketId,
    user: UiUser,
    service: ServiceDep,
    session: SessionDep,
    csrf: Csrf,
    assignee: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    name = assignee.strip()
    name = user.username if name == "me" else name
    _ = gettext_for(request, user)
    done = _("Assigned to %(name)s.") % {"name": name} if name else _("Unassigned.")
    return _act(
        request,
        session,
        user,
        ticket_id,
        csrf,
        failed=_("Not assigned: %(reason)s."),
        change=lambda: Lifecycle(service).assign(ticket_id, user.username, name or None),
        done=done,
    )


@router.post("/tickets/{ticket_id}/link")
def link(
    *,
    request: Request,
    ticket_id: TicketId,
    user: UiUser,
    service: ServiceDep,
    session: SessionDep,
    csrf: Csrf,
    other: Annotated[str, Form(max_length=12)] = "",
    kind: Annotated[str, Form(max_length=16)] = "relates",
) -> Response:
    other_id = other.strip().lstrip("#")
    valid = other_id.isdecimal() and int(other_id) <= MAX_ID and kind in LINK_KINDS
    _ = gettext_for(request, user)
    return _act(
        request,
        session,
        user,
        ticket_id,
        csrf,
        refuse=None if valid else _("Not linked: give the other ticket's number and the kind of link."),
        failed=_("Not linked: %(reason)s."),
        change=lambda: Lifecycle(service).link(ticket_id, user.username, int(other_id), cast(LinkKind, kind)),
        done=_("Linked to #%(other)s (%(kind)s).") % {"other": other_id, "kind": word(_, kind)},
    )
