"""Employees' exception reports: what happened, where (module, document), how urgent, which category,
what is at risk, with attachments. A report becomes a ticket through the same intake as every event
(producer ``reporter``): impact and urgency come from the reporter's answers, priority from the triage
matrix. Reports about one document of one module in one category land on one ticket.

Attachments are bounded in number and size, limited to an allow-list of content types that is also checked
against the file's first bytes, stored under a random name with their SHA-256, and never served with a type
a browser would run.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import unicodedata
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO, Literal

from sqlalchemy import select

from anomaly.events import Event, fingerprint
from core.vocabulary import Category, Level, Priority
from tickets.models import Report, ReportAttachment, Ticket, User
from tickets.service import IngestResult, TicketService
from tickets.settings import TicketsConfig
from tickets.triage import triage

log = logging.getLogger(__name__)

PRODUCER = "reporter"
CHUNK = 64 * 1024
SNIFF_BYTES = 8192
Affected = Literal["me", "team", "many"]
AFFECTED_IMPACT: dict[str, Level] = {"me": Level.LOW, "team": Level.MEDIUM, "many": Level.HIGH}
"""Who cannot work (or which customers or suppliers are touched) -> impact."""
_MAGIC: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (b"PK\x03\x04",),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (b"PK\x03\x04",),
    "application/zip": (b"PK\x03\x04",),
}
TEXT_TYPES = ("text/plain", "text/csv")


class AttachmentRefused(ValueError):
    """An attachment that may not be kept; ``status`` is the HTTP answer (413, 415, 422)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class ReportInput:
    title: str
    description: str
    module: str
    category: Category
    urgency: Level
    affected: Affected
    document_number: str | None = None
    amount_at_risk: Decimal | None = None


@dataclass(frozen=True, slots=True)
class StoredFile:
    filename: str
    content_type: str
    size: int
    sha256: str
    storage_name: str


@dataclass
class ReportResult:
    report: Report
    ingest: IngestResult
    files: list[StoredFile] = field(default_factory=list)


def storage_dir(settings: TicketsConfig) -> Path:
    return settings.reports.storage_dir or (settings.data_dir / "attachments")


def impact_of(data: ReportInput, settings: TicketsConfig) -> Level:
    """Impact from who is affected, raised to high when the amount at risk reaches the threshold."""
    impact = AFFECTED_IMPACT[data.affected]
    amount = data.amount_at_risk
    if amount is not None and amount >= settings.reports.high_impact_amount:
        return Level.HIGH
    return impact


def safe_filename(name: str | None) -> str:
    """The original name's last path part, without control characters, at most 255 characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip(" .")
    return base[:255] or "attachment"


def _base_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def _looks_like(content_type: str, head: bytes) -> bool:
    if content_type in TEXT_TYPES:
        if b"\x00" in head:
            return False
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:  # a multi-byte character cut at the end of the sample is fine
            return exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
        return True
    magic = _MAGIC.get(content_type)
    return magic is None or head.startswith(magic)


class AttachmentStore:
    """Files under one directory, named by a random hex string; the original name stays in the store."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, storage_name: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{32}", storage_name):
            raise ValueError("not an attachment storage name")
        return self.directory / storage_name

    def save(
        self, stream: BinaryIO, filename: str | None, content_type: str | None, settings: TicketsConfig
    ) -> StoredFile:
        """Copy an upload in, checking type and size as it goes; nothing is left behind on refusal."""
        name = safe_filename(filename)
        kind = _base_type(content_type)
        allowed = settings.reports.allowed_types
        if kind not in allowed:
            raise AttachmentRefused(
                f"attachment {name!r}: type {kind or 'unknown'!r} is not accepted ({', '.join(allowed)})", 415
            )
        limit = settings.reports.max_attachment_bytes
        self.directory.mkdir(parents=True, exist_ok=True)
        storage_name = secrets.token_hex(16)
        target = self.directory / storage_name
        digest, size = hashlib.sha256(), 0
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                head = stream.read(SNIFF_BYTES)
                if not _looks_like(kind, head):
                    raise AttachmentRefused(f"attachment {name!r}: the content is not {kind}", 415)
                chunk = head
                while chunk:
                    size += len(chunk)
                    if size > limit:
                        raise AttachmentRefused(f"attachment {name!r} is larger than {limit} bytes", 413)
                    digest.update(chunk)
                    out.write(chunk)
                    chunk = stream.read(CHUNK)
            if size == 0:
                raise AttachmentRefused(f"attachment {name!r} is empty", 422)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return StoredFile(name, kind, size, digest.hexdigest(), storage_name)

    def delete(self, files: list[StoredFile]) -> None:
        for stored in files:
            (self.directory / stored.storage_name).unlink(missing_ok=True)


