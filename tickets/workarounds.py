"""Workarounds (manual processing, temporary process changes) recorded on tickets, the register of the
active ones, and the reporter's rating of a resolution (1-5 and a comment). Every change is audited."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.vocabulary import CLOSED_STATUSES
from tickets.errors import InvalidTransition, TicketError
from tickets.models import Ticket, TicketRating, Workaround
from tickets.service import TicketService


class WorkaroundNotFound(TicketError):
    def __init__(self, workaround_id: int) -> None:
        super().__init__(f"workaround {workaround_id} not found")
        self.workaround_id = workaround_id


class AlreadyRated(TicketError):
    def __init__(self, ticket_id: int) -> None:
        super().__init__(f"ticket {ticket_id} is already rated")
        self.ticket_id = ticket_id


def add_workaround(
    service: TicketService,
    ticket_id: int,
    actor: str,
    *,
    what: str,
    owner: str,
    review_on: date,
    since: datetime | None = None,
) -> Workaround:
    what, owner = what.strip(), owner.strip()
    if not what or not owner:
        raise ValueError("a workaround needs what is done and an owner")
    ticket = service.locked(ticket_id)
    if not ticket.is_open:
        raise InvalidTransition(ticket_id, ticket.status, "record a workaround on")
    now = service.now()
    row = Workaround(
        ticket_id=ticket.id,
        what=what,
        owner=owner[:64],
        since=since or now,
        review_on=review_on,
        active=True,
        created_by=actor[:64],
    )
    service.session.add(row)
    service.session.flush()
    service.audit(
        ticket,
        actor,
        "workaround_added",
        now,
        workaround_id=row.id,
        what=what,
        owner=owner,
        review_on=review_on.isoformat(),
    )
    service.session.flush()
    return row


def update_workaround(
    service: TicketService,
    workaround_id: int,
    actor: str,
    *,
    what: str | None = None,
    owner: str | None = None,
    review_on: date | None = None,
    active: bool | None = None,
) -> Workaround:
    """Change a workaround; ``active=False`` ends it (it stays on the ticket, out of the register)."""
    row = service.session.get(Workaround, workaround_id)
    if row is None:
        raise WorkaroundNotFound(workaround_id)
    ticket = service.locked(row.ticket_id)
    now = service.now()
    before = {
        "what": row.what,
        "owner": row.owner,
        "review_on": row.review_on.isoformat(),
        "active": row.active,
    }
    if what is not None and what.strip():
        row.what = what.strip()
    if owner is not None and owner.strip():
        row.owner = owner.strip()[:64]
    if review_on is not None:
        row.review_on = review_on
    if active is not None and active != row.active:
        row.active = active
        row.ended_at, row.ended_by = (None, None) if active else (now, actor[:64])
    after = {
        "what": row.what,
        "owner": row.owner,
        "review_on": row.review_on.isoformat(),
        "active": row.active,
    }
    if after != before:
        service.audit(
            ticket, actor, "workaround_changed", now, workaround_id=row.id, before=before, after=after
        )
    service.session.flush()
    return row


def workarounds_of(session: Session, ticket_id: int) -> list[Workaround]:
    return list(
        session.scalars(select(Workaround).where(Workaround.ticket_id == ticket_id).order_by(Workaround.id))
    )


def register(session: Session) -> list[tuple[Workaround, Ticket]]:
    """Every active workaround with its ticket, soonest review first."""
    rows = session.execute(
        select(Workaround, Ticket)
        .join(Ticket, Ticket.id == Workaround.ticket_id)
        .where(Workaround.active.is_(True))
        .order_by(Workaround.review_on, Workaround.id)
    ).all()
    return [(w, t) for w, t in rows]


def rate(
    service: TicketService,
    ticket_id: int,
    actor: str,
    *,
    score: int,
    comment: str = "",
    on_behalf_of: str | None = None,
) -> TicketRating:
    """The reporter's rating of a resolved (or closed) ticket; one per ticket."""
    if not 1 <= score <= 5:
        raise ValueError(f"a rating is 1 to 5, got {score}")
    ticket = service.locked(ticket_id)
    if ticket.status not in CLOSED_STATUSES:
        raise InvalidTransition(ticket_id, ticket.status, "rate")
    now = service.now()
    rating = TicketRating(
        ticket_id=ticket.id,
        score=score,
        comment=comment.strip(),
        rated_by=actor[:64],
        on_behalf_of=on_behalf_of[:64] if on_behalf_of else None,
        rated_at=now,
    )
    try:
        with service.session.begin_nested():
            service.session.add(rating)
            service.session.flush()
    except IntegrityError:
        raise AlreadyRated(ticket_id) from None
    service.audit(ticket, actor, "rated", now, score=score, comment=rating.comment, on_behalf_of=on_behalf_of)
    service.session.flush()
    return rating


def rating_of(session: Session, ticket_id: int) -> TicketRating | None:
    return session.scalars(select(TicketRating).where(TicketRating.ticket_id == ticket_id)).first()
