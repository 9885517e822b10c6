"""The ticket queue's rules, on SQLite and PostgreSQL (one rolled-back transaction per test)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.tickets.factories import T0, Clock, make_event, make_settings, target
from tickets.errors import InvalidTransition, TicketNotFound
from tickets.models import EventRecord, NotificationOutbox, Occurrence, Ticket, TicketAudit
from tickets.service import TicketService


def count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def audit_actions(session: Session, ticket_id: int) -> list[str]:
    return list(
        session.scalars(
            select(TicketAudit.action).where(TicketAudit.ticket_id == ticket_id).order_by(TicketAudit.id)
        )
    )


@pytest.fixture
def service(session: Session, clock: Clock) -> TicketService:
    settings = make_settings(
        targets=(target("json://127.0.0.1:9/a", "P1"), target("json://127.0.0.1:9/b", "P3"))
    )
    return TicketService(session, settings, now=clock)


def test_first_event_opens_a_triaged_ticket_with_occurrence_audit_and_outbox(
    service: TicketService, session: Session
) -> None:
    result = service.ingest(make_event())

    assert result.outcome == "opened"
    ticket = result.ticket
    assert ticket is not None
    assert (ticket.status, ticket.priority, ticket.impact, ticket.urgency) == ("new", "P2", "high", "medium")
    assert ticket.title == "Journal entry JE-1001 does not balance"
    assert (ticket.category, ticket.source, ticket.check_id) == ("data", "erp", "gl.unbalanced_entries")
    assert ticket.runbook_id == "gl-unbalanced-entry"
    assert ticket.amount_at_risk == Decimal("1250.00")
    assert ticket.entity == {"journal_id": "JE-1001", "company": "ACME-DE"}
    assert ticket.labels == {"module": "gl"}
    assert ticket.open_fingerprint == ticket.fingerprint == "fp-gl-unbalanced-je1001"
    assert (ticket.occurrence_count, ticket.first_seen_at, ticket.last_seen_at) == (1, T0, T0)
    assert result.event.ticket_id == ticket.id
    assert result.event.action == "trigger"

    occurrences = session.scalars(select(Occurrence).where(Occurrence.ticket_id == ticket.id)).all()
    assert [(o.event_id, o.evidence["violations"]) for o in occurrences] == [(result.event.id, 1)]
    audit = session.scalars(select(TicketAudit).where(TicketAudit.ticket_id == ticket.id)).one()
    assert (audit.actor, audit.action, audit.at) == ("system", "opened", T0)
    assert audit.detail["after"]["priority"] == "P2"
    assert audit.detail["event_id"] == result.event.id


def test_outbox_rows_only_for_targets_whose_min_priority_the_ticket_meets(
    service: TicketService, session: Session
) -> None:
    p2 = service.ingest(make_event()).ticket
    p1 = service.ingest(
        make_event(fingerprint="fp-bank", summary="Bank statement not posted", p1=True)
    ).ticket
    assert p1 is not None and p2 is not None

    rows = session.scalars(select(NotificationOutbox).order_by(NotificationOutbox.id)).all()
    # target 0 wants P1 only, target 1 wants P3 and more urgent
    assert [(r.ticket_id, r.target) for r in rows] == [(p2.id, 1), (p1.id, 0), (p1.id, 1)]
    first = rows[0]
    assert (first.kind, first.status, first.attempts, first.next_attempt_at) == ("opened", "pending", 0, T0)
    assert first.title == "[P2] Opened: Journal entry JE-1001 does not balance"
    assert "Source: erp" in first.body and "Check: gl.unbalanced_entries" in first.body
    assert "Amount at risk: 1,250.00" in first.body
    assert f"https://hypercare.example/tickets/{p2.id}" in first.body
    assert rows[1].notify_type == "failure"


def test_target_tags_narrow_what_a_target_hears_of(session: Session, clock: Clock) -> None:
    settings = make_settings(
        targets=(
            target("json://127.0.0.1:9/gl", "P4", tags=("module=gl",)),
            target("json://127.0.0.1:9/tech", "P4", tags=("technical",)),
            target("json://127.0.0.1:9/all", "P4"),
        )
    )
    ticket = TicketService(session, settings, now=clock).ingest(make_event()).ticket
    assert ticket is not None
    targets = session.scalars(
        select(NotificationOutbox.target).where(NotificationOutbox.ticket_id == ticket.id)
    )
    assert sorted(targets) == [0, 2]


def test_a_repeat_is_an_occurrence_on_the_open_ticket_not_a_new_ticket(
    service: TicketService, session: Session, clock: Clock
) -> None:
    first = service.ingest(make_event())
    clock.advance(minutes=5)
    later = T0.replace(minute=5)
    again = service.ingest(
        make_event(occurred_at=later, amount_at_risk=Decimal("1900.00"), evidence={"violations": 2})
    )

    assert again.outcome == "deduplicated"
    assert again.ticket is first.ticket
    ticket = again.ticket
    assert ticket is not None
    assert (ticket.occurrence_count, ticket.first_seen_at, ticket.last_seen_at) == (2, T0, later)
    assert ticket.amount_at_risk == Decimal("1900.00"), "the latest measurement is shown"
    assert count(session, Ticket) == 1
    assert count(session, EventRecord) == 2
    assert count(session, Occurrence) == 2
    assert again.event.ticket_id == ticket.id
    assert count(session, NotificationOutbox) == 1, "a repeat notifies nobody"
    assert audit_actions(session, ticket.id) == ["opened"]


def test_an_older_repeat_does_not_move_last_seen_backwards(service: TicketService) -> None:
    service.ingest(make_event())
    ticket = service.ingest(make_event(occurred_at=T0.replace(hour=8))).ticket
    assert ticket is not None
    assert ticket.last_seen_at == T0


def test_an_event_within_the_reopen_window_reopens_the_resolved_ticket(
    service: TicketService, session: Session, clock: Clock
) -> None:
    opened = service.ingest(make_event()).ticket
    assert opened is not None
    clock.advance(hours=1)
    service.ingest(make_event(action="resolve"))
    clock.advance(hours=71)  # resolved 71 h ago, window 72 h
    result = service.ingest(make_event(occurred_at=clock(), p1=True))

    assert result.outcome == "reopened"
    ticket = result.ticket
    assert ticket is opened
    assert ticket is not None
    assert (ticket.status, ticket.reopen_count, ticket.occurrence_count) == ("reopened", 1, 2)
    assert ticket.open_fingerprint == ticket.fingerprint
    assert ticket.resolved_at is None
    assert ticket.priority == "P1", "a more urgent recurrence raises the priority"
    assert count(session, Ticket) == 1
    assert audit_actions(session, ticket.id) == ["opened", "resolved", "reopened"]
    reopened = session.scalars(select(TicketAudit).where(TicketAudit.action == "reopened")).one()
    assert reopened.detail["before"]["status"] == "resolved"
    assert reopened.detail["after"]["status"] == "reopened"
    kinds = session.scalars(select(NotificationOutbox.kind).where(NotificationOutbox.ticket_id == ticket.id))
    assert sorted(kinds) == ["opened", "reopened", "reopened", "resolved"], (
        "P2 open: one target, told of its resolution too; P1 reopen: both targets"
    )


def test_an_event_after_the_reopen_window_opens_a_new_ticket(
    service: TicketService, session: Session, clock: Clock
) -> None:
    old = service.ingest(make_event()).ticket
    service.ingest(make_event(action="resolve"))
    clock.advance(hours=72, seconds=1)
    result = service.ingest(make_event(occurred_at=clock()))

    assert result.outcome == "opened"
    assert result.ticket is not None and old is not None
    assert result.ticket.id != old.id
    assert old.status == "resolved"
    assert count(session, Ticket) == 2


def test_a_closed_ticket_is_never_reopened(service: TicketService, session: Session) -> None:
    old = service.ingest(make_event()).ticket
    assert old is not None
    service.ingest(make_event(action="resolve"))
    old.status = "closed"
    session.flush()
    assert service.ingest(make_event()).outcome == "opened"


def test_a_resolve_event_resolves_the_open_ticket(
    service: TicketService, session: Session, clock: Clock
) -> None:
    opened = service.ingest(make_event()).ticket
    clock.advance(minutes=30)
    result = service.ingest(make_event(action="resolve", producer="monitor"))

    assert result.outcome == "resolved"
    ticket = result.ticket
    assert ticket is opened and ticket is not None
    assert (ticket.status, ticket.resolved_at, ticket.open_fingerprint) == ("resolved", clock(), None)
    entry = session.scalars(select(TicketAudit).where(TicketAudit.action == "resolved")).one()
    assert entry.actor == "system"
    assert entry.detail["before"]["status"] == "new"
    assert entry.detail["after"]["status"] == "resolved"
    assert entry.detail["event_id"] == result.event.id


def test_a_resolve_event_for_nothing_open_is_ignored_but_recorded(
    service: TicketService, session: Session
) -> None:
    result = service.ingest(make_event(action="resolve"))
    assert (result.outcome, result.ticket, result.event.ticket_id) == ("ignored", None, None)
    assert count(session, EventRecord) == 1
    assert count(session, TicketAudit) == 0


def test_an_acknowledge_event_acknowledges_once(
    service: TicketService, session: Session, clock: Clock
) -> None:
    service.ingest(make_event())
    clock.advance(minutes=3)
    first = service.ingest(make_event(action="acknowledge"))
    second = service.ingest(make_event(action="acknowledge"))

    assert first.outcome == "acknowledged"
    assert first.ticket is not None
    assert (first.ticket.status, first.ticket.acknowledged_at) == ("acknowledged", clock())
    assert second.outcome == "ignored"
    assert audit_actions(session, first.ticket.id) == ["opened", "acknowledged"]


def test_impact_and_urgency_given_by_the_producer_override_the_severity(service: TicketService) -> None:
    ticket = service.ingest(make_event(severity="P4", impact="high", urgency="high")).ticket
    assert ticket is not None
    assert (ticket.impact, ticket.urgency, ticket.priority) == ("high", "high", "P1")


def test_agents_acknowledge_comment_and_resolve_with_an_audit_row_each(
    service: TicketService, session: Session, clock: Clock
) -> None:
    ticket = service.ingest(make_event()).ticket
    assert ticket is not None
    clock.advance(minutes=10)
    service.acknowledge(ticket.id, "alice")
    assert service.acknowledge(ticket.id, "alice").status == "acknowledged", "acknowledging twice is a no-op"
    service.comment(ticket.id, "alice", "  reversed JE-1001, reposting  ")
    clock.advance(minutes=20)
    service.resolve(ticket.id, "alice", "reposted as JE-1002")

    assert (ticket.status, ticket.acknowledged_at, ticket.resolved_at) == (
        "resolved",
        T0.replace(minute=10),
        T0.replace(minute=30),
    )
    entries = session.scalars(
        select(TicketAudit).where(TicketAudit.ticket_id == ticket.id).order_by(TicketAudit.id)
    ).all()
    assert [(e.actor, e.action) for e in entries] == [
        ("system", "opened"),
        ("alice", "acknowledged"),
        ("alice", "commented"),
        ("alice", "resolved"),
    ]
    assert entries[2].detail == {"text": "reversed JE-1001, reposting"}
    assert entries[3].detail["reason"] == "reposted as JE-1002"


def test_agent_operations_refuse_what_does_not_apply(service: TicketService) -> None:
    ticket = service.ingest(make_event()).ticket
    assert ticket is not None
    with pytest.raises(ValueError, match="needs a reason"):
        service.resolve(ticket.id, "alice", "   ")
    service.resolve(ticket.id, "alice", "fixed")
    with pytest.raises(InvalidTransition, match=f"ticket {ticket.id} is resolved: cannot resolve it"):
        service.resolve(ticket.id, "alice", "again")
    with pytest.raises(InvalidTransition, match="cannot acknowledge"):
        service.acknowledge(ticket.id, "alice")
    with pytest.raises(TicketNotFound, match="ticket 999999 not found"):
        service.get(999_999)
    with pytest.raises(TicketNotFound):
        service.acknowledge(999_999, "alice")


def test_a_ticket_opened_concurrently_becomes_a_deduplication(
    service: TicketService, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another writer's ticket, committed after our SELECT found nothing: the unique open_fingerprint
    # refuses ours and the SAVEPOINT keeps the event we already stored.
    rival = Ticket(
        fingerprint="fp-gl-unbalanced-je1001",
        open_fingerprint="fp-gl-unbalanced-je1001",
        title="rival",
        priority="P2",
        impact="high",
        urgency="medium",
        category="data",
        source="erp",
        first_seen_at=T0,
        last_seen_at=T0,
        created_at=T0,
        updated_at=T0,
    )
    session.add(rival)
    session.flush()
    real = service._open_ticket
    missed = [True]

    def first_misses(fingerprint: str) -> Ticket | None:
        return None if missed and missed.pop() else real(fingerprint)

    monkeypatch.setattr(service, "_open_ticket", first_misses)

    result = service.ingest(make_event())

    assert result.outcome == "deduplicated"
    assert result.ticket is rival
    assert rival.occurrence_count == 2
    assert count(session, Ticket) == 1
    assert count(session, EventRecord) == 1
    assert count(session, NotificationOutbox) == 0
    assert count(session, TicketAudit) == 0


@contextmanager
def counting_queries(session: Session) -> Iterator[list[str]]:
    """The SELECTs run inside the block."""
    statements: list[str] = []
    engine = session.get_bind()

    def before(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    sa_event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        sa_event.remove(engine, "before_cursor_execute", before)


def test_the_queue_lists_open_first_by_priority_and_filters(service: TicketService, clock: Clock) -> None:
    p3 = service.ingest(make_event(fingerprint="a", severity="P3")).ticket
    p1 = service.ingest(make_event(fingerprint="b", severity="P1")).ticket
    done = service.ingest(make_event(fingerprint="c", severity="P1")).ticket
    p2 = service.ingest(make_event(fingerprint="d", severity="P2")).ticket
    assert p1 and p2 and p3 and done
    service.resolve(done.id, "alice", "fixed")

    page = service.list_tickets()
    assert [t.id for t in page.items] == [p1.id, p2.id, p3.id, done.id]
    assert page.total == 4
    assert [t.id for t in service.list_tickets(status="open").items] == [p1.id, p2.id, p3.id]
    assert [t.id for t in service.list_tickets(status="resolved").items] == [done.id]
    assert [t.id for t in service.list_tickets(priority="P1").items] == [p1.id, done.id]
    second = service.list_tickets(limit=2, offset=2)
    assert ([t.id for t in second.items], second.total) == ([p3.id, done.id], 4)
    with pytest.raises(ValueError, match="unknown status filter"):
        service.list_tickets(status="bogus")  # type: ignore[arg-type]


def test_listing_and_reading_a_ticket_take_a_fixed_number_of_queries(
    service: TicketService, session: Session
) -> None:
    for n in range(5):
        for _ in range(3):
            service.ingest(make_event(fingerprint=f"fp-{n}"))
    session.flush()
    session.expunge_all()

    with counting_queries(session) as statements:
        page = service.list_tickets()
        assert [t.occurrence_count for t in page.items] == [3] * 5
    assert len(statements) == 2

    ticket_id = page.items[0].id
    session.expunge_all()
    with counting_queries(session) as statements:
        detail = service.get(ticket_id)
        assert len(detail.occurrences) == 3
        assert detail.latest is detail.occurrences[0]
        assert [a.action for a in detail.audit] == ["opened"]
    assert len(statements) == 3
