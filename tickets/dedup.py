"""What a repeat does (outcome ``deduplicated``): the one rule for a sighting of an exception whose ticket
is open.

A repeat (an event of a fingerprint whose ticket is open, an Alertmanager alert's new firing episode)
never opens or reopens a ticket, pages nobody and writes no audit row. It is recorded as an occurrence on
the open ticket (:func:`occurrence`, a copy of the event record's :data:`OCCURRENCE_OF_EVENT` fields) and
moves the ticket's counters (:func:`after`): one more occurrence each, ``last_seen_at`` the latest
sighting (an older one never moves it backwards), ``amount_at_risk`` the latest amount measured (a
sighting that measured none leaves it), ``updated_at`` now. A sighting of a fingerprint with no open ticket
is not a repeat: ``TicketService.ingest`` opens a ticket, or reopens the one resolved within the window.

Every intake path applies these definitions and none of its own: ``TicketService`` one event at a time on
the ticket it loaded (every store; the Alertmanager intake alert by alert on MariaDB), and the Alertmanager
intake set-wise on PostgreSQL and SQLite: :func:`after` over the rows it locked, then one UPDATE of
:data:`REPEAT_FIELDS` for all its tickets, the occurrences copied from the event rows it inserted
(``tickets/alertmanager.py``). Deciding on rows locked ``FOR UPDATE`` in the writer's transaction loses no
concurrent increment.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from anomaly.events import Event

REPEAT_FIELDS = ("occurrence_count", "last_seen_at", "amount_at_risk", "updated_at")
"""The ticket's columns a repeat changes (every other column stays as it is)."""
OCCURRENCE_OF_EVENT = {"seen_at": "occurred_at", "summary": "summary", "evidence": "evidence"}
"""An occurrence's columns and the event record's column each copies (with ``ticket_id`` and
``event_id``)."""


@dataclass(frozen=True, slots=True)
class Counters:
    """What a repeat reads of its ticket (a loaded ``Ticket`` or a row locked for update)."""

    occurrence_count: int
    last_seen_at: datetime
    amount_at_risk: Decimal | None


class HasCounters(Protocol):
    @property
    def occurrence_count(self) -> int: ...

    @property
    def last_seen_at(self) -> datetime: ...

    @property
    def amount_at_risk(self) -> Decimal | None: ...


def counters_of(ticket: HasCounters) -> Counters:
    return Counters(ticket.occurrence_count, ticket.last_seen_at, ticket.amount_at_risk)


def after(ticket: Counters, sightings: Iterable[Event], now: datetime) -> dict[str, Any]:
    """The ticket's :data:`REPEAT_FIELDS` after these repeats, in the order they were received."""
    count, seen, amount = ticket.occurrence_count, ticket.last_seen_at, ticket.amount_at_risk
    for event in sightings:
        count += 1
        seen = max(seen, event.occurred_at)
        if event.amount_at_risk is not None:
            amount = event.amount_at_risk
    return {"occurrence_count": count, "last_seen_at": seen, "amount_at_risk": amount, "updated_at": now}


class EventFields(Protocol):
    @property
    def occurred_at(self) -> datetime: ...

    @property
    def summary(self) -> str: ...

    @property
    def evidence(self) -> dict[str, Any]: ...


def occurrence(ticket_id: int, event_id: int, record: EventFields) -> dict[str, Any]:
    """The occurrence row recording a sighting (the first one of a ticket too) of the event ``record``."""
    row: dict[str, Any] = {"ticket_id": ticket_id, "event_id": event_id}
    for column, source in OCCURRENCE_OF_EVENT.items():
        value = getattr(record, source)
        row[column] = dict(value) if isinstance(value, dict) else value
    return row
