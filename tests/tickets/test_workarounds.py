"""Workarounds on tickets and the register of active ones; ratings of resolved tickets."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from core.session import session_scope
from tests.tickets.factories import Clock, TicketApp, make_event, make_settings
from tickets import workarounds
from tickets.errors import InvalidTransition
from tickets.models import TicketAudit
from tickets.service import TicketService


@pytest.fixture
def service(session: Session) -> TicketService:
    return TicketService(session, make_settings(), now=Clock())


def test_register_lists_active_workarounds_soonest_review_first(service: TicketService) -> None:
    a = service.ingest(make_event()).ticket
    b = service.ingest(make_event(fingerprint="b", summary="Bank file rejected")).ticket
    assert a is not None and b is not None
    late = workarounds.add_workaround(
        service,
        a.id,
        "alice",
        what="Post manual journal daily",
        owner="gl-team",
        review_on=date(2026, 12, 15),
    )
    soon = workarounds.add_workaround(
        service, b.id, "alice", what="Upload bank file by hand", owner="treasury", review_on=date(2026, 12, 1)
    )
    assert [(w.id, t.id) for w, t in workarounds.register(service.session)] == [
        (soon.id, b.id),
        (late.id, a.id),
    ]
    workarounds.update_workaround(service, soon.id, "bob", active=False)
    assert [w.id for w, _ in workarounds.register(service.session)] == [late.id]
    assert (soon.ended_by, soon.ended_at is not None) == ("bob", True)
    changed = service.session.scalars(
        select(TicketAudit).where(TicketAudit.action == "workaround_changed")
    ).one()
    assert changed.detail["before"]["active"] is True and changed.detail["after"]["active"] is False
    with pytest.raises(ValueError, match="needs what is done and an owner"):
        workarounds.add_workaround(service, a.id, "alice", what=" ", owner="x", review_on=date(2026, 12, 1))
    with pytest.raises(workarounds.WorkaroundNotFound):
        workarounds.update_workaround(service, 999999, "bob", active=False)


def test_rating_needs_a_resolved_ticket_and_happens_once(service: TicketService) -> None:
    ticket = service.ingest(make_event()).ticket
    assert ticket is not None
    with pytest.raises(InvalidTransition, match="is new: cannot rate it"):
        workarounds.rate(service, ticket.id, "rita", score=5)
    service.resolve(ticket.id, "alice", "fixed")
    with pytest.raises(ValueError, match="1 to 5"):
        workarounds.rate(service, ticket.id, "rita", score=6)
    rating = workarounds.rate(service, ticket.id, "alice", score=4, comment="quick", on_behalf_of="rita")
    assert (rating.score, rating.on_behalf_of) == (4, "rita")
    with pytest.raises(workarounds.AlreadyRated):
        workarounds.rate(service, ticket.id, "rita", score=1)
    assert workarounds.rating_of(service.session, ticket.id) is rating


def test_workarounds_and_ratings_over_http(client: TestClient, ticket_app: TicketApp) -> None:
    with session_scope(ticket_app.factory) as session:
        ticket = TicketService(session, ticket_app.settings).ingest(make_event()).ticket
        assert ticket is not None
        ticket_id = ticket.id
    agent, viewer = ticket_app.auth("agent"), ticket_app.auth("viewer")
    body = {"what": "Re-key invoices by hand", "owner": "ap-team", "review_on": "2026-12-01"}
    assert (
        client.post(f"/api/v1/tickets/{ticket_id}/workarounds", json=body, headers=viewer).status_code == 403
    )
    created = client.post(f"/api/v1/tickets/{ticket_id}/workarounds", json=body, headers=agent)
    assert created.status_code == 201, created.text
    register = client.get("/api/v1/workarounds", headers=viewer).json()
    assert [(w["what"], w["ticket_id"], w["ticket_priority"]) for w in register] == [
        ("Re-key invoices by hand", ticket_id, "P2")
    ]
    wid = created.json()["id"]
    ended = client.patch(f"/api/v1/workarounds/{wid}", json={"active": False}, headers=agent)
    assert ended.status_code == 200 and ended.json()["active"] is False
    assert client.get("/api/v1/workarounds", headers=viewer).json() == []
    early = client.post(f"/api/v1/tickets/{ticket_id}/rating", json={"score": 5}, headers=agent)
    assert early.status_code == 409
    client.post(f"/api/v1/tickets/{ticket_id}/resolve", json={"reason": "fixed"}, headers=agent)
    assert (
        client.post(f"/api/v1/tickets/{ticket_id}/rating", json={"score": 0}, headers=agent).status_code
        == 422
    )
    assert (
        client.post(f"/api/v1/tickets/{ticket_id}/rating", json={"score": 5}, headers=viewer).status_code
        == 403
    )
    rated = client.post(
        f"/api/v1/tickets/{ticket_id}/rating", json={"score": 5, "comment": "great"}, headers=agent
    )
    assert rated.status_code == 201 and rated.json()["rated_by"] == "agent"
    assert client.get(f"/api/v1/tickets/{ticket_id}/rating", headers=viewer).json()["score"] == 5
