"""The REST API, health and metrics, through Starlette's TestClient on a store of the test's own."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.testclient import TestClient

from core.errors import SchemaOutOfDate
from core.session import make_engine
from hypercare.app import ports
from tests.tickets.factories import TicketApp, make_event, make_settings
from tickets.app import create_app
from tickets.models import ApiToken

EVENTS = "/api/v1/events"


def event_json(**overrides: Any) -> dict[str, Any]:
    return make_event(**overrides).model_dump(mode="json", exclude_none=True)


def post_event(client: TestClient, app: TicketApp, role: str = "agent", **overrides: Any) -> Any:
    return client.post(EVENTS, json=event_json(**overrides), headers=app.auth(role))


def test_an_event_opens_a_ticket_then_repeats_deduplicate(client: TestClient, ticket_app: TicketApp) -> None:
    first = post_event(client, ticket_app)
    assert first.status_code == 201
    body = first.json()
    assert body["outcome"] == "opened"
    assert isinstance(body["ticket_id"], int) and isinstance(body["event_id"], int)

    again = post_event(client, ticket_app)
    assert again.status_code == 200
    assert again.json()["outcome"] == "deduplicated"
    assert again.json()["ticket_id"] == body["ticket_id"]

    gone = post_event(client, ticket_app, fingerprint="nothing-open", action="resolve")
    assert (gone.status_code, gone.json()["outcome"], gone.json()["ticket_id"]) == (200, "ignored", None)


def test_requests_without_a_valid_token_are_refused(client: TestClient, ticket_app: TicketApp) -> None:
    for headers in ({}, {"Authorization": "Bearer hc_wrong"}, {"Authorization": "Basic YWRtaW46eA=="}):
        response = client.get("/api/v1/tickets", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert "missing bearer token" in client.post(EVENTS, json=event_json()).json()["error"]["message"]


def test_the_token_records_its_last_use(client: TestClient, ticket_app: TicketApp) -> None:
    assert client.get("/api/v1/tickets", headers=ticket_app.auth("viewer")).status_code == 200
    with ticket_app.factory() as session:
        used = session.scalar(select(func.count()).where(ApiToken.last_used_at.is_not(None)))
    assert used == 1


@pytest.mark.parametrize("role", ["viewer", "manager"])
def test_roles_that_only_look_cannot_change_anything(
    client: TestClient, ticket_app: TicketApp, role: str
) -> None:
    ticket_id = post_event(client, ticket_app).json()["ticket_id"]
    refused = post_event(client, ticket_app, role=role)
    assert refused.status_code == 403
    assert refused.json()["error"]["message"].startswith(
        "this needs scope 'events:write' (roles: agent, oncall"
    )
    headers = ticket_app.auth(role)
    assert client.post(f"/api/v1/tickets/{ticket_id}/acknowledge", headers=headers).status_code == 403
    resolve = client.post(f"/api/v1/tickets/{ticket_id}/resolve", json={"reason": "x"}, headers=headers)
    assert resolve.status_code == 403
    assert client.get(f"/api/v1/tickets/{ticket_id}", headers=headers).status_code == 200


def test_bad_input_is_a_clear_422(client: TestClient, ticket_app: TicketApp) -> None:
    agent = ticket_app.auth("agent")
    missing = event_json()
    del missing["severity"]
    response = client.post(EVENTS, json=missing, headers=agent)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["loc"] == ["body", "severity"]
    assert client.post(EVENTS, json=event_json() | {"severity": "P9"}, headers=agent).status_code == 422
    assert client.post(EVENTS, json=event_json() | {"surprise": 1}, headers=agent).status_code == 422
    negative = event_json() | {"amount_at_risk": "-5"}
    assert client.post(EVENTS, json=negative, headers=agent).status_code == 422
    assert client.get("/api/v1/tickets?status=bogus", headers=agent).status_code == 422
    assert client.get("/api/v1/tickets?limit=0", headers=agent).status_code == 422
    assert client.get("/api/v1/tickets/abc", headers=agent).status_code == 422


def test_listing_filters_and_pages(client: TestClient, ticket_app: TicketApp) -> None:
    p3 = post_event(client, ticket_app, fingerprint="a", severity="P3").json()["ticket_id"]
    p1 = post_event(client, ticket_app, fingerprint="b", severity="P1").json()["ticket_id"]
    headers = ticket_app.auth("viewer")

    listing = client.get("/api/v1/tickets", headers=headers).json()
    assert [t["id"] for t in listing["items"]] == [p1, p3]
    assert (listing["total"], listing["limit"], listing["offset"]) == (2, 50, 0)
    first = listing["items"][0]
    assert first["priority"] == "P1" and first["status"] == "new"
    assert first["amount_at_risk"] == "1250.00", "money is an exact decimal string, never a float"
    only_p3 = client.get("/api/v1/tickets?priority=P3", headers=headers).json()
    assert [t["id"] for t in only_p3["items"]] == [p3]
    assert client.get("/api/v1/tickets?status=resolved", headers=headers).json()["total"] == 0
    page2 = client.get("/api/v1/tickets?limit=1&offset=1", headers=headers).json()
    assert [t["id"] for t in page2["items"]] == [p3]


def test_a_ticket_is_read_acknowledged_and_resolved(client: TestClient, ticket_app: TicketApp) -> None:
    ticket_id = post_event(client, ticket_app).json()["ticket_id"]
    post_event(client, ticket_app, evidence={"violations": 2})
    agent = ticket_app.auth("agent")

    detail = client.get(f"/api/v1/tickets/{ticket_id}", headers=agent).json()
    assert detail["occurrence_count"] == 2
    assert [o["evidence"]["violations"] for o in detail["occurrences"]] == [2, 1], "newest first"
    # an event posted through the API gets its runbook and diagnostics, like the pipeline's (once)
    assert [a["action"] for a in detail["audit"]] == ["opened", "runbook_linked", "diagnosed"]

    acked = client.post(f"/api/v1/tickets/{ticket_id}/acknowledge", headers=agent)
    assert acked.status_code == 200 and acked.json()["status"] == "acknowledged"
    assert client.post(f"/api/v1/tickets/{ticket_id}/resolve", json={}, headers=agent).status_code == 422
    blank = client.post(f"/api/v1/tickets/{ticket_id}/resolve", json={"reason": "  "}, headers=agent)
    assert blank.status_code == 422
    note = client.post(f"/api/v1/tickets/{ticket_id}/comments", json={"text": "reposting"}, headers=agent)
    assert note.status_code == 201 and note.json()["actor"] == "agent"
    resolved = client.post(f"/api/v1/tickets/{ticket_id}/resolve", json={"reason": "reposted"}, headers=agent)
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    again = client.post(f"/api/v1/tickets/{ticket_id}/resolve", json={"reason": "again"}, headers=agent)
    assert again.status_code == 409
    assert again.json()["error"] == {
        "code": "conflict",
        "message": f"ticket {ticket_id} is resolved: cannot resolve it",
        "details": None,
    }

    audit = client.get(f"/api/v1/tickets/{ticket_id}", headers=agent).json()["audit"]
    assert [(a["actor"], a["action"]) for a in audit] == [
        ("system", "opened"),
        ("system", "runbook_linked"),
        ("system", "diagnosed"),
        ("agent", "acknowledged"),
        ("agent", "commented"),
        ("agent", "resolved"),
    ]
    assert audit[-1]["detail"]["reason"] == "reposted"


def test_unknown_tickets_are_a_clear_404(client: TestClient, ticket_app: TicketApp) -> None:
    agent = ticket_app.auth("agent")
    for response in (
        client.get("/api/v1/tickets/424242", headers=agent),
        client.post("/api/v1/tickets/424242/acknowledge", headers=agent),
        client.post("/api/v1/tickets/424242/resolve", json={"reason": "x"}, headers=agent),
    ):
        assert response.status_code == 404
        assert response.json() == {
            "error": {"code": "not_found", "message": "ticket 424242 not found", "details": None}
        }


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


def test_readiness_fails_with_the_reason_on_a_store_without_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    engine = make_engine(url)
    app = create_app(make_settings(tmp_path=tmp_path, database_url=url), engine=engine)
    response = TestClient(app).get("/readyz")  # no lifespan: the app would refuse to start
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert "has no schema" in response.json()["reason"]
    assert "hypercare db upgrade" in response.json()["reason"]
    engine.dispose()


def test_the_app_refuses_to_start_on_a_store_without_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    app = create_app(make_settings(tmp_path=tmp_path, database_url=url))
    with pytest.raises(SchemaOutOfDate, match="has no schema"), TestClient(app):
        pass


def test_metrics_count_open_tickets_and_requests_by_route(client: TestClient, ticket_app: TicketApp) -> None:
    agent = ticket_app.auth("agent")
    post_event(client, ticket_app, fingerprint="a", severity="P1")
    post_event(client, ticket_app, fingerprint="b", severity="P1")
    done = post_event(client, ticket_app, fingerprint="c", severity="P3").json()["ticket_id"]
    client.post(f"/api/v1/tickets/{done}/resolve", json={"reason": "fixed"}, headers=agent)
    for ticket_id in (done, 999):
        client.get(f"/api/v1/tickets/{ticket_id}", headers=agent)
    client.get("/no/such/path")

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    registry = ticket_app.registry
    assert registry.get_sample_value("hypercare_tickets_open", {"priority": "P1"}) == 2
    assert registry.get_sample_value("hypercare_tickets_open", {"priority": "P3"}) == 0
    assert registry.get_sample_value("hypercare_tickets_open", {"priority": "P4"}) == 0
    assert 'hypercare_tickets_open{priority="P1"} 2.0' in response.text

    def requests(route: str, status: str, method: str = "GET") -> float | None:
        labels = {"method": method, "route": route, "status": status}
        return registry.get_sample_value("hypercare_http_requests_total", labels)

    assert requests("/api/v1/events", "201", "POST") == 3
    assert requests("/api/v1/tickets/{ticket_id}", "200") == 1
    assert requests("/api/v1/tickets/{ticket_id}", "404") == 1
    assert requests("unmatched", "404") == 1
    duration = {"method": "POST", "route": "/api/v1/events"}
    assert registry.get_sample_value("hypercare_http_request_duration_seconds_count", duration) == 3
    assert "/tickets/999" not in response.text, "raw paths never become labels"


def test_metrics_speak_openmetrics_when_asked(client: TestClient) -> None:
    response = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")


def test_extra_collectors_are_exposed_and_registries_are_per_app(store_url: str, tmp_path: Path) -> None:
    class Checks(Collector):
        def collect(self) -> Any:
            yield GaugeMetricFamily("hypercare_checks_failing", "Failing checks.", value=3)

    settings = make_settings(tmp_path=tmp_path, database_url=store_url)
    engine = make_engine(store_url)
    first = create_app(settings, engine=engine, extra_collectors=[Checks()], ports=ports(settings))
    second = create_app(settings, engine=engine, registry=CollectorRegistry(), ports=ports(settings))
    with TestClient(first) as one, TestClient(second) as two:
        assert "hypercare_checks_failing 3.0" in one.get("/metrics").text
        assert "hypercare_checks_failing" not in two.get("/metrics").text
    engine.dispose()


def test_the_session_secret_is_generated_once_and_private(tmp_path: Path, store_url: str) -> None:
    from tickets.app import session_secret

    settings = make_settings(tmp_path=tmp_path / "data", database_url=store_url)
    key = session_secret(settings)
    path = tmp_path / "data" / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) >= 32
    assert session_secret(settings) == key
    configured = make_settings(tmp_path=tmp_path, database_url=store_url, secret_key="x" * 40)
    assert session_secret(configured) == "x" * 40


def test_the_openapi_schema_documents_the_api(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/v1/events", "/api/v1/tickets", "/api/v1/tickets/{ticket_id}"} <= set(paths)
    assert "/tickets" not in paths and "/login" not in paths, "the UI stays out of the API schema"
