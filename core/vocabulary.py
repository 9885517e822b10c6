"""The domain's words, defined once: ticket priority, exception category, impact/urgency level, ticket
status and notification outbox status.

Each is a :class:`~enum.StrEnum`: a member *is* its string (``Priority.P1 == "P1"``, ``str(Priority.P1)``
and ``f"{Priority.P1}"`` are ``"P1"``, JSON writes ``"P1"``), so settings, API bodies, templates and the
store keep reading and writing the same text. Members are listed in the order the domain uses them (most
urgent first, open statuses before closed ones); iterating an enum gives that order.

The store holds the same sets as CHECK constraints (:func:`core.db.one_of` on the models, migration
0011_vocabulary_checks), so a value outside them cannot be written by any path.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

E = TypeVar("E", bound=StrEnum)


def parse(kind: type[E], text: str) -> E | None:
    """The member of ``kind`` whose value is ``text``, None for any other text (``text in kind`` raises
    on Python 3.11 when ``text`` is not a member)."""
    try:
        return kind(text)
    except ValueError:
        return None


class Priority(StrEnum):
    """A ticket's priority and an event's severity; P1 is the most urgent."""

    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"

    @property
    def rank(self) -> int:
        """0 for P1 (most urgent) to 3 for P4."""
        return _PRIORITY_ORDER.index(self)

    def step(self, delta: int) -> Priority:
        """``delta`` levels less urgent (negative: more urgent), stopping at P1 and P4."""
        return _PRIORITY_ORDER[min(max(self.rank + delta, 0), len(_PRIORITY_ORDER) - 1)]


_PRIORITY_ORDER: tuple[Priority, ...] = tuple(Priority)


class Category(StrEnum):
    """What kind of exception: bad data, a broken process, a technical fault, or a user's difficulty."""

    DATA = "data"
    PROCESS = "process"
    TECHNICAL = "technical"
    USER = "user"


class Level(StrEnum):
    """Impact or urgency (ITIL), highest first."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class TicketStatus(StrEnum):
    """Where a ticket is in its lifecycle (the transitions are ``tickets.service.TRANSITIONS``)."""

    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    WAITING = "waiting"
    REOPENED = "reopened"
    RESOLVED = "resolved"
    CLOSED = "closed"


OPEN_STATUSES: tuple[TicketStatus, ...] = (
    TicketStatus.NEW,
    TicketStatus.ACKNOWLEDGED,
    TicketStatus.IN_PROGRESS,
    TicketStatus.WAITING,
    TicketStatus.REOPENED,
)
CLOSED_STATUSES: tuple[TicketStatus, ...] = (TicketStatus.RESOLVED, TicketStatus.CLOSED)


class OutboxStatus(StrEnum):
    """A notification outbox row's state (``tickets/outbox.py`` writes the first three, ``tickets/notify.py``
    and the digest move them on)."""

    PENDING = "pending"
    """To send now (paged priority, escalation, or a digest)."""
    HELD = "held"
    """Waits for its target's next digest."""
    MUTED = "muted"
    """A silence matched; never sent (``silence_id`` names it)."""
    DIGESTED = "digested"
    """Carried by a digest row (``digest_id``); not sent on its own."""
    SENT = "sent"
    DEAD = "dead"
    """Given up after ``notifications.max_attempts``."""
