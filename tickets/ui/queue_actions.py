"""The queue's own actions: bulk acknowledge / assign / resolve / link to a problem with each ticket's
outcome shown, and saved views (a user's own, or shared with a team). Forms carry the session's CSRF token;
bulk changes are for the roles that change tickets, each ticket audited as if changed alone."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Path, Request, status
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.i18n import N_
from tickets import bulk, views_saved
from tickets.api.deps import ServiceDep, SessionDep
from tickets.assignment import working_users
from tickets.errors import TicketError
from tickets.models import Ticket, User
from tickets.ui.report import may
from tickets.ui.views import queue_url
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

BULK_ACTIONS = {
    "acknowledge": N_("acknowledge"),
    "assign": N_("assign"),
    "resolve": N_("resolve"),
    "link_problem": N_("link problem"),
}
"""Each bulk action (tickets.bulk.ACTIONS) as the outcome page names it, in the reader's language."""


def queue_extras(session: Session, user: User) -> dict[str, Any]:
    """What the queue page's bulk bar needs: one query, for those who act (rendered into the cached page,
    whose version moves with the users table)."""
    return {"can_act": can_act(user), "bulk_users": working_users(session) if can_act(user) else []}


@router.post("/tickets/bulk")
def bulk_action(
    *,
    request: Request,
    user: UiUser,
    service: ServiceDep,
    session: SessionDep,
    csrf: Csrf,
    ids: Annotated[list[int], Form()] = [],  # noqa: B006  (FastAPI copies defaults)
    action: Annotated[str, Form(max_length=16)] = "",
    assignee: Annotated[str, Form(max_length=64)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
    problem: Annotated[str, Form(max_length=12)] = "",
    back: Annotated[str, Form(max_length=2000)] = "/tickets",
) -> Response:
    check_csrf(request, csrf)
    require_acting(user)
    _ = gettext_for(request, user)
    wanted = problem.strip().lstrip("#")
    problem_id = int(wanted) if wanted.isdecimal() and int(wanted) <= 2**31 - 1 else None
    if wanted and problem_id is None:
        flash_error(request, _("Nothing done: %(value)r is not a problem number.") % {"value": problem})
        return RedirectResponse(_back(back), status.HTTP_303_SEE_OTHER)
    try:
        outcomes = bulk.apply(
            service, ids, user.username, action, assignee=assignee, reason=reason, problem_id=problem_id
        )
    except (ValueError, TicketError) as exc:
        session.rollback()
        flash_error(request, _("Nothing done: %(reason)s.") % {"reason": exc})
        return RedirectResponse(_back(back), status.HTTP_303_SEE_OTHER)
    session.commit()
    titles = dict(
        session.execute(
            select(Ticket.id, Ticket.title).where(Ticket.id.in_([o.ticket_id for o in outcomes]))
        ).all()
    )
    done = sum(o.ok for o in outcomes)
    context = {
        "user": user,
        "action": _(BULK_ACTIONS[action]) if action in BULK_ACTIONS else action.replace("_", " "),
        "outcomes": [(o, titles.get(o.ticket_id, "")) for o in outcomes],
        "done": done,
        "failed": len(outcomes) - done,
        "back": _back(back),
    }
    return render(request, "bulk_result.html", context)


def _back(url: str) -> str:
    return url if url.startswith("/tickets") and not url.startswith("//") else "/tickets"


@router.get("/views")
def views_page(request: Request, user: UiUser, session: SessionDep) -> Response:
    if not may(user, "tickets:read"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role '{user.role}' has no queue")
    rows = [(view, owner, queue_url(view.params)) for view, owner in views_saved.visible(session, user)]
    return render(request, "views.html", {"user": user, "views": rows})


@router.post("/views")
def save_view(
    *,
    request: Request,
    user: UiUser,
    session: SessionDep,
    csrf: Csrf,
    name: Annotated[str, Form(max_length=64)] = "",
    team: Annotated[str, Form(max_length=64)] = "",
    status_: Annotated[str, Form(alias="status", max_length=16)] = "",
    priority: Annotated[str, Form(max_length=2)] = "",
    queue: Annotated[str, Form(max_length=64)] = "",
    assignee: Annotated[str, Form(max_length=64)] = "",
    category: Annotated[str, Form(max_length=16)] = "",
    source: Annotated[str, Form(max_length=64)] = "",
    q: Annotated[str, Form(max_length=200)] = "",
    sort: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    check_csrf(request, csrf)
    if not may(user, "tickets:read"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role '{user.role}' has no queue")
    _ = gettext_for(request, user)
    params = {
        "status": status_,
        "priority": priority,
        "queue": queue,
        "assignee": assignee,
        "category": category,
        "source": source,
        "q": q,
        "sort": sort,
    }
    try:
        view = views_saved.save(session, user, name, params, team=team)
    except ValueError as exc:
        session.rollback()
        flash_error(request, _("View not saved: %(reason)s.") % {"reason": exc})
        return RedirectResponse("/views", status.HTTP_303_SEE_OTHER)
    session.commit()
    facts = {"name": view.name, "team": view.team}
    if view.team:
        flash(request, _("View %(name)r saved, shared with team %(team)s.") % facts)
    else:
        flash(request, _("View %(name)r saved.") % facts)
    return RedirectResponse("/views", status.HTTP_303_SEE_OTHER)


@router.post("/views/{view_id}/delete")
def delete_view(
    request: Request,
    view_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    user: UiUser,
    session: SessionDep,
    csrf: Csrf,
) -> Response:
    check_csrf(request, csrf)
    if not views_saved.delete(session, user, view_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"view {view_id} is not one of yours")
    session.commit()
    flash(request, gettext_for(request, user)("View deleted."))
    return RedirectResponse("/views", status.HTTP_303_SEE_OTHER)
