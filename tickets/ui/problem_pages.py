"""Problem records in the UI: the list (with how many incidents each), opening one, and a problem's page:
its incidents, root cause, and marking it a known error with the workaround new matching tickets get.
Reading needs ``tickets:read``; changing needs a role that changes tickets; changes to tickets are audited
on each ticket (tickets/problem_records.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Path, Request, status
from fastapi.responses import RedirectResponse, Response

from tickets import problem_records
from tickets.api.deps import ServiceDep, SessionDep
from tickets.errors import TicketError
from tickets.models import User
from tickets.ui.report import may
from tickets.ui.web import (
    Csrf,
    UiUser,
    can_act,
    check_csrf,
    flash,
    flash_error,
    gettext_for,
    render,
    require_acting,
)

router = APIRouter(include_in_schema=False)
ProblemId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _reader(user: User) -> None:
    if not may(user, "tickets:read"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role '{user.role}' may not read problems")


@router.get("/problems")
def problems_page(request: Request, user: UiUser, session: SessionDep) -> Response:
    _reader(user)
    rows = problem_records.listing(session)
    return render(request, "problems.html", {"user": user, "rows": rows, "can_act": can_act(user)})


@router.post("/problems")
def open_problem(
    *,
    request: Request,
    user: UiUser,
    service: ServiceDep,
    session: SessionDep,
    csrf: Csrf,
    title: Annotated[str, Form(max_length=300)] = "",
    owner: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    check_csrf(request, csrf)
    require_acting(user)
    _ = gettext_for(request, user)
    try:
        problem = problem_records.create(service, user.username, title=title, owner=owner or user.username)
    except ValueError as exc:
        session.rollback()
        flash_error(request, _("Not opened: %(reason)s.") % {"reason": exc})
        return RedirectResponse("/problems", status.HTTP_303_SEE_OTHER)
    session.commit()
    flash(request, _("Problem #%(id)s opened.") % {"id": problem.id})
    return RedirectResponse(f"/problems/{problem.id}", status.HTTP_303_SEE_OTHER)


@router.get("/problems/{problem_id}")
def problem_page(request: Request, problem_id: ProblemId, user: UiUser, session: SessionDep) -> Response:
    _reader(user)
    try:
        problem = problem_records.get(session, problem_id)
    except problem_records.ProblemNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    context = {
        "user": user,
        "p": problem,
        "tickets": problem_records.tickets_of(session, problem_id),
        "statuses": problem_records.STATUSES,
        "can_act": can_act(user),
    }
    return render(request, "problem.html", context)


@router.post("/problems/{problem_id}")
def change_problem(
    *,
    request: Request,
    problem_id: ProblemId,
    user: UiUser,
    service: ServiceDep,
    session: SessionDep,
    csrf: Csrf,
    root_cause: Annotated[str, Form(max_length=10000)] = "",
    status_: Annotated[str, Form(alias="status", max_length=16)] = "open",
    workaround: Annotated[str, Form(max_length=10000)] = "",
    match_check_id: Annotated[str, Form(max_length=128)] = "",
    match_subject: Annotated[str, Form(max_length=300)] = "",
    link: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    """Save the problem's fields; ``link``: also link ticket #n to it."""
    check_csrf(request, csrf)
    require_acting(user)
    _ = gettext_for(request, user)
    wanted = link.strip().lstrip("#")
    try:
        problem_records.update(
            service,
            problem_id,
            user.username,
            root_cause=root_cause,
            status=status_,
            workaround=workaround,
            match_check_id=match_check_id,
            match_subject=match_subject,
        )
        if wanted:
            if not wanted.isdecimal() or int(wanted) > 2**31 - 1:
                raise ValueError(_("%(value)r is not a ticket number") % {"value": link})
            problem_records.link(service, problem_id, int(wanted), user.username)
    except problem_records.ProblemNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except (ValueError, TicketError) as exc:
        session.rollback()
        flash_error(request, _("Not saved: %(reason)s.") % {"reason": exc})
        return RedirectResponse(f"/problems/{problem_id}", status.HTTP_303_SEE_OTHER)
    session.commit()
    facts = {"id": problem_id, "ticket": wanted}
    if wanted:
        flash(request, _("Problem #%(id)s saved; ticket #%(ticket)s linked.") % facts)
    else:
        flash(request, _("Problem #%(id)s saved.") % facts)
    return RedirectResponse(f"/problems/{problem_id}", status.HTTP_303_SEE_OTHER)
