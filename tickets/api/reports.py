"""Employees' exception reports over HTTP: file one (multipart, with attachments), list and read one's own
(or all, with ``reports:read``), download an attachment."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Path, Query, UploadFile, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from core.money import MoneyError, parse_money
from core.vocabulary import Category, Level
from tickets.api.deps import ReportViewer, ReportWriter, ServiceDep, SessionDep
from tickets.api.diagnostics import DiagnoserDep
from tickets.api.schemas import Problem
from tickets.auth import Principal
from tickets.models import Report
from tickets.reports import (
    Affected,
    AttachmentRefused,
    AttachmentStore,
    ReportInput,
    StoredFile,
    create_report,
    get_report,
    storage_dir,
    visible_reports,
)
from tickets.service import Outcome, TicketService

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])
ReportId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The report's id.")]


class AttachmentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    filename: str
    content_type: str
    size: int
    sha256: str


class ReportPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    ticket_id: int | None = Field(description="The ticket the report opened or joined.")
    title: str
    description: str
    module: str
    document_number: str | None
    category: str
    urgency: str
    affected: str
    impact: str
    amount_at_risk: Decimal | None = Field(description="Exact decimal, serialised as a string.")
    created_at: datetime
    attachments: list[AttachmentPublic]


class ReportFiled(ReportPublic):
    outcome: Outcome = Field(
        description="opened: a new ticket; deduplicated/reopened: joined the ticket of the same problem."
    )


_WRITE: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "The token lacks scope `reports:write`."},
    413: {"model": Problem, "description": "An attachment or the whole body is too large."},
    415: {"model": Problem, "description": "An attachment's type is not accepted."},
}
_READ: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "The token lacks `reports:read` and `reports:write`."},
    404: {"model": Problem, "description": "No such report, or not one of yours."},
}


def _reads_all(principal: Principal) -> bool:
    return principal.allows("reports:read")


@router.post("", response_model=ReportFiled, status_code=status.HTTP_201_CREATED, responses=_WRITE)
def file_report(
    *,
    principal: ReportWriter,
    service: ServiceDep,
    session: SessionDep,
    diagnoser: DiagnoserDep,
    title: Annotated[str, Form(min_length=1, max_length=200, description="What happened, in one line.")],
    module: Annotated[str, Form(min_length=1, max_length=64, description="Where: the ERP module.")],
    category: Annotated[Category, Form()],
    urgency: Annotated[Level, Form(description="high: blocks work or a deadline today.")],
    affected: Annotated[Affected, Form(description="Who is affected: me, my team, many.")] = "me",
    description: Annotated[str, Form(max_length=10000)] = "",
    document_number: Annotated[str | None, Form(max_length=64)] = None,
    amount_at_risk: Annotated[
        str | None,
        Form(
            max_length=32,
            description="In the site's currency, as people write it: 1250, 1250.00, ¥1,250.00, CNY 1250, "
            "1 250,00 € (per the site's locale).",
            examples=["¥1,250.00"],
        ),
    ] = None,
    attachments: Annotated[list[UploadFile] | None, File(description="Files (bounded).")] = None,
) -> ReportFiled:
    """File an exception report; it opens a ticket or joins the ticket of the same problem."""
    settings = service.settings
    try:
        amount = parse_money(
            amount_at_risk or "",
            currency=settings.site.currency,
            locale=settings.site.locale,
            field="amount_at_risk",
        )
    except MoneyError as exc:
        raise HTTPException(422, str(exc)) from None
    uploads = [u for u in attachments or [] if u.filename or u.size]
    if len(uploads) > settings.reports.max_attachments:
        raise HTTPException(422, f"at most {settings.reports.max_attachments} attachments")
    store = AttachmentStore(storage_dir(settings))
    stored: list[StoredFile] = []
    try:
        for upload in uploads:
            stored.append(store.save(upload.file, upload.filename, upload.content_type, settings))
        data = ReportInput(
            title=title.strip(),
            description=description.strip(),
            module=module.strip(),
            category=category,
            urgency=urgency,
            affected=affected,
            document_number=(document_number or "").strip() or None,
            amount_at_risk=amount,
        )
        result = create_report(service, principal.user, data, stored)
        session.commit()
    except AttachmentRefused as exc:
        store.delete(stored)
        raise HTTPException(exc.status, str(exc)) from None
    except ValueError as exc:
        store.delete(stored)
        raise HTTPException(422, str(exc)) from None
    except BaseException:
        store.delete(stored)
        raise
    ticket = result.ingest.ticket
    diagnoser.add(result.ingest.outcome, ticket.id if ticket is not None else None)
    diagnoser.schedule()  # the ticket's runbook and diagnostics, after the answer
    public = ReportPublic.model_validate(result.report).model_dump()
    return ReportFiled(**public, outcome=result.ingest.outcome)


@router.get("", response_model=list[ReportPublic], responses=_READ)
def list_reports(
    *,
    principal: ReportViewer,
    service: ServiceDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[ReportPublic]:
    """Your reports, newest first; with `reports:read`, everyone's."""
    rows = visible_reports(
        service, principal.user, everyone=_reads_all(principal), limit=limit, offset=offset
    )
    return [ReportPublic.model_validate(r) for r in rows]


def _visible(service: TicketService, principal: Principal, report_id: int) -> Report:
    report = get_report(service, report_id, principal.user, everyone=_reads_all(principal))
    if report is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"report {report_id} not found")
    return report


@router.get("/{report_id}", response_model=ReportPublic, responses=_READ)
def read_report(
    report_id: ReportId,
    principal: ReportViewer,
    service: ServiceDep,
) -> ReportPublic:
    """One report with its attachments' names, sizes and SHA-256."""
    return ReportPublic.model_validate(_visible(service, principal, report_id))


@router.get(
    "/{report_id}/attachments/{attachment_id}",
    response_class=FileResponse,
    responses={**_READ, 200: {"description": "The file, as a download.", "content": {"*/*": {}}}},
)
def download_attachment(
    report_id: ReportId,
    attachment_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    principal: ReportViewer,
    service: ServiceDep,
) -> FileResponse:
    """An attachment, always as a download: text as text/plain, never a type a browser would run."""
    report = _visible(service, principal, report_id)
    attachment = next((a for a in report.attachments if a.id == attachment_id), None)
    if attachment is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"attachment {attachment_id} not found")
    path = AttachmentStore(storage_dir(service.settings)).path(attachment.storage_name)
    if not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"attachment {attachment_id} is missing from storage")
    media_type = (
        "text/plain; charset=utf-8"
        if attachment.content_type.startswith("text/")
        else (attachment.content_type)
    )
    return FileResponse(
        path,
        media_type=media_type,
        filename=attachment.filename,
        content_disposition_type="attachment",
        headers={
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-store",
        },
    )
