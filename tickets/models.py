"""Tables of the ticket queue: intake events, tickets and occurrences, the audit trail, users and tokens,
and the notification outbox."""
# size: the queue's tables, one class each; the ticket's own are kept together

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    case,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base, JSONType, Money, UTCDateTime, one_of, utcnow
from core.vocabulary import OPEN_STATUSES, Category, Level, OutboxStatus, Priority, TicketStatus

ROLES = ("viewer", "reporter", "agent", "oncall", "manager", "admin")
"""What each role may do is ``tickets.auth.ROLE_SCOPES``."""


class EventRecord(Base):
    """Every event received (from anomaly/, Alertmanager, reporters), kept as it arrived."""

    __tablename__ = "event"
    __table_args__ = (one_of("severity", Priority), one_of("category", Category))  # migration 0011
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
    # More indexes (partial, on expressions) follow the class; all come from migration 0006.
    __table_args__ = (
        Index("ix_ticket_status_priority_last_seen", "status", "priority", "last_seen_at"),
        Index("ix_ticket_queue_category_priority", "queue", "category", "priority"),  # a team's own view
        # the dashboards' date ranges: inflow, MTTA, outflow/MTTR and the backlog at a date (migration 0009)
        Index("ix_ticket_created_at", "created_at"),
        Index("ix_ticket_acknowledged_at", "acknowledged_at"),
        Index("ix_ticket_resolved_created", "resolved_at", "created_at"),
        # the vocabulary (core/vocabulary.py), enforced by the store itself (migration 0011)
        one_of("status", TicketStatus),
        one_of("priority", Priority),
        one_of("impact", Level),
        one_of("urgency", Level),
        one_of("category", Category),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(128), index=True)
    open_fingerprint: Mapped[str | None] = mapped_column(String(128), unique=True)
    """Equal to ``fingerprint`` while the ticket is open, NULL once resolved: the store itself refuses a
    second open ticket for one fingerprint, whatever the number of concurrent writers."""
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=TicketStatus.NEW)
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
    # --- lifecycle and SLA (tickets/sla.py): stored so the queue filters and sorts on them -------------
    waiting_reason: Mapped[str | None] = mapped_column(String(16))
    """vendor | reporter | other_team while ``status`` is waiting."""
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sla_response_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    sla_resolution_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    sla_elapsed_s: Mapped[float] = mapped_column(Float, default=0.0)
    """Business seconds the resolution clock had used at ``sla_clock_at``."""
    sla_clock_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """Since when the resolution clock runs; NULL while it is paused (waiting) or stopped (resolved)."""
    sla_paused_s: Mapped[float] = mapped_column(Float, default=0.0)
    """Wall-clock seconds spent waiting, in total."""
    sla_paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sla_state: Mapped[str] = mapped_column(String(16), default="ok", index=True)
    """ok | at_risk | breached | paused | met (as of the last evaluation)."""
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    audit_hash: Mapped[str | None] = mapped_column(String(64))
    """The hash of the ticket's last audit row: the head of its audit chain (tickets/audit.py)."""
    occurrences: Mapped[list[Occurrence]] = relationship(
        back_populates="ticket", lazy="raise", order_by="Occurrence.id"
    )
    search_row: Mapped[TicketSearchText | None] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="select"
    )

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def search_text(self) -> str | None:
        """What the queue's text search finds besides the title, check and fingerprint (its own table,
        :class:`TicketSearchText`); loaded when asked for."""
        row = self.search_row
        return row.text if row is not None else None

    @search_text.setter
    def search_text(self, value: str | None) -> None:
        row = self.search_row
        if value is None:
            self.search_row = None
        elif row is None:
            self.search_row = TicketSearchText(text=value)
        elif row.text != value:
            row.text = value


