"""Tables of the ticket queue: intake events, tickets and occurrences, the audit trail, users and tokens,
and the notification outbox."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hypercare.db import Base, JSONType, Money, UTCDateTime, utcnow

OPEN_STATUSES = ("new", "acknowledged", "in_progress", "waiting", "reopened")
CLOSED_STATUSES = ("resolved", "closed")
ROLES = ("admin", "agent", "manager", "viewer")


class EventRecord(Base):
    """Every event received (from anomaly/, Alertmanager, reporters), kept as it arrived."""

    __tablename__ = "event"
    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(128), index=True)
    action: Mapped[str] = mapped_column(String(16))  # trigger | acknowledge | resolve
    severity: Mapped[str] = mapped_column(String(2))
    category: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(64))
    check_id: Mapped[str | None] = mapped_column(String(128))
    producer: Mapped[str] = mapped_column(String(32), default="monitor")
    labels: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    entity: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    amount_at_risk: Mapped[Decimal | None] = mapped_column(Money)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id"), index=True)


class Ticket(Base):
    __tablename__ = "ticket"
    __table_args__ = (Index("ix_ticket_status_priority", "status", "priority"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(128), index=True)
    open_fingerprint: Mapped[str | None] = mapped_column(String(128), unique=True)
    """Equal to ``fingerprint`` while the ticket is open, NULL once resolved: the store itself refuses a
    second open ticket for one fingerprint, whatever the number of concurrent writers."""
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="new")
    priority: Mapped[str] = mapped_column(String(2))
    impact: Mapped[str] = mapped_column(String(8))
    urgency: Mapped[str] = mapped_column(String(8))
    category: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(64))
    check_id: Mapped[str | None] = mapped_column(String(128))
    queue: Mapped[str] = mapped_column(String(64), default="hypercare")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    runbook_id: Mapped[str | None] = mapped_column(String(128))
    amount_at_risk: Mapped[Decimal | None] = mapped_column(Money)
    entity: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    labels: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    occurrence_count: Mapped[int] = mapped_column(Integer, default=1)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    occurrences: Mapped[list[Occurrence]] = relationship(
        back_populates="ticket", lazy="raise", order_by="Occurrence.id"
    )

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class Occurrence(Base):
    """One sighting of a ticket's exception: a repeat adds one of these, not a ticket."""

    __tablename__ = "occurrence"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("event.id"))
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    summary: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    ticket: Mapped[Ticket] = relationship(back_populates="occurrences")


class TicketAudit(Base):
    """Append-only: the migration installs triggers that refuse UPDATE and DELETE on this table."""

    __tablename__ = "ticket_audit"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class User(Base):
    __tablename__ = "app_user"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiToken(Base):
    """A bearer token. Only its SHA-256 is stored; the token itself is shown once at creation."""

    __tablename__ = "api_token"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    user: Mapped[User] = relationship(lazy="joined")


class NotificationOutbox(Base):
    """A notification to send, written in the same transaction as the ticket change that caused it, so a
    crash between the two can neither lose the alert nor send one for a change that never happened."""

    __tablename__ = "notification_outbox"
    __table_args__ = (Index("ix_notification_outbox_due", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id"), index=True)
    target: Mapped[int] = mapped_column(Integer)
    """Index of the notification target in the settings."""
    kind: Mapped[str] = mapped_column(String(32))  # opened | reopened | escalated | resolved
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    notify_type: Mapped[str] = mapped_column(String(16), default="failure")
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sent | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
