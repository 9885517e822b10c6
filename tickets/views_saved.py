"""Saved queue views: a named set of the queue's filters, a user's own or shared with a team (a queue)."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db import utcnow
from tickets.agent_models import SavedView
from tickets.models import User

FILTER_KEYS = ("status", "priority", "queue", "assignee", "category", "source", "q", "sort")
"""The queue's parameters a view keeps (anything else is dropped)."""


def save(
    session: Session, owner: User, name: str, params: Mapping[str, str], *, team: str | None = None
) -> SavedView:
    """Save (or overwrite the owner's view of that name)."""
    name = name.strip()
    if not name or len(name) > 64:
        raise ValueError("a view needs a name of 1 to 64 characters")
    kept = {key: str(params[key]).strip()[:200] for key in FILTER_KEYS if str(params.get(key) or "").strip()}
    team = (team or "").strip()[:64] or None
    found = session.scalars(
        select(SavedView).where(SavedView.owner_id == owner.id, SavedView.name == name)
    ).first()
    if found is not None:
        found.params, found.team = kept, team
        session.flush()
        return found
    view = SavedView(owner_id=owner.id, name=name, team=team, params=kept, created_at=utcnow())
    try:
        with session.begin_nested():
            session.add(view)
            session.flush()
    except IntegrityError:
        raise ValueError(f"you already have a view named {name!r}") from None
    return view


def visible(session: Session, user: User) -> list[tuple[SavedView, str]]:
    """The user's own views and those shared with a team, with their owner's name; own first."""
    rows = session.execute(
        select(SavedView, User.username)
        .join(User, User.id == SavedView.owner_id)
        .where(or_(SavedView.owner_id == user.id, SavedView.team.is_not(None)))
        .order_by(SavedView.owner_id != user.id, SavedView.team, SavedView.name)
    ).all()
    return [(view, owner) for view, owner in rows]


def delete(session: Session, user: User, view_id: int) -> bool:
    """Delete one of the user's own views; False if there is none of theirs with this id."""
    view = session.get(SavedView, view_id)
    if view is None or view.owner_id != user.id:
        return False
    session.delete(view)
    session.flush()
    return True
