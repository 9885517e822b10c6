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
from tickets.ui.web import Csrf, UiUser, check_csrf, flash_error, require_acting

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
    try:
        found, done = toggle_step(service, ticket_id, step, user.username)
    except TicketNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except UnknownStep as exc:
        session.rollback()
        return back(request, ticket_id, f"Step not recorded: {exc}.")
    session.commit()
    verb = "done" if done else "not done"
    return back(request, ticket_id, f"Step marked {verb}: {found.text}")


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
    session.close()  # the check runs outside any store transaction; the verifier opens its own
    state = app_state(request)
    if state.ports.verify is None:
        return back(request, ticket_id, "Not verified: this server cannot re-run checks.")
    try:
        verdict = state.ports.verify(state.session_factory, ticket_id, user.username)
    except TicketNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except CannotVerify as exc:
        return back(request, ticket_id, f"Not verified: {exc}.")
    except (TicketError, HypercareError, SQLAlchemyError, httpx.HTTPError) as exc:
        log.warning("verify failed", extra={"ticket_id": ticket_id, "error": str(exc)})
        return back(request, ticket_id, f"Not verified: {exc}.")
    measured = "" if verdict.measured_value is None else f", measured {verdict.measured_value:g}"
    proof = f"{verdict.check_id} {verdict.status} (check result #{verdict.result_id}{measured})"
    if verdict.resolved:
        return back(request, ticket_id, f"Verified: {proof}; ticket #{ticket_id} resolved.")
    if verdict.status != "pass":  # a failing check is a failure on the page, never a green banner
        flash_error(request, f"Verification failed: {proof}.")
        return RedirectResponse(f"/tickets/{ticket_id}", status.HTTP_303_SEE_OTHER)
    return back(request, ticket_id, f"Verification: {proof}.")
