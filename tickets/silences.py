"""Silences and maintenance windows: matchers plus a time range that mute notifications of matching
tickets. Tickets are still opened, deduplicated and audited; the muted notification is kept in the outbox
with status ``muted`` and the silence's id, and the audit trail says "muted by silence N".

Matchers (all given ones must match): ``labels`` (every key=value), ``category``, ``source``, ``check``
(a glob on the check id, ``gl.*``), and ``priorities`` (only tickets of these priorities).

Who may silence what for how long is deliberate (settings ``security.silence_max_hours``): each role has a
longest silence per priority, and a silence is judged by the most urgent priority it can mute (P1 unless
its ``priorities`` leave P1 out). An agent may mute P1 pages for 4 hours by default, not for a year; a
longer silence is refused naming the limit (:class:`SilenceNotAllowed`, a 403 over the API). Every
silence created or ended early is a security event (tickets/security_log.py) as well as a log line.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.vocabulary import Priority
from tickets import security_log
from tickets.models import Silence, Ticket


class SilenceNotAllowed(PermissionError):
    """The user's role may not silence this for that long (the message names the limit)."""


class SilenceMatchers(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: dict[str, str] = {}
    category: str | None = Field(None, max_length=16)
    source: str | None = Field(None, max_length=64)
    check: str | None = Field(None, max_length=128)
    priorities: list[Priority] = Field([], max_length=4)
    """Only tickets of these priorities (empty: every priority, P1 included)."""

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
    priorities = matchers.get("priorities")
    if priorities and ticket.priority not in priorities:
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


SilenceLimits = Mapping[str, Mapping[Priority, float]]
"""Role -> priority -> the longest silence in hours (settings ``security.silence_max_hours``)."""


def most_urgent(matchers: SilenceMatchers) -> Priority:
    """The most urgent priority a silence with these matchers can mute."""
    return min(matchers.priorities) if matchers.priorities else Priority.P1


def check_allowed(role: str, matchers: SilenceMatchers, length: timedelta, limits: SilenceLimits) -> None:
    """Refuse (:class:`SilenceNotAllowed`) a silence longer than ``role`` may create for the most urgent
    priority it can mute."""
    priority = most_urgent(matchers)
    hours = limits.get(role, {}).get(priority)
    if hours is None:
        raise SilenceNotAllowed(f"role '{role}' may not silence {priority} tickets")
    if length > timedelta(hours=hours):
        scope = "every priority" if not matchers.priorities else ", ".join(sorted(matchers.priorities))
        raise SilenceNotAllowed(
            f"role '{role}' may silence {priority} for at most {hours:g} h; this silence ({scope}) lasts "
            f"{length.total_seconds() / 3600:g} h: shorten it, leave {priority} out of its priorities, "
            "or ask someone whose role allows it"
        )


def create(
    session: Session,
    *,
    matchers: SilenceMatchers,
    starts_at: datetime,
    ends_at: datetime,
    created_by: str,
    role: str,
    limits: SilenceLimits,
    comment: str = "",
    now: datetime,
) -> Silence:
    """A new silence, if ``created_by``'s ``role`` may create it (:func:`check_allowed`); recorded as a
    security event."""
    if ends_at <= starts_at:
        raise ValueError("a silence must end after it starts (ends_at > starts_at)")
    check_allowed(role, matchers, ends_at - starts_at, limits)
    silence = Silence(
        comment=comment,
        matchers=matchers.model_dump(mode="json", exclude_defaults=True),
        starts_at=starts_at,
        ends_at=ends_at,
        created_by=created_by[:64],
        created_at=now,
    )
    session.add(silence)
    session.flush()
    security_log.record(
        session,
        actor=created_by,
        action="silence_created",
        subject=f"silence {silence.id}",
        detail={
            "matchers": silence.matchers,
            "starts_at": starts_at.isoformat(),
            "ends_at": ends_at.isoformat(),
            "hours": round((ends_at - starts_at).total_seconds() / 3600, 2),
            "role": role,
            "comment": comment[:200],
        },
        now=now,
    )
    return silence


def expire(session: Session, silence_id: int, now: datetime, *, actor: str = "system") -> Silence | None:
    """End a silence now (kept as a record; recorded as a security event); None when there is no such
    silence."""
    silence = session.get(Silence, silence_id)
    if silence is not None and silence.ends_at > now:
        planned = silence.ends_at
        silence.ends_at = max(now, silence.starts_at)
        session.flush()
        security_log.record(
            session,
            actor=actor,
            action="silence_expired",
            subject=f"silence {silence.id}",
            detail={"planned_end": planned.isoformat(), "created_by": silence.created_by},
            now=now,
        )
    return silence
