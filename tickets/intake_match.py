"""An employee's report naming a document (invoice INV/2026/000771, journal entry JE-1001, message id...)
already on an open ticket: the report form offers that ticket, and the report joins it (as an occurrence,
with an audit row) instead of opening a ticket of its own."""

from __future__ import annotations

from sqlalchemy import String, cast, or_, select
from sqlalchemy.orm import Session

from core.vocabulary import OPEN_STATUSES
from tickets.models import Ticket, TicketSubject

MAX_OFFERS = 5
MIN_LENGTH = 4
"""Shorter document numbers ("12") would match too much to be worth offering."""


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def open_tickets_naming(session: Session, document: str) -> list[Ticket]:
    """Open tickets whose title, entity or subjects name ``document`` (case-insensitive), oldest first."""
    document = document.strip()
    if len(document) < MIN_LENGTH:
        return []
    pattern = _like(document.lower())
    subjects = select(TicketSubject.ticket_id).where(TicketSubject.subject.ilike(pattern, escape="\\"))
    return list(
        session.scalars(
            select(Ticket)
            .where(
                Ticket.status.in_(OPEN_STATUSES),
                or_(
                    Ticket.title.ilike(pattern, escape="\\"),
                    cast(Ticket.entity, String).ilike(pattern, escape="\\"),
                    Ticket.id.in_(subjects),
                ),
            )
            .order_by(Ticket.id)
            .limit(MAX_OFFERS)
        )
    )