class TicketSearchText(Base):
    """What the queue's text search finds of a ticket besides its title, check and fingerprint: the
    description, entity keys, labels, evidence and comments, in :func:`core.search.normalise`'s form
    (tickets/service.py keeps it; capped at ``core.search.MAX_SEARCH_TEXT``).

    A table of its own (migration 0023; it was ``ticket.search_text``): its trigram index holds hundreds of
    entries per ticket, which PostgreSQL wrote again on every update of the ticket row that was not HOT
    (each sighting moves ``last_seen_at``, which the queue's indexes hold), whether the text changed or
    not. Here it is written only when the text changes."""

    __tablename__ = "ticket_search_text"

    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("ticket.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    text: Mapped[str] = mapped_column(Text)


def sla_due_expr() -> ColumnElement[Any]:
    """The ticket's next SLA deadline: the response's until acknowledged, then the resolution's."""
    return case(
        (
            Ticket.acknowledged_at.is_(None),
            func.coalesce(Ticket.sla_response_due_at, Ticket.sla_resolution_due_at),
        ),
        else_=Ticket.sla_resolution_due_at,
    )


_OPEN_ONLY = Ticket.status.in_(OPEN_STATUSES)
# The queue's default views are the open tickets (a tenth of the table or less): partial indexes in the
# order the queue sorts them, so a page is an index range scan, not a sort of every open ticket.
Index(
    "ix_ticket_open_by_priority",
    Ticket.priority,
    Ticket.last_seen_at.desc(),
    Ticket.id.desc(),
    postgresql_where=_OPEN_ONLY,
    sqlite_where=_OPEN_ONLY,
)
Index(
    "ix_ticket_open_by_sla_due",
    sla_due_expr(),
    Ticket.priority,
    Ticket.id,
    postgresql_where=_OPEN_ONLY,
    sqlite_where=_OPEN_ONLY,
    info={"skip_compare": True},  # an expression: PostgreSQL reads it back in its own words
)
# The queue's substring search (``lower(col) LIKE '%word%'``) on PostgreSQL: pg_trgm GIN indexes, made by
# migration 0006 when the extension can be created (without them the search scans the table). Declared
# here so ``alembic check`` knows them; only the migration creates them.
for _column in (Ticket.title, Ticket.check_id, Ticket.fingerprint):
    Index(
        f"ix_ticket_{_column.key}_trgm",
        func.lower(_column),
        postgresql_using="gin",
        info={"skip_compare": True},
    ).ddl_if(callable_=lambda *_args, **_kwargs: False)
Index(  # already in its normal form (core.search): no lower()
    "ix_ticket_search_text_trgm", TicketSearchText.text, postgresql_using="gin", info={"skip_compare": True}
).ddl_if(callable_=lambda *_args, **_kwargs: False)


class Occurrence(Base):
    """One sighting of a ticket's exception: a repeat adds one of these, not a ticket."""

    __tablename__ = "occurrence"
    __table_args__ = (Index("ix_occurrence_ticket_id_id", "ticket_id", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("event.id"))
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    summary: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    ticket: Mapped[Ticket] = relationship(back_populates="occurrences")


class TicketAudit(Base):
    """Append-only: the migration installs triggers that refuse UPDATE and DELETE on this table."""

    __tablename__ = "ticket_audit"
    __table_args__ = (Index("ix_ticket_audit_ticket_id_id", "ticket_id", "id"),)
    """A ticket's trail (and hash chain) in order, newest last."""
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))
    """HMAC-SHA256 (key ``key_id``) of the row's canonical JSON and ``prev_hash`` (tickets/audit.py), or
    plain sha256 for rows written before migration 0013 (``key_id`` NULL); set when it is flushed."""
    key_id: Mapped[str | None] = mapped_column(String(32))
    """The id of the audit key that chained the row (tickets/audit_keys.py); NULL: legacy, unkeyed."""


class TicketAuditSeal(Base):
    """The store-wide chain: one row per audit row, in commit order, ``seq`` without gaps (append-only)."""

    __tablename__ = "ticket_audit_seal"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    audit_id: Mapped[int] = mapped_column(Integer, unique=True)
    """The sealed ``ticket_audit`` row (no foreign key: a deleted row must leave its seal to be found)."""
    ticket_id: Mapped[int] = mapped_column(Integer)
    key_id: Mapped[str] = mapped_column(String(32))
    prev_mac: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str] = mapped_column(String(64))
    """HMAC of (seq, audit_id, ticket_id, the row's own hash, prev_mac) with key ``key_id``."""


class AuditChainHead(Base):
    """Row 1 ends the global audit chain of the rows written before migration 0006 (``last_id`` is the last
    of them); later rows are chained per ticket, each ticket holding its head (``ticket.audit_hash``).
    Row 2 is the head of the seals (migration 0013): ``last_id`` the last ``seq``, ``last_hash`` its MAC."""

    __tablename__ = "audit_chain_head"
    id: Mapped[int] = mapped_column(primary_key=True)
    last_id: Mapped[int | None] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))


class User(Base):
    __tablename__ = "app_user"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    language: Mapped[str | None] = mapped_column(String(8))
    """The UI language the user chose (``en``, ``zh_CN``, ``zh_TW``); NULL: the browser's, else the site's."""
    timezone: Mapped[str | None] = mapped_column(String(64))
    """The IANA time zone times are shown in (``Asia/Shanghai``); NULL: the site's."""


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
    scopes: Mapped[str | None] = mapped_column(String(512))
    """Space-separated scopes; NULL (tokens made before scopes existed) means the role's default scopes."""
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """Refused from then on; NULL: never (tokens from before migration 0013, or ``--expires never``)."""
    user: Mapped[User] = relationship(lazy="joined")


