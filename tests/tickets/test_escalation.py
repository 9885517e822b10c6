"""Escalation before a breach (ack timeout and at-risk levels: notify the next level, raise priority),
paging rules (P1/P2 at once, the rest in a digest, occurrences never), apprise tags on every send, and
delivery that survives a crash mid-send."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from core.session import session_scope
from tests.tickets.factories import Clock, make_event, make_settings, target
from tests.tickets.receiver import Receiver
from tickets.cache import store_version
from tickets.escalation import HOUSEKEEPING_LOCK, escalate, housekeeping
from tickets.models import NotificationOutbox, Ticket, TicketAudit
from tickets.notify import CLAIM_LEASE, OutboxCollector, RecordingNotifier, build_notifier, dispatch_pending
from tickets.outbox import build_digests
from tickets.service import TicketService

ONCALL = target("json://127.0.0.1:9/oncall", "P2")
LEAD = target("json://127.0.0.1:9/lead", "P1", tags=("hypercare-lead",))
ESCALATION = {
    "levels": {
        "P2": [
            {"unacknowledged_min": 15, "notify_tags": ["hypercare-lead"]},
            {"at_risk": True, "notify_tags": ["hypercare-lead"], "raise_priority": True},
        ]
    }
}


def outbox_rows(session: Session) -> list[NotificationOutbox]:
    return list(session.scalars(select(NotificationOutbox).order_by(NotificationOutbox.id)))


def test_ack_timeout_then_at_risk_escalate_in_order_and_are_audited(session: Session, clock: Clock) -> None:
    service = TicketService(session, make_settings(targets=(ONCALL, LEAD), escalation=ESCALATION), now=clock)
    ticket = service.ingest(make_event(labels={"module": "gl"})).ticket  # P2, wanted by oncall only
    assert ticket is not None
    assert [r.target for r in outbox_rows(session)] == [0]
    clock.advance(minutes=14)
    assert escalate(service) == 0
    clock.advance(minutes=1)
    assert escalate(service) == 1, "unacknowledged 15 minutes: level 1"
    assert escalate(service) == 0, "a level fires once"
    rows = outbox_rows(session)
    assert [(r.kind, r.target, r.status) for r in rows[1:]] == [("escalated", 1, "pending")]
    assert ticket.priority == "P2" and ticket.escalation_level == 1
    clock.advance(minutes=30)  # 45 of 60 response minutes: at risk
    assert escalate(service) == 1
    assert (ticket.priority, ticket.escalation_level, ticket.sla_state) == ("P1", 2, "breached")
    actions = list(
        session.scalars(
            select(TicketAudit.action).where(TicketAudit.ticket_id == ticket.id).order_by(TicketAudit.id)
        )
    )
    assert actions == ["opened", "escalated", "priority_changed", "escalated"]
    last = session.scalars(
        select(TicketAudit).where(TicketAudit.action == "escalated").order_by(TicketAudit.id.desc())
    ).first()
    assert last is not None and last.detail["priority"] == {"before": "P2", "after": "P1"}
    assert "SLA at risk" in last.detail["reason"]


def test_acknowledged_tickets_do_not_escalate_on_the_ack_timeout(session: Session, clock: Clock) -> None:
    service = TicketService(session, make_settings(targets=(ONCALL, LEAD), escalation=ESCALATION), now=clock)
    ticket = service.ingest(make_event()).ticket
    assert ticket is not None
    service.acknowledge(ticket.id, "alice")
    clock.advance(minutes=20)
    assert escalate(service) == 0


def test_default_settings_never_change_a_priority(session: Session, clock: Clock) -> None:
    service = TicketService(session, make_settings(targets=(ONCALL,)), now=clock)
    ticket = service.ingest(make_event()).ticket
    assert ticket is not None
    clock.advance(days=10)
    assert escalate(service) == 0
    assert (ticket.priority, ticket.sla_state) == ("P2", "breached")


def test_occurrences_never_page_and_low_priorities_wait_for_one_digest(
    session: Session, clock: Clock
) -> None:
    everything = target("json://127.0.0.1:9/all", "P4")
    settings = make_settings(targets=(everything,))
    service = TicketService(session, settings, now=clock)
    service.ingest(make_event())  # P2: paged
    for _ in range(3):
        service.ingest(make_event())  # occurrences: nothing
    service.ingest(make_event(fingerprint="p3-a", severity="P3", summary="Slow report"))
    service.ingest(make_event(fingerprint="p4-b", severity="P4", summary="Typo on a form"))
    assert [(r.kind, r.status) for r in outbox_rows(session)] == [
        ("opened", "pending"),
        ("opened", "held"),
        ("opened", "held"),
    ]
    clock.advance(seconds=3599)
    assert build_digests(session, settings, now=clock()) == []
    clock.advance(seconds=1)
    [digest] = build_digests(session, settings, now=clock())
    assert (digest.kind, digest.status, digest.ticket_id) == ("digest", "pending", None)
    assert "Slow report" in digest.body and "Typo on a form" in digest.body
    assert [r.status for r in outbox_rows(session)[:3]] == ["pending", "digested", "digested"]
    assert build_digests(session, settings, now=clock()) == [], "nothing listed twice"


def test_each_send_reaches_only_its_own_target_through_apprise_tags(
    factory: sessionmaker[Session], receiver: Receiver, clock: Clock
) -> None:
    url = f"json://127.0.0.1:{receiver.port}"
    settings = make_settings(
        targets=(
            target(f"{url}/p1-only", "P1"),
            target(f"{url}/all", "P4"),
            target(f"{url}/gl", "P4", ("module=gl",)),
        )
    )
    with session_scope(factory) as session:
        TicketService(session, settings, now=clock).ingest(make_event(labels={"module": "ap"}))
    assert dispatch_pending(factory, build_notifier(settings), settings, now=clock).sent == 1
    assert [r["path"] for r in receiver.received] == ["/all"]
    with factory() as session:
        [row] = outbox_rows(session)
    assert row.tags == ["hypercare-target-1"]


class Killed(BaseException):
    """What a SIGKILL looks like from inside: the send never returns."""


class DiesMidSend:
    def send(self, target_index: int, title: str, body: str, notify_type: str) -> tuple[bool, str | None]:
        raise Killed


def test_a_claimed_but_unfinished_row_is_retried_and_sent_once(
    factory: sessionmaker[Session], clock: Clock
) -> None:
    settings = make_settings(targets=(target(min_priority="P4"),))
    with session_scope(factory) as session:
        TicketService(session, settings, now=clock).ingest(make_event())
    with pytest.raises(Killed):
        dispatch_pending(factory, DiesMidSend(), settings, now=clock)
    with factory() as session:
        [row] = outbox_rows(session)
        assert (row.status, row.attempts) == ("pending", 0), "nothing recorded: it may not have gone out"
        assert row.next_attempt_at == clock() + CLAIM_LEASE, "the dead sender's claim holds for its lease"
    survivor = RecordingNotifier()
    assert dispatch_pending(factory, survivor, settings, now=clock).sent == 0, "not while another may send it"
    clock.advance(seconds=CLAIM_LEASE.total_seconds())
    assert dispatch_pending(factory, survivor, settings, now=clock).sent == 1
    assert dispatch_pending(factory, survivor, settings, now=clock).sent == 0
    assert len(survivor.sent) == 1


def test_housekeeping_and_delivery_metrics(factory: sessionmaker[Session], clock: Clock) -> None:
    settings = make_settings(targets=(target(min_priority="P4"),))
    with session_scope(factory) as session:
        service = TicketService(session, settings, now=clock)
        service.ingest(make_event(fingerprint="low", severity="P4"))
        done = service.ingest(make_event()).ticket
        assert done is not None
        service.resolve(done.id, "alice", "fixed")
    clock.advance(days=8)
    report = housekeeping(factory, settings, now=clock)
    assert (report.closed, report.digests) == (1, 1)
    with factory() as session:
        assert session.get(Ticket, done.id).status == "closed"  # type: ignore[union-attr]
    dispatch_pending(factory, RecordingNotifier(), settings, now=clock)
    registry = CollectorRegistry()
    registry.register(OutboxCollector(factory))
    value = registry.get_sample_value
    assert value("hypercare_notifications_total", {"status": "sent"}) == 3  # P2 page, its resolution, digest
    assert value("hypercare_notifications_total", {"status": "digested"}) == 1
    assert value("hypercare_notifications_total", {"status": "dead"}) == 0


def test_every_open_ticket_is_escalated_however_many_there_are(
    factory: sessionmaker[Session], clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass walks the whole open queue batch by batch (it used to look at the first batch only: the
    ticket opened last in a busy go-live never escalated)."""
    monkeypatch.setattr("tickets.escalation.BATCH", 2)
    settings = make_settings(targets=(ONCALL, LEAD), escalation=ESCALATION)
    with session_scope(factory) as session:
        service = TicketService(session, settings, now=clock)
        ids = [service.ingest(make_event(fingerprint=f"many-{n}")).ticket.id for n in range(5)]  # type: ignore[union-attr]
    clock.advance(minutes=15)
    report = housekeeping(factory, settings, now=clock)
    assert report.escalated == 5
    with factory() as session:
        levels = {t.id: t.escalation_level for t in session.scalars(select(Ticket).where(Ticket.id.in_(ids)))}
    assert levels == dict.fromkeys(ids, 1)
    clock.advance(minutes=1)
    with session_scope(factory) as session:
        assert escalate(TicketService(session, settings, now=clock), limit=2) == 0, "each level fires once"


