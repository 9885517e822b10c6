"""The Events API v2 route: trigger / acknowledge / resolve with one dedup key per ticket, delivered over
loopback to a stand-in of the API, and PagerDuty's webhook bringing an ack or resolve made there back."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from starlette.testclient import TestClient

from tests.tickets.events_api_standin import EventsApiStandIn
from tests.tickets.factories import TicketApp, open_ticket, ticket_app_on
from tests.tickets.receiver import Receiver
from tickets.models import NotificationOutbox, Ticket, TicketAudit
from tickets.notify import build_notifier, dispatch_pending
from tickets.settings import NotificationTarget

ROUTING_KEY = "R0uting-key-of-the-integration-000001"
WEBHOOK = "/api/v1/pagerduty/webhook"


@pytest.fixture
def standin() -> Iterator[EventsApiStandIn]:
    api = EventsApiStandIn(ROUTING_KEY)
    api.thread.start()
    yield api
    api.server.shutdown()
    api.server.server_close()


def pagerduty(url: str, key: str = ROUTING_KEY, **extra: Any) -> NotificationTarget:
    return NotificationTarget.model_validate(
        {"url": url, "kind": "events_api_v2", "routing_key": key, "min_priority": "P2", **extra}
    )


@pytest.fixture
def pd_app(
    store_url: str, tmp_path: Path, standin: EventsApiStandIn, receiver: Receiver
) -> Iterator[TicketApp]:
    targets = (pagerduty(standin.url), NotificationTarget.model_validate({"url": receiver.url("chat")}))
    with ticket_app_on(store_url, tmp_path, targets=targets) as app:
        yield app


def deliver(app: TicketApp) -> None:
    report = dispatch_pending(app.factory, build_notifier(app.settings), app.settings)
    assert report.retried == report.dead == 0, report


def test_ack_and_resolve_in_pagerduty_round_trip_into_the_ticket(
    pd_app: TicketApp, standin: EventsApiStandIn, receiver: Receiver
) -> None:
    ticket_id = open_ticket(pd_app, p1=True)
    deliver(pd_app)
    key = f"hypercare-ticket-{ticket_id}"
    [trigger] = standin.received
    assert (trigger["event_action"], trigger["dedup_key"], trigger["routing_key"]) == (
        "trigger",
        key,
        ROUTING_KEY,
    )
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["summary"] == "[P1] Journal entry JE-1001 does not balance"
    assert trigger["payload"]["component"] == "gl.unbalanced_entries"
    assert trigger["links"] == [
        {"href": f"http://testserver/tickets/{ticket_id}", "text": f"Hypercare ticket #{ticket_id}"}
    ]
    assert "One-click" in receiver.received[0]["json"]["message"], "the chat target still gets its links"
    with pd_app.factory() as session:
        stored = [
            row.body
            for row in session.scalars(select(NotificationOutbox).where(NotificationOutbox.target == 0))
        ]
    assert ROUTING_KEY not in stored[0] and json.loads(stored[0])["dedup_key"] == key

    with TestClient(pd_app.app) as client:
        acked = client.post(
            WEBHOOK, json=standin.webhook(key, "incident.acknowledged"), headers=pd_app.auth("oncall")
        )
        assert acked.status_code == 200 and acked.json() == {
            "outcome": "acknowledged",
            "ticket_id": ticket_id,
            "reason": None,
        }
        again = client.post(
            WEBHOOK, json=standin.webhook(key, "incident.acknowledged"), headers=pd_app.auth("oncall")
        )
        assert again.json()["outcome"] == "ignored" and again.json()["reason"] == "ticket is acknowledged"
        deliver(pd_app)
        resolved = client.post(
            WEBHOOK, json=standin.webhook(key, "incident.resolved"), headers=pd_app.auth("oncall")
        )
        assert resolved.json()["outcome"] == "resolved"
    deliver(pd_app)

    with pd_app.factory() as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None and ticket.status == "resolved"
        trail = {
            e.action: e
            for e in session.scalars(select(TicketAudit).where(TicketAudit.ticket_id == ticket_id))
        }
    assert trail["acknowledged"].actor == trail["resolved"].actor == "pagerduty:Jane Doe"
    assert trail["resolved"].detail["reason"] == "resolved in PagerDuty (incident Q2KURS8RXYZ123)"
    assert [e["event_action"] for e in standin.received] == ["trigger", "acknowledge", "resolve"]
    assert {e["dedup_key"] for e in standin.received} == {key}, "one stable dedup key per ticket"
    assert len(standin.incidents) == 1 and standin.incidents[key].status == "resolved"
    chat = [m["json"]["title"].split(":")[0] for m in receiver.received]
    assert chat == ["[P1] Opened", "[P1] Resolved"]


def test_a_resolution_in_hypercare_resolves_the_incident(
    pd_app: TicketApp, standin: EventsApiStandIn
) -> None:
    ticket_id = open_ticket(pd_app)
    with TestClient(pd_app.app) as client:
        client.post(f"/api/v1/tickets/{ticket_id}/acknowledge", headers=pd_app.auth("agent"))
        answer = client.post(
            f"/api/v1/tickets/{ticket_id}/resolve", json={"reason": "reposted"}, headers=pd_app.auth("agent")
        )
        assert answer.status_code == 200, answer.text
    deliver(pd_app)
    assert [e["event_action"] for e in standin.received] == ["trigger", "acknowledge", "resolve"]
    assert standin.incidents[f"hypercare-ticket-{ticket_id}"].actions == ["trigger", "acknowledge", "resolve"]


def test_the_webhook_needs_a_token_with_alerts_write_and_ignores_what_is_not_ours(
    pd_app: TicketApp, standin: EventsApiStandIn
) -> None:
    ticket_id = open_ticket(pd_app)
    deliver(pd_app)
    body = standin.webhook(f"hypercare-ticket-{ticket_id}", "incident.acknowledged")
    with TestClient(pd_app.app) as client:
        assert client.post(WEBHOOK, json=body).status_code == 401
        assert client.post(WEBHOOK, json=body, headers=pd_app.auth("viewer")).status_code == 403
        foreign = json.loads(json.dumps(body))
        foreign["event"]["data"]["incident_key"] = "some-other-tool-42"
        answer = client.post(WEBHOOK, json=foreign, headers=pd_app.auth("oncall")).json()
        assert answer == {
            "outcome": "ignored",
            "ticket_id": None,
            "reason": "the incident is not a Hypercare ticket's (incident_key)",
        }
        other = {"event": {"event_type": "incident.priority_updated", "data": {}}}
        assert client.post(WEBHOOK, json=other, headers=pd_app.auth("oncall")).json()["reason"] == (
            "event type 'incident.priority_updated' is not acted on"
        )
        bad = client.post(
            WEBHOOK, content=b"[1,", headers={**pd_app.auth("oncall"), "Content-Type": "application/json"}
        )
        assert bad.status_code == 422 and "not JSON" in bad.text
    with pd_app.factory() as session:
        assert session.get(Ticket, ticket_id).status == "new"  # type: ignore[union-attr]


def test_with_a_webhook_secret_the_signature_must_match(
    store_url: str, tmp_path: Path, standin: EventsApiStandIn
) -> None:
    secret = "whsec-of-the-subscription-0123456789"
    options = {"events_api_webhook_secret": secret}
    with ticket_app_on(
        store_url, tmp_path, targets=(pagerduty(standin.url),), notification_options=options
    ) as app:
        ticket_id = open_ticket(app)
        deliver(app)
        raw = json.dumps(standin.webhook(f"hypercare-ticket-{ticket_id}", "incident.acknowledged")).encode()
        good = "v1=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        headers = {**app.auth("oncall"), "Content-Type": "application/json"}
        with TestClient(app.app) as client:
            unsigned = client.post(WEBHOOK, content=raw, headers=headers)
            assert unsigned.status_code == 401 and "X-PagerDuty-Signature" in unsigned.text
            wrong = client.post(WEBHOOK, content=raw, headers={**headers, "X-PagerDuty-Signature": "v1=00"})
            assert wrong.status_code == 401
            signed = client.post(
                WEBHOOK, content=raw, headers={**headers, "X-PagerDuty-Signature": f"v1=bad, {good}"}
            )
            assert signed.status_code == 200 and signed.json()["outcome"] == "acknowledged"


def test_a_wrong_routing_key_is_retried_without_showing_the_key(
    store_url: str, tmp_path: Path, standin: EventsApiStandIn
) -> None:
    wrong = "not-the-key-of-this-integration-000"
    with ticket_app_on(store_url, tmp_path, targets=(pagerduty(standin.url, key=wrong),)) as app:
        open_ticket(app)
        report = dispatch_pending(app.factory, build_notifier(app.settings), app.settings)
        assert report.retried == 1
        with app.factory() as session:
            [row] = session.scalars(select(NotificationOutbox)).all()
        assert row.last_error is not None and "Events API answered 400" in row.last_error
        assert "Invalid routing key" in row.last_error and wrong not in row.last_error


def test_an_events_api_target_is_checked_when_the_settings_load() -> None:
    with pytest.raises(ValidationError, match="needs a routing_key"):
        NotificationTarget.model_validate(
            {"url": "https://events.pagerduty.com/v2/enqueue", "kind": "events_api_v2"}
        )
    with pytest.raises(ValidationError, match="url is the endpoint"):
        pagerduty("pagerduty://key@service")
    with pytest.raises(ValidationError, match="routing_key belongs to an events_api_v2 target"):
        NotificationTarget.model_validate({"url": "json://x", "routing_key": "k"})
    assert "acknowledged" in pagerduty("https://events.pagerduty.com/v2/enqueue").events
