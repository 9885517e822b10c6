"""Alertmanager webhooks (the three reference payloads) into tickets, over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select
from starlette.testclient import TestClient

from anomaly.events import Event
from tests.tickets.factories import TicketApp, make_settings, ticket_app_on
from tickets.alertmanager import map_labels
from tickets.app import create_app
from tickets.models import AlertmanagerAlert, EventRecord, Ticket, TicketAudit
from tickets.service import IngestResult, TicketService
from tickets.settings import AlertmanagerSettings

EXAMPLES = Path("/work/shared/reference/alertmanager_webhook_examples.json")
URL = "/api/v1/alertmanager"


@pytest.fixture(scope="module")
def examples() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLES.read_text(encoding="utf-8"))
    return data


def payload(examples: dict[str, Any], name: str) -> dict[str, Any]:
    return copy.deepcopy(examples[name])


def post(client: TestClient, app: TicketApp, body: Any, role: str = "oncall") -> Any:
    return client.post(URL, json=body, headers=app.auth(role))


def tickets(app: TicketApp) -> list[Ticket]:
    with app.factory() as session:
        return list(session.scalars(select(Ticket).order_by(Ticket.id)))


def outcomes(response: Any) -> list[str]:
    return [a["outcome"] for a in response.json()["alerts"]]


@pytest.fixture
def am_app(store_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[TicketApp]:
    """Like ``ticket_app`` but with Alertmanager settings given by the test (``@pytest.mark.parametrize``
    is not needed: tests call ``am_app`` through ``indirect`` or use the default)."""
    overrides: dict[str, Any] = getattr(request, "param", {})
    with ticket_app_on(store_url, tmp_path, alertmanager=overrides) as app:
        yield app


@pytest.fixture
def am_client(am_app: TicketApp) -> Iterator[TestClient]:
    with TestClient(am_app.app, base_url="http://testserver") as test_client:
        yield test_client


def test_firing_alerts_open_one_ticket_each_and_repeats_change_nothing(
    am_client: TestClient, am_app: TicketApp, examples: dict[str, Any]
) -> None:
    first = post(am_client, am_app, payload(examples, "firing"))
    assert first.status_code == 200, first.text
    assert outcomes(first) == ["opened", "opened"]
    assert [a["fingerprint"] for a in first.json()["alerts"]] == ["7c1d3a0f5e9b2d41", "a90e44c2b7f31d08"]
    opened = tickets(am_app)
    assert [t.fingerprint for t in opened] == ["am-7c1d3a0f5e9b2d41", "am-a90e44c2b7f31d08"]
    finance = opened[0]
    # no `source` label: the scrape job (`job="erp-backend"`) is not taken for the monitored system
    assert (finance.priority, finance.category, finance.source) == ("P1", "technical", "alertmanager")
    assert finance.description == 'Alertmanager label severity="critical" maps to P1.'  # why this priority
    assert finance.check_id == "alertmanager.ErpPostingQueueStuck"
    assert finance.title == "Posting queue finance is stuck"
    assert finance.labels["queue"] == "finance" and finance.entity["instance"] == "erp-app-01:8000"

    # repeat_interval re-send and a retry of the same delivery: no ticket, no occurrence
    for _ in range(2):
        again = post(am_client, am_app, payload(examples, "firing"))
        assert again.status_code == 200 and outcomes(again) == ["repeat", "repeat"]
    after = tickets(am_app)
    assert len(after) == 2 and [t.occurrence_count for t in after] == [1, 1]
    with am_app.factory() as session:
        counts = session.scalars(select(AlertmanagerAlert.notifications).order_by(AlertmanagerAlert.id))
        assert list(counts) == [3, 3]


def test_a_resolved_alert_resolves_only_its_own_ticket_once(
    am_client: TestClient, am_app: TicketApp, examples: dict[str, Any]
) -> None:
    post(am_client, am_app, payload(examples, "firing"))
    resolved = post(am_client, am_app, payload(examples, "resolved"))
    assert resolved.status_code == 200 and outcomes(resolved) == ["resolved"]
    finance, logistics = tickets(am_app)
    assert finance.status == "resolved" and logistics.status == "new"
    again = post(am_client, am_app, payload(examples, "resolved"))
    assert outcomes(again) == ["repeat"]
    with am_app.factory() as session:
        row = session.scalars(
            select(AlertmanagerAlert).where(AlertmanagerAlert.ticket_id == finance.id)
        ).one()
        assert row.status == "resolved" and row.ends_at is not None and row.ends_at.minute == 41


def test_a_new_episode_after_resolution_reopens_the_ticket(
    am_client: TestClient, am_app: TicketApp, examples: dict[str, Any]
) -> None:
    post(am_client, am_app, payload(examples, "firing"))
    post(am_client, am_app, payload(examples, "resolved"))
    refire = payload(examples, "firing")
    refire["alerts"] = refire["alerts"][:1]
    refire["alerts"][0]["startsAt"] = "2026-11-23T10:05:00.5Z"
    response = post(am_client, am_app, refire)
    assert outcomes(response) == ["reopened"]
    assert len(tickets(am_app)) == 2 and tickets(am_app)[0].status == "reopened"


@pytest.mark.parametrize("am_app", [{"source_label": "job"}], indirect=True)
def test_the_legacy_payload_with_truncated_alerts_and_unknown_fields_is_accepted(
    am_client: TestClient, am_app: TicketApp, examples: dict[str, Any]
) -> None:
    body = payload(examples, "legacy_pre_0_32_firing_truncated")
    body["someFutureField"] = {"x": 1}
    body["alerts"][0]["anotherNewField"] = "ignored"
    response = post(am_client, am_app, body)
    assert response.status_code == 200 and outcomes(response) == ["opened"]
    ticket, truncation = tickets(am_app)
    assert (ticket.priority, ticket.source) == ("P3", "postgres"), "warning -> P3, job (configured) -> source"
    # the 3 alerts Alertmanager left out (truncatedAlerts) never arrive: the receiver's intake-error ticket
    assert (truncation.check_id, truncation.labels["reason"]) == (
        "alertmanager.intake_error",
        "truncated_alerts",
    )
    assert truncation.title == "Alertmanager receiver erp-oncall: 3 alerts left out of a delivery of 1"
    with am_app.factory() as session:
        event = session.scalars(select(EventRecord).where(EventRecord.ticket_id == ticket.id)).one()
        assert event.producer == "alertmanager" and event.evidence["notification_reason"] is None


@pytest.mark.parametrize(
    "am_app",
    [
        {
            "resolve_on_resolved": True,
            "rules": [
                {"match": {"queue": "finance"}, "priority": "P2", "queue": "finance-ops"},
                {"match": {"team": "erp"}, "category": "process", "resolve_on_resolved": False},
            ],
        }
    ],
    indirect=True,
)
def test_labels_map_to_priority_category_queue_and_resolve_policy(
    am_client: TestClient, am_app: TicketApp, examples: dict[str, Any]
) -> None:
    post(am_client, am_app, payload(examples, "firing"))
    finance, logistics = tickets(am_app)
    assert (finance.priority, finance.category, finance.queue) == ("P2", "process", "finance-ops")
    assert (logistics.priority, logistics.category) == ("P1", "process"), "severity critical, 2nd rule"
    assert logistics.queue != "finance-ops"

    resolved = post(am_client, am_app, payload(examples, "resolved"))
    assert outcomes(resolved) == ["recorded"]
    finance = tickets(am_app)[0]
    assert finance.status == "new", "resolve_on_resolved is off for team=erp"
    with am_app.factory() as session:
        comments = session.scalars(
            select(TicketAudit).where(TicketAudit.ticket_id == finance.id, TicketAudit.action == "commented")
        ).all()
    assert len(comments) == 1 and comments[0].actor == "alertmanager"
    assert "stays open" in comments[0].detail["text"]
    assert outcomes(post(am_client, am_app, payload(examples, "resolved"))) == ["repeat"]


def test_label_mapping_rules_fill_fields_in_order() -> None:
    settings = AlertmanagerSettings.model_validate(
        {
            "rules": [
                {"match": {"team": "erp", "env": "prod"}, "queue": "erp-prod"},
                {"match": {"team": "erp"}, "queue": "erp", "priority": "P4"},
            ],
            "default_priority": "P2",
        }
    )
    prod = map_labels({"team": "erp", "env": "prod", "severity": "critical", "category": "data"}, settings)
    assert (prod.queue, prod.priority, prod.category, prod.resolve_on_resolved) == (
        "erp-prod",
        "P4",
        "data",
        True,
    )
    other = map_labels({"severity": "nonsense", "category": "nonsense"}, settings)
    assert (other.queue, other.priority, other.category) == (None, "P2", "technical")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b.update(version="3"), "version"),
        (lambda b: b.update(alerts=[]), "alerts"),
        (lambda b: b.pop("alerts"), "alerts"),
        (lambda b: b.update(alerts={"0": b["alerts"][0]}), "alerts"),
        (lambda b: b.update(status="pending"), "status"),
    ],
)
def test_a_body_that_is_no_alertmanager_webhook_is_a_clear_4xx_and_stores_nothing(
    client: TestClient, ticket_app: TicketApp, examples: dict[str, Any], mutate: Any, message: str
) -> None:
    body = payload(examples, "firing")
    mutate(body)
    response = client.post(URL, json=body, headers=ticket_app.auth("oncall"))
    assert response.status_code == 422
    assert message in response.json()["error"]["message"]
    headers = {**ticket_app.auth("oncall"), "Content-Type": "application/json"}
    assert client.post(URL, content=b"{not json", headers=headers).status_code == 400
    assert tickets(ticket_app) == []


def test_only_tokens_with_alerts_write_may_post(
    client: TestClient, ticket_app: TicketApp, examples: dict[str, Any]
) -> None:
    body = payload(examples, "firing")
    assert client.post(URL, json=body).status_code == 401
    for role in ("viewer", "reporter", "agent", "manager"):
        refused = client.post(URL, json=body, headers=ticket_app.auth(role))
        assert refused.status_code == 403, role
        assert "alerts:write" in refused.json()["error"]["message"]
    assert client.post(URL, json=body, headers=ticket_app.auth("admin")).status_code == 200
    assert tickets(ticket_app) and len(tickets(ticket_app)) == 2


@pytest.mark.parametrize("am_app", [{"max_body_bytes": 2048}], indirect=True)
def test_a_body_over_the_limit_is_refused_with_413_before_it_is_read(
    am_client: TestClient, am_app: TicketApp, examples: dict[str, Any]
) -> None:
    big = payload(examples, "firing")
    big["commonAnnotations"]["description"] = "x" * 4096
    raw = json.dumps(big).encode()
    headers = {**am_app.auth("oncall"), "Content-Type": "application/json"}
    announced = am_client.post(URL, content=raw, headers=headers)
    assert announced.status_code == 413 and "2048 bytes" in announced.json()["error"]["message"]
    assert "`max_alerts` in this receiver's webhook_config" in announced.json()["error"]["message"]
    chunked = am_client.post(URL, content=iter([raw[:1500], raw[1500:]]), headers=headers)
    assert chunked.status_code == 413
    small = am_client.post(
        URL, content=iter([json.dumps(payload(examples, "resolved")).encode()]), headers=headers
    )
    assert small.status_code == 200, "a chunked body under the limit is replayed to the app"
    assert tickets(am_app) == []


def test_an_unreachable_store_is_a_503_that_alertmanager_retries(
    tmp_path: Path, examples: dict[str, Any]
) -> None:
    url = f"sqlite:///{tmp_path / 'missing-dir' / 'store.db'}"
    app = create_app(make_settings(tmp_path=tmp_path, database_url=url), registry=CollectorRegistry())
    client = TestClient(app, base_url="http://testserver")  # no lifespan: the app is already running
    response = client.post(URL, json=payload(examples, "firing"), headers={"Authorization": "Bearer hc_x"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "30"
    assert response.json()["error"]["code"] == "unavailable"
    assert "Traceback" not in response.text and "sqlite" not in response.text


def test_every_alert_is_accounted_for_as_a_ticket_or_a_repeat(
    am_client: TestClient, am_app: TicketApp, examples: dict[str, Any]
) -> None:
    base = payload(examples, "firing")["alerts"][0]
    alerts = []
    for i in range(40):
        alert = copy.deepcopy(base)
        alert["fingerprint"] = f"{i:016x}"
        alert["labels"] = {**alert["labels"], "instance": f"erp-app-{i % 10:02d}:8000"}
        alerts.append(alert)
    body = {**payload(examples, "firing"), "alerts": alerts}
    assert outcomes(post(am_client, am_app, body)) == ["opened"] * 40
    assert outcomes(post(am_client, am_app, body)) == ["repeat"] * 40
    with am_app.factory() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 40
        assert session.scalar(select(func.count()).select_from(AlertmanagerAlert)) == 40


def test_concurrent_deliveries_of_one_group_open_each_ticket_once(
    am_client: TestClient, am_app: TicketApp, examples: dict[str, Any]
) -> None:
    """Alertmanager clusters (HA peers) and retries can deliver the same group at the same time. A 503 is
    allowed (SQLite's single writer); Alertmanager re-sends it, as the loop below does."""
    from concurrent.futures import ThreadPoolExecutor

    body = payload(examples, "firing")
    with ThreadPoolExecutor(max_workers=4) as pool:
        codes = list(pool.map(lambda _: post(am_client, am_app, body).status_code, range(8)))
    assert set(codes) <= {200, 503}
    for _ in range(codes.count(503)):
        assert post(am_client, am_app, body).status_code == 200
    assert sorted(t.fingerprint for t in tickets(am_app)) == ["am-7c1d3a0f5e9b2d41", "am-a90e44c2b7f31d08"]
    assert [t.occurrence_count for t in tickets(am_app)] == [1, 1]
    with am_app.factory() as session:
        sent = session.scalars(select(AlertmanagerAlert.notifications)).all()
    assert sent == [8, 8]


@pytest.mark.parametrize("path", ["set-wise", "alert-by-alert"])
def test_every_copy_of_an_episode_in_one_delivery_names_its_ticket(
    am_client: TestClient,
    am_app: TicketApp,
    examples: dict[str, Any],
    path: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Alertmanager may put one alert twice in a group: the second copy is a repeat, on the ticket the
    first copy opened in the same delivery."""
    if path == "alert-by-alert":
        monkeypatch.setattr("tickets.alertmanager.BULK_DIALECTS", ())
    finance, logistics = payload(examples, "firing")["alerts"]
    refire = {**finance, "startsAt": "2026-11-23T10:05:00Z"}
    (resolved,) = payload(examples, "resolved")["alerts"]
    deliveries = [
        ([finance, finance, logistics, logistics], ["opened", "repeat", "opened", "repeat"]),
        (
            [refire, refire, logistics, resolved, resolved],
            ["deduplicated", "repeat", "repeat", "resolved", "repeat"],
        ),
    ]
    for alerts, expected in deliveries:
        response = post(am_client, am_app, {**payload(examples, "firing"), "alerts": alerts})
        assert response.status_code == 200, response.text
        assert outcomes(response) == expected
        ids = {t.fingerprint: t.id for t in tickets(am_app)}
        items = response.json()["alerts"]
        assert [a["ticket_id"] for a in items] == [ids[f"am-{a['fingerprint']}"] for a in items]
    with am_app.factory() as session:
        episodes = session.scalars(select(AlertmanagerAlert)).all()
    assert len(episodes) == 3 and all(e.ticket_id == ids[f"am-{e.fingerprint}"] for e in episodes)


@pytest.mark.parametrize("am_app", [{"max_alerts": 1}], indirect=True)
def test_too_many_alerts_is_a_422_naming_the_field_and_stores_nothing(
    am_client: TestClient, am_app: TicketApp, examples: dict[str, Any]
) -> None:
    response = post(am_client, am_app, payload(examples, "firing"))
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert "alerts" in message and "2 alerts" in message and "at most 1" in message
    assert (
        "`max_alerts: 1` in this receiver's webhook_config" in message
        and "alertmanager.max_alerts" in message
    )
    assert tickets(am_app) == []


def test_an_internal_value_error_is_a_500_alertmanager_retries_not_a_422(
    am_app: TicketApp, examples: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the intake's own bad-input error is a 422 (Alertmanager drops a 4xx); a bug raising a plain
    ValueError half-way is a 500, the delivery rolled back whole and retried."""
    ingest = TicketService.ingest
    calls: list[str] = []

    def failing(self: TicketService, event: Event) -> IngestResult:
        calls.append(event.fingerprint)
        if len(calls) > 1:
            raise ValueError("a bug, not the payload")
        return ingest(self, event)

    monkeypatch.setattr(TicketService, "ingest", failing)
    with TestClient(am_app.app, base_url="http://testserver", raise_server_exceptions=False) as client:
        response = post(client, am_app, payload(examples, "firing"))
    assert response.status_code == 500
    assert len(calls) == 2, "the first alert's ticket was opened (flushed) before the failure"
    assert tickets(am_app) == []
    with am_app.factory() as session:
        assert session.scalar(select(func.count()).select_from(AlertmanagerAlert)) == 0
