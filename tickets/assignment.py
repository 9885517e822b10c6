"""Who and where a ticket can be given to: the active users who may work tickets, and the queues (those the
routing rules name and those tickets are in). Moving a ticket to another queue is audited like an
assignment."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import ConfigError
from tickets import queries, routing
from tickets.auth import roles_with
from tickets.models import Ticket, User
from tickets.service import TicketService, _snapshot
from tickets.settings import TicketsConfig

QUEUE_PREFIX = "queue:"
"""An assignee picker's value naming a queue rather than a user."""


@dataclass(frozen=True, slots=True)
class Assignable:
    users: list[tuple[str, str]]
    """(username, display name) of the active users who may work tickets."""
    queues: list[str]


def working_users(session: Session) -> list[tuple[str, str]]:
    """(username, display name) of the active users who may work tickets, by username."""
    return [
        (name, display or name)
        for name, display in session.execute(
            select(User.username, User.display_name)
            .where(User.active.is_(True), User.role.in_(roles_with("tickets:write")))
            .order_by(User.username)
        )
    ]


def assignable(session: Session, settings: TicketsConfig) -> Assignable:
    users = working_users(session)
    queues = set(queries.queues_in_use(session))
    # an unreadable rules file is reported where tickets are routed; the picker shows what it can
    with suppress(ConfigError):
        queues.update(rule.queue for rule in routing.load_rules(settings) if rule.queue)
    return Assignable(users, sorted(queues))


def move_to_queue(service: TicketService, ticket_id: int, actor: str, queue: str) -> Ticket:
    """Put the ticket in ``queue`` (a team's queue), audited; a no-op when it is there already."""
    queue = queue.strip()
    if not queue or len(queue) > 64:
        raise ValueError("a queue name is 1 to 64 characters")
    ticket = service.locked(ticket_id)
    if ticket.queue == queue:
        return ticket
    now = service.now()
    before = _snapshot(ticket, "queue")
    ticket.queue = queue
    ticket.updated_at = now
    service.audit(ticket, actor, "queue_changed", now, before=before, after=_snapshot(ticket, "queue"))
    service.session.flush()
    return ticket
