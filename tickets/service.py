"""The ticket queue's write side: event intake (dedup, reopen, open, resolve, acknowledge) and the agents'
operations, each leaving an audit row and outbox rows for the transitions targets subscribe to.

The service flushes; the caller owns the transaction and commits (``session_scope`` in workers, the
request in the API), so a ticket change, its audit row and its notifications commit together or not at all.

Clocks: lifecycle times (``created_at``, ``resolved_at``, the reopen window, audit ``at``) come from the
injected ``now``; sighting times (``first_seen_at``, ``last_seen_at``, occurrence ``seen_at``) are the
event's ``occurred_at``.
"""

# size: the one write path of a ticket (intake, transitions, audit and outbox hooks); the agents' extras
# (conversation, watchers, problems) live in their own modules and hook in here in a line each.

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from anomaly.events import Event
from core import search
from core.db import utcnow
from core.jsonable import jsonable
from core.vocabulary import Priority, TicketStatus
from runbooks.library import RunbookError
from tickets import correlation, dedup, followers, known_errors, outbox, queries, routing, sla
from tickets.errors import InvalidTransition, TicketNotFound
from tickets.models import EventRecord, Occurrence, Ticket, TicketAudit, User
from tickets.settings import TicketsConfig
from tickets.triage import more_urgent, triage

log = logging.getLogger(__name__)

Outcome = Literal["opened", "deduplicated", "correlated", "reopened", "resolved", "acknowledged", "ignored"]
SYSTEM_ACTOR = "system"
ACKNOWLEDGEABLE = (TicketStatus.NEW, TicketStatus.REOPENED)
"""Statuses an acknowledgement moves to ``acknowledged``; from the other open statuses it is a no-op."""
_S = TicketStatus
TRANSITIONS: dict[str, tuple[TicketStatus, ...]] = {
    _S.NEW: (_S.ACKNOWLEDGED, _S.RESOLVED),
    _S.ACKNOWLEDGED: (_S.IN_PROGRESS, _S.WAITING, _S.RESOLVED),
    _S.IN_PROGRESS: (_S.WAITING, _S.RESOLVED),
    _S.WAITING: (_S.IN_PROGRESS, _S.RESOLVED),
    _S.RESOLVED: (_S.CLOSED, _S.REOPENED),
    _S.REOPENED: (_S.ACKNOWLEDGED, _S.IN_PROGRESS, _S.RESOLVED),
    _S.CLOSED: (),
}
"""The lifecycle: which status may follow which (anything else is :class:`InvalidTransition`, HTTP 409)."""
WAITING_REASONS = ("vendor", "reporter", "other_team")


@dataclass(frozen=True, slots=True)
class IngestResult:
    ticket: Ticket | None
    """The ticket the event concerned; ``None`` when there was none (a recovery for nothing open)."""
    outcome: Outcome
    event: EventRecord


def _snapshot(ticket: Ticket, *fields: str) -> dict[str, Any]:
    return {name: jsonable(getattr(ticket, name)) for name in fields}


