"""The employees' exception report form: what happened, where (module, document), how urgent, which
category, who is affected, attachments (bounded by the reports settings). It files through
``tickets.reports.create_report``, like ``POST /api/v1/reports``, so a report opens a ticket or joins the
ticket of the same problem."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated, Any, cast, get_args

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile, status
from fastapi.responses import RedirectResponse, Response

from core.i18n import N_
from core.localtime import format_time
from core.money import MoneyError, format_money, parse_money
from core.vocabulary import Category, Level, parse
from tickets.api.deps import ServiceDep, SessionDep
from tickets.api.diagnostics import DiagnoserDep
from tickets.auth import session_access
from tickets.intake_match import open_tickets_naming
from tickets.models import Ticket, User
from tickets.reports import (
    Affected,
    AttachmentRefused,
    AttachmentStore,
    ReportInput,
    StoredFile,
    create_report,
    storage_dir,
)
from tickets.ui.web import UiUser, check_csrf, display_zone_of, flash, gettext_for, render

router = APIRouter(include_in_schema=False)
AFFECTED_LABELS = {"me": N_("only me"), "team": N_("my team"), "many": N_("many people or customers")}
"""Who is affected, as the form offers it (translated where shown)."""


def may(user: User, scope: str) -> bool:
    """Whether the logged-in user may do ``scope`` (``tickets.auth.session_access``)."""
    return scope in (session_access(active=user.active, role=user.role) or frozenset())


def _require_reporter(user: User) -> None:
    if not may(user, "reports:write"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role '{user.role}' may not file reports")


def _form(  # noqa: PLR0917  (the form's parts)
    request: Request,
    user: User,
    values: dict[str, Any],
    error: str | None,
    code: int,
    offers: Sequence[Ticket] = (),
) -> Response:
    context = {
        "offers": offers,
        "user": user,
        "values": values,
        "error": error,
        "categories": list(Category),
        "urgencies": list(Level),
        "affected": AFFECTED_LABELS,
        "modules": (),
    }
    return render(request, "report.html", context, status_code=code)


@router.get("/report")
def report_form(request: Request, user: UiUser) -> Response:
    _require_reporter(user)
    values = {"category": "process", "urgency": "medium", "affected": "me"}
    return _form(request, user, values, None, status.HTTP_200_OK)


@router.post("/report")
def file_report(
    *,
    request: Request,
    user: UiUser,
    service: ServiceDep,
    session: SessionDep,
    diagnoser: DiagnoserDep,
    csrf: Annotated[str, Form()],
    title: Annotated[str, Form(max_length=200)] = "",
    module: Annotated[str, Form(max_length=64)] = "",
    category: Annotated[str, Form(max_length=16)] = "",
    urgency: Annotated[str, Form(max_length=8)] = "",
    affected: Annotated[str, Form(max_length=8)] = "me",
    description: Annotated[str, Form(max_length=10000)] = "",
    document_number: Annotated[str, Form(max_length=64)] = "",
    amount_at_risk: Annotated[str, Form(max_length=32)] = "",
    attachments: Annotated[list[UploadFile] | None, File()] = None,
    join: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    check_csrf(request, csrf)
    _require_reporter(user)
    values = {
        "title": title.strip(),
        "module": module.strip(),
        "category": category,
        "urgency": urgency,
        "affected": affected,
        "description": description.strip(),
        "document_number": document_number.strip(),
        "amount_at_risk": amount_at_risk.strip(),
    }
    _ = gettext_for(request, user)
    missing = _check(values)
    problem = _(missing) if missing is not None else None
    amount = None
    if problem is None:
        try:
            site = service.settings.site
            amount = parse_money(
                values["amount_at_risk"], currency=site.currency, locale=site.locale, field="Amount at risk"
            )
        except MoneyError as exc:  # the reader's language first, then exactly what was wrong (field, value)
            example = format_money(Decimal("1250"), site.currency, site.locale)
            lead = _("The amount at risk must be a number, like %(example)s.") % {"example": example}
            problem = f"{lead} ({exc})"
    if problem is not None:
        return _form(request, user, values, problem, status.HTTP_422_UNPROCESSABLE_CONTENT)
    # The document is already on an open ticket: offer it first (the report then joins that ticket).
    offers = open_tickets_naming(session, values["document_number"]) if values["document_number"] else []
    chosen = next((t for t in offers if str(t.id) == join), None)
    if offers and join != "new" and chosen is None:
        return _form(request, user, values, None, status.HTTP_200_OK, offers)
    settings = service.settings
    uploads = [u for u in attachments or [] if u.filename]
    store = AttachmentStore(storage_dir(settings))
    stored: list[StoredFile] = []
    try:
        if len(uploads) > settings.reports.max_attachments:
            raise AttachmentRefused(f"at most {settings.reports.max_attachments} attachments", 422)
        for upload in uploads:
            stored.append(store.save(upload.file, upload.filename, upload.content_type, settings))
        data = ReportInput(
            title=values["title"],
            description=values["description"],
            module=values["module"],
            category=Category(category),  # each checked by _check
            urgency=Level(urgency),
            affected=cast(Affected, affected),
            document_number=values["document_number"] or None,
            amount_at_risk=amount,
        )
        result = create_report(service, user, data, stored, join=chosen)
        session.commit()
    except (AttachmentRefused, ValueError) as exc:
        store.delete(stored)
        session.rollback()
        message = _("Not filed: %(reason)s.") % {"reason": exc}
        return _form(request, user, values, message, status.HTTP_422_UNPROCESSABLE_CONTENT)
    except BaseException:
        store.delete(stored)
        raise
    ticket = result.ingest.ticket
    diagnoser.add(result.ingest.outcome, ticket.id if ticket is not None else None)
    diagnoser.schedule()  # the ticket's runbook and diagnostics, after the redirect is sent
    facts = {
        "report": result.report.id,
        "ticket": ticket.id if ticket is not None else None,
        "when": format_time(result.report.created_at, display_zone_of(request, user)),
    }
    if ticket is None:
        message = _("Report #%(report)s filed at %(when)s. Thank you.")
    elif result.ingest.outcome == "deduplicated":
        message = _(
            "Report #%(report)s filed as ticket #%(ticket)s at %(when)s "
            "(it joins a ticket already open for it). Thank you."
        )
    else:
        message = _("Report #%(report)s filed as ticket #%(ticket)s at %(when)s. Thank you.")
    flash(request, message % facts)
    if ticket is not None and may(user, "tickets:read"):
        return RedirectResponse(f"/tickets/{ticket.id}", status.HTTP_303_SEE_OTHER)
    return RedirectResponse("/report", status.HTTP_303_SEE_OTHER)


def _check(values: dict[str, str]) -> str | None:
    """What is missing from the form (an English msgid, translated where it is shown), or None."""
    if not values["title"]:
        return N_("Say in one line what happened.")
    if not values["module"]:
        return N_("Say where it happened: the ERP module.")
    if parse(Category, values["category"]) is None:
        return N_("Choose a category.")
    if parse(Level, values["urgency"]) is None:
        return N_("Choose how urgent it is.")
    if values["affected"] not in get_args(Affected):
        return N_("Choose who is affected.")
    return None
