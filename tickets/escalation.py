"""Escalation before a breach, and the periodic housekeeping the server runs.

:func:`escalate` re-evaluates every open ticket's SLA (refreshing the stored ``sla_state`` the queue filters
on) and fires the next escalation level of its priority (``escalation.levels``) when that level's
condition holds: still unacknowledged N minutes after opening (the acknowledgement timeout re-triggers to
the next level), or the SLA at risk. A level notifies the targets carrying its ``notify_tags`` and the
targets of the people its ``page`` names in the rotation of the ticket's queue (on call, secondary,
manager: tickets/oncall.py), and may raise the priority by one step. Levels fire once each, in order
(``Ticket.escalation_level`` counts them); every firing is audited. Occurrences never page: only the
transitions do (opening, reopening, escalation, acknowledgement, resolution: ``targets[].events``).

:func:`housekeeping` is what the server's delivery loop calls each tick: auto-close, escalation and the
digests, each in its own short transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, load_only, sessionmaker

from core.db import utcnow
from core.vocabulary import OPEN_STATUSES, Priority, TicketStatus
from tickets import oncall, outbox, sla
from tickets.lifecycle import Lifecycle, auto_close
from tickets.models import Ticket
from tickets.service import SYSTEM_ACTOR, TicketService
from tickets.settings import EscalationLevel, TicketsConfig

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


_EVALUATED = (
    Ticket.id,
    Ticket.status,
    Ticket.priority,
    Ticket.created_at,
    Ticket.acknowledged_at,
    Ticket.sla_clock_at,
    Ticket.sla_elapsed_s,
    Ticket.sla_response_due_at,
    Ticket.sla_resolution_due_at,
    Ticket.sla_state,
    Ticket.escalation_level,
)
"""What :func:`sla.evaluate` and the escalation conditions read of a ticket."""
BATCH = 1000
"""Open tickets evaluated (and locked) per transaction by the server's housekeeping."""


def escalate(service: TicketService, *, limit: int = BATCH) -> int:
    """One pass over every open ticket, ``limit`` at a time, in the service's transaction; returns how many
    escalation levels fired."""
    return _walk(lambda after: escalate_batch(service, after_id=after, limit=limit))


def _walk(batch: Callable[[int], tuple[int, int | None]]) -> int:
    """Run ``batch(after_id)`` from the first open ticket to the last; the levels fired in all."""
    fired, after = 0, 0
    while True:
        batch_fired, last = batch(after)
        fired += batch_fired
        if last is None:
            return fired
        after = last


def escalate_batch(
    service: TicketService, *, after_id: int = 0, limit: int = BATCH
) -> tuple[int, int | None]:
    """The next ``limit`` open tickets by id after ``after_id``: (levels fired, the last id evaluated, or
    None when no open ticket was left)."""
    now = service.now()
    settings = service.settings
    tickets = service.session.scalars(
        select(Ticket)
        .options(load_only(*_EVALUATED))  # the rest loads for the few tickets a level fires on
        .where(Ticket.status.in_(OPEN_STATUSES), Ticket.id > after_id)
        .order_by(Ticket.id)
        .limit(limit)
        .with_for_update()
    ).all()
    if not tickets:
        return 0, None
    fired = 0
    for ticket in tickets:
        status = sla.evaluate(ticket, settings, now)
        levels = settings.escalation.levels.get(ticket.priority, ())  # type: ignore[call-overload]
        while ticket.escalation_level < len(levels) and ticket.status != TicketStatus.WAITING:
            level = levels[ticket.escalation_level]
            why = _due(level, ticket, status, now)
            if why is None:
                break
            _fire(service, ticket, level, number=ticket.escalation_level + 1, why=why, now=now)
            fired += 1
            status = sla.evaluate(ticket, settings, now)
            levels = settings.escalation.levels.get(ticket.priority, ())  # type: ignore[call-overload]
    service.session.flush()
    return fired, tickets[-1].id


