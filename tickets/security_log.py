"""The security events of access outside any ticket's trail: login lockouts, sessions revoked, tokens
rotated, silences created and expired. Each is a row of ``security_event`` (written in the caller's
transaction) and a structured log line with the same facts."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import utcnow
from tickets.access_models import SecurityEvent

log = logging.getLogger(__name__)


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    subject: str = "",
    address: str | None = None,
    detail: dict[str, Any] | None = None,
    now: datetime | None = None,
    level: int = logging.INFO,
) -> SecurityEvent:
    """Add one event to ``security_event`` (the caller commits) and log it."""
    event = SecurityEvent(
        at=now or utcnow(),
        actor=actor[:64],
        action=action[:32],
        subject=subject[:160],
        address=None if address is None else address[:64],
        detail=detail or {},
    )
    session.add(event)
    session.flush()
    log.log(
        level,
        "security event: %s",
        action,
        extra={
            "actor": event.actor,
            "action": action,
            "subject": event.subject,
            "address": address,
            **(detail or {}),
        },
    )
    return event


def events(session: Session, action: str | None = None, limit: int = 100) -> list[SecurityEvent]:
    """The latest events, newest first (of one ``action`` if given)."""
    query = select(SecurityEvent).order_by(SecurityEvent.id.desc()).limit(limit)
    if action is not None:
        query = query.where(SecurityEvent.action == action)
    return list(session.scalars(query))
