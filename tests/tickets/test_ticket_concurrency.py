"""Two writers, one exception: the store's unique open_fingerprint keeps it to one ticket."""

from __future__ import annotations

import logging
import threading
from datetime import datetime

import pytest
from sqlalchemy import Engine, func, select

from core.session import session_factory, session_scope
from tests.tickets.factories import make_event, make_settings, target
from tickets.models import EventRecord, NotificationOutbox, Ticket
from tickets.service import IngestResult, TicketService


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_two_writers_opening_one_fingerprint_make_one_ticket(
    store_engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Both writers find no open ticket, then both insert: PostgreSQL holds the second INSERT on the unique
    # index until the first commits, then refuses it; the second writer must turn that into an occurrence.
    settings = make_settings(targets=(target(min_priority="P4"),))
    factory = session_factory(store_engine)
    both_looked = threading.Barrier(2, timeout=20)
    original = TicketService._recently_resolved

    def after_both_looked(self: TicketService, fingerprint: str, now: datetime) -> Ticket | None:
        both_looked.wait()
        return original(self, fingerprint, now)

    monkeypatch.setattr(TicketService, "_recently_resolved", after_both_looked)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            with session_scope(factory) as session:
                result: IngestResult = TicketService(session, settings).ingest(make_event())
            outcomes.append(result.outcome)
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(2)]
    with caplog.at_level(logging.INFO, logger="tickets.service"):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)

    assert errors == []
    assert sorted(outcomes) == ["deduplicated", "opened"]
    assert "ticket opened concurrently; deduplicating" in caplog.messages, "the race really happened"
    with factory() as session:
        ticket = session.scalars(select(Ticket)).one()
        assert ticket.occurrence_count == 2
        assert session.scalar(select(func.count()).select_from(EventRecord)) == 2
        assert session.scalar(select(func.count()).select_from(NotificationOutbox)) == 1
