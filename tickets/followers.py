"""People told about one ticket: its watchers, the reporters whose reports it carries, and users
@mentioned in its conversation. Each gets an outbox row (tickets/outbox.py's table, delivered by
tickets/notify.py) for every notification target addressed to them: a target whose ``tags`` hold
``user:<username>``. With no such target configured nothing is written (and nothing is queried).

:func:`on_audit` is called for every audit row the service writes (tickets/service.py): changes of status,
priority, assignment, workarounds and problem links reach the watchers (not the one who made the change);
status changes also reach the reporters. Replies and mentions are sent by tickets/conversation.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.vocabulary import OutboxStatus
from tickets import silences
from tickets.models import NotificationOutbox, Report, Ticket, TicketWatcher, User
from tickets.outbox import apprise_tag
from tickets.settings import TicketsConfig

USER_TAG = "user:"
WATCHED = frozenset(
    {
        "acknowledged",
        "resolved",
        "status_changed",
        "reopened",
        "priority_changed",
        "assigned",
        "queue_changed",
        "workaround_added",
        "workaround_changed",
        "problem_linked",
        "linked",
        "attachment_added",
        "commented",
    }
)
"""Audit actions the watchers hear of."""
STATUS_ACTIONS = frozenset({"acknowledged", "resolved", "status_changed", "reopened"})
"""Audit actions the reporters hear of."""


def user_targets(settings: TicketsConfig) -> dict[str, list[int]]:
    """Username -> indexes of the notification targets addressed to them (``user:<name>`` tags)."""
    found: dict[str, list[int]] = {}
    for index, target in enumerate(settings.notifications.targets):
        for tag in target.tags:
            if tag.startswith(USER_TAG) and len(tag) > len(USER_TAG):
                found.setdefault(tag[len(USER_TAG) :], []).append(index)
    return found


def tell(
    session: Session,
    settings: TicketsConfig,
    ticket: Ticket,
    usernames: Iterable[str],
    *,
    kind: str,
    title: str,
    body: str,
    now: datetime,
) -> list[NotificationOutbox]:
    """Queue a personal notification about ``ticket`` for each user (muted like the ticket's own when a
    silence matches it). Returns the rows written."""
    targets = user_targets(settings)
    names = sorted({name for name in usernames if name in targets})
    if not names:
        return []
    silence = silences.muting(session, ticket, now)
    link = f"{settings.server.base_url()}/tickets/{ticket.id}"
    rows = [
        NotificationOutbox(
            ticket_id=ticket.id,
            target=index,
            kind=kind[:32],
            title=title[:300],
            body=f"{body}\nTicket: {link}",
            notify_type="info",
            status=OutboxStatus.MUTED if silence is not None else OutboxStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            tags=[apprise_tag(index)],
            silence_id=silence.id if silence is not None else None,
        )
        for name in names
        for index in targets[name]
    ]
    session.add_all(rows)
    return rows


def watchers_of(session: Session, ticket_id: int) -> list[str]:
    return list(
        session.scalars(
            select(User.username)
            .join(TicketWatcher, TicketWatcher.user_id == User.id)
            .where(TicketWatcher.ticket_id == ticket_id, User.active.is_(True))
            .order_by(User.username)
        )
    )


def reporters_of(session: Session, ticket_id: int) -> list[str]:
    return list(
        session.scalars(
            select(User.username)
            .join(Report, Report.reporter_id == User.id)
            .where(Report.ticket_id == ticket_id, User.active.is_(True))
            .distinct()
        )
    )


def describe(action: str, detail: Mapping[str, Any]) -> str:
    """One line saying what changed, for a notification."""
    after = detail.get("after") or {}
    if action in STATUS_ACTIONS and after.get("status"):
        line = f"status: {str(after['status']).replace('_', ' ')}"
    elif action == "assigned":
        line = f"assigned to {detail.get('assignee') or 'nobody'}"
    elif action == "priority_changed":
        line = f"priority: {after.get('priority')}"
    else:
        line = action.replace("_", " ")
    reason = detail.get("reason")
    return f"{line} ({reason})" if reason else line


def on_audit(  # noqa: PLR0917  (the audit row's parts, as the service has them)
    session: Session,
    settings: TicketsConfig,
    ticket: Ticket,
    actor: str,
    action: str,
    now: datetime,
    detail: Mapping[str, Any],
) -> None:
    """Tell the watchers (and for status changes the reporters) of a change, never its author."""
    if action not in WATCHED or not user_targets(settings):
        return
    what = describe(action, detail)
    title = f"[{ticket.priority}] #{ticket.id} {ticket.title}: {what}"[:300]
    body = f"{actor} on #{ticket.id}: {what}"
    watchers = [name for name in watchers_of(session, ticket.id) if name != actor]
    tell(session, settings, ticket, watchers, kind="watch", title=title, body=body, now=now)
    if action in STATUS_ACTIONS:
        reporters = [n for n in reporters_of(session, ticket.id) if n != actor and n not in watchers]
        tell(session, settings, ticket, reporters, kind="report_status", title=title, body=body, now=now)
