"""The lifecycle: allowed transitions (and clear 409s for the rest), waiting reasons, reopen and close,
assignment, watchers, links and auto-close; service-level and over HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from core.session import session_scope
from tests.tickets.factories import Clock, TicketApp, make_event
from tickets.errors import InvalidTransition
from tickets.lifecycle import Lifecycle, UnknownUser, auto_close
from tickets.models import Ticket, TicketAudit
from tickets.service import TRANSITIONS, TicketService


def opened(service: TicketService, **event: Any) -> Ticket:
    ticket = service.ingest(make_event(**event)).ticket
    assert ticket is not None
    return ticket


def audit(session: Session, ticket_id: int) -> list[TicketAudit]:
    return list(
        session.scalars(
            select(TicketAudit).where(TicketAudit.ticket_id == ticket_id).order_by(TicketAudit.id)
        )
    )


def test_the_full_path_new_to_closed_is_audited_with_reasons(
    service: TicketService, session: Session
) -> None:
    ticket = opened(service)
    life = Lifecycle(service)
    life.change_status(ticket.id, "alice", "acknowledged")
    life.change_status(ticket.id, "alice", "in_progress")
    life.change_status(ticket.id, "alice", "waiting", waiting_reason="reporter")
    life.change_status(ticket.id, "alice", "in_progress")
    life.change_status(ticket.id, "alice", "resolved", reason="entry reversed")
    life.change_status(ticket.id, "bob", "closed", reason="confirmed by finance")
    assert (ticket.status, ticket.closed_at is not None, ticket.open_fingerprint) == ("closed", True, None)
    rows = audit(session, ticket.id)
    assert [r.action for r in rows] == [
        "opened",
        "acknowledged",
        "status_changed",
        "status_changed",
        "status_changed",
        "resolved",
        "status_changed",
    ]
    waiting = rows[3].detail
    assert waiting["before"]["status"] == "in_progress" and waiting["after"]["waiting_reason"] == "reporter"
    assert rows[-1].actor == "bob" and rows[-1].detail["reason"] == "confirmed by finance"


@pytest.mark.parametrize(("start", "to"), [("new", "in_progress"), ("new", "waiting"), ("new", "closed")])
def test_disallowed_transitions_are_refused_naming_the_status(
    service: TicketService, start: str, to: str
) -> None:
    ticket = opened(service)
    assert to not in TRANSITIONS[start]
    with pytest.raises(InvalidTransition, match=f"ticket {ticket.id} is new: cannot move it to {to}"):
        Lifecycle(service).change_status(ticket.id, "alice", to, reason="x", waiting_reason="vendor")


def test_closed_is_final_and_waiting_needs_a_known_reason(service: TicketService) -> None:
    ticket = opened(service)
    life = Lifecycle(service)
    life.change_status(ticket.id, "alice", "acknowledged")
    with pytest.raises(ValueError, match="vendor, reporter, other_team"):
        life.change_status(ticket.id, "alice", "waiting", waiting_reason="lunch")
    life.change_status(ticket.id, "alice", "resolved", reason="done")
    with pytest.raises(ValueError, match="closing needs a reason"):
        life.change_status(ticket.id, "alice", "closed", reason="  ")
    life.change_status(ticket.id, "alice", "closed", reason="done")
    for to in ("reopened", "in_progress", "resolved"):
        with pytest.raises(InvalidTransition, match="is closed"):
            life.change_status(ticket.id, "alice", to, reason="again")


def test_reopen_by_hand_resumes_the_sla_and_notifies(service: TicketService, clock: Clock) -> None:
    ticket = opened(service)
    life = Lifecycle(service)
    service.resolve(ticket.id, "alice", "fixed")
    clock.advance(hours=1)
    life.change_status(ticket.id, "alice", "reopened", reason="came back")
    assert (ticket.status, ticket.reopen_count, ticket.open_fingerprint) == (
        "reopened",
        1,
        ticket.fingerprint,
    )
    assert ticket.sla_clock_at == clock()
    again = service.ingest(make_event())
    assert again.outcome == "deduplicated" and again.ticket is ticket


def test_auto_close_closes_only_tickets_resolved_long_enough_ago(
    service: TicketService, clock: Clock
) -> None:
    old, recent, still_open = (
        opened(service),
        opened(service, fingerprint="b"),
        opened(service, fingerprint="c"),
    )
    service.resolve(old.id, "alice", "fixed")
    clock.advance(days=6)
    service.resolve(recent.id, "alice", "fixed")
    clock.advance(days=1, seconds=1)  # old resolved 7 days + 1 s ago (auto_close_days = 7)
    assert auto_close(service) == 1
    assert (old.status, recent.status, still_open.status) == ("closed", "resolved", "new")
    assert audit(service.session, old.id)[-1].detail["reason"] == "auto-closed 7 days after resolution"


def test_assign_watch_and_link(service: TicketService, session: Session) -> None:
    from tickets.auth import create_user

    create_user(session, "carol", "a-long-password-1", "agent")
    ticket, other = opened(service), opened(service, fingerprint="other")
    life = Lifecycle(service)
    life.assign(ticket.id, "alice", "carol")
    assert ticket.assignee_id is not None
    with pytest.raises(UnknownUser, match="no active user named 'nobody'"):
        life.assign(ticket.id, "alice", "nobody")
    assert life.watch(ticket.id, "alice", "carol") == ["carol"]
    assert life.watch(ticket.id, "alice", "carol") == ["carol"], "watching twice is one watcher"
    assert life.watch(ticket.id, "alice", "carol", watching=False) == []
    link = life.link(ticket.id, "alice", other.id, "relates")
    assert [x.id for x in life.links(other.id)] == [link.id]
    with pytest.raises(ValueError, match="itself"):
        life.link(ticket.id, "alice", ticket.id, "relates")
    actions = [r.action for r in audit(session, ticket.id)]
    assert actions[1:] == ["assigned", "watcher_added", "watcher_removed", "linked"]


# --- over HTTP ----------------------------------------------------------------------------------------


def post_event(client: TestClient, app: TicketApp, **overrides: Any) -> int:
    """A ticket opened by the in-process intake (the events API is tested on its own)."""
    with session_scope(app.factory) as session:
        ticket = TicketService(session, app.settings).ingest(make_event(**overrides)).ticket
        assert ticket is not None
        return ticket.id


def test_status_priority_and_assignment_over_http(client: TestClient, ticket_app: TicketApp) -> None:
    ticket_id = post_event(client, ticket_app)
    agent = ticket_app.auth("agent")
    base = f"/api/v1/tickets/{ticket_id}"
    bad = client.post(f"{base}/status", json={"status": "closed", "reason": "x"}, headers=agent)
    assert bad.status_code == 409 and "is new: cannot move it to closed" in bad.text, bad.text
    assert client.post(f"{base}/status", json={"status": "acknowledged"}, headers=agent).json()["status"] == (
        "acknowledged"
    )
    waiting = client.post(
        f"{base}/status", json={"status": "waiting", "waiting_reason": "vendor"}, headers=agent
    )
    assert waiting.status_code == 200 and waiting.json()["sla_state"] == "paused"
    assert client.post(f"{base}/status", json={"status": "waiting"}, headers=agent).status_code == 409
    no_reason = client.post(f"{base}/priority", json={"priority": "P1"}, headers=agent)
    assert no_reason.status_code == 422
    raised = client.post(f"{base}/priority", json={"priority": "P1", "reason": "close day"}, headers=agent)
    assert raised.status_code == 200 and raised.json()["priority"] == "P1"
    assigned = client.post(f"{base}/assign", json={"assignee": "manager"}, headers=agent)
    assert assigned.json()["assigned_to"] == "manager"
    assert client.post(f"{base}/assign", json={"assignee": "ghost"}, headers=agent).status_code == 404
    viewer = client.post(f"{base}/status", json={"status": "in_progress"}, headers=ticket_app.auth("viewer"))
    assert viewer.status_code == 403
    view = client.get(f"{base}/sla", headers=ticket_app.auth("viewer")).json()
    assert view["resolution"]["state"] == "paused" and view["waiting_reason"] == "vendor"
    assert client.get("/api/v1/tickets/999999/sla", headers=agent).status_code == 404
