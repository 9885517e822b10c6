"""The ticket page's runbook actions: tick a checklist step, and `Verify` (re-run the linked check).

Both are POSTs carrying the session's CSRF token, for agents and up (``tickets:write``), answered with a
redirect back to the ticket and a flash message saying what happened.
"""

from __future__ import annotations

import logging
from typing import Annotated

import httpx
from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.exc import SQLAlchemyError

from core.errors import HypercareError
from runbooks.steps import UnknownStep, toggle_step
from tickets.api.deps import ServiceDep, SessionDep, TicketId
from tickets.api.state import app_state
from tickets.errors import TicketError, TicketNotFound
from tickets.ports import CannotVerify
from tickets.ui.actions import back
from tickets.ui.web import Csrf, UiUser, check_csrf, flash_error, gettext_for, require_acting

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)


@router.post("/tickets/{ticket_id}/runbook/step")
def tick_step(
    *,
    request: Request,
    ticket_id: TicketId,
    user: UiUser,
    service: ServiceDep,
    session: SessionDep,
    csrf: Csrf,
    step: Annotated[str, Form(max_length=64, pattern=r"^[a-z0-9-]+$")],
) -> Response:
    check_csrf(request, csrf)
    require_acting(user)
    _ = gettext_for(request, user)
    try:
        found, done = toggle_step(service, ticket_id, step, user.username)
    except TicketNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except UnknownStep as exc:
        session.rollback()
        return back(request, ticket_id, _("Step not recorded: %(reason)s.") % {"reason": exc})
    session.commit()
    marked = _("Step marked done: %(step)s") if done else _("Step marked not done: %(step)s")
    return back(request, ticket_id, marked % {"step": found.text})


@router.post("/tickets/{ticket_id}/verify")
def verify(
    *,
    request: Request,
    ticket_id: TicketId,
    user: UiUser,
    session: SessionDep,
    csrf: Csrf,
) -> Response:
    check_csrf(request, csrf)
    require_acting(user)
    _ = gettext_for(request, user)
    session.close()  # the check runs outside any store transaction; the verifier opens its own
    state = app_state(request)
    if state.ports.verify is None:
        return back(request, ticket_id, _("Not verified: this server cannot re-run checks."))
    try:
        verdict = state.ports.verify(state.session_factory, ticket_id, user.username)
    except TicketNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except CannotVerify as exc:
        return back(request, ticket_id, _("Not verified: %(reason)s.") % {"reason": exc})
    except (TicketError, HypercareError, SQLAlchemyError, httpx.HTTPError) as exc:
        log.warning("verify failed", extra={"ticket_id": ticket_id, "error": str(exc)})
        return back(request, ticket_id, _("Not verified: %(reason)s.") % {"reason": exc})
    facts = {"check": verdict.check_id, "status": verdict.status, "result": verdict.result_id}
    if verdict.measured_value is None:
        proof = _("%(check)s %(status)s (check result #%(result)s)") % facts
    else:
        facts["measured"] = f"{verdict.measured_value:g}"
        proof = _("%(check)s %(status)s (check result #%(result)s, measured %(measured)s)") % facts
    if verdict.resolved:
        return back(
            request,
            ticket_id,
            _("Verified: %(proof)s; ticket #%(id)s resolved.") % {"proof": proof, "id": ticket_id},
        )
    if verdict.status != "pass":  # a failing check is a failure on the page, never a green banner
        flash_error(request, _("Verification failed: %(proof)s.") % {"proof": proof})
        return RedirectResponse(f"/tickets/{ticket_id}", status.HTTP_303_SEE_OTHER)
    return back(request, ticket_id, _("Verification: %(proof)s.") % {"proof": proof})
