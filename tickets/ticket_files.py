"""Files attached to a ticket by the people working it, kept like report attachments
(tickets/reports.py ``AttachmentStore``: type allow-list checked against the first bytes, size bound, random
storage name, SHA-256), and the reports' attachments of the ticket, so both are listed and served together.
Every upload leaves an audit row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from tickets.agent_models import TicketAttachment
from tickets.models import Report, ReportAttachment
from tickets.reports import AttachmentStore, storage_dir
from tickets.service import TicketService

PREVIEWABLE = ("image/png", "image/jpeg", "image/gif", "application/pdf")
"""Types the ticket page shows inline (served with their own type, nosniff, no script)."""


@dataclass(frozen=True, slots=True)
class FileView:
    kind: str  # "ticket" (uploaded on the ticket) | "report" (came with a report)
    id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    added_by: str

    @property
    def url(self) -> str:
        return f"/files/{self.kind}/{self.id}"

    @property
    def image(self) -> bool:
        return self.content_type.startswith("image/")

    @property
    def previewable(self) -> bool:
        return self.content_type in PREVIEWABLE


def attach(
    service: TicketService,
    ticket_id: int,
    actor: str,
    *,
    stream: BinaryIO,
    filename: str | None,
    content_type: str | None,
) -> TicketAttachment:
    """Store an upload and record it on the ticket; raises ``AttachmentRefused`` (413/415/422) for a file
    that may not be kept (nothing is left behind)."""
    ticket = service.locked(ticket_id)
    store = AttachmentStore(storage_dir(service.settings))
    stored = store.save(stream, filename, content_type, service.settings)
    try:
        row = TicketAttachment(
            ticket_id=ticket.id,
            filename=stored.filename,
            content_type=stored.content_type,
            size=stored.size,
            sha256=stored.sha256,
            storage_name=stored.storage_name,
            uploaded_by=actor[:64],
            created_at=service.now(),
        )
        service.session.add(row)
        service.session.flush()
        service.audit(
            ticket,
            actor,
            "attachment_added",
            service.now(),
            attachment_id=row.id,
            filename=stored.filename,
            size=stored.size,
            sha256=stored.sha256,
        )
        service.session.flush()
    except BaseException:
        store.delete([stored])
        raise
    return row


def files_of(session: Session, ticket_id: int) -> list[FileView]:
    """The ticket's own files, then those of its reports."""
    own = [
        FileView("ticket", a.id, a.filename, a.content_type, a.size, a.sha256, a.uploaded_by)
        for a in session.scalars(
            select(TicketAttachment)
            .where(TicketAttachment.ticket_id == ticket_id)
            .order_by(TicketAttachment.id)
        )
    ]
    reported = session.execute(
        select(ReportAttachment, Report.id)
        .join(Report, Report.id == ReportAttachment.report_id)
        .where(Report.ticket_id == ticket_id)
        .order_by(ReportAttachment.id)
    ).all()
    return own + [
        FileView("report", a.id, a.filename, a.content_type, a.size, a.sha256, f"report #{report_id}")
        for a, report_id in reported
    ]


def find_file(session: Session, kind: str, file_id: int) -> tuple[int | None, str, str, str] | None:
    """(ticket id, filename, content type, storage name) of a file, or None."""
    if kind == "ticket":
        own = session.get(TicketAttachment, file_id)
        return None if own is None else (own.ticket_id, own.filename, own.content_type, own.storage_name)
    if kind == "report":
        found = session.execute(
            select(ReportAttachment, Report.ticket_id)
            .join(Report, Report.id == ReportAttachment.report_id)
            .where(ReportAttachment.id == file_id)
        ).first()
        if found is None:
            return None
        att, ticket_id = found
        return ticket_id, att.filename, att.content_type, att.storage_name
    return None
