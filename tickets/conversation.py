"""A ticket's conversation, apart from its audit trail: internal notes (agents only) and replies to the
reporter (shown on their "my reports" page and sent to them). ``@username`` of an active user in either
mentions them: they are notified (tickets/followers.py). Each message leaves an audit row too."""

from __future__ import annotations

import re
from typing import Literal, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import search
from tickets import followers
from tickets.agent_models import TicketComment
from tickets.models import User
from tickets.service import TicketService

Visibility = Literal["internal", "reply"]
VISIBILITIES: tuple[str, ...] = get_args(Visibility)
MENTION = re.compile(r"(?<![\w.@])@([A-Za-z0-9_.-]{1,64})")
MAX_TEXT = 10_000


def mentioned(session: Session, text: str) -> list[str]:
    """The active users ``text`` @mentions, in the order first mentioned (unknown names are plain text)."""
    names = list(dict.fromkeys(m.rstrip(".") for m in MENTION.findall(text)))
    if not names:
        return []
    known = set(session.scalars(select(User.username).where(User.username.in_(names), User.active.is_(True))))
    return [name for name in names if name in known]


def add_comment(
    service: TicketService, ticket_id: int, actor: str, text: str, *, visibility: str = "internal"
) -> TicketComment:
    """Add a message to the conversation; notify whoever it mentions and, for a reply, the reporters."""
    text = text.strip()
    if not text:
        raise ValueError("a comment needs some text")
    if len(text) > MAX_TEXT:
        raise ValueError(f"a comment is at most {MAX_TEXT} characters")
    if visibility not in VISIBILITIES:
        raise ValueError(f"a comment is one of {', '.join(VISIBILITIES)}, got {visibility!r}")
    ticket = service.locked(ticket_id)
    now = service.now()
    mentions = mentioned(service.session, text)
    row = TicketComment(
        ticket_id=ticket.id,
        author=actor[:64],
        visibility=visibility,
        text=text,
        mentions=mentions,
        created_at=now,
    )
    service.session.add(row)
    service.session.flush()
    ticket.updated_at = now
    ticket.search_text = search.extended(ticket.search_text, text)  # the queue's search finds it
    service.audit(
        ticket,
        actor,
        "commented",
        now,
        comment_id=row.id,
        visibility=visibility,
        mentions=mentions,
        text=text,
    )
    head = f"[{ticket.priority}] #{ticket.id} {ticket.title}"
    settings, session = service.settings, service.session
    others = [name for name in mentions if name != actor]
    followers.tell(
        session,
        settings,
        ticket,
        others,
        kind="mention",
        title=f"{head}: {actor} mentioned you",
        body=f"{actor} on #{ticket.id}:\n{text}",
        now=now,
    )
    if visibility == "reply":
        reporters = [n for n in followers.reporters_of(session, ticket.id) if n != actor and n not in others]
        followers.tell(
            session,
            settings,
            ticket,
            reporters,
            kind="reply",
            title=f"{head}: a reply from support",
            body=f"{actor} replied on your report (#{ticket.id}):\n{text}",
            now=now,
        )
    service.session.flush()
    return row


def conversation(session: Session, ticket_id: int, *, replies_only: bool = False) -> list[TicketComment]:
    """The ticket's messages, oldest first (``replies_only``: what the reporter may read)."""
    query = select(TicketComment).where(TicketComment.ticket_id == ticket_id).order_by(TicketComment.id)
    if replies_only:
        query = query.where(TicketComment.visibility == "reply")
    return list(session.scalars(query))
