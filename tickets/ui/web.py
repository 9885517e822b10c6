"""The web UI's plumbing: templates and their filters, the logged-in user, CSRF tokens, flash messages.

Login sessions live in the store (tickets/sessions.py): the signed cookie (``SessionMiddleware``, keyed by
``secret_key``) holds the session's random id, the CSRF token and flash messages, never who is logged in.
The session and its user are read from the store on every request, so a logout, a revocation, a disabled
user or an expired session takes effect at once, and a copy of the cookie is worthless after it.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime
from decimal import Decimal
from functools import cache
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Form, HTTPException, Request, status
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from tickets.api.deps import ACTING_ROLES, SessionDep
from tickets.auth import user_for_session
from tickets.cache import wrote
from tickets.models import User
from tickets.outbox import format_amount
from tickets.sessions import plausible_session_id

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def _money(value: Decimal | None) -> str:
    return format_amount(value)


@cache
def templates() -> Jinja2Templates:
    """The UI's templates (autoescaped: every ``.html`` template escapes what it prints)."""
    tpl = Jinja2Templates(directory=TEMPLATES_DIR)
    tpl.env.filters["when"] = _when
    tpl.env.filters["money"] = _money
    return tpl


class LoginRequired(Exception):
    """Raised by :func:`ui_user` when nobody is logged in; answered with a redirect to the login page."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def login_redirect(request: Request, exc: Exception) -> Response:
    next_url = exc.next_url if isinstance(exc, LoginRequired) else "/tickets"
    return RedirectResponse(f"/login?next={quote(next_url, safe='/')}", status.HTTP_303_SEE_OTHER)


def safe_next(next_url: str | None) -> str:
    """Only redirect within this site after login (no ``//evil.example`` open redirect)."""
    if next_url and next_url.startswith("/") and not next_url.startswith(("//", "/\\")):
        return next_url
    return "/tickets"


SESSION_KEY = "sid"
"""The cookie's key holding the login session's id."""


def cookie_session_id(request: Request) -> str | None:
    return plausible_session_id(request.session.get(SESSION_KEY))


def client_address(request: Request) -> str | None:
    """The client's address as the server sees it (behind a proxy: run uvicorn with --proxy-headers)."""
    return request.client.host if request.client is not None else None


def ui_user(request: Request, session: SessionDep) -> User:
    user = user_for_session(session, cookie_session_id(request))
    if user is None:
        request.session.pop(SESSION_KEY, None)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    if wrote(session):  # the session's last request, recorded once a minute
        session.commit()
    return user


UiUser = Annotated[User, Depends(ui_user)]
Csrf = Annotated[str, Form(alias="csrf")]
"""The CSRF token every form posts (checked with :func:`check_csrf`)."""


def can_act(user: User) -> bool:
    return user.role in ACTING_ROLES


def require_acting(user: User) -> None:
    if not can_act(user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role '{user.role}' may look but not change tickets")


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def check_csrf(request: Request, submitted: str) -> None:
    expected = request.session.get("csrf")
    if not isinstance(expected, str) or not hmac.compare_digest(expected, submitted):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "the form has expired or did not come from this site: reload the page and try again",
        )


def flash(request: Request, message: str) -> None:
    request.session.setdefault("flash", []).append(message)


def flash_error(request: Request, message: str) -> None:
    """A flash message saying something failed (shown red, as an alert)."""
    request.session.setdefault("flash", []).append({"error": message})


def render(
    request: Request, name: str, context: dict[str, Any], *, status_code: int = status.HTTP_200_OK
) -> Response:
    flashes = request.session.pop("flash", [])
    full = {"csrf": csrf_token(request), "flashes": flashes, "user": None, **context}
    return templates().TemplateResponse(request, name, full, status_code=status_code)


def render_error(request: Request, status_code: int, message: str) -> Response:
    """An error as a page of the UI (a browser gets this instead of the API's JSON body)."""
    context = {"title": HTTPStatus(status_code).phrase, "message": message, "status_code": status_code}
    return render(request, "error.html", context, status_code=status_code)