def _fire(
    service: TicketService, ticket: Ticket, level: EscalationLevel, *, number: int, why: str, now: datetime
) -> None:
    ticket.escalation_level = number
    detail: dict[str, object] = {"level": number, "reason": why, "notify_tags": list(level.notify_tags)}
    if level.raise_priority and ticket.priority != Priority.P1:
        raised = Priority(ticket.priority).step(-1)
        detail["priority"] = {"before": ticket.priority, "after": raised}
        Lifecycle(service)._set_priority(
            ticket, SYSTEM_ACTOR, raised, now, reason=f"escalation level {number}: {why}"
        )
    people = oncall.people_for(service.session, service.settings, ticket, level.page, now)
    if level.page:
        detail["paged"] = sorted(people)
    service.audit(ticket, SYSTEM_ACTOR, "escalated", now, **detail)
    restricted = bool(level.notify_tags or level.page)
    service.notify(
        ticket,
        "escalated",
        now,
        only_tags=level.notify_tags if restricted else None,
        only_people=sorted(people) if restricted else None,
    )
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
    skipped: bool = False
    """Another process of the same store was housekeeping: this tick did nothing."""


HOUSEKEEPING_LOCK = 0x4843_484B  # "HCHK": PostgreSQL advisory lock key / MariaDB lock name suffix


@contextmanager
def _exclusive(engine: Engine) -> Iterator[bool]:
    """Whether this process may housekeep now: one at a time per store (a PostgreSQL advisory lock or a
    MariaDB named lock, held on its own connection and released when it closes, a crash included). Every
    ``hypercare serve`` worker runs the delivery loop; without this each would walk the whole open queue."""
    if engine.dialect.name not in ("postgresql", "mysql"):
        yield True  # SQLite: one serving process per store
        return
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            take, release = "SELECT pg_try_advisory_lock(:key)", "SELECT pg_advisory_unlock(:key)"
            params: dict[str, object] = {"key": HOUSEKEEPING_LOCK}
        else:
            take, release = "SELECT GET_LOCK(:key, 0)", "SELECT RELEASE_LOCK(:key)"
            params = {"key": f"hypercare-housekeeping-{HOUSEKEEPING_LOCK}"}
        mine = bool(conn.execute(text(take), params).scalar())
        conn.commit()
        try:
            yield mine
        finally:
            if mine:
                conn.execute(text(release), params)
                conn.commit()


def housekeeping(
    factory: sessionmaker[Session], settings: TicketsConfig, *, now: Callable[[], datetime] = utcnow
) -> HousekeepingReport:
    """Auto-close, escalate and build digests; each step commits on its own (escalation batch by batch), a
    failing one is logged."""

    def in_one_transaction(step: Callable[[TicketService], int]) -> Callable[[], int]:
        def run() -> int:
            with factory() as session, session.begin():
                return step(TicketService(session, settings, now=now))

        return run

    steps: list[tuple[str, Callable[[], int]]] = [
        ("auto_close", in_one_transaction(auto_close)),
        ("escalate", lambda: _escalate_in_batches(factory, settings, now)),
        (
            "digest",
            in_one_transaction(
                lambda service: len(outbox.build_digests(service.session, settings, now=service.now()))
            ),
        ),
    ]
    results: dict[str, int] = {}
    engine = factory.kw["bind"]
    with _exclusive(engine) as mine:
        if not mine:
            return HousekeepingReport(skipped=True)
        for name, step in steps:
            try:
                results[name] = step()
            except SQLAlchemyError as exc:
                log.warning(
                    "housekeeping step %s failed: %s", name, str(exc).splitlines()[0], extra={"step": name}
                )
    return HousekeepingReport(
        closed=results.get("auto_close", 0),
        escalated=results.get("escalate", 0),
        digests=results.get("digest", 0),
    )


def _escalate_in_batches(
    factory: sessionmaker[Session], settings: TicketsConfig, now: Callable[[], datetime]
) -> int:
    """Every open ticket, :data:`BATCH` at a time, each batch in its own short transaction (its row locks
    are held only while that batch is evaluated, not while the whole queue is)."""

    def batch(after: int) -> tuple[int, int | None]:
        with factory() as session, session.begin():
            return escalate_batch(TicketService(session, settings, now=now), after_id=after, limit=BATCH)

    return _walk(batch)
