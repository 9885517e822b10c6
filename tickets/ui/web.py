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
from functools import cache, partial
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Depends, Form, HTTPException, Request, status
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, pass_context
from jinja2.runtime import Context

from core.i18n import LANGUAGE_NAMES, Gettext, Language, choose_language, html_lang, translations
from core.localtime import UTC_ZONE, display_zone, format_time
from core.money import format_money
from core.site import SiteSettings
from tickets.api.deps import ACTING_ROLES, SessionDep
from tickets.api.state import app_state
from tickets.auth import user_for_session
from tickets.cache import wrote
from tickets.i18n import word
from tickets.models import User
from tickets.sessions import plausible_session_id

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"


def display_zone_of(request: Request, user: User | None) -> ZoneInfo:
    """The zone a page shows its times in: the user's own, else the site's (``site.timezone``)."""
    return display_zone(
        user.timezone if user is not None else None, app_state(request).settings.site.timezone
    )


def _zone_of(context: Context) -> ZoneInfo:
    zone = context.get("zone")
    return zone if isinstance(zone, ZoneInfo) else UTC_ZONE


@pass_context
def _when(context: Context, value: datetime | None) -> str:
    """``{{ t.created_at|when }}``: the time in the page's display zone, the zone named."""
    return format_time(value, _zone_of(context))


@pass_context
def _when_exact(context: Context, value: datetime | None) -> str:
    """``{{ entry.at|when_exact }}``: as :func:`_when`, to the second (the audit trail)."""
    return format_time(value, _zone_of(context), seconds=True)


@pass_context
def _money(context: Context, value: Decimal | None) -> str:
    """``{{ t.amount_at_risk|money }}``: with the site's currency symbol and number locale (``¥1,250.00``)."""
    site = context.get("site")
    if not isinstance(site, SiteSettings):
        return format_money(value, None)
    return format_money(value, site.currency, site.locale)


@cache
def templates(language: str = "en") -> Jinja2Templates:
    """The UI's templates in one language (autoescaped: every ``.html`` template escapes what it prints). A
    page shows its times in the ``zone`` of its context (:func:`display_zone_of`; UTC when absent).

    One Jinja2 environment per language, with that language's catalog installed (newstyle gettext:
    ``_("...")`` and ``{% trans %}`` blocks, placeholders escaped): pages rendered at once in several
    threads for readers of different languages never share a translation."""
    env = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True, extensions=["jinja2.ext.i18n"])
    env.policies["ext.i18n.trimmed"] = True  # {% trans %} blocks' whitespace collapsed, as extracted
    catalog = translations(language)
    env.install_gettext_translations(catalog, newstyle=True)  # type: ignore[attr-defined]  # the i18n extension's
    env.filters["when"] = _when
    env.filters["when_exact"] = _when_exact
    env.filters["money"] = _money
    env.filters["word"] = partial(word, catalog.gettext)
    env.globals["html_lang"] = html_lang(language)
    env.globals["language"] = language
    env.globals["language_names"] = LANGUAGE_NAMES
    return Jinja2Templates(env=env)


def request_language(request: Request, user: User | None) -> Language:
    """The language to answer ``request`` in: ``user``'s choice, else the browser's ``Accept-Language``,
    else the site's ``site.language``."""
    site = app_state(request).settings.site.language
    return choose_language(user.language if user else None, request.headers.get("accept-language"), site)


def gettext_for(request: Request, user: User | None) -> Gettext:
    """The translation function of the request's language (for texts built in Python: flash messages,
    form errors)."""
    return translations(request_language(request, user)).gettext


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
    user = context.get("user")
    known = user if isinstance(user, User) else None
    language = request_language(request, known)
    site = app_state(request).settings.site
    full = {
        "csrf": csrf_token(request),
        "flashes": flashes,
        "user": None,
        "zone": display_zone_of(request, known),
        "site": site,
        **context,
    }
    response = templates(language).TemplateResponse(request, name, full, status_code=status_code)
    response.headers["Content-Language"] = html_lang(language)
    response.headers["Vary"] = "Accept-Language"  # the same URL reads differently per browser language
    return response


def render_error(request: Request, status_code: int, message: str) -> Response:
    """An error as a page of the UI (a browser gets this instead of the API's JSON body), its title and a
    message the catalogs know in the reader's language."""
    _ = translations(request_language(request, None)).gettext
    title = _(HTTPStatus(status_code).phrase)
    shown = _(message) if message else message  # gettext("") is the catalog's header, not a message
    context = {"title": title, "message": shown, "status_code": status_code}
    return render(request, "error.html", context, status_code=status_code)
