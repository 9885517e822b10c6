"""One exception, one ticket: checks that see the same fault on the same business entity page once.

On SQLite and PostgreSQL (one rolled-back transaction per test), through the service every intake uses.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.tickets.factories import Clock, make_event, make_settings, target
from tickets.correlation import subjects
from tickets.models import NotificationOutbox, Occurrence, Ticket, TicketAudit
from tickets.service import TicketService

INVOICE = {"invoice_id": "4711"}


@pytest.fixture
def service(session: Session, clock: Clock) -> TicketService:
    """The queue with one on-call target paged for P1-P2."""
    return TicketService(
        session, make_settings(targets=(target("json://127.0.0.1:9/oncall", "P2"),)), now=clock
    )


def without_move(**overrides: object) -> dict[str, object]:
    """A posted invoice has no journal move (the first check to see the fault)."""
    return {
        "fingerprint": "fp-invoice-without-move-4711",
        "check_id": "tryton.documents.posted_invoice_without_move",
        "summary": "Posted invoice 4711 has no move",
        "severity": "P2",
        "entity": INVOICE,
        "evidence": {"violations": 1, "sample": [{"invoice_id": "4711", "state": "posted"}]},
        **overrides,
    }


def total_vs_move(**overrides: object) -> dict[str, object]:
    """The same invoice's total differs from its move (the second check, same fault)."""
    return {
        "fingerprint": "fp-invoice-total-vs-move-4711",
        "check_id": "tryton.documents.invoice_total_vs_move",
        "summary": "Invoice 4711 total differs from its move",
        "severity": "P1",
        "entity": INVOICE,
        "evidence": {"violations": 1, "sample": [{"invoice_id": "4711", "total": "1250.00", "moved": None}]},
        **overrides,
    }


def tickets(session: Session) -> list[Ticket]:
    return list(session.scalars(select(Ticket).order_by(Ticket.id)))


def audit(session: Session, ticket_id: int) -> list[str]:
    rows = select(TicketAudit.action).where(TicketAudit.ticket_id == ticket_id).order_by(TicketAudit.id)
    return list(session.scalars(rows))


def test_a_second_check_on_the_same_invoice_joins_the_open_ticket(
    service: TicketService, session: Session
) -> None:
    first = service.ingest(make_event(**without_move()))
    second = service.ingest(make_event(**total_vs_move()))
    assert (first.outcome, second.outcome) == ("opened", "correlated")
    (ticket,) = tickets(session)
    assert second.ticket is not None and second.ticket.id == ticket.id
    assert ticket.occurrence_count == 2
    evidence = list(session.scalars(select(Occurrence.evidence).where(Occurrence.ticket_id == ticket.id)))
    assert {"moved": None, "invoice_id": "4711", "total": "1250.00"} in [e["sample"][0] for e in evidence]
    # the second check found it more urgent: the one ticket takes its priority, and says why
    assert ticket.priority == "P1"
    assert audit(session, ticket.id) == ["opened", "correlated"]
    detail = session.scalars(select(TicketAudit.detail).where(TicketAudit.action == "correlated")).one()
    assert detail["check_id"] == "tryton.documents.invoice_total_vs_move"
    assert detail["subject"] == "invoice_id=4711"
    assert detail["priority"] == {"before": "P2", "after": "P1"}
    kinds = list(session.scalars(select(NotificationOutbox.kind)))
    assert kinds == ["opened"], "the fault paged once: joining the ticket pages nobody again"


def test_the_joined_checks_repeats_and_recovery_stay_on_the_ticket(
    service: TicketService, session: Session
) -> None:
    service.ingest(make_event(**without_move()))
    service.ingest(make_event(**total_vs_move()))
    repeat = service.ingest(make_event(**total_vs_move(summary="again")))
    assert repeat.outcome == "deduplicated"
    recovered = service.ingest(make_event(**total_vs_move(action="resolve")))
    (ticket,) = tickets(session)
    assert recovered.outcome == "ignored" and ticket.is_open  # the ticket follows its own exception
    assert audit(session, ticket.id)[-1] == "correlated_recovered"
    assert ticket.occurrence_count == 3


def test_once_the_ticket_resolves_the_other_check_stands_on_its_own(
    service: TicketService, session: Session, clock: Clock
) -> None:
    service.ingest(make_event(**without_move()))
    service.ingest(make_event(**total_vs_move()))
    assert service.ingest(make_event(**without_move(action="resolve"))).outcome == "resolved"
    clock.advance(hours=1)
    again = service.ingest(make_event(**total_vs_move()))
    assert again.outcome == "opened"
    assert len(tickets(session)) == 2


@pytest.mark.parametrize(
    "other",
    [
        {"entity": {"invoice_id": "4712"}},  # another invoice
        {"source": "legacy"},  # another system
        {"entity": {"kind": "customer_invoice"}},  # a key that names no entity
    ],
)
def test_exceptions_about_other_entities_keep_their_own_tickets(
    service: TicketService, session: Session, other: dict[str, object]
) -> None:
    service.ingest(make_event(**without_move()))
    assert service.ingest(make_event(**total_vs_move(**other))).outcome == "opened"
    assert len(tickets(session)) == 2


def test_the_window_bounds_what_joins_and_zero_switches_it_off(session: Session, clock: Clock) -> None:
    service = TicketService(session, make_settings(), now=clock)
    service.ingest(make_event(**without_move()))
    clock.advance(hours=25)  # the default window is 24 h after the ticket was first seen
    assert service.ingest(make_event(**total_vs_move(occurred_at=clock()))).outcome == "opened"
    base = make_settings()
    no_window = base.model_copy(
        update={"tickets": base.tickets.model_copy(update={"correlation_window_h": 0})}
    )
    off = TicketService(session, no_window, now=clock)
    assert (
        off.ingest(make_event(**without_move(fingerprint="fp-x", entity={"invoice_id": "9"}))).outcome
        == "opened"
    )
    assert (
        off.ingest(make_event(**total_vs_move(fingerprint="fp-y", entity={"invoice_id": "9"}))).outcome
        == "opened"
    )


def test_subjects_name_the_entity_not_generic_keys() -> None:
    assert subjects({"invoice_id": 42}) == ("invoice_id=42",)
    assert subjects({"reference": "A-1", "party_id": "7"}) == ("party_id=7&reference=A-1",)
    assert subjects({"kind": "x"}) == ()
    assert subjects({}) == ()
    assert subjects({"invoice_id": None}) == ()
