"""The on-call page: who is on call in each rotation now, or at a time asked for (in the site's zone), the
next hand-off, and the overrides to come. Read-only; overrides are made over the API or the CLI."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from tickets import oncall
from tickets.api.deps import ServiceDep, SessionDep, SettingsDep
from tickets.ui.web import UiUser, gettext_for, render, render_error

router = APIRouter(include_in_schema=False)


@router.get("/oncall")
def oncall_page(
    *,
    request: Request,
    user: UiUser,
    service: ServiceDep,
    session: SessionDep,
    settings: SettingsDep,
    at: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    _ = gettext_for(request, user)
    tz = oncall.zone(settings)
    now = service.now()
    when = now
    if at:
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            return render_error(
                request, 422, _("at: %(value)r is not a date and time (YYYY-MM-DDTHH:MM)") % {"value": at}
            )
        when = (when if when.tzinfo else when.replace(tzinfo=tz)).astimezone(tz)
    rows = oncall.everyone(session, settings, when)
    context = {
        "title": _("On call"),
        "user": user,
        "zone": tz.key,
        "at": when.astimezone(tz),
        "asked": bool(at),
        "rows": [
            {
                "on_call": row,
                "since": row.since.astimezone(tz),
                "until": row.until.astimezone(tz),
            }
            for row in rows
        ],
        "overrides": [
            {"row": row, "starts": row.starts_at.astimezone(tz), "ends": row.ends_at.astimezone(tz)}
            for row in oncall.overrides(session, now=now)
        ],
    }
    return render(request, "oncall.html", context)
