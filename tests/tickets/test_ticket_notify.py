"""Outbox delivery: retries with back-off, dead letters, and apprise against a real local HTTP receiver."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.session import session_scope
from hypercare.config import Settings
from tests.tickets.factories import Clock, make_event, make_settings, target
from tests.tickets.receiver import Receiver
from tickets.models import NotificationOutbox
from tickets.notify import (
    AppriseNotifier,
    DispatchReport,
    RecordingNotifier,
    backoff,
    build_notifier,
    dispatch_pending,
)
from tickets.service import TicketService


def open_ticket(factory: sessionmaker[Session], settings: Settings, clock: Clock, **event: Any) -> int:
    with session_scope(factory) as session:
        ticket = TicketService(session, settings, now=clock).ingest(make_event(**event)).ticket
        assert ticket is not None
        return ticket.id


def outbox(factory: sessionmaker[Session]) -> list[NotificationOutbox]:
    with factory() as session:
        return list(session.scalars(select(NotificationOutbox).order_by(NotificationOutbox.id)))


def test_backoff_doubles_from_the_base_and_stops_at_an_hour() -> None:
    settings = make_settings(retry_base_s=30)
    assert [backoff(settings, n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert backoff(settings, 12) == timedelta(hours=1)


def test_due_rows_are_sent_once_and_kept(factory: sessionmaker[Session]) -> None:
    clock = Clock()
    settings = make_settings(targets=(target(min_priority="P4"), target(min_priority="P4")))
    ticket_id = open_ticket(factory, settings, clock)
    notifier = RecordingNotifier()

    report = dispatch_pending(factory, notifier, settings, now=clock)
    assert report == DispatchReport(sent=2)
    assert [s.target_index for s in notifier.sent] == [0, 1]
    assert notifier.sent[0].title == "[P2] Opened: Journal entry JE-1001 does not balance"
    assert f"https://hypercare.example/tickets/{ticket_id}" in notifier.sent[0].body
    assert [(r.status, r.attempts, r.sent_at) for r in outbox(factory)] == [("sent", 1, clock())] * 2
    assert dispatch_pending(factory, notifier, settings, now=clock) == DispatchReport()


def test_failures_are_retried_with_backoff_then_given_up(
    factory: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    settings = make_settings(targets=(target(min_priority="P4"),), max_attempts=3, retry_base_s=60)
    open_ticket(factory, settings, clock)
    notifier = RecordingNotifier(failures=["down"] * 3)

    assert dispatch_pending(factory, notifier, settings, now=clock) == DispatchReport(retried=1)
    [row] = outbox(factory)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "down")
    assert row.next_attempt_at == clock() + timedelta(seconds=60)
    assert dispatch_pending(factory, notifier, settings, now=clock) == DispatchReport(), "not due yet"

    clock.advance(seconds=60)
    assert dispatch_pending(factory, notifier, settings, now=clock) == DispatchReport(retried=1)
    assert outbox(factory)[0].next_attempt_at == clock() + timedelta(seconds=120)

    clock.advance(seconds=120)
    with caplog.at_level(logging.ERROR, logger="tickets.notify"):
        assert dispatch_pending(factory, notifier, settings, now=clock) == DispatchReport(dead=1)
    [row] = outbox(factory)
    assert (row.status, row.attempts) == ("dead", 3)
    assert any(r.levelno == logging.ERROR and "after 3 attempts" in r.getMessage() for r in caplog.records)
    clock.advance(hours=2)
    assert dispatch_pending(factory, notifier, settings, now=clock) == DispatchReport(), "dead rows stay dead"


def test_a_notifier_that_raises_counts_as_a_failed_attempt(factory: sessionmaker[Session]) -> None:
    clock = Clock()
    settings = make_settings(targets=(target(min_priority="P4"),))
    open_ticket(factory, settings, clock)

    class Broken:
        def send(self, target_index: int, title: str, body: str, notify_type: str) -> tuple[bool, str | None]:
            raise RuntimeError("plugin crashed for json://u:pw@host/x")

    assert dispatch_pending(factory, Broken(), settings, now=clock) == DispatchReport(retried=1)
    error = outbox(factory)[0].last_error or ""
    assert error.startswith("RuntimeError: plugin crashed")
    assert ":pw@" not in error


def test_limit_bounds_one_dispatch(factory: sessionmaker[Session]) -> None:
    clock = Clock()
    settings = make_settings(targets=(target(min_priority="P4"),))
    for n in range(3):
        open_ticket(factory, settings, clock, fingerprint=f"fp-{n}")
    notifier = RecordingNotifier()
    assert dispatch_pending(factory, notifier, settings, now=clock, limit=2) == DispatchReport(sent=2)
    assert dispatch_pending(factory, notifier, settings, now=clock, limit=2) == DispatchReport(sent=1)


def test_apprise_delivers_to_a_real_receiver_retries_on_500_and_gives_up(
    factory: sessionmaker[Session], receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    settings = make_settings(targets=(target(receiver.url(), "P4"),), max_attempts=3, retry_base_s=10)
    notifier = build_notifier(settings)
    assert isinstance(notifier, AppriseNotifier)
    first = open_ticket(factory, settings, clock)

    # 1. the receiver fails: a retry is scheduled, apprise's explanation kept without the URL's secret
    receiver.status = 500
    with caplog.at_level(logging.DEBUG):
        assert dispatch_pending(factory, notifier, settings, now=clock) == DispatchReport(retried=1)
    [row] = outbox(factory)
    assert row.status == "pending" and row.attempts == 1
    assert row.next_attempt_at == clock() + timedelta(seconds=10)
    assert "500" in (row.last_error or "")
    assert len(receiver.received) == 1

    # 2. the receiver is back: the next dispatch delivers
    receiver.status = 200
    clock.advance(seconds=10)
    assert dispatch_pending(factory, notifier, settings, now=clock) == DispatchReport(sent=1)
    [row] = outbox(factory)
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)
    message = receiver.received[-1]
    assert message["path"] == "/hook"
    assert message["json"]["title"] == "[P2] Opened: Journal entry JE-1001 does not balance"
    assert message["json"]["type"] == "failure"
    body = message["json"]["message"]
    assert "Priority: P2" in body and "Source: erp" in body and "Check: gl.unbalanced_entries" in body
    assert "Amount at risk: 1,250.00" in body
    assert f"https://hypercare.example/tickets/{first}" in body

    # 3. a receiver that keeps failing: dead after max_attempts, with an ERROR
    receiver.status = 500
    open_ticket(factory, settings, clock, fingerprint="fp-other", summary="Payment run stuck")
    with caplog.at_level(logging.DEBUG):
        for _ in range(3):
            dispatch_pending(factory, notifier, settings, now=clock)
            clock.advance(minutes=5)
    dead = outbox(factory)[1]
    assert (dead.status, dead.attempts) == ("dead", 3)
    assert any(r.levelno == logging.ERROR and r.name == "tickets.notify" for r in caplog.records)
    assert len(outbox(factory)) == 2, "rows are never deleted"

    # the URL is a secret: not in our logs, not in the stored errors
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("tickets"))
    stored = " ".join(r.last_error or "" for r in outbox(factory))
    for text in (logged, stored):
        assert "s3cret-token" not in text
        assert receiver.url() not in text


def test_an_unusable_target_fails_its_notifications_without_revealing_the_url() -> None:
    notifier = AppriseNotifier((target("nosuchscheme://user:s3cret@host/x"),))
    ok, error = notifier.send(0, "t", "b", "failure")
    assert not ok
    assert error is not None and "not a URL apprise understands" in error and "s3cret" not in error
    ok, error = notifier.send(5, "t", "b", "failure")
    assert (ok, error) == (False, "target 5 is no longer configured (notifications.targets)")


def test_errors_naming_a_target_url_show_its_place_in_the_settings_instead() -> None:
    url = "json://127.0.0.1:9/hook/abcdef-secret-path-token"
    notifier = AppriseNotifier((target(url),))
    assert notifier._redact(f"cannot reach {url}") == "cannot reach <notifications.targets[0].url>"


def test_two_senders_at_once_send_each_notification_once(factory: sessionmaker[Session]) -> None:
    """The server and the collectors both deliver the outbox; on SQLite (no row locks) as on PostgreSQL a
    notification one of them is sending is not sent again by the other."""
    clock = Clock()
    settings = make_settings(targets=(target(min_priority="P4"),))
    for n in range(12):
        open_ticket(factory, settings, clock, fingerprint=f"fp-{n}", summary=f"Entry JE-{n} does not balance")
    lock = threading.Lock()
    sent: list[str] = []

    class SlowNotifier:
        def send(self, target_index: int, title: str, body: str, notify_type: str) -> tuple[bool, str | None]:
            time.sleep(0.02)  # a real delivery takes a while: the other sender looks meanwhile
            with lock:
                sent.append(title)
            return True, None

    senders = [
        threading.Thread(
            target=dispatch_pending, args=(factory, SlowNotifier(), settings), kwargs={"now": clock}
        )
        for _ in range(2)
    ]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(60)
    assert sorted(sent) == sorted(set(sent)) and len(sent) == 12
    assert [r.status for r in outbox(factory)] == ["sent"] * 12
