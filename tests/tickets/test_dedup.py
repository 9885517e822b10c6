"""What a repeat does is decided once (tickets/dedup.py), and every intake path does exactly that: the
service one event at a time, the Alertmanager intake set-wise (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.tickets.factories import T0, alert, make_event, make_settings, webhook
from tickets import dedup
from tickets.alertmanager import ingest_webhook
from tickets.models import Occurrence, Ticket, TicketAudit
from tickets.service import TicketService

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_repeats_count_keep_the_latest_sighting_and_the_latest_amount_measured() -> None:
    start = dedup.Counters(occurrence_count=3, last_seen_at=T0, amount_at_risk=Decimal("10.00"))
    later, earlier = T0 + timedelta(minutes=5), T0 - timedelta(hours=1)
    sightings = [
        make_event(occurred_at=later, amount_at_risk=Decimal("12.50")),
        make_event(occurred_at=earlier, amount_at_risk=None),  # older and unmeasured: moves neither
    ]
    assert dedup.after(start, sightings, NOW) == {
        "occurrence_count": 5,
        "last_seen_at": later,
        "amount_at_risk": Decimal("12.50"),
        "updated_at": NOW,
    }
    assert set(dedup.after(start, [], NOW)) == set(dedup.REPEAT_FIELDS)


def test_an_occurrence_copies_the_sighting_it_records() -> None:
    event = make_event(occurred_at=T0, summary="JE-1001 again", evidence={"violations": 3})
    row = dedup.occurrence(7, 11, event)
    assert row == {
        "ticket_id": 7,
        "event_id": 11,
        "seen_at": T0,
        "summary": "JE-1001 again",
        "evidence": {"violations": 3},
    }
    assert row["evidence"] is not event.evidence


def test_the_service_applies_the_rule_and_writes_no_audit_for_a_repeat(session: Session) -> None:
    clock = [NOW - timedelta(minutes=1)]
    service = TicketService(session, make_settings(), now=lambda: clock[0])
    ticket = service.ingest(make_event()).ticket
    assert ticket is not None
    before = dedup.counters_of(ticket)
    clock[0] = NOW
    repeat = make_event(occurred_at=T0 - timedelta(minutes=1), amount_at_risk=Decimal("99.00"))
    assert service.ingest(repeat).outcome == "deduplicated"
    session.flush()
    assert {name: getattr(ticket, name) for name in dedup.REPEAT_FIELDS} == dedup.after(before, [repeat], NOW)
    actions = session.scalars(select(TicketAudit.action).where(TicketAudit.ticket_id == ticket.id)).all()
    assert actions == ["opened"]


def test_the_set_wise_alertmanager_intake_applies_the_same_rule(session: Session) -> None:
    settings = make_settings()
    clock = [NOW - timedelta(minutes=1)]
    service = TicketService(session, settings, now=lambda: clock[0])
    ingest_webhook(service, webhook(alert(1, 10)), settings.alertmanager)
    ticket = session.scalars(select(Ticket)).one()
    before = dedup.counters_of(ticket)
    clock[0] = NOW
    # three new episodes in one delivery, one of them older than the ticket's last sighting
    results = ingest_webhook(service, webhook(alert(1, 20), alert(1, 0), alert(1, 15)), settings.alertmanager)
    assert [r.outcome for r in results] == ["deduplicated"] * 3
    session.flush()
    session.expire_all()
    ticket = session.get_one(Ticket, ticket.id)
    sightings = session.scalars(
        select(Occurrence).where(Occurrence.ticket_id == ticket.id).order_by(Occurrence.id)
    ).all()
    seen = [o.seen_at for o in sightings[1:]]
    assert seen == [T0 + timedelta(minutes=m) for m in (20, 0, 15)]
    expected = dedup.after(before, [make_event(occurred_at=at, amount_at_risk=None) for at in seen], NOW)
    assert {name: getattr(ticket, name) for name in dedup.REPEAT_FIELDS} == expected
    assert ticket.last_seen_at == T0 + timedelta(minutes=20), "the older episode does not move it back"
