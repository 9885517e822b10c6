"""The profile page: each user chooses the language the UI speaks to them and the time zone times are shown
in (``tickets.profile``). Open to every role; a user changes only their own profile."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import RedirectResponse, Response

from core.i18n import LANGUAGES
from tickets.api.deps import SessionDep, SettingsDep
from tickets.profile import update_profile
from tickets.ui.web import Csrf, UiUser, check_csrf, flash, gettext_for, render

router = APIRouter(include_in_schema=False)

COMMON_ZONES = ("Asia/Shanghai", "Asia/Hong_Kong", "Asia/Taipei", "Asia/Singapore", "Europe/Berlin", "UTC")
"""Offered as suggestions by the time-zone field (any IANA name is accepted)."""


def _page(
    request: Request,
    user: UiUser,
    settings: SettingsDep,
    *,
    values: dict[str, str],
    error: str | None,
    code: int,
) -> Response:
    context = {
        "user": user,
        "values": values,
        "error": error,
        "languages": LANGUAGES,
        "zones": COMMON_ZONES,
        "site_language": settings.site.language,
    }
    return render(request, "profile.html", context, status_code=code)


@router.get("/profile")
def profile_page(request: Request, user: UiUser, settings: SettingsDep) -> Response:
    values = {"language": user.language or "", "timezone": user.timezone or ""}
    return _page(request, user, settings, values=values, error=None, code=status.HTTP_200_OK)


@router.post("/profile")
def save_profile(
    *,
    request: Request,
    user: UiUser,
    session: SessionDep,
    settings: SettingsDep,
    csrf: Csrf,
    language: Annotated[str, Form(max_length=16)] = "",
    timezone: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    check_csrf(request, csrf)
    try:
        update_profile(session, user, language=language, timezone=timezone)
    except ValueError as exc:
        session.rollback()
        values = {"language": language, "timezone": timezone}
        code = status.HTTP_422_UNPROCESSABLE_CONTENT
        return _page(request, user, settings, values=values, error=str(exc), code=code)
    session.commit()
    _ = gettext_for(request, user)
    flash(request, _("Your profile is saved."))
    return RedirectResponse("/profile", status.HTTP_303_SEE_OTHER)
