"""Tables of access beyond users and tokens (migration 0013): the web UI's login sessions, login throttling
counters and security events. Kept apart from tickets/models.py, which holds the queue's own tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base, JSONType, UTCDateTime, utcnow
from tickets.models import User


class AuthSession(Base):
    """A login session of the web UI. The cookie carries only a random id; the store keeps its SHA-256, so
    a copy of this table lets nobody in. Refused once ``revoked_at`` is set (logout, password or role
    change, an administrator) or ``expires_at`` has passed."""

    __tablename__ = "auth_session"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(String(32))
    address: Mapped[str | None] = mapped_column(String(64))
    """The client address the session was opened from."""
    user: Mapped[User] = relationship(lazy="joined")


class LoginThrottle(Base):
    """Failed logins of one user name (``user:<name>``) or client address (``addr:<ip>``) in the current
    window, and the lock they earned. Kept in the store so every server process counts the same."""

    __tablename__ = "login_throttle"
    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lockouts: Mapped[int] = mapped_column(Integer, default=0)
    """Locks in a row (each doubles the next one's length); back to 0 after a quiet window."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class SecurityEvent(Base):
    """What happened to access, outside any ticket's trail: login lockouts, sessions revoked, tokens
    rotated, silences created or expired. Append-only by convention (nothing updates or deletes a row)."""

    __tablename__ = "security_event"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(160), default="")
    """What it happened to: a user name, an address, ``silence 12``, ``token 7``."""
    address: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
