"""Escalation before a breach, and the periodic housekeeping the server runs.

:func:`escalate` re-evaluates every open ticket's SLA (refreshing the stored ``sla_state`` the queue filters
on) and fires the next escalation level of its priority (``escalation.levels``) when that level's
condition holds: still unacknowledged N minutes after opening (the acknowledgement timeout re-triggers to
the next level), or the SLA at risk. A level notifies the targets carrying its ``notify_tags`` and may raise
the priority by one step. Levels fire once each, in order (``Ticket.escalation_level`` counts them); every
firing is audited. Occurrences never page: only opening, reopening, escalation and resolution do.

:func:`housekeeping` is what the server's delivery loop calls each tick: auto-close, escalation and the
digests, each in its own short transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from hypercare.config import PRIORITIES, EscalationLevel, Settings
from hypercare.db import utcnow
from tickets import outbox, sla
from tickets.lifecycle import Lifecycle, auto_close
from tickets.models import OPEN_STATUSES, Ticket
from tickets.service import SYSTEM_ACTOR, TicketService

log = logging.getLogger(__name__)


def _due(level: EscalationLevel, ticket: Ticket, status: sla.SlaStatus, now: datetime) -> str | None:
    """Why the level fires now, or None."""
    waited = now - ticket.created_at
    minutes = level.unacknowledged_min
    if minutes is not None and ticket.acknowledged_at is None and waited >= timedelta(minutes=minutes):
        return f"unacknowledged after {minutes:g} min"
    if level.at_risk and status.state in ("at_risk", "breached"):
        return f"SLA {status.state.replace('_', ' ')}"
    return None


def escalate(service: TicketService, *, limit: int = 1000) -> int:
    """One pass over the open tickets; returns how many escalation levels fired."""
    now = service.now()
    settings = service.settings
    tickets = service.session.scalars(
        select(Ticket)
        .where(Ticket.status.in_(OPEN_STATUSES))
        .order_by(Ticket.id)
        .limit(limit)
        .with_for_update()
    ).all()
    fired = 0
    for ticket in tickets:
        status = sla.evaluate(ticket, settings, now)
        levels = settings.escalation.levels.get(ticket.priority, ())  # type: ignore[call-overload]
        while ticket.escalation_level < len(levels) and ticket.status != "waiting":
            level = levels[ticket.escalation_level]
            why = _due(level, ticket, status, now)
            if why is None:
                break
            _fire(service, ticket, level, number=ticket.escalation_level + 1, why=why, now=now)
            fired += 1
            status = sla.evaluate(ticket, settings, now)
            levels = settings.escalation.levels.get(ticket.priority, ())  # type: ignore[call-overload]
    service.session.flush()
    return fired


def _fire(
    service: TicketService, ticket: Ticket, level: EscalationLevel, *, number: int, why: str, now: datetime
) -> None:
    ticket.escalation_level = number
    detail: dict[str, object] = {"level": number, "reason": why, "notify_tags": list(level.notify_tags)}
    if level.raise_priority and ticket.priority != PRIORITIES[0]:
        raised = PRIORITIES[PRIORITIES.index(ticket.priority) - 1]
        detail["priority"] = {"before": ticket.priority, "after": raised}
        Lifecycle(service)._set_priority(
            ticket, SYSTEM_ACTOR, raised, now, reason=f"escalation level {number}: {why}"
        )
    service.audit(ticket, SYSTEM_ACTOR, "escalated", now, **detail)
    service.notify(ticket, "escalated", now, only_tags=level.notify_tags or None)
    log.warning(
        "ticket escalated to level %d: %s",
        number,
        why,
        extra={"ticket_id": ticket.id, "priority": ticket.priority, "level": number},
    )


@dataclass(frozen=True, slots=True)
class HousekeepingReport:
    closed: int = 0
    escalated: int = 0
    digests: int = 0


def housekeeping(
    factory: sessionmaker[Session], settings: Settings, *, now: Callable[[], datetime] = utcnow
) -> HousekeepingReport:
    """Auto-close, escalate and build digests; each step commits on its own, a failing one is logged."""
    closed = escalated = digests = 0
    steps: list[tuple[str, Callable[[TicketService], int]]] = [
        ("auto_close", auto_close),
        ("escalate", escalate),
        ("digest", lambda service: len(outbox.build_digests(service.session, settings, now=service.now()))),
    ]
    results: dict[str, int] = {}
    for name, step in steps:
        try:
            with factory() as session, session.begin():
                results[name] = step(TicketService(session, settings, now=now))
        except SQLAlchemyError as exc:
            log.warning(
                "housekeeping step %s failed: %s", name, str(exc).splitlines()[0], extra={"step": name}
            )
    closed, escalated, digests = (
        results.get("auto_close", 0),
        results.get("escalate", 0),
        results.get("digest", 0),
    )
    return HousekeepingReport(closed=closed, escalated=escalated, digests=digests)