def report_event(
    data: ReportInput, reporter: User, settings: TicketsConfig, files: list[StoredFile]
) -> Event:
    """The event a report stands for. Impact and urgency are the reporter's; the matrix gives priority."""
    impact = impact_of(data, settings)
    entity = {"module": data.module}
    if data.document_number:
        entity["document_number"] = data.document_number
        fp = fingerprint(PRODUCER, data.category, entity=entity)
    else:  # nothing to recognise a second report of the same problem by: a ticket of its own
        fp = fingerprint(PRODUCER, uuid.uuid4().hex)
    draft = Event(
        fingerprint=fp,
        severity=Priority.P4,
        category=data.category,
        summary=data.title,
        source=settings.reports.source,
        producer=PRODUCER,
        impact=impact,
        urgency=data.urgency,
        labels={"module": data.module, "reported_by": reporter.username},
        entity=entity,
        evidence={
            "description": data.description,
            "reporter": reporter.username,
            "affected": data.affected,
            "attachments": [
                {"filename": f.filename, "content_type": f.content_type, "size": f.size, "sha256": f.sha256}
                for f in files
            ],
        },
        amount_at_risk=data.amount_at_risk,
        severity_reasons=(
            f"reported by {reporter.username}: {data.affected} affected, {data.urgency} urgency",
        ),
    )
    # The severity a reader sees is the priority the triage matrix gives the reporter's answers.
    return draft.model_copy(update={"severity": triage(draft, settings.triage).priority})


def create_report(
    service: TicketService,
    reporter: User,
    data: ReportInput,
    files: list[StoredFile],
    *,
    join: Ticket | None = None,
) -> ReportResult:
    """Record the report and its attachments and apply it to the queue. Flushes; the caller commits.

    ``join``: an open ticket the reporter chose (it names their document, tickets/intake_match.py): the
    report becomes an occurrence there, audited, instead of a ticket of its own."""
    settings = service.settings
    modules = settings.reports.modules
    if modules and data.module not in modules:
        raise ValueError(f"module {data.module!r} is not one of {', '.join(modules)}")
    if len(files) > settings.reports.max_attachments:
        raise AttachmentRefused(f"at most {settings.reports.max_attachments} attachments", 422)
    event = report_event(data, reporter, settings, files)
    if join is not None and join.open_fingerprint:
        event = event.model_copy(update={"fingerprint": join.open_fingerprint})
    result = service.ingest(event)
    report = Report(
        reporter_id=reporter.id,
        ticket_id=result.ticket.id if result.ticket else None,
        title=data.title,
        description=data.description,
        module=data.module,
        document_number=data.document_number,
        category=data.category,
        urgency=data.urgency,
        affected=data.affected,
        impact=impact_of(data, settings),
        amount_at_risk=data.amount_at_risk,
        created_at=service.now(),
        attachments=[
            ReportAttachment(
                filename=f.filename,
                content_type=f.content_type,
                size=f.size,
                sha256=f.sha256,
                storage_name=f.storage_name,
                created_at=service.now(),
            )
            for f in files
        ],
    )
    service.session.add(report)
    service.session.flush()
    if join is not None and result.ticket is not None and result.ticket.id == join.id:
        detail = {"report_id": report.id, "document_number": data.document_number, "title": data.title}
        service.audit(result.ticket, reporter.username, "report_joined", service.now(), **detail)
        service.session.flush()
    log.info(
        "report filed",
        extra={
            "report_id": report.id,
            "ticket_id": report.ticket_id,
            "outcome": result.outcome,
            "reporter": reporter.username,
            "erp_module": data.module,  # not "module": a LogRecord attribute
            "attachments": len(files),
        },
    )
    return ReportResult(report, result, files)


def visible_reports(
    service: TicketService, user: User, *, everyone: bool, limit: int = 50, offset: int = 0
) -> list[Report]:
    """The user's own reports, or everyone's for a reader of all reports; newest first."""
    query = select(Report).order_by(Report.id.desc()).limit(limit).offset(offset)
    if not everyone:
        query = query.where(Report.reporter_id == user.id)
    return list(service.session.scalars(query))


def get_report(service: TicketService, report_id: int, user: User, *, everyone: bool) -> Report | None:
    """The report if the user may see it (their own, or any for a reader of all reports), else None."""
    report = service.session.get(Report, report_id)
    if report is None or (not everyone and report.reporter_id != user.id):
        return None
    return report