def test_one_process_at_a_time_housekeeps_a_shared_store(
    factory: sessionmaker[Session], clock: Clock
) -> None:
    """Every server worker runs the delivery loop; on PostgreSQL (the store several workers share) only
    the one holding the housekeeping lock walks the queue, the others skip that tick."""
    settings = make_settings(targets=(target(min_priority="P4"),))
    with session_scope(factory) as session:
        service = TicketService(session, settings, now=clock)
        done = service.ingest(make_event()).ticket
        assert done is not None
        service.resolve(done.id, "alice", "fixed")
    clock.advance(days=8)
    engine: Engine = factory.kw["bind"]
    if engine.dialect.name != "postgresql":
        assert not housekeeping(factory, settings, now=clock).skipped  # SQLite: one serving process
        return
    with engine.connect() as other:  # another worker, mid-pass
        assert other.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": HOUSEKEEPING_LOCK}).scalar()
        report = housekeeping(factory, settings, now=clock)
        assert report.skipped and report.closed == 0
        other.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": HOUSEKEEPING_LOCK})
        other.commit()
    report = housekeeping(factory, settings, now=clock)
    assert not report.skipped and report.closed == 1
    assert not housekeeping(factory, settings, now=clock).skipped, "the lock is released after each pass"


def test_housekeeping_moves_the_tickets_version_only_when_it_changes_a_ticket(
    factory: sessionmaker[Session], clock: Clock
) -> None:
    """The queue's response caches see what escalation and auto-close write (tickets/cache.py)."""
    settings = make_settings(targets=(ONCALL, LEAD), escalation=ESCALATION)
    with session_scope(factory) as session:
        TicketService(session, settings, now=clock).ingest(make_event(fingerprint="kept-fresh"))

    def version() -> int | None:
        with factory() as session:
            return store_version(session)

    before = version()
    assert before is not None
    assert housekeeping(factory, settings, now=clock).escalated == 0
    assert version() == before, "a pass that changes nothing moves nothing"
    clock.advance(minutes=15)
    assert housekeeping(factory, settings, now=clock).escalated == 1
    after = version()
    assert after is not None and after > before
