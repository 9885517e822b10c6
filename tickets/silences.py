"""Silences and maintenance windows: matchers plus a time range that mute notifications of matching
tickets. Tickets are still opened, deduplicated and audited; the muted notification is kept in the outbox
with status ``muted`` and the silence's id, and the audit trail says "muted by silence N".

Matchers (all given ones must match): ``labels`` (every key=value), ``category``, ``source``, ``check``
(a glob on the check id, ``gl.*``).
"""

from __future__ import annotations

import fnmatch
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from tickets.models import Silence, Ticket


class SilenceMatchers(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: dict[str, str] = {}
    category: str | None = Field(None, max_length=16)
    source: str | None = Field(None, max_length=64)
    check: str | None = Field(None, max_length=128)

    @model_validator(mode="after")
    def _not_everything(self) -> SilenceMatchers:
        if not (self.labels or self.category or self.source or self.check):
            raise ValueError("a silence needs at least one matcher (labels, category, source or check)")
        return self


def matches(matchers: dict[str, Any], ticket: Ticket) -> bool:
    labels = ticket.labels or {}
    if any(labels.get(key) != value for key, value in (matchers.get("labels") or {}).items()):
        return False
    if matchers.get("category") and matchers["category"] != ticket.category:
        return False
    if matchers.get("source") and matchers["source"] != ticket.source:
        return False
    check = matchers.get("check")
    return not check or (ticket.check_id is not None and fnmatch.fnmatchcase(ticket.check_id, check))


def active(session: Session, now: datetime) -> list[Silence]:
    return list(
        session.scalars(
            select(Silence).where(Silence.starts_at <= now, Silence.ends_at > now).order_by(Silence.id)
        )
    )


def muting(session: Session, ticket: Ticket, now: datetime) -> Silence | None:
    """The first active silence that matches the ticket, if any."""
    return next((s for s in active(session, now) if matches(s.matchers, ticket)), None)


def create(
    session: Session,
    *,
    matchers: SilenceMatchers,
    starts_at: datetime,
    ends_at: datetime,
    created_by: str,
    comment: str = "",
    now: datetime,
) -> Silence:
    if ends_at <= starts_at:
        raise ValueError("a silence must end after it starts (ends_at > starts_at)")
    silence = Silence(
        comment=comment,
        matchers=matchers.model_dump(exclude_defaults=True),
        starts_at=starts_at,
        ends_at=ends_at,
        created_by=created_by[:64],
        created_at=now,
    )
    session.add(silence)
    session.flush()
    return silence


def expire(session: Session, silence_id: int, now: datetime) -> Silence | None:
    """End a silence now (kept as a record); None when there is no such silence."""
    silence = session.get(Silence, silence_id)
    if silence is not None and silence.ends_at > now:
        silence.ends_at = max(now, silence.starts_at)
        session.flush()
    return silence
