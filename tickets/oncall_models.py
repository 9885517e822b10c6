"""Tables of the on-call side (migration 0015): the one-click links already used, and the on-call
overrides. Kept apart from tickets/models.py, which holds the queue's own tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UTCDateTime, utcnow


class ActionLinkUse(Base):
    """A one-click link of a notification that was used: its nonce is the key, so a second use is refused
    by the store itself (tickets/action_links.py). The ticket's audit trail has the same who/what/when."""

    __tablename__ = "action_link_use"
    nonce: Mapped[str] = mapped_column(String(32), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    used_by: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    address: Mapped[str | None] = mapped_column(String(64))


class OncallOverride(Base):
    """``username`` covers ``rotation`` from ``starts_at`` to ``ends_at`` (tickets/oncall.py)."""

    __tablename__ = "oncall_override"
    id: Mapped[int] = mapped_column(primary_key=True)
    rotation: Mapped[str] = mapped_column(String(64), index=True)
    username: Mapped[str] = mapped_column(String(64))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