class NotificationOutbox(Base):
    """A notification to send, written in the same transaction as the ticket change that caused it, so a
    crash between the two can neither lose the alert nor send one for a change that never happened."""

    __tablename__ = "notification_outbox"
    __table_args__ = (
        Index("ix_notification_outbox_due", "status", "next_attempt_at"),
        one_of("status", OutboxStatus),  # migration 0011
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id"), index=True)
    target: Mapped[int] = mapped_column(Integer)
    """Index of the notification target in the settings."""
    kind: Mapped[str] = mapped_column(String(32))  # opened | reopened | escalated | resolved
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    notify_type: Mapped[str] = mapped_column(String(16), default="failure")
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)
    """An :class:`~core.vocabulary.OutboxStatus`: pending | held | muted | digested | sent | dead."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    """The apprise tags the send uses (never empty: an untagged apprise call reaches every service)."""
    digest_id: Mapped[int | None] = mapped_column(Integer)
    """For a held notification (status ``digested``): the digest row that carried it."""
    silence_id: Mapped[int | None] = mapped_column(Integer)
    """For a muted notification: the silence that muted it."""


class TicketWatcher(Base):
    __tablename__ = "ticket_watcher"
    __table_args__ = (UniqueConstraint("ticket_id", "user_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TicketLink(Base):
    __tablename__ = "ticket_link"
    __table_args__ = (UniqueConstraint("ticket_id", "other_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    other_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # relates | duplicates | caused_by
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TicketSubject(Base):
    """A business entity a ticket is about (``invoice_id=42``): what other checks' events are matched on,
    so that one fault seen by several checks is one ticket (tickets/correlation.py)."""

    __tablename__ = "ticket_subject"
    __table_args__ = (UniqueConstraint("ticket_id", "subject"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(300), index=True)


class CorrelatedFingerprint(Base):
    """Another exception's fingerprint joined to an open ticket about the same entity: its repeats are
    occurrences there, its recovery is noted, not acted on. Removed when the ticket resolves."""

    __tablename__ = "correlated_fingerprint"
    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(128), unique=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    check_id: Mapped[str | None] = mapped_column(String(128))
    subject: Mapped[str] = mapped_column(String(300))
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Workaround(Base):
    """A manual workaround or temporary process change in force while the fix is pending."""

    __tablename__ = "workaround"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    what: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(64))
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    review_on: Mapped[date] = mapped_column(Date)
    active: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    created_by: Mapped[str] = mapped_column(String(64))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_by: Mapped[str | None] = mapped_column(String(64))


class TicketRating(Base):
    """The reporter's satisfaction with a resolution (1-5), one per ticket."""

    __tablename__ = "ticket_rating"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), unique=True)
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    rated_by: Mapped[str] = mapped_column(String(64))
    on_behalf_of: Mapped[str | None] = mapped_column(String(64))
    rated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Silence(Base):
    """Mutes notifications of matching tickets between ``starts_at`` and ``ends_at`` (tickets are still
    recorded). Matchers: labels (all must match), category, source, check (glob)."""

    __tablename__ = "silence"
    id: Mapped[int] = mapped_column(primary_key=True)
    comment: Mapped[str] = mapped_column(Text, default="")
    matchers: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- intake: Alertmanager alerts and employees' reports (migration 0004) -------------------------------


class AlertmanagerAlert(Base):
    """One firing episode of an Alertmanager alert: its fingerprint and start. Alertmanager re-sends a
    group on every repeat_interval and retries on 5xx; this row makes those repeats idempotent."""

    __tablename__ = "alertmanager_alert"
    __table_args__ = (UniqueConstraint("fingerprint", "starts_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))  # firing | resolved
    alertname: Mapped[str] = mapped_column(String(200), default="")
    group_key: Mapped[str] = mapped_column(Text, default="")
    receiver: Mapped[str] = mapped_column(String(200), default="")
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id"), index=True)
    notifications: Mapped[int] = mapped_column(Integer, default=1)
    """How many webhook deliveries mentioned this episode (repeats and retries included)."""
    first_received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Report(Base):
    """An employee's exception report; it becomes (or joins) a ticket."""

    __tablename__ = "report"
    __table_args__ = (one_of("category", Category), one_of("urgency", Level), one_of("impact", Level))  # 0011
    id: Mapped[int] = mapped_column(primary_key=True)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    module: Mapped[str] = mapped_column(String(64))
    document_number: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(16))
    urgency: Mapped[str] = mapped_column(String(8))
    affected: Mapped[str] = mapped_column(String(8))
    impact: Mapped[str] = mapped_column(String(8))
    amount_at_risk: Mapped[Decimal | None] = mapped_column(Money)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attachments: Mapped[list[ReportAttachment]] = relationship(
        back_populates="report", lazy="selectin", order_by="ReportAttachment.id"
    )


class ReportAttachment(Base):
    """A file attached to a report, stored under the attachments directory by a random name."""

    __tablename__ = "report_attachment"
    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("report.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    report: Mapped[Report] = relationship(back_populates="attachments")
