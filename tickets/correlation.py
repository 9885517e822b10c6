"""One exception, one ticket: events from different checks about the same business entity join the open
ticket already about it, instead of paging again.

An event's *subjects* are its entity keys, written ``column=value`` (``invoice_id=42``; a key of several
columns is one subject ``party_id=7&reference=A-1``). Keys that name no kind of thing (``id``, ``kind``,
``problem``...) are no subject: two checks sharing them say nothing about sharing a fault. So key columns
should be named for what they hold (``invoice_id``, ``move_id``, ``message_id``), as the shipped packs do.

A trigger whose fingerprint has no open ticket looks for an open ticket of the same source, first seen
within ``tickets.correlation_window_h``, that shares a subject; found, the event becomes an occurrence
there (its own evidence kept), its fingerprint is remembered for its repeats (:class:`CorrelatedFingerprint`)
and the audit trail says so. The ticket's priority is raised to the event's when that is more urgent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.vocabulary import OPEN_STATUSES
from tickets.models import CorrelatedFingerprint, Ticket, TicketSubject

GENERIC_KEYS = frozenset(
    {
        "id",
        "key",
        "code",
        "name",
        "number",
        "no",
        "ref",
        "kind",
        "type",
        "problem",
        "status",
        "value",
        "metric",
    }
)
"""Key columns too generic to identify a business entity on their own."""
MAX_SUBJECT = 300


def subjects(entity: Mapping[str, Any]) -> tuple[str, ...]:
    """The subjects of an event's entity keys (none for an empty or generic-only key)."""
    keys = {str(k).strip().lower(): v for k, v in entity.items() if v is not None and str(v).strip()}
    if not keys or set(keys) <= GENERIC_KEYS:
        return ()
    subject = "&".join(f"{k}={str(keys[k]).strip()}" for k in sorted(keys))
    return (subject[:MAX_SUBJECT],)


def remember(session: Session, ticket_id: int, found: Sequence[str]) -> None:
    """Record the subjects a ticket is about (idempotent)."""
    known = set(session.scalars(select(TicketSubject.subject).where(TicketSubject.ticket_id == ticket_id)))
    for subject in found:
        if subject not in known:
            session.add(TicketSubject(ticket_id=ticket_id, subject=subject))
            known.add(subject)


def target(
    session: Session, source: str, found: Sequence[str], now: datetime, window_h: float
) -> Ticket | None:
    """The open ticket of ``source`` first seen within the window that shares one of ``found``, oldest
    first (the first exception seen leads), locked for the update."""
    if not found or window_h <= 0:
        return None
    since = now - timedelta(hours=window_h)
    return session.scalars(
        select(Ticket)
        .join(TicketSubject, TicketSubject.ticket_id == Ticket.id)
        .where(
            TicketSubject.subject.in_(list(found)),
            Ticket.source == source,
            Ticket.status.in_(OPEN_STATUSES),
            Ticket.first_seen_at >= since,
        )
        .order_by(Ticket.id)
        .limit(1)
        .with_for_update()
    ).first()


def joined_ticket(session: Session, fingerprint: str) -> Ticket | None:
    """The open ticket an exception's fingerprint was joined to, locked; None if none (or it resolved)."""
    return session.scalars(
        select(Ticket)
        .join(CorrelatedFingerprint, CorrelatedFingerprint.ticket_id == Ticket.id)
        .where(CorrelatedFingerprint.fingerprint == fingerprint, Ticket.status.in_(OPEN_STATUSES))
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


def join(session: Session, ticket: Ticket, fingerprint: str, check_id: str | None, subject: str) -> None:
    session.execute(delete(CorrelatedFingerprint).where(CorrelatedFingerprint.fingerprint == fingerprint))
    session.add(
        CorrelatedFingerprint(
            fingerprint=fingerprint, ticket_id=ticket.id, check_id=check_id, subject=subject
        )
    )


def release(session: Session, ticket_id: int) -> None:
    """A resolved ticket lets go of the fingerprints joined to it: a later failure stands on its own."""
    session.execute(delete(CorrelatedFingerprint).where(CorrelatedFingerprint.ticket_id == ticket_id))
