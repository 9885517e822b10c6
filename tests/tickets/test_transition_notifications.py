"""Every ticket transition a target subscribes to reaches it: opened, escalated, acknowledged, resolved,
reopened, each delivered through real apprise to the local receiver."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.session import session_scope
from tests.tickets.factories import Clock, make_event, make_settings
from tests.tickets.receiver import Receiver
from tickets import silences
from tickets.escalation import escalate
from tickets.lifecycle import Lifecycle
from tickets.models import NotificationOutbox
from tickets.notify import build_notifier, dispatch_pending
from tickets.service import TicketService
from tickets.settings import DEFAULT_EVENTS, NotificationTarget


def subscriber(
    url: str, *events: str, min_priority: str = "P4", tags: tuple[str, ...] = ()
) -> NotificationTarget:
    fields: dict[str, object] = {"url": url, "min_priority": min_priority, "tags": tags}
    if events:
        fields["events"] = events
    return NotificationTarget.model_validate(fields)


def kinds(factory: sessionmaker[Session], target: int) -> list[str]:
    with factory() as session:
        return list(
            session.scalars(
                select(NotificationOutbox.kind)
                .where(NotificationOutbox.target == target)
                .order_by(NotificationOutbox.id)
            )
        )


def test_resolving_a_ticket_delivers_a_resolved_notification_with_who_and_why(
    factory: sessionmaker[Session], receiver: Receiver
) -> None:
    clock = Clock()
    settings = make_settings(targets=(subscriber(receiver.url("team")),))
    with session_scope(factory) as session:
        ticket = TicketService(session, settings, now=clock).ingest(make_event()).ticket
        assert ticket is not None
        ticket_id = ticket.id
    clock.advance(minutes=3)
    with session_scope(factory) as session:
        TicketService(session, settings, now=clock).acknowledge(ticket_id, "alice")
    clock.advance(minutes=20)
    with session_scope(factory) as session:
        TicketService(session, settings, now=clock).resolve(ticket_id, "alice", "reposted JE-1001 balanced")

    assert dispatch_pending(factory, build_notifier(settings), settings, now=clock).sent == 2
    titles = [message["json"]["title"] for message in receiver.received]
    assert titles == [
        "[P2] Opened: Journal entry JE-1001 does not balance",
        "[P2] Resolved: Journal entry JE-1001 does not balance",
    ], "acknowledgements are opt-in: the default subscription leaves them out"
    resolved = receiver.received[-1]["json"]
    assert resolved["type"] == "success"
    assert resolved["message"].startswith("Resolved: by alice: reposted JE-1001 balanced\n")
    assert "Status: resolved" in resolved["message"]


def test_each_target_hears_only_the_transitions_it_subscribes_to(
    factory: sessionmaker[Session], receiver: Receiver
) -> None:
    clock = Clock()
    settings = make_settings(
        targets=(
            subscriber(
                receiver.url("everything"), "opened", "escalated", "acknowledged", "resolved", "reopened"
            ),
            subscriber(receiver.url("closures"), "resolved"),
            subscriber(receiver.url("default")),
        ),
        reopen_window_h=72,
    )
    with session_scope(factory) as session:
        ticket = TicketService(session, settings, now=clock).ingest(make_event()).ticket
        assert ticket is not None
        ticket_id = ticket.id
    with session_scope(factory) as session:
        TicketService(session, settings, now=clock).acknowledge(ticket_id, "alice")
    with session_scope(factory) as session:
        TicketService(session, settings, now=clock).resolve(ticket_id, "alice", "fixed")
    clock.advance(hours=1)
    with session_scope(factory) as session:
        Lifecycle(TicketService(session, settings, now=clock)).change_status(
            ticket_id, "bob", "reopened", reason="came back"
        )

    assert kinds(factory, 0) == ["opened", "acknowledged", "resolved", "reopened"]
    assert kinds(factory, 1) == ["resolved"]
    assert kinds(factory, 2) == ["opened", "resolved", "reopened"]
    report = dispatch_pending(factory, build_notifier(settings), settings, now=clock)
    assert report.sent == 8 and report.retried == report.dead == 0
    by_path: dict[str, list[str]] = {}
    for message in receiver.received:
        by_path.setdefault(message["path"], []).append(message["json"]["title"].split(":")[0])
    assert by_path == {
        "/everything": ["[P2] Opened", "[P2] Acknowledged", "[P2] Resolved", "[P2] Reopened"],
        "/closures": ["[P2] Resolved"],
        "/default": ["[P2] Opened", "[P2] Resolved", "[P2] Reopened"],
    }
    acknowledged = next(m["json"] for m in receiver.received if "Acknowledged" in m["json"]["title"])
    assert acknowledged["type"] == "info" and acknowledged["message"].startswith("Acknowledged: by alice\n")


def test_a_target_paged_by_an_escalation_also_hears_the_resolution(
    factory: sessionmaker[Session], receiver: Receiver
) -> None:
    clock = Clock()
    settings = make_settings(
        targets=(subscriber(receiver.url("manager"), min_priority="P1", tags=("managers",)),),
        escalation={"levels": {"P2": [{"unacknowledged_min": 10, "notify_tags": ["managers"]}]}},
    )
    with session_scope(factory) as session:
        ticket = TicketService(session, settings, now=clock).ingest(make_event()).ticket
        assert ticket is not None
        ticket_id = ticket.id
    assert kinds(factory, 0) == [], "a P2 is below the manager's min_priority"
    clock.advance(minutes=11)
    with session_scope(factory) as session:
        assert escalate(TicketService(session, settings, now=clock)) == 1
    with session_scope(factory) as session:
        TicketService(session, settings, now=clock).resolve(ticket_id, "alice", "fixed")
    assert kinds(factory, 0) == ["escalated", "resolved"]
    assert dispatch_pending(factory, build_notifier(settings), settings, now=clock).sent == 2
    assert [m["json"]["title"].split(":")[0] for m in receiver.received] == [
        "[P2] Escalated",
        "[P2] Resolved",
    ]


def test_a_resolution_under_a_silence_is_kept_muted_and_audited(factory: sessionmaker[Session]) -> None:
    clock = Clock()
    settings = make_settings(targets=(subscriber("json://127.0.0.1:9/x"),))
    with session_scope(factory) as session:
        ticket = TicketService(session, settings, now=clock).ingest(make_event()).ticket
        assert ticket is not None
        ticket_id = ticket.id
    with session_scope(factory) as session:
        silences.create(
            session,
            matchers=silences.SilenceMatchers(check="gl.*"),
            starts_at=clock(),
            ends_at=clock.advance(hours=1),
            created_by="admin",
            role="admin",
            limits=settings.security.silence_max_hours,
            now=clock(),
        )
    clock.advance(minutes=-30)
    with session_scope(factory) as session:
        TicketService(session, settings, now=clock).resolve(ticket_id, "alice", "fixed")
    with factory() as session:
        rows = list(session.scalars(select(NotificationOutbox).order_by(NotificationOutbox.id)))
        assert [(row.kind, row.status) for row in rows] == [("opened", "pending"), ("resolved", "muted")]
        trail = TicketService(session, settings).get(ticket_id).audit
        assert [entry.action for entry in trail][-2:] == ["resolved", "muted"]


def test_unknown_events_are_refused_naming_them() -> None:
    assert DEFAULT_EVENTS == ("opened", "reopened", "escalated", "resolved")
    with pytest.raises(ValidationError, match=r"unknown event\(s\) 'closed'.*events are opened"):
        NotificationTarget.model_validate({"url": "json://127.0.0.1:9/x", "events": ["resolved", "closed"]})
