"""The writing side of notifications: which targets hear of a ticket change, and what they are told.

Rows go into ``notification_outbox`` in the caller's transaction, next to the ticket change itself, so the
alert is durable exactly when the change is (see :mod:`tickets.notify` for delivery).

Statuses a row is written with (:class:`~core.vocabulary.OutboxStatus`): ``pending`` (page now: the
priority is in ``notifications.page_priorities`` or it is an escalation), ``held`` (waits for the target's
next digest, :func:`build_digests`, then ``digested``), ``muted`` (a silence matched; ``silence_id`` names
it). :mod:`tickets.notify` moves ``pending`` rows to ``sent`` or ``dead``. Every row carries the apprise
tag of its target, and the notifier sends with that tag only: an untagged apprise call would reach every
configured service.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.localtime import UTC_ZONE, format_time, zone
from core.money import format_money
from core.site import SiteSettings
from core.vocabulary import OutboxStatus
from tickets import silences
from tickets.models import NotificationOutbox, Ticket
from tickets.settings import NotificationTarget, TicketsConfig
from tickets.triage import priority_rank

Kind = Literal["opened", "reopened", "escalated", "resolved"]


def apprise_tag(target_index: int) -> str:
    """The apprise tag of one configured target: the notifier adds its URL with it and sends with it."""
    return f"hypercare-target-{target_index}"


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


def format_amount(amount: Decimal | None, site: SiteSettings | None = None) -> str:
    """An amount with the site's currency and number locale (``¥1,250.00``); plain without a site."""
    if site is None:
        return format_money(amount, None)
    return format_money(amount, site.currency, site.locale)


def compose(ticket: Ticket, kind: Kind, base_url: str, site: SiteSettings | None = None) -> tuple[str, str]:
    """The notification's title and plain-text body (times in the site's zone, amounts in its currency)."""
    where = zone(site.timezone) if site is not None else UTC_ZONE
    title = f"[{ticket.priority}] {kind.capitalize()}: {ticket.title}"
    lines = [
        f"Priority: {ticket.priority} (impact {ticket.impact}, urgency {ticket.urgency})",
        f"Status: {ticket.status}",
        f"Category: {ticket.category}",
        f"Source: {ticket.source}",
        f"Check: {ticket.check_id or '-'}",
        f"Amount at risk: {format_amount(ticket.amount_at_risk, site)}",
        f"Occurrences: {ticket.occurrence_count}",
        f"Opened: {format_time(ticket.created_at, where)}",
    ]
    if ticket.is_open and ticket.sla_resolution_due_at is not None:
        lines.append(f"Fix due: {format_time(ticket.sla_resolution_due_at, where)}")
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
    session: Session,
    settings: TicketsConfig,
    ticket: Ticket,
    kind: Kind,
    *,
    now: datetime,
    only_tags: Collection[str] | None = None,
) -> list[NotificationOutbox]:
    """Write one outbox row per configured target that wants this ticket (``only_tags``: only the targets
    carrying one of these tags, whatever their ``min_priority`` - an escalation's next level)."""
    title, body = compose(ticket, kind, settings.server.base_url(), settings.site)
    silence = silences.muting(session, ticket, now)
    paged = kind == "escalated" or ticket.priority in settings.notifications.page_priorities
    status = (
        OutboxStatus.MUTED if silence is not None else (OutboxStatus.PENDING if paged else OutboxStatus.HELD)
    )
    chosen = [
        index
        for index, target in enumerate(settings.notifications.targets)
        if (set(target.tags) & set(only_tags) if only_tags is not None else target_wants(target, ticket))
    ]
    rows = [
        NotificationOutbox(
            ticket_id=ticket.id,
            target=index,
            kind=kind,
            title=title[:300],
            body=body,
            notify_type=notify_type_for(ticket, kind),
            status=status,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            tags=[apprise_tag(index)],
            silence_id=silence.id if silence is not None else None,
        )
        for index in chosen
    ]
    session.add_all(rows)
    return rows


def build_digests(session: Session, settings: TicketsConfig, *, now: datetime) -> list[NotificationOutbox]:
    """For each target whose oldest held row waited ``digest_interval_s``, one pending digest row listing
    all its held rows, which become ``digested`` (same transaction: none is lost or listed twice)."""
    query = (
        select(NotificationOutbox)
        .where(NotificationOutbox.status == OutboxStatus.HELD)
        .order_by(NotificationOutbox.target, NotificationOutbox.id)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    held: dict[int, list[NotificationOutbox]] = defaultdict(list)
    for row in session.scalars(query):
        held[row.target].append(row)
    due_before = now - timedelta(seconds=settings.notifications.digest_interval_s)
    digests: list[NotificationOutbox] = []
    for index, rows in held.items():
        if min(row.created_at for row in rows) > due_before:
            continue
        lines = [f"- {row.title}" for row in rows]
        lines.append(f"Queue: {settings.server.base_url()}/tickets")
        digest = NotificationOutbox(
            ticket_id=None,
            target=index,
            kind="digest",
            title=f"[Hypercare] Digest: {len(rows)} ticket notification(s)",
            body="\n".join(lines),
            notify_type="info",
            status=OutboxStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            tags=[apprise_tag(index)],
        )
        session.add(digest)
        session.flush()
        for row in rows:
            row.status, row.digest_id = OutboxStatus.DIGESTED, digest.id
        digests.append(digest)
    session.flush()
    return digests
