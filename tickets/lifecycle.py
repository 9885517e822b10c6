"""The agents' lifecycle operations on a ticket: status changes along :data:`tickets.service.TRANSITIONS`
(with a reason; waiting needs vendor | reporter | other_team), priority changes with a reason, assignment,
watchers, links between tickets, and the auto-close of resolved tickets.

Each operation locks the ticket row, writes its audit row (who, when, before/after, why) and flushes; the
caller commits. SLA clocks follow the status: waiting pauses the resolution clock, leaving it resumes it,
resolving stops it, reopening resumes it with the time already used (tickets/sla.py).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.vocabulary import Priority, TicketStatus, parse
from tickets import sla
from tickets.errors import InvalidTransition, TicketError, TicketNotFound
from tickets.models import Ticket, TicketLink, TicketWatcher, User
from tickets.service import SYSTEM_ACTOR, TRANSITIONS, WAITING_REASONS, TicketService, _snapshot
from tickets.settings import TicketsConfig

log = logging.getLogger(__name__)

LinkKind = Literal["relates", "duplicates", "caused_by"]


class UnknownUser(TicketError):
    def __init__(self, username: str) -> None:
        super().__init__(f"no active user named {username!r}")
        self.username = username


def _reason(reason: str | None, what: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise ValueError(f"{what} needs a reason")
    return text


class Lifecycle:
    def __init__(self, service: TicketService) -> None:
        self.service = service
        self.session: Session = service.session
        self.settings: TicketsConfig = service.settings

    def change_status(
        self,
        ticket_id: int,
        actor: str,
        to: str,
        *,
        reason: str | None = None,
        waiting_reason: str | None = None,
    ) -> Ticket:
        """Move the ticket to ``to`` if the lifecycle allows it; acknowledging and resolving go through the
        service's own rules (first acknowledgement time, open fingerprint release)."""
        ticket = self.service.locked(ticket_id)
        if to not in TRANSITIONS.get(ticket.status, ()):
            raise InvalidTransition(ticket_id, ticket.status, f"move it to {to}")
        now = self.service.now()
        if to == TicketStatus.ACKNOWLEDGED:
            return self.service.acknowledge(ticket_id, actor)
        if to == TicketStatus.RESOLVED:
            return self.service.resolve(ticket_id, actor, _reason(reason, "resolving"))
        if to == TicketStatus.WAITING and waiting_reason not in WAITING_REASONS:
            raise ValueError(f"waiting needs a waiting_reason: one of {', '.join(WAITING_REASONS)}")
        if to in (TicketStatus.REOPENED, TicketStatus.CLOSED):
            reason = _reason(reason, "reopening" if to == TicketStatus.REOPENED else "closing")
        before = _snapshot(ticket, "status", "waiting_reason", "sla_state")
        previous = ticket.status
        ticket.status = to
        ticket.waiting_reason = waiting_reason if to == TicketStatus.WAITING else None
        ticket.updated_at = now
        if to == TicketStatus.WAITING:
            sla.pause(ticket, self.settings, now)
        elif previous == TicketStatus.WAITING:
            sla.resume(ticket, self.settings, now)
        if to == TicketStatus.CLOSED:
            ticket.closed_at = now
        if to == TicketStatus.REOPENED:
            self._reopen(ticket, now)
        after = _snapshot(ticket, "status", "waiting_reason", "sla_state")
        self.service.audit(ticket, actor, "status_changed", now, before=before, after=after, reason=reason)
        self.session.flush()
        log.info("ticket %s -> %s", previous, to, extra={"ticket_id": ticket.id, "priority": ticket.priority})
        return ticket

    def _reopen(self, ticket: Ticket, now: datetime) -> None:
        ticket.open_fingerprint = ticket.fingerprint
        ticket.reopen_count += 1
        ticket.resolved_at = None
        try:
            with self.session.begin_nested():
                self.session.flush()
        except IntegrityError:
            raise InvalidTransition(
                ticket.id, TicketStatus.RESOLVED, "reopen it while another ticket is open for it"
            ) from None
        sla.resume(ticket, self.settings, now)
        self.service.notify(ticket, "reopened", now)

    def change_priority(self, ticket_id: int, actor: str, priority: str, reason: str) -> Ticket:
        """Set the priority by hand, with a reason; the SLA keeps the time used and paused."""
        if parse(Priority, priority) is None:
            raise ValueError(f"priority must be one of {', '.join(Priority)}, got {priority!r}")
        why = _reason(reason, "a priority change")
        ticket = self.service.locked(ticket_id)
        if not ticket.is_open:
            raise InvalidTransition(ticket_id, ticket.status, "change the priority of")
        if ticket.priority == priority:
            return ticket
        now = self.service.now()
        self._set_priority(ticket, actor, priority, now, reason=why)
        self.session.flush()
        return ticket

    def _set_priority(
        self, ticket: Ticket, actor: str, priority: str, now: datetime, **detail: object
    ) -> None:
        fields = ("priority", "sla_response_due_at", "sla_resolution_due_at", "sla_elapsed_s", "sla_paused_s")
        before = _snapshot(ticket, *fields)
        old = ticket.priority
        ticket.priority = priority
        ticket.updated_at = now
        sla.reprioritise(ticket, self.settings, now, old)
        self.service.audit(
            ticket, actor, "priority_changed", now, before=before, after=_snapshot(ticket, *fields), **detail
        )

    def assign(self, ticket_id: int, actor: str, username: str | None) -> Ticket:
        """Assign the ticket to an active user, or unassign it with ``None``."""
        ticket = self.service.locked(ticket_id)
        user_id = None if username is None else self._user(username).id
        if ticket.assignee_id == user_id:
            return ticket
        now = self.service.now()
        before = _snapshot(ticket, "assignee_id")
        ticket.assignee_id = user_id
        ticket.updated_at = now
        after = _snapshot(ticket, "assignee_id")
        self.service.audit(ticket, actor, "assigned", now, before=before, after=after, assignee=username)
        self.session.flush()
        return ticket

    def _user(self, username: str) -> User:
        user = self.session.scalars(
            select(User).where(User.username == username, User.active.is_(True))
        ).first()
        if user is None:
            raise UnknownUser(username)
        return user

    def watch(self, ticket_id: int, actor: str, username: str, *, watching: bool = True) -> list[str]:
        """Add (or remove) a watcher; returns the watchers' usernames."""
        ticket = self.service.locked(ticket_id)
        user = self._user(username)
        existing = self.session.scalars(
            select(TicketWatcher).where(
                TicketWatcher.ticket_id == ticket.id, TicketWatcher.user_id == user.id
            )
        ).first()
        now = self.service.now()
        if watching and existing is None:
            self.session.add(TicketWatcher(ticket_id=ticket.id, user_id=user.id, created_at=now))
            self.service.audit(ticket, actor, "watcher_added", now, watcher=username)
        elif not watching and existing is not None:
            self.session.delete(existing)
            self.service.audit(ticket, actor, "watcher_removed", now, watcher=username)
        self.session.flush()
        return self.watchers(ticket.id)

    def watchers(self, ticket_id: int) -> list[str]:
        return list(
            self.session.scalars(
                select(User.username)
                .join(TicketWatcher, TicketWatcher.user_id == User.id)
                .where(TicketWatcher.ticket_id == ticket_id)
                .order_by(User.username)
            )
        )

    def link(self, ticket_id: int, actor: str, other_id: int, kind: LinkKind) -> TicketLink:
        if other_id == ticket_id:
            raise ValueError("a ticket cannot be linked to itself")
        ticket = self.service.locked(ticket_id)
        if self.session.get(Ticket, other_id) is None:
            raise TicketNotFound(other_id)
        found = self.session.scalars(
            select(TicketLink).where(TicketLink.ticket_id == ticket_id, TicketLink.other_id == other_id)
        ).first()
        if found is not None:
            return found
        now = self.service.now()
        link = TicketLink(
            ticket_id=ticket_id, other_id=other_id, kind=kind, created_by=actor[:64], created_at=now
        )
        self.session.add(link)
        self.service.audit(ticket, actor, "linked", now, other_id=other_id, kind=kind)
        self.session.flush()
        return link

    def links(self, ticket_id: int) -> list[TicketLink]:
        return list(
            self.session.scalars(
                select(TicketLink)
                .where((TicketLink.ticket_id == ticket_id) | (TicketLink.other_id == ticket_id))
                .order_by(TicketLink.id)
            )
        )


def auto_close(service: TicketService, *, limit: int = 500) -> int:
    """Close resolved tickets resolved more than ``tickets.auto_close_days`` ago; returns how many."""
    now = service.now()
    cutoff = now - timedelta(days=service.settings.tickets.auto_close_days)
    tickets = service.session.scalars(
        select(Ticket)
        .where(Ticket.status == TicketStatus.RESOLVED, Ticket.resolved_at < cutoff)
        .order_by(Ticket.id)
        .limit(limit)
        .with_for_update()
    ).all()
    for ticket in tickets:
        ticket.status, ticket.closed_at, ticket.updated_at = TicketStatus.CLOSED, now, now
        reason = f"auto-closed {service.settings.tickets.auto_close_days:g} days after resolution"
        service.audit(
            ticket,
            SYSTEM_ACTOR,
            "status_changed",
            now,
            before={"status": TicketStatus.RESOLVED},
            after={"status": TicketStatus.CLOSED},
            reason=reason,
        )
    service.session.flush()
    return len(tickets)
