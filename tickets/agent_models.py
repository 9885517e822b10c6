"""Tables of the support agents' work beyond the ticket itself (migration 0015): the comment conversation
(internal notes and replies to the reporter), files attached to a ticket, saved queue views, and problem
records (one root cause, many incidents; a known error with its workaround). Kept apart from
tickets/models.py, which holds the queue's own tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, JSONType, UTCDateTime, utcnow


class TicketComment(Base):
    """One message of a ticket's conversation: an internal note (agents only) or a reply the reporter reads
    and is told about. The audit trail keeps a row per comment too (who, when, which)."""

    __tablename__ = "ticket_comment"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(64))
    visibility: Mapped[str] = mapped_column(String(8))  # internal | reply
    text: Mapped[str] = mapped_column(Text)
    mentions: Mapped[list[str]] = mapped_column(JSONType, default=list)
    """Usernames @mentioned (active users at the time), each notified."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TicketAttachment(Base):
    """A file an agent attached to a ticket (screenshots, exports), stored like report attachments: under
    the attachments directory by a random name, with its SHA-256."""

    __tablename__ = "ticket_attachment"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_name: Mapped[str] = mapped_column(String(64), unique=True)
    uploaded_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SavedView(Base):
    """A named set of queue filters: the owner's own, or shared with a team (a queue name)."""

    __tablename__ = "saved_view"
    __table_args__ = (UniqueConstraint("owner_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    team: Mapped[str | None] = mapped_column(String(64), index=True)
    """Shared with everyone working this queue; NULL: the owner's alone."""
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Problem(Base):
    """The one cause behind many incidents. A known error carries a workaround that every new ticket it
    matches (same check, or the same subject) gets on opening."""

    __tablename__ = "problem"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    root_cause: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | known_error | resolved
    workaround: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str] = mapped_column(String(64))
    """Who owns the problem and retires its workarounds."""
    match_check_id: Mapped[str | None] = mapped_column(String(128), index=True)
    match_subject: Mapped[str | None] = mapped_column(String(300))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProblemTicket(Base):
    """A ticket linked to its problem (one problem per ticket)."""

    __tablename__ = "problem_ticket"
    id: Mapped[int] = mapped_column(primary_key=True)
    problem_id: Mapped[int] = mapped_column(ForeignKey("problem.id", ondelete="CASCADE"), index=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), unique=True)
    linked_by: Mapped[str] = mapped_column(String(64))
    automatic: Mapped[bool] = mapped_column(Boolean, default=False)
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
