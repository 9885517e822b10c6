"""The web UI's login sessions, kept in the store (``auth_session``).

A login makes a random id; the browser's cookie carries it (signed, with the form's CSRF token and flash
messages, and nothing about who is logged in) and the store keeps its SHA-256 with the user, when it was
made, last seen and expires. Who a session acts as is decided by :func:`tickets.auth.session_access` from
that row and its user, on the general path and the hot path alike, so revoking the row ends the session in
every server process at once: logout, a password or role change, a disabled user, an administrator
(``hypercare users sessions revoke``, ``DELETE /api/v1/users/{username}/sessions``).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tickets import security_log
from tickets.access_models import AuthSession
from tickets.models import User

log = logging.getLogger(__name__)

MAX_SESSION_ID_LENGTH = 128


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def plausible_session_id(value: object) -> str | None:
    """The session id a cookie holds, if it could be one of ours (else: nobody is logged in)."""
    if isinstance(value, str) and 20 <= len(value) <= MAX_SESSION_ID_LENGTH:
        return value
    return None


def start(
    session: Session, user: User, *, now: datetime, max_age: timedelta, address: str | None = None
) -> str:
    """A new login session for ``user``; the random id returned goes in the cookie and nowhere else."""
    session_id = secrets.token_urlsafe(32)
    session.add(
        AuthSession(
            token_hash=session_hash(session_id),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + max_age,
            address=None if address is None else address[:64],
        )
    )
    session.flush()
    log.info("login session started", extra={"username": user.username, "address": address})
    return session_id


def end(session: Session, session_id: str, *, now: datetime) -> None:
    """Logout: the session's row is revoked (a copy of the cookie is refused from now on)."""
    session.execute(
        update(AuthSession)
        .where(AuthSession.token_hash == session_hash(session_id), AuthSession.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason="logout")
    )


def revoke_user_sessions(
    session: Session, user: User, *, reason: str, actor: str, now: datetime, address: str | None = None
) -> int:
    """Revoke every live session of ``user`` (recorded as a security event); how many there were."""
    result = session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None), AuthSession.expires_at > now)
        .values(revoked_at=now, revoked_reason=reason[:32])
        .execution_options(synchronize_session=False)
    )
    count = int(getattr(result, "rowcount", 0) or 0)
    security_log.record(
        session,
        actor=actor,
        action="sessions_revoked",
        subject=user.username,
        address=address,
        detail={"reason": reason, "sessions": count},
        now=now,
    )
    return count


def live_sessions(session: Session, user: User, now: datetime) -> list[AuthSession]:
    return list(
        session.scalars(
            select(AuthSession)
            .where(
                AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None), AuthSession.expires_at > now
            )
            .order_by(AuthSession.id)
        )
    )
