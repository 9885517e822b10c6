"""Silences and maintenance windows mute notifications of matching tickets while still recording them,
and say so in the audit trail; managed over the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from core.session import session_scope
from tests.tickets.factories import T0, Clock, TicketApp, make_event, make_settings, target
from tickets import silences
from tickets.models import NotificationOutbox, TicketAudit
from tickets.service import TicketService


def silence(session: Session, hours: float = 2, **matchers: object) -> int:
    created = silences.create(
        session,
        matchers=silences.SilenceMatchers.model_validate(matchers),
        starts_at=T0,
        ends_at=T0 + timedelta(hours=hours),
        created_by="alice",
        comment="month-end maintenance",
        now=T0,
    )
    return created.id


def test_a_matching_silence_mutes_but_the_ticket_is_recorded(session: Session) -> None:
    clock = Clock()
    service = TicketService(session, make_settings(targets=(target(min_priority="P4"),)), now=clock)
    sid = silence(session, labels={"module": "gl"}, check="gl.*")
    muted = service.ingest(make_event()).ticket
    loud = service.ingest(make_event(fingerprint="ap", labels={"module": "ap"}, check_id="ap.x")).ticket
    assert muted is not None and loud is not None and muted.status == "new"
    rows = {r.ticket_id: r for r in session.scalars(select(NotificationOutbox))}
    assert (rows[muted.id].status, rows[muted.id].silence_id) == ("muted", sid)
    assert rows[loud.id].status == "pending"
    audit = session.scalars(
        select(TicketAudit).where(TicketAudit.ticket_id == muted.id).order_by(TicketAudit.id)
    )
    assert [(a.action, a.detail.get("reason")) for a in audit] == [
        ("opened", None),
        ("muted", f"muted by silence {sid}"),
    ]


def test_a_silence_only_applies_within_its_time_range(session: Session) -> None:
    clock = Clock()
    service = TicketService(session, make_settings(targets=(target(min_priority="P4"),)), now=clock)
    sid = silence(session, hours=1, source="erp")
    clock.advance(hours=1)
    service.ingest(make_event())
    assert [r.status for r in session.scalars(select(NotificationOutbox))] == ["pending"]
    assert silences.expire(session, sid, clock()) is not None


def test_matchers_are_validated() -> None:
    with pytest.raises(ValidationError, match="at least one matcher"):
        silences.SilenceMatchers()
    with pytest.raises(ValidationError, match="Extra inputs"):
        silences.SilenceMatchers.model_validate({"severity": "P1"})


def test_silences_over_http(client: TestClient, ticket_app: TicketApp) -> None:
    agent = ticket_app.auth("agent")
    body = {
        "matchers": {"category": "data"},
        "starts_at": "2026-01-01T00:00:00Z",
        "ends_at": "2099-01-01T00:00:00Z",
        "comment": "cutover weekend",
    }
    assert client.post("/api/v1/silences", json=body, headers=ticket_app.auth("viewer")).status_code == 403
    created = client.post("/api/v1/silences", json=body, headers=agent)
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    assert [s["id"] for s in client.get("/api/v1/silences", headers=agent).json()] == [sid]
    naive = client.post("/api/v1/silences", json=body | {"starts_at": "2026-01-01T00:00:00"}, headers=agent)
    assert naive.status_code == 422
    backwards = client.post(
        "/api/v1/silences", json=body | {"ends_at": "2025-01-01T00:00:00Z"}, headers=agent
    )
    assert backwards.status_code == 422 and "must end after it starts" in backwards.text
    with session_scope(ticket_app.factory) as session:
        ticket = TicketService(session, ticket_app.settings).ingest(make_event()).ticket
        assert ticket is not None
        ticket_id = ticket.id
    assert client.delete(f"/api/v1/silences/{sid}", headers=agent).status_code == 200
    assert client.get("/api/v1/silences", headers=agent).json() == []
    assert client.delete("/api/v1/silences/424242", headers=agent).status_code == 404
    sent = client.get(f"/api/v1/tickets/{ticket_id}/notifications", headers=agent)
    assert sent.status_code == 200 and sent.json() == [], "the test app has no targets"
