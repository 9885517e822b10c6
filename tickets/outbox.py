"""The writing side of notifications: which targets hear of a ticket change, and what they are told.

Rows go into ``notification_outbox`` in the caller's transaction, next to the ticket change itself, so the
alert is durable exactly when the change is (see :mod:`tickets.notify` for delivery).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from sqlalchemy.orm import Session

from hypercare.config import NotificationTarget, Settings
from tickets.models import NotificationOutbox, Ticket
from tickets.triage import priority_rank

Kind = Literal["opened", "reopened", "escalated", "resolved"]


def ticket_tags(ticket: Ticket) -> set[str]:
    """What a target's ``tags`` match: category, source, queue, check id and ``key=value`` per label."""
    tags = {ticket.category, ticket.source, ticket.queue}
    if ticket.check_id:
        tags.add(ticket.check_id)
    tags.update(f"{key}={value}" for key, value in (ticket.labels or {}).items())
    return tags


def target_wants(target: NotificationTarget, ticket: Ticket) -> bool:
    """A target hears of tickets at its ``min_priority`` or more urgent and, if it has tags, sharing one."""
    if priority_rank(ticket.priority) > priority_rank(target.min_priority):
        return False
    return not target.tags or bool(set(target.tags) & ticket_tags(ticket))


def format_amount(amount: Decimal | None) -> str:
    return "-" if amount is None else f"{amount:,.2f}"


def compose(ticket: Ticket, kind: Kind, base_url: str) -> tuple[str, str]:
    """The notification's title and plain-text body."""
    title = f"[{ticket.priority}] {kind.capitalize()}: {ticket.title}"
    lines = [
        f"Priority: {ticket.priority} (impact {ticket.impact}, urgency {ticket.urgency})",
        f"Status: {ticket.status}",
        f"Category: {ticket.category}",
        f"Source: {ticket.source}",
        f"Check: {ticket.check_id or '-'}",
        f"Amount at risk: {format_amount(ticket.amount_at_risk)}",
        f"Occurrences: {ticket.occurrence_count}",
    ]
    if ticket.runbook_id:
        lines.append(f"Runbook: {ticket.runbook_id}")
    lines.append(f"Ticket: {base_url}/tickets/{ticket.id}")
    return title, "\n".join(lines)


def notify_type_for(ticket: Ticket, kind: Kind) -> str:
    """apprise's notify type: failure for P1/P2, warning for P3/P4, success for a resolution."""
    if kind == "resolved":
        return "success"
    return "failure" if priority_rank(ticket.priority) <= 1 else "warning"


def enqueue(
    session: Session, settings: Settings, ticket: Ticket, kind: Kind, *, now: datetime
) -> list[NotificationOutbox]:
    """Write one pending outbox row per configured target that wants this ticket."""
    title, body = compose(ticket, kind, settings.server.base_url())
    rows = [
        NotificationOutbox(
            ticket_id=ticket.id,
            target=index,
            kind=kind,
            title=title[:300],
            body=body,
            notify_type=notify_type_for(ticket, kind),
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        for index, target in enumerate(settings.notifications.targets)
        if target_wants(target, ticket)
    ]
    session.add_all(rows)
    return rows
