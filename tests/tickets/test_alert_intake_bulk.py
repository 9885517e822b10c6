"""A webhook's firing alerts are applied set-wise (a fixed number of statements per run of firing alerts)
with the outcomes of the alert-by-alert path: dedup, repeats, first sightings, resolved alerts in payload
order, nothing lost under concurrent webhooks."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

from core.session import session_factory, session_scope
from tests.tickets.factories import T0, alert, make_settings, webhook
from tickets.alertmanager import AlertmanagerDelivery, AlertmanagerWebhook, ingest_delivery, ingest_webhook
from tickets.audit import verify
from tickets.models import AlertmanagerAlert, EventRecord, Occurrence, Ticket
from tickets.service import TicketService


def apply(session: Session, message: AlertmanagerWebhook) -> list[str]:
    settings = make_settings()
    results = ingest_webhook(TicketService(session, settings), message, settings.alertmanager)
    session.flush()
    return [r.outcome for r in results]


def accounted(session: Session) -> None:
    """Every firing episode is an occurrence; every ticket's counter equals its occurrences."""
    for ticket in session.scalars(select(Ticket)):
        occurrences = session.scalar(select(func.count()).where(Occurrence.ticket_id == ticket.id))
        assert ticket.occurrence_count == occurrences, ticket.fingerprint
    unlinked = session.scalar(select(func.count()).where(AlertmanagerAlert.ticket_id.is_(None)))
    assert unlinked == 0
    events = session.scalar(
        select(func.count()).where(EventRecord.producer == "alertmanager", EventRecord.ticket_id.is_(None))
    )
    assert events == 0


def test_one_webhook_mixes_openings_sightings_repeats_and_resolutions(session: Session) -> None:
    assert apply(session, webhook(alert(1, 0), alert(2, 0))) == ["opened", "opened"]
    message = webhook(
        alert(1, 1),  # a new episode of an open ticket: a sighting
        alert(1, 1),  # the same episode twice in one delivery: a repeat
        alert(2, 0),  # an episode already received: a repeat
        alert(3, 0),  # first sighting: opens
        alert(3, 2),  # and a second episode of it in the same delivery: a sighting of the new ticket
        alert(2, 0, "resolved"),  # resolved, in payload order: resolves ticket 2
        alert(2, 3),  # then a new episode of 2 reopens it
    )
    assert apply(session, message) == [
        "deduplicated",
        "repeat",
        "repeat",
        "opened",
        "deduplicated",
        "resolved",
        "reopened",
    ]
    session.expire_all()
    by_fp = {t.fingerprint: t for t in session.scalars(select(Ticket))}
    assert {fp: t.occurrence_count for fp, t in by_fp.items()} == {
        "am-0000000000000001": 2,
        "am-0000000000000002": 2,
        "am-0000000000000003": 2,
    }
    assert by_fp["am-0000000000000002"].status == "reopened"
    assert by_fp["am-0000000000000001"].last_seen_at == T0 + timedelta(minutes=1)
    notifications = session.scalar(
        select(AlertmanagerAlert.notifications).where(
            AlertmanagerAlert.fingerprint == "0000000000000001",
            AlertmanagerAlert.starts_at == T0 + timedelta(minutes=1),
        )
    )
    assert notifications == 2
    accounted(session)
    assert verify(session).ok


def test_a_replayed_webhook_changes_nothing_but_the_delivery_counts(session: Session) -> None:
    message = webhook(*(alert(k, 0) for k in range(5)))
    assert apply(session, message) == ["opened"] * 5
    assert apply(session, message) == ["repeat"] * 5
    counts = session.scalars(select(AlertmanagerAlert.notifications).order_by(AlertmanagerAlert.id))
    assert list(counts) == [2] * 5
    assert session.scalar(select(func.count()).select_from(Occurrence)) == 5


def test_statements_per_webhook_do_not_grow_with_its_alerts(session: Session) -> None:
    """The set-wise path: a webhook of sightings costs the same statements for 5 alerts as for 50."""
    apply(session, webhook(*(alert(k, 0) for k in range(50))))
    issued: list[str] = []

    def count(*args: Any) -> None:
        issued.append(str(args[2]))

    engine = session.get_bind().engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        apply(session, webhook(*(alert(k, 1) for k in range(5))))
        few = len(issued)
        issued.clear()
        apply(session, webhook(*(alert(k, 2) for k in range(50))))
        many = len(issued)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert few == many, (few, many)
    assert many <= 7  # PostgreSQL: 3 (lock the tickets; the episodes; events, occurrences, counters)
    accounted(session)


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_concurrent_webhooks_on_the_same_alerts_lose_nothing(store_engine: Engine) -> None:
    factory = session_factory(store_engine)
    with session_scope(factory) as session:
        apply(session, webhook(*(alert(k, 0) for k in range(10))))
    errors: list[BaseException] = []

    def sender(offset: int) -> None:
        try:
            for n in range(8):
                keys = [(offset + n + j) % 10 for j in range(5)]  # overlapping fingerprints, new episodes
                with session_scope(factory) as session:
                    apply(session, webhook(*(alert(k, 10 * (offset + 1) + n) for k in reversed(keys))))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 10
        assert session.scalar(select(func.sum(Ticket.occurrence_count))) == 10 + 4 * 8 * 5
        accounted(session)


def test_rejected_alerts_cost_the_same_statements_for_few_as_for_many(session: Session) -> None:
    """A delivery's bad alerts are one intake-error event, whatever their number: the set-wise path stays
    set-wise when some alerts are rejected."""
    settings = make_settings()
    service = TicketService(session, settings)

    def delivery(start: int, bad: int) -> AlertmanagerDelivery:
        good = [alert(k, start) for k in range(5)]
        rejected = [{**alert(100 + k, start), "startsAt": "not a time"} for k in range(bad)]
        return AlertmanagerDelivery.model_validate(
            {"version": "4", "status": "firing", "receiver": "oncall", "alerts": good + rejected}
        )

    ingest_delivery(service, delivery(0, 1), settings.alertmanager)  # opens the tickets
    issued: list[str] = []

    def count(*args: Any) -> None:
        issued.append(str(args[2]))

    engine = session.get_bind().engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        outcomes = [r.outcome for r in ingest_delivery(service, delivery(1, 2), settings.alertmanager)]
        few = len(issued)
        issued.clear()
        ingest_delivery(service, delivery(2, 200), settings.alertmanager)
        many = len(issued)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert outcomes == ["deduplicated"] * 5 + ["rejected"] * 2
    assert few == many, (few, many)
    (error_ticket,) = session.scalars(select(Ticket).where(Ticket.check_id == "alertmanager.intake_error"))
    assert error_ticket.occurrence_count == 3