class TicketService:
    def __init__(
        self, session: Session, settings: TicketsConfig, *, now: Callable[[], datetime] = utcnow
    ) -> None:
        self.session = session
        self.settings = settings
        self.now = now

    # ----------------------------------------------------------------------------------------- intake

    def ingest(self, event: Event) -> IngestResult:
        """Record the event and apply it to the queue. Flushes; the caller commits."""
        now = self.now()
        record = EventRecord(
            fingerprint=event.fingerprint,
            action=event.action,
            severity=event.severity,
            category=event.category,
            summary=event.summary,
            source=event.source,
            check_id=event.check_id,
            producer=event.producer,
            labels=dict(event.labels),
            entity=dict(event.entity),
            evidence=dict(event.evidence),
            amount_at_risk=event.amount_at_risk,
            occurred_at=event.occurred_at,
            received_at=now,
        )
        self.session.add(record)
        self.session.flush()
        if event.action == "trigger":
            result = self._trigger(event, record, now)
        elif event.action == "resolve":
            result = self._resolve_event(event, record, now)
        else:
            result = self._acknowledge_event(event, record, now)
        if result.ticket is not None:
            record.ticket_id = result.ticket.id
        self.session.flush()
        log.info(
            "event %s",
            result.outcome,
            extra={
                "event_id": record.id,
                "fingerprint": event.fingerprint,
                "ticket_id": result.ticket.id if result.ticket else None,
                "priority": result.ticket.priority if result.ticket else None,
                "source": event.source,
                "check_id": event.check_id,
                "outcome": result.outcome,
            },
        )
        return result

    def _trigger(self, event: Event, record: EventRecord, now: datetime) -> IngestResult:
        ticket = self._open_ticket(event.fingerprint) or correlation.joined_ticket(
            self.session, event.fingerprint
        )
        if ticket is not None:
            self._add_occurrence(ticket, event, record, now)
            return IngestResult(ticket, "deduplicated", record)
        joined = self._correlate(event, record, now)
        if joined is not None:
            return IngestResult(joined, "correlated", record)
        recent = self._recently_resolved(event.fingerprint, now)
        outcome: Outcome = "opened" if recent is None else "reopened"
        try:
            # A concurrent writer may open a ticket for this fingerprint between our SELECT and INSERT;
            # the unique open_fingerprint refuses the second one, and the SAVEPOINT keeps our event row.
            with self.session.begin_nested():
                if recent is None:
                    ticket = self._open(event, record, now)
                else:
                    ticket = recent
                    self._reopen(ticket, event, record, now)
        except IntegrityError:
            ticket = self._open_ticket(event.fingerprint)
            if ticket is None:
                raise
            log.info(
                "ticket opened concurrently; deduplicating",
                extra={"ticket_id": ticket.id, "fingerprint": event.fingerprint},
            )
            self._add_occurrence(ticket, event, record, now)
            return IngestResult(ticket, "deduplicated", record)
        return IngestResult(ticket, outcome, record)

    def _open(self, event: Event, record: EventRecord, now: datetime) -> Ticket:
        tri = triage(event, self.settings.triage)
        ticket = Ticket(
            fingerprint=event.fingerprint,
            open_fingerprint=event.fingerprint,
            title=event.summary[:300],
            description="\n".join(event.severity_reasons),
            status=TicketStatus.NEW,
            priority=tri.priority,
            impact=tri.impact,
            urgency=tri.urgency,
            category=event.category,
            source=event.source,
            check_id=event.check_id,
            runbook_id=event.runbook,
            amount_at_risk=event.amount_at_risk,
            entity=dict(event.entity),
            labels=dict(event.labels),
            occurrence_count=1,
            reopen_count=0,
            first_seen_at=event.occurred_at,
            last_seen_at=event.occurred_at,
            created_at=now,
            updated_at=now,
        )
        keys = map(search.flatten, (ticket.entity, ticket.labels, record.evidence))
        ticket.search_text = search.extended(None, ticket.title, ticket.description, *keys)
        matched = self._route(ticket)
        sla.start(ticket, self.settings, now)
        self.session.add(ticket)
        self.session.flush()  # raises IntegrityError here when another writer holds open_fingerprint
        self.session.add(Occurrence(**dedup.occurrence(ticket.id, record.id, record)))
        correlation.remember(self.session, ticket.id, correlation.subjects(event.entity))
        fields = ("status", "priority", "impact", "urgency", "category", "source", "check_id", "queue")
        after = _snapshot(ticket, *fields, "assignee_id", "runbook_id", "sla_response_due_at")
        self._audit(
            ticket, SYSTEM_ACTOR, "opened", now, after=after, event_id=record.id, routing_rules=matched
        )
        known_errors.on_opened(self.session, ticket, now, self._audit)  # a known error's workaround
        self._notify(ticket, "opened", now)
        self.session.flush()
        return ticket

    def _route(self, ticket: Ticket) -> list[int]:
        """Queue and assignee from the routing rules; the runbook by ``applies_to`` if the event had none."""
        found = routing.route(
            routing.load_rules(self.settings),
            labels=ticket.labels,
            category=ticket.category,
            source=ticket.source,
            check_id=ticket.check_id,
        )
        if found.queue:
            ticket.queue = found.queue
        if found.assignee:
            user = self.session.scalars(select(User).where(User.username == found.assignee)).first()
            if user is None:
                log.warning(
                    "routing names unknown assignee %s", found.assignee, extra={"queue": ticket.queue}
                )
            else:
                ticket.assignee_id = user.id
        if ticket.runbook_id is None:
            try:
                ticket.runbook_id = routing.runbook_for(
                    self.settings, check_id=ticket.check_id, category=ticket.category
                )
            except RunbookError as exc:
                log.warning(
                    "runbooks unreadable; no runbook linked: %s", exc, extra={"check_id": ticket.check_id}
                )
        return list(found.rules)

    def _notify(self, ticket: Ticket, kind: outbox.Kind, now: datetime, **options: Any) -> None:
        """Outbox rows for the ticket (``options``: ``only_tags``, ``note`` of :func:`outbox.enqueue`)."""
        rows = outbox.enqueue(self.session, self.settings, ticket, kind, now=now, **options)
        muted = {row.silence_id for row in rows if row.silence_id is not None}
        for silence_id in sorted(muted):
            reason = f"muted by silence {silence_id}"
            self._audit(ticket, SYSTEM_ACTOR, "muted", now, silence_id=silence_id, kind=kind, reason=reason)

    def _reopen(self, ticket: Ticket, event: Event, record: EventRecord, now: datetime) -> None:
        fields = ("status", "priority", "impact", "urgency", "reopen_count", "resolved_at")
        before = _snapshot(ticket, *fields)
        ticket.status = TicketStatus.REOPENED
        ticket.open_fingerprint = ticket.fingerprint
        ticket.reopen_count += 1
        ticket.resolved_at = None
        tri = triage(event, self.settings.triage)
        if more_urgent(tri.priority, ticket.priority):
            old = ticket.priority
            ticket.priority, ticket.impact, ticket.urgency = tri.priority, tri.impact, tri.urgency
            sla.reprioritise(ticket, self.settings, now, old)
        sla.resume(ticket, self.settings, now)
        self.session.flush()  # raises IntegrityError here when another writer holds open_fingerprint
        self._add_occurrence(ticket, event, record, now)
        self._audit(
            ticket,
            SYSTEM_ACTOR,
            "reopened",
            now,
            before=before,
            after=_snapshot(ticket, *fields),
            event_id=record.id,
        )
        self._notify(ticket, "reopened", now)
        self.session.flush()

    def _correlate(self, event: Event, record: EventRecord, now: datetime) -> Ticket | None:
        """Join the open ticket about the same entity, if there is one (tickets/correlation.py)."""
        found = correlation.subjects(event.entity)
        window = self.settings.tickets.correlation_window_h
        ticket = correlation.target(self.session, event.source, found, now, window)
        if ticket is None:
            return None
        shared = next(iter(found))
        correlation.join(self.session, ticket, event.fingerprint, event.check_id, shared)
        self._add_occurrence(ticket, event, record, now)
        detail: dict[str, Any] = {"check_id": event.check_id, "subject": shared, "event_id": record.id}
        tri = triage(event, self.settings.triage)
        if Priority(tri.priority).rank < Priority(ticket.priority).rank:
            detail["priority"] = {"before": ticket.priority, "after": tri.priority}
            ticket.priority, ticket.impact, ticket.urgency = tri.priority, tri.impact, tri.urgency
            sla.evaluate(ticket, self.settings, now)
        self._audit(ticket, SYSTEM_ACTOR, "correlated", now, **detail)
        self.session.flush()
        log.info(
            "event joined the open ticket about the same entity",
            extra={"ticket_id": ticket.id, "fingerprint": event.fingerprint, "subject": shared},
        )
        return ticket

    def _resolve_event(self, event: Event, record: EventRecord, now: datetime) -> IngestResult:
        ticket = self._open_ticket(event.fingerprint)
        if ticket is None:
            joined = correlation.joined_ticket(self.session, event.fingerprint)
            if joined is not None:  # a joined check recovered: noted; the ticket follows its own exception
                self._audit(joined, SYSTEM_ACTOR, "correlated_recovered", now, event_id=record.id)
                return IngestResult(joined, "ignored", record)
            return IngestResult(None, "ignored", record)
        self._resolve(ticket, SYSTEM_ACTOR, now, reason=f"recovered ({event.producer})", event_id=record.id)
        return IngestResult(ticket, "resolved", record)

    def _acknowledge_event(self, event: Event, record: EventRecord, now: datetime) -> IngestResult:
        ticket = self._open_ticket(event.fingerprint)
        if ticket is None or ticket.status not in ACKNOWLEDGEABLE:
            return IngestResult(ticket, "ignored", record)
        self._acknowledge(ticket, SYSTEM_ACTOR, now, event_id=record.id)
        return IngestResult(ticket, "acknowledged", record)

    # ------------------------------------------------------------------------------ agent operations

    def acknowledge(self, ticket_id: int, actor: str) -> Ticket:
        """Acknowledge a new or reopened ticket; a no-op on one already being worked on."""
        ticket = self._locked(ticket_id)
        if not ticket.is_open:
            raise InvalidTransition(ticket_id, ticket.status, "acknowledge")
        if ticket.status in ACKNOWLEDGEABLE:
            self._acknowledge(ticket, actor, self.now())
            self.session.flush()
        return ticket

    def resolve(self, ticket_id: int, actor: str, reason: str) -> Ticket:
        """Resolve an open ticket; the reason is kept in the audit trail."""
        reason = reason.strip()
        if not reason:
            raise ValueError("a resolution needs a reason")
        ticket = self._locked(ticket_id)
        if not ticket.is_open:
            raise InvalidTransition(ticket_id, ticket.status, "resolve")
        self._resolve(ticket, actor, self.now(), reason=reason)
        self.session.flush()
        return ticket

    def comment(self, ticket_id: int, actor: str, text: str) -> TicketAudit:
        """Add a comment to the ticket's audit trail."""
        text = text.strip()
        if not text:
            raise ValueError("a comment needs some text")
        ticket = self._locked(ticket_id)
        now = self.now()
        ticket.updated_at = now
        ticket.search_text = search.extended(ticket.search_text, text)
        entry = self._audit(ticket, actor, "commented", now, text=text)
        self.session.flush()
        return entry

    def list_tickets(
        self,
        *,
        status: queries.StatusFilter | None = None,
        priority: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> queries.TicketPage:
        return queries.list_tickets(
            self.session, status=status, priority=priority, limit=limit, offset=offset
        )

    def get(self, ticket_id: int) -> queries.TicketDetail:
        """The ticket with its latest occurrences and audit trail; raises :class:`TicketNotFound`."""
        return queries.get_detail(self.session, ticket_id)

    def locked(self, ticket_id: int) -> Ticket:
        """The ticket, row-locked for this transaction; raises :class:`TicketNotFound`."""
        return self._locked(ticket_id)

    def audit(self, ticket: Ticket, actor: str, action: str, now: datetime, **detail: Any) -> TicketAudit:
        """Append to the ticket's audit trail (hash-chained on flush, tickets/audit.py)."""
        return self._audit(ticket, actor, action, now, **detail)

    def notify(self, ticket: Ticket, kind: outbox.Kind, now: datetime, **options: Any) -> None:
        """Write the ticket's notifications to the outbox (muted ones audited with their silence);
        ``options``: ``only_tags``, ``only_people``, ``note`` of :func:`outbox.enqueue`."""
        self._notify(ticket, kind, now, **options)

    # ------------------------------------------------------------------------------------- helpers

    def _open_ticket(self, fingerprint: str) -> Ticket | None:
        # FOR UPDATE (a no-op on SQLite, whose writers are serialised anyway) makes concurrent repeats of
        # one exception queue up on the ticket row instead of losing occurrence_count increments.
        return self.session.scalars(
            select(Ticket)
            .where(Ticket.open_fingerprint == fingerprint)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).first()

    def _recently_resolved(self, fingerprint: str, now: datetime) -> Ticket | None:
        since = now - timedelta(hours=self.settings.tickets.reopen_window_h)
        return self.session.scalars(
            select(Ticket)
            .where(
                Ticket.fingerprint == fingerprint,
                Ticket.status == TicketStatus.RESOLVED,
                Ticket.resolved_at > since,
            )
            .order_by(Ticket.resolved_at.desc())
            .limit(1)
            .with_for_update()
        ).first()

    def _locked(self, ticket_id: int) -> Ticket:
        ticket = self.session.scalars(
            select(Ticket)
            .where(Ticket.id == ticket_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).first()
        if ticket is None:
            raise TicketNotFound(ticket_id)
        return ticket

    def _add_occurrence(self, ticket: Ticket, event: Event, record: EventRecord, now: datetime) -> None:
        """A repeat on the open (or just reopened) ticket, as tickets/dedup.py defines it."""
        self.session.add(Occurrence(**dedup.occurrence(ticket.id, record.id, record)))
        for field, value in dedup.after(dedup.counters_of(ticket), [event], now).items():
            setattr(ticket, field, value)
        ticket.search_text = search.extended(ticket.search_text, search.flatten(record.evidence))

    def _acknowledge(self, ticket: Ticket, actor: str, now: datetime, **detail: Any) -> None:
        before = _snapshot(ticket, "status")
        ticket.status = TicketStatus.ACKNOWLEDGED
        if ticket.acknowledged_at is None:  # the first acknowledgement is what MTTA measures
            ticket.acknowledged_at = now
        ticket.updated_at = now
        after = _snapshot(ticket, "status")
        sla.evaluate(ticket, self.settings, now)
        self._audit(ticket, actor, "acknowledged", now, before=before, after=after, **detail)
        self._notify(ticket, "acknowledged", now, note=f"by {actor}")
        log.info(
            "ticket acknowledged",
            extra={"ticket_id": ticket.id, "fingerprint": ticket.fingerprint, "priority": ticket.priority},
        )

    def _resolve(self, ticket: Ticket, actor: str, now: datetime, *, reason: str, **detail: Any) -> None:
        before = _snapshot(ticket, "status", "resolved_at")
        ticket.status = TicketStatus.RESOLVED
        ticket.resolved_at = now
        ticket.open_fingerprint = None
        ticket.waiting_reason = None
        ticket.updated_at = now
        correlation.release(self.session, ticket.id)
        sla.stop(ticket, self.settings, now)
        after = _snapshot(ticket, "status", "resolved_at", "sla_state")
        self._audit(ticket, actor, "resolved", now, before=before, after=after, reason=reason, **detail)
        self._notify(ticket, "resolved", now, note=f"by {actor}: {reason}")
        log.info(
            "ticket resolved",
            extra={"ticket_id": ticket.id, "fingerprint": ticket.fingerprint, "priority": ticket.priority},
        )

    def _audit(self, ticket: Ticket, actor: str, action: str, now: datetime, **detail: Any) -> TicketAudit:
        entry = TicketAudit(ticket_id=ticket.id, at=now, actor=actor[:64], action=action, detail=detail)
        self.session.add(entry)
        followers.on_audit(self.session, self.settings, ticket, actor, action, now, detail)  # watchers
        return entry
