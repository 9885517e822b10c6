"""Signed one-click links in notifications: delivered through real apprise, shown before they act, used once,
expiring, audited; tampered, expired and used links get a clear error page; a real browser uses one."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from core.db import utcnow
from core.session import session_scope
from tests.tickets.conftest import LiveServer
from tests.tickets.factories import T0, Clock, TicketApp, make_event, open_ticket, ticket_app_on
from tests.tickets.receiver import Receiver
from tickets import action_links
from tickets.action_links import Link, LinkExpired, LinkInvalid
from tickets.models import NotificationOutbox, Silence, Ticket, TicketAudit
from tickets.notify import build_notifier, dispatch_pending
from tickets.oncall_models import ActionLinkUse
from tickets.service import TicketService
from tickets.settings import NotificationTarget

KEY = b"k" * 32
LINK_RE = re.compile(r"^(Acknowledge|Resolve|Silence 2 h): http://testserver(/act/\S+)$", re.MULTILINE)


def test_a_signed_link_verifies_and_a_changed_one_does_not() -> None:
    link = action_links.new_link(42, "resolve", 1, T0 + timedelta(hours=24))
    token = action_links.sign(KEY, link)
    assert action_links.verify(KEY, token, T0) == link
    payload, signature = token.split(".")
    forged = action_links.sign(KEY, Link(43, "resolve", 1, link.expires_at, link.nonce)).split(".")[0]
    for bad in (f"{forged}.{signature}", token[:-2], "not-a-token", f"{payload}.{signature}x"):
        with pytest.raises(LinkInvalid, match="not valid: it was changed"):
            action_links.verify(KEY, bad, T0)
    with pytest.raises(LinkInvalid):
        action_links.verify(b"another key of 32 bytes or more..", token, T0)
    with pytest.raises(LinkExpired, match="expired at 2026-11-24 09:00 UTC"):
        action_links.verify(KEY, token, T0 + timedelta(hours=24))


def links_in(message: str) -> dict[str, str]:
    return {label.split()[0].lower(): path for label, path in LINK_RE.findall(message)}


def delivered_links(ticket_app: TicketApp, receiver: Receiver) -> dict[str, str]:
    settings = ticket_app.settings
    dispatch_pending(ticket_app.factory, build_notifier(settings), settings)
    [message] = [m for m in receiver.received if "Opened" in m["json"]["title"]]
    body = message["json"]["message"]
    assert "One-click (each link works once, until" in body
    return links_in(body)


@pytest.fixture
def linked_app(store_url: str, tmp_path: Path, receiver: Receiver) -> Any:
    target = NotificationTarget.model_validate(
        {"url": receiver.url("phone"), "name": "oncall-phone", "min_priority": "P4"}
    )
    with ticket_app_on(store_url, tmp_path, targets=(target,)) as app:
        yield app


def test_an_acknowledge_link_shows_what_it_does_then_acts_once_and_is_audited(
    linked_app: TicketApp, receiver: Receiver
) -> None:
    ticket_id = open_ticket(linked_app)
    with TestClient(linked_app.app, base_url="http://testserver") as client:
        links = delivered_links(linked_app, receiver)
        assert set(links) == {"acknowledge", "resolve", "silence"}
        with linked_app.factory() as session:
            stored = " ".join(row.body for row in session.scalars(select(NotificationOutbox)))
        assert "/act/" not in stored, "links are signed at delivery, never stored"

        page = client.get(links["acknowledge"])
        assert page.status_code == 200
        assert f"Acknowledge ticket #{ticket_id}: you take it" in page.text
        assert "link:oncall-phone" in page.text
        with linked_app.factory() as session:
            assert session.get(Ticket, ticket_id).status == "new", "a GET changes nothing"  # type: ignore[union-attr]

        done = client.post(links["acknowledge"])
        assert done.status_code == 200 and f"Ticket #{ticket_id} acknowledged." in done.text
        again = client.post(links["acknowledge"])
        assert again.status_code == 410 and "already been used; each link works once" in again.text
        assert client.get(links["acknowledge"]).status_code == 410

    with linked_app.factory() as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None and ticket.status == "acknowledged"
        trail = list(session.scalars(select(TicketAudit).where(TicketAudit.ticket_id == ticket_id)))
        ack, used = [entry for entry in trail if entry.action in ("acknowledged", "link_used")]
        assert (ack.actor, used.actor) == ("link:oncall-phone", "link:oncall-phone")
        assert used.detail["link_action"] == "acknowledge" and used.detail["address"] == "testclient"
        [use] = session.scalars(select(ActionLinkUse)).all()
        assert (use.ticket_id, use.action, use.used_by) == (ticket_id, "acknowledge", "link:oncall-phone")


def test_a_resolve_link_needs_a_reason_and_sends_the_resolved_notification(
    linked_app: TicketApp, receiver: Receiver
) -> None:
    ticket_id = open_ticket(linked_app)
    with TestClient(linked_app.app, base_url="http://testserver") as client:
        links = delivered_links(linked_app, receiver)
        page = client.get(links["resolve"])
        assert 'name="reason"' in page.text and "with the reason you give below" in page.text
        refused = client.post(links["resolve"], data={"reason": "  "})
        assert refused.status_code == 400 and "resolving needs a reason" in refused.text
        done = client.post(links["resolve"], data={"reason": "reposted balanced"})
        assert done.status_code == 200 and f"Ticket #{ticket_id} resolved." in done.text
        late_ack = client.post(links["acknowledge"])
        assert late_ack.status_code == 409 and "resolved" in late_ack.text

    settings = linked_app.settings
    dispatch_pending(linked_app.factory, build_notifier(settings), settings)
    resolved = receiver.received[-1]["json"]
    assert resolved["title"].startswith("[P2] Resolved:")
    assert resolved["message"].startswith("Resolved: by link:oncall-phone: reposted balanced")
    assert "/act/" not in resolved["message"], "a resolution carries no links"


def test_a_silence_link_mutes_the_ticket_for_the_configured_hours(
    linked_app: TicketApp, receiver: Receiver
) -> None:
    ticket_id = open_ticket(linked_app, p1=True)
    with TestClient(linked_app.app, base_url="http://testserver") as client:
        links = delivered_links(linked_app, receiver)
        assert "for 2 h" in client.get(links["silence"]).text
        assert client.post(links["silence"]).status_code == 200
    with linked_app.factory() as session:
        [silence] = session.scalars(select(Silence)).all()
        assert silence.ends_at - silence.starts_at == timedelta(hours=2)
        assert silence.matchers == {"source": "erp", "check": "gl.unbalanced_entries", "priorities": ["P1"]}
        assert silence.created_by == "link:oncall-phone"
    with session_scope(linked_app.factory) as session:
        TicketService(session, linked_app.settings).resolve(ticket_id, "alice", "fixed")
    with linked_app.factory() as session:
        kinds = [
            (r.kind, r.status)
            for r in session.scalars(select(NotificationOutbox).order_by(NotificationOutbox.id))
        ]
    assert kinds == [("opened", "sent"), ("resolved", "muted")]


def test_tampered_and_expired_links_get_an_error_page(linked_app: TicketApp, receiver: Receiver) -> None:
    open_ticket(linked_app)
    with TestClient(linked_app.app, base_url="http://testserver") as client:
        links = delivered_links(linked_app, receiver)
        path = links["acknowledge"]
        tampered = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
        for answer in (client.get(tampered), client.post(tampered)):
            assert answer.status_code == 400 and "This link is not valid" in answer.text
        key = action_links.link_key(linked_app.settings)
        ticket_id = action_links.verify(key, path.removeprefix("/act/"), utcnow()).ticket_id
        old = action_links.sign(
            key, action_links.new_link(ticket_id, "acknowledge", 0, utcnow() - timedelta(seconds=1))
        )
        answer = client.post(f"/act/{old}")
        assert answer.status_code == 410 and "This link expired at" in answer.text
    with linked_app.factory() as session:
        assert session.scalars(select(ActionLinkUse)).all() == []


def test_an_on_call_engineer_resolves_from_the_link_in_a_real_browser(
    live_server: LiveServer, browser_page: Any
) -> None:
    with session_scope(live_server.factory) as session:
        ticket = (
            TicketService(session, live_server.settings, now=Clock(utcnow()))
            .ingest(make_event(p1=True))
            .ticket
        )
        assert ticket is not None
        ticket_id = ticket.id
    key = action_links.link_key(live_server.settings)
    footer = action_links.footer(live_server.settings, key, ticket_id, 0, utcnow())
    resolve_url = next(line.split(": ", 1)[1] for line in footer.splitlines() if line.startswith("Resolve:"))

    page = browser_page
    page.goto(resolve_url)
    assert (
        page.locator("#link-what").inner_text()
        == f"Resolve ticket #{ticket_id} with the reason you give below."
    )
    page.click("#link-do")  # the reason is required: the browser refuses the empty form
    assert page.url == resolve_url
    page.fill("#reason", "restarted the integration worker")
    page.click("#link-do")
    assert page.locator("#link-done").inner_text() == f"Ticket #{ticket_id} resolved."
    page.goto(resolve_url)
    assert "already been used" in page.locator("p.error").inner_text()
    with live_server.factory() as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None and ticket.status == "resolved"
        reasons = [
            e.detail.get("reason")
            for e in session.scalars(select(TicketAudit).where(TicketAudit.action == "resolved"))
        ]
        assert reasons == ["restarted the integration worker"]
