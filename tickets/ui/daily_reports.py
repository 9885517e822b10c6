"""The archive of daily hypercare reports in the UI: a page listing each archived day, each report viewable
as the HTML that was sent and downloadable as its PDF. Readable by every role that may read tickets."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import Response

from tickets.api.deps import SessionDep
from tickets.daily_reports import archived, report_of
from tickets.models import User
from tickets.ui.report import may
from tickets.ui.web import UiUser, render

router = APIRouter(include_in_schema=False)
REPORT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
"""The policy of an archived report's own page: its styles are inline (it is an e-mail body); nothing runs."""


def _require_reader(user: User) -> None:
    if not may(user, "tickets:read"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role '{user.role}' may not read the daily reports")


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{value!r} is not a day (YYYY-MM-DD)") from None


@router.get("/reports/daily")
def daily_reports(request: Request, user: UiUser, session: SessionDep) -> Response:
    _require_reader(user)
    return render(request, "daily_reports.html", {"user": user, "reports": archived(session)})


@router.get("/reports/daily/{day}.html")
def daily_report_html(day: str, user: UiUser, session: SessionDep) -> Response:
    _require_reader(user)
    row = report_of(session, _day(day))
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no daily report archived for {day}")
    return Response(
        row.html,
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": REPORT_CSP, "Cache-Control": "private, no-store"},
    )


@router.get("/reports/daily/{day}.pdf")
def daily_report_pdf(day: str, user: UiUser, session: SessionDep) -> Response:
    _require_reader(user)
    row = report_of(session, _day(day))
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no daily report archived for {day}")
    return Response(
        row.pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="hypercare-daily-{row.day.isoformat()}.pdf"',
            "Cache-Control": "private, no-store",
        },
    )
