"""The served app as a whole: tickets' API plus monitor's metrics plus the outbox delivery loop."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from anomaly.events import Event
from core.session import make_engine, session_factory, session_scope
from hypercare.app import build_app
from hypercare.config import Settings
from hypercare.demo.sink import NotificationSink
from hypercare.serving import BackgroundServer
from monitor.collect import Collection, store_collection
from monitor.results import CheckResult
from tests.tickets.factories import make_event, seed_users
from tickets.service import TicketService

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_server_delivers_pending_notifications_and_exposes_check_metrics(
    store_url: str, tmp_path: Path
) -> None:
    with NotificationSink(tmp_path / "sink.jsonl") as sink:
        settings = Settings(
            database_url=store_url,
            data_dir=tmp_path,
            notifications={
                "targets": [{"url": sink.apprise_url, "min_priority": "P2"}],  # type: ignore[arg-type]
                "dispatch_interval_s": 0.2,
            },
        )
        engine = make_engine(store_url)
        factory = session_factory(engine)
        with session_scope(factory) as session:
            result = CheckResult(
                check_id="gl.unbalanced",
                source="erp",
                status="fail",
                title="Unbalanced",
                category="data",
                severity="P1",
                started_at=T0,
                finished_at=T0,
                violations=2,
            )
            store_collection(session, Collection(results=[result]))
            TicketService(session, settings).ingest(
                Event(
                    fingerprint="fp-1",
                    severity="P1",
                    category="data",
                    summary="JE-7 is unbalanced",
                    source="erp",
                    check_id="gl.unbalanced",
                )
            )
        assert sink.received() == []  # written to the outbox, not yet sent
        with BackgroundServer(build_app(settings, engine)) as url:
            deadline = time.monotonic() + 10
            while not sink.received() and time.monotonic() < deadline:
                time.sleep(0.1)
            metrics = httpx.get(f"{url}/metrics").text
        engine.dispose()
    (note,) = sink.received()
    assert "JE-7 is unbalanced" in str(note["title"]) + str(note["message"])
    assert (
        'hypercare_check_violations{category="unknown",check_id="gl.unbalanced",severity="unknown",source="erp"} 2.0'
        in metrics
    )
    assert (
        'hypercare_check_status{category="unknown",check_id="gl.unbalanced",severity="unknown",source="erp",status="fail"} 1.0'
        in metrics
    )
    assert 'hypercare_tickets_open{priority="P1"} 1.0' in metrics


def test_a_resolve_over_the_api_pages_at_once_not_at_the_next_delivery_tick(
    store_url: str, tmp_path: Path
) -> None:
    """The delivery loop runs every hour here; a request that writes a pending notification wakes it."""
    with NotificationSink(tmp_path / "sink.jsonl") as sink:
        settings = Settings(
            database_url=store_url,
            data_dir=tmp_path,
            notifications={
                "targets": [{"url": sink.apprise_url, "min_priority": "P2"}],  # type: ignore[arg-type]
                "dispatch_interval_s": 3600,
            },
        )
        engine = make_engine(store_url)
        factory = session_factory(engine)
        tokens = seed_users(factory)
        with BackgroundServer(build_app(settings, engine)) as url:
            time.sleep(0.5)  # the loop's first tick has passed: from now on only a wake-up delivers
            with session_scope(factory) as session:
                ticket = TicketService(session, settings).ingest(make_event(p1=True)).ticket
                assert ticket is not None
            assert sink.received() == [], "written by another process's session: waits for the tick"
            started = time.monotonic()
            answer = httpx.post(
                f"{url}/api/v1/tickets/{ticket.id}/resolve",
                json={"reason": "fixed"},
                headers={"Authorization": f"Bearer {tokens['oncall']}"},
            )
            assert answer.status_code == 200, answer.text
            while len(sink.received()) < 2 and time.monotonic() - started < 10:
                time.sleep(0.05)
            waited = time.monotonic() - started
        engine.dispose()
    titles = [str(note["title"]) for note in sink.received()]
    assert titles == [
        "[P1] Opened: Journal entry JE-1001 does not balance",
        "[P1] Resolved: Journal entry JE-1001 does not balance",
    ]
    assert waited < 5, f"the resolved notification took {waited:.1f} s"
