"""What the ticket page's agent panels show (tickets/ui/templates/_agent_panels.html and
_conversation.html): workarounds with their review date and owner, watchers, the silences muting the
ticket, files, the rating, the problem, the conversation, and who and where it can be assigned."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tickets import conversation, problem_records, silences, ticket_files, workarounds
from tickets.assignment import QUEUE_PREFIX, assignable
from tickets.lifecycle import Lifecycle
from tickets.models import Silence, Ticket, User
from tickets.service import TicketService

SILENCE_HOURS = (1, 4, 8, 24)
"""The lengths the ticket page offers (each still bounded by the role's limit)."""


def matching_silences(session: Session, ticket: Ticket, now: datetime) -> list[Silence]:
    """Active and future silences that match the ticket."""
    rows = session.scalars(select(Silence).where(Silence.ends_at > now).order_by(Silence.starts_at))
    return [row for row in rows if silences.matches(row.matchers, ticket)]


def agent_context(service: TicketService, ticket: Ticket, user: User) -> dict[str, Any]:
    session, now = service.session, service.now()
    rows = workarounds.workarounds_of(session, ticket.id)
    return {
        "workarounds": rows,
        "workarounds_active": [w for w in rows if w.active],
        "today": now.date(),
        "review_default": (now + timedelta(days=7)).date().isoformat(),
        "watching": user.username in Lifecycle(service).watchers(ticket.id),
        "people": list(
            session.scalars(
                select(User.username).where(User.active.is_(True)).order_by(User.username).limit(500)
            )
        ),
        "assignable": assignable(session, service.settings),
        "queue_prefix": QUEUE_PREFIX,
        "ticket_silences": matching_silences(session, ticket, now),
        "silence_hours": SILENCE_HOURS,
        "now": now,
        "files": ticket_files.files_of(session, ticket.id),
        "rating": workarounds.rating_of(session, ticket.id),
        "problem": problem_records.problem_of(session, ticket.id),
        "open_problems": [row.problem for row in problem_records.listing(session, open_only=True)],
        "messages": conversation.conversation(session, ticket.id),
    }
