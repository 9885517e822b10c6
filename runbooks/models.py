"""Tables of the runbooks on tickets (migration 0007): the diagnostics run when a ticket opened, and the
checklist steps agents ticked. Verification runs leave audit rows (``verified``) and a check result."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.db import Base, JSONType, UTCDateTime, utcnow


class TicketDiagnostic(Base):
    """One diagnostic of the ticket's runbook, run once per ticket and fingerprint: the table it returned,
    or why it could not run (``status`` error / skipped, never hidden)."""

    __tablename__ = "ticket_diagnostic"
    __table_args__ = (UniqueConstraint("ticket_id", "fingerprint", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    fingerprint: Mapped[str] = mapped_column(String(128))
    runbook_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(8))  # sql | http
    source: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(8))  # ok | error | skipped
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    columns: Mapped[list[str]] = mapped_column(JSONType, default=list)
    rows: Mapped[list[list[Any]]] = mapped_column(JSONType, default=list)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    ran_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RunbookStep(Base):
    """A checklist step of the ticket's runbook as it stands (done or not); each change is audited."""

    __tablename__ = "runbook_step"
    __table_args__ = (UniqueConstraint("ticket_id", "runbook_id", "step"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    runbook_id: Mapped[str] = mapped_column(String(128))
    step: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    done: Mapped[bool] = mapped_column(Boolean, default=True)
    by: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def diagnostics_of(session: Session, ticket_id: int) -> list[TicketDiagnostic]:
    """The ticket's diagnostic results, newest fingerprint first, in the runbook's order."""
    return list(
        session.scalars(
            select(TicketDiagnostic)
            .where(TicketDiagnostic.ticket_id == ticket_id)
            .order_by(TicketDiagnostic.ran_at.desc(), TicketDiagnostic.id)
        )
    )
