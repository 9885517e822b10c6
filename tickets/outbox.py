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

import json
from collections import defaultdict
from collections.abc import Collection
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.i18n import translations
from core.localtime import UTC_ZONE, format_time, zone
from core.money import format_money
from core.site import SiteSettings
from core.vocabulary import OutboxStatus
from tickets import events_api, oncall, silences
from tickets.i18n import word
from tickets.models import NotificationOutbox, Ticket
from tickets.settings import NotificationTarget, TicketsConfig
from tickets.triage import priority_rank

Kind = Literal["opened", "reopened", "escalated", "acknowledged", "resolved"]
FOLLOW_UPS = ("acknowledged", "resolved")
"""Kinds that also reach every subscribed target already told of the ticket (whoever was paged hears that
it was taken or is over), whatever its priority filter or tags."""


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


def compose(  # noqa: PLR0917  (what the text depends on)
    ticket: Ticket,
    kind: Kind,
    base_url: str,
    language: str = "en",
    note: str | None = None,
    site: SiteSettings | None = None,
) -> tuple[str, str]:
    """The notification's title and plain-text body, in ``language`` (stored values such as the
    priority, the source and the check id stay as they are; ``note``: who acknowledged or resolved it, and
    why); times in the site's zone, amounts in its currency."""
    where = zone(site.timezone) if site is not None else UTC_ZONE
    catalog = translations(language)
    _, pgettext = catalog.gettext, catalog.pgettext
    kinds = {
        "opened": pgettext("notification", "Opened"),
        "reopened": pgettext("notification", "Reopened"),
        "escalated": pgettext("notification", "Escalated"),
        "resolved": pgettext("notification", "Resolved"),
        "acknowledged": pgettext("notification", "Acknowledged"),
    }
    title = f"[{ticket.priority}] {kinds.get(kind, kind)}: {ticket.title}"
    facts = {
        "priority": ticket.priority,
        "impact": word(_, ticket.impact),
        "urgency": word(_, ticket.urgency),
    }
    lines = [f"{kinds.get(kind, kind)}: {note}"] if note else []
    lines += [
        _("Priority: %(priority)s (impact %(impact)s, urgency %(urgency)s)") % facts,
        _("Status: %(status)s") % {"status": word(_, ticket.status)},
        _("Category: %(category)s") % {"category": word(_, ticket.category)},
        _("Source: %(source)s") % {"source": ticket.source},
        _("Check: %(check)s") % {"check": ticket.check_id or "-"},
        _("Amount at risk: %(amount)s") % {"amount": format_amount(ticket.amount_at_risk, site)},
        _("Occurrences: %(count)s") % {"count": ticket.occurrence_count},
        _("Opened: %(when)s") % {"when": format_time(ticket.created_at, where)},
    ]
    if ticket.is_open and ticket.sla_resolution_due_at is not None:
        lines.append(_("Fix due: %(when)s") % {"when": format_time(ticket.sla_resolution_due_at, where)})
    if ticket.runbook_id:
        lines.append(_("Runbook: %(runbook)s") % {"runbook": ticket.runbook_id})
    lines.append(_("Ticket: %(url)s") % {"url": f"{base_url}/tickets/{ticket.id}"})
    return title, "\n".join(lines)


def notify_type_for(ticket: Ticket, kind: Kind) -> str:
    """apprise's notify type: failure for P1/P2, warning for P3/P4, success for a resolution."""
    if kind == "resolved":
        return "success"
    if kind == "acknowledged":
        return "info"
    return "failure" if priority_rank(ticket.priority) <= 1 else "warning"


def enqueue(
    session: Session,
    settings: TicketsConfig,
    ticket: Ticket,
    kind: Kind,
    *,
    now: datetime,
    only_tags: Collection[str] | None = None,
    only_people: Collection[str] | None = None,
    note: str | None = None,
) -> list[NotificationOutbox]:
    """Write one outbox row per configured target subscribed to ``kind`` (its ``events``) that wants this
    ticket (``only_tags``: only the targets carrying one of these tags, whatever their ``min_priority`` - an
    escalation's next level; ``only_people``: and the targets of these people). A target of a ``person``
    otherwise hears of the ticket only while that person is on call for its queue (tickets/oncall.py). A
    follow-up kind also reaches the targets told of the ticket before."""
    texts = {  # title and body per language of the targets
        lang: compose(ticket, kind, settings.server.base_url(), lang, note, settings.site)
        for lang in {target.language or settings.site.language for target in settings.notifications.targets}
    }
    silence = silences.muting(session, ticket, now)
    paged = kind == "escalated" or ticket.priority in settings.notifications.page_priorities
    status = (
        OutboxStatus.MUTED if silence is not None else (OutboxStatus.PENDING if paged else OutboxStatus.HELD)
    )
    told = told_targets(session, ticket) if kind in FOLLOW_UPS else set()
    targets = settings.notifications.targets
    restricted = only_tags is not None or only_people is not None
    on_call: set[str] = set()
    if not restricted and any(target.person for target in targets):
        on_call = oncall.people_for(session, settings, ticket, ("oncall",), now)

    def selected(target: NotificationTarget) -> bool:
        if restricted:
            return bool(set(target.tags) & set(only_tags or ())) or target.person in set(only_people or ())
        return target_wants(target, ticket) and (target.person is None or target.person in on_call)

    chosen = [
        index
        for index, target in enumerate(targets)
        if kind in target.events and (index in told or selected(target))
    ]
    base_url = settings.server.base_url()
    rows = []
    for index in chosen:
        row = NotificationOutbox(
            ticket_id=ticket.id,
            target=index,
            kind=kind,
            title=texts[targets[index].language or settings.site.language][0][:300],
            body=texts[targets[index].language or settings.site.language][1],
            notify_type=notify_type_for(ticket, kind),
            status=status,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            tags=[apprise_tag(index)],
            silence_id=silence.id if silence is not None else None,
        )
        if targets[index].kind == "events_api_v2":  # the message itself; paged at once, never digested
            row.body = json.dumps(events_api.message(ticket, kind, base_url, note), ensure_ascii=False)
            row.notify_type = events_api.ACTIONS[kind]
            row.status = OutboxStatus.MUTED if silence is not None else OutboxStatus.PENDING
        rows.append(row)
    session.add_all(rows)
    return rows


def told_targets(session: Session, ticket: Ticket) -> set[int]:
    """The targets that were written a notification about the ticket (muted ones included: the silence
    may end before the ticket does)."""
    if ticket.id is None:
        return set()
    return set(
        session.scalars(
            select(NotificationOutbox.target).where(NotificationOutbox.ticket_id == ticket.id).distinct()
        )
    )


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
        targets = settings.notifications.targets
        language = (targets[index].language if index < len(targets) else None) or settings.site.language
        _ = translations(language)
        lines = [f"- {row.title}" for row in rows]
        lines.append(_.gettext("Queue: %(url)s") % {"url": f"{settings.server.base_url()}/tickets"})
        count = len(rows)
        title = _.ngettext(
            "[Hypercare] Digest: %(count)d ticket notification",
            "[Hypercare] Digest: %(count)d ticket notifications",
            count,
        )
        digest = NotificationOutbox(
            ticket_id=None,
            target=index,
            kind="digest",
            title=title % {"count": count},
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
