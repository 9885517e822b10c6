"""Alertmanager intake about Hypercare's own checks: severities P1..P4, the source and check labels, folding
into the check's ticket, grouping and expiry; over HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from tests.tickets.factories import TicketApp, make_event, ticket_app_on
from tickets.alertmanager import expire_stale_alerts, map_labels
from tickets.models import AlertmanagerAlert, EventRecord, Occurrence, Ticket, TicketAudit
from tickets.service import TicketService
from tickets.settings import AlertmanagerSettings

URL = "/api/v1/alertmanager"
START = "2026-12-07T09:00:00Z"


def alert(n: int = 0, /, *, status: str = "firing", **labels: str) -> dict[str, Any]:
    given = {"alertname": "HypercareCheckFailing", "severity": "P2", **labels}
    return {
        "status": status,
        "labels": given,
        "annotations": {"summary": f"Check {given.get('check_id', n)} is failing"},
        "startsAt": START,
        "endsAt": "2026-12-07T09:30:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://127.0.0.1:9090/graph",
        "fingerprint": f"{n + 1:016x}",
    }


def webhook(*alerts: dict[str, Any], status: str = "firing", **group: str) -> dict[str, Any]:
    return {
        "version": "4",
        "receiver": "hypercare",
        "status": status,
        "groupLabels": group or {"alertname": "HypercareCheckFailing"},
        "commonLabels": {"alertname": "HypercareCheckFailing"},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "groupKey": '{}:{alertname="HypercareCheckFailing"}',
        "truncatedAlerts": 0,
        "alerts": list(alerts),
    }


@pytest.fixture
def am_app(store_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[TicketApp]:
    with ticket_app_on(store_url, tmp_path, alertmanager=getattr(request, "param", {})) as app:
        yield app


@pytest.fixture
def am_client(am_app: TicketApp) -> Iterator[TestClient]:
    with TestClient(am_app.app, base_url="http://testserver") as test_client:
        yield test_client


def post(client: TestClient, app: TicketApp, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post(URL, json=body, headers=app.auth("oncall"))
    assert response.status_code == 200, response.text
    alerts: list[dict[str, Any]] = response.json()["alerts"]
    return alerts


def all_tickets(app: TicketApp) -> list[Ticket]:
    with app.factory() as session:
        return list(session.scalars(select(Ticket).order_by(Ticket.id)))


@pytest.mark.parametrize(
    ("severity", "priority", "why"),
    [
        ("P1", "P1", 'severity="P1" maps to P1'),
        ("p4", "P4", 'severity="p4" maps to P4'),
        ("CRITICAL", "P1", 'severity="CRITICAL" maps to P1'),
        ("high", "P2", 'severity="high" maps to P2'),
        ("warning", "P3", 'severity="warning" maps to P3'),
        ("informational", "P4", 'severity="informational" maps to P4'),
        ("sev9", "P3", 'severity="sev9" is not a known severity'),
        (None, "P3", "has no severity label"),
    ],
)
def test_severity_maps_hypercare_priorities_and_common_words_and_says_why(
    severity: str | None, priority: str, why: str
) -> None:
    labels = {"alertname": "X"} | ({"severity": severity} if severity is not None else {})
    triaged = map_labels(labels, AlertmanagerSettings())
    assert triaged.priority == priority
    assert why in triaged.reason


def test_a_rule_priority_is_the_reason_given() -> None:
    settings = AlertmanagerSettings.model_validate({"rules": [{"match": {"team": "gl"}, "priority": "P1"}]})
    triaged = map_labels({"team": "gl", "severity": "info"}, settings)
    assert (triaged.priority, triaged.reason) == ("P1", 'Alertmanager rule 1 (matching team="gl") sets P1.')


def test_a_p1_check_alert_opens_a_p1_ticket_with_its_source_check_and_reason(
    am_client: TestClient, am_app: TicketApp
) -> None:
    labels = {"severity": "P1", "source": "erp", "check_id": "gl.trial_balance", "job": "hypercare"}
    (result,) = post(am_client, am_app, webhook(alert(**labels)))
    assert result["outcome"] == "opened"
    (ticket,) = all_tickets(am_app)
    assert (ticket.priority, ticket.source, ticket.check_id) == ("P1", "erp", "gl.trial_balance")
    assert ticket.description == 'Alertmanager label severity="P1" maps to P1.'


def test_an_alert_about_a_failing_check_folds_into_the_checks_ticket(
    am_client: TestClient, am_app: TicketApp
) -> None:
    with am_app.factory() as session, session.begin():
        native = TicketService(session, am_app.settings).ingest(make_event()).ticket
        assert native is not None
        native_id = native.id
    labels = {"source": "erp", "check_id": "gl.unbalanced_entries"}
    (folded,) = post(am_client, am_app, webhook(alert(**labels)))
    assert (folded["outcome"], folded["ticket_id"]) == ("folded", native_id)
    assert post(am_client, am_app, webhook(alert(**labels)))[0]["outcome"] == "repeat"
    (ticket,) = all_tickets(am_app)  # linked, not doubled
    assert ticket.occurrence_count == 2
    with am_app.factory() as session:
        audit = session.scalars(
            select(TicketAudit).where(TicketAudit.ticket_id == native_id, TicketAudit.action == "folded")
        ).one()
        assert audit.actor == "alertmanager" and audit.detail["fingerprint"] == "am-0000000000000001"
        evidence = [o.evidence for o in session.scalars(select(Occurrence).order_by(Occurrence.id))]
        assert evidence[-1]["alertmanager_fingerprint"] == "0000000000000001"
    # the alert resolving leaves the check's ticket to its check
    resolved = post(am_client, am_app, webhook(alert(status="resolved", **labels), status="resolved"))
    assert resolved[0]["ticket_id"] == native_id
    assert all_tickets(am_app)[0].is_open
    # an alert about another check, or another source, opens its own ticket
    other = post(am_client, am_app, webhook(alert(1, source="erp", check_id="gl.other")))
    elsewhere = post(am_client, am_app, webhook(alert(2, source="crm", check_id="gl.unbalanced_entries")))
    assert [other[0]["outcome"], elsewhere[0]["outcome"]] == ["opened", "opened"]


@pytest.mark.parametrize("am_app", [{"group_alerts": True}], indirect=True)
def test_a_group_of_fifteen_alerts_opens_one_ticket_listing_them(
    am_client: TestClient, am_app: TicketApp
) -> None:
    alerts = [alert(n, instance=f"erp-{n:02d}") for n in range(15)]
    results = post(am_client, am_app, webhook(*alerts))
    assert [r["outcome"] for r in results] == ["opened"] + ["deduplicated"] * 14
    (ticket,) = all_tickets(am_app)
    assert ticket.occurrence_count == 15
    assert ticket.title == "HypercareCheckFailing (15 alerts; alertname=HypercareCheckFailing)"
    with am_app.factory() as session:
        listed = session.scalars(select(EventRecord).join(Occurrence, Occurrence.event_id == EventRecord.id))
        instances = {event.labels["instance"] for event in listed}
    assert instances == {f"erp-{n:02d}" for n in range(15)}
    # one alert resolving leaves the group's ticket open; the whole group resolved resolves it
    partly = post(am_client, am_app, webhook(alert(0, status="resolved", instance="erp-00"), *alerts[1:]))
    assert partly[0]["outcome"] == "recorded" and all_tickets(am_app)[0].is_open
    done = [alert(n, status="resolved", instance=f"erp-{n:02d}") for n in range(15)]
    post(am_client, am_app, webhook(*done, status="resolved"))
    assert all_tickets(am_app)[0].status == "resolved"


def test_an_alert_never_resolved_is_expired_by_the_sweep(am_client: TestClient, am_app: TicketApp) -> None:
    post(am_client, am_app, webhook(alert(0)))
    post(am_client, am_app, webhook(alert(1, check_id="x.y")))
    hours = am_app.settings.alertmanager.expire_after_h
    soon = datetime.now(UTC) + timedelta(hours=hours / 2)
    assert expire_stale_alerts(am_app.factory, am_app.settings, now=lambda: soon) == 0
    # the second alert is still being re-sent (repeat_interval): only the first expires
    with am_app.factory() as session, session.begin():
        later = session.scalars(select(AlertmanagerAlert).order_by(AlertmanagerAlert.id)).all()[1]
        later.last_received_at = soon
    past = datetime.now(UTC) + timedelta(hours=hours + 0.1)
    assert expire_stale_alerts(am_app.factory, am_app.settings, now=lambda: past) == 1
    first, second = all_tickets(am_app)
    assert first.status == "resolved" and second.is_open
    with am_app.factory() as session:
        audit = session.scalars(
            select(TicketAudit).where(TicketAudit.ticket_id == first.id, TicketAudit.action == "resolved")
        ).one()
        assert "expired" in str(audit.detail)
        statuses = list(session.scalars(select(AlertmanagerAlert.status).order_by(AlertmanagerAlert.id)))
    assert statuses == ["expired", "firing"]
    assert expire_stale_alerts(am_app.factory, am_app.settings, now=lambda: past) == 0


def test_an_expired_alert_sent_again_as_firing_fires_again(am_client: TestClient, am_app: TicketApp) -> None:
    """repeat_interval longer than expire_after_h: the sweep was wrong, the alert's next re-send says so."""
    post(am_client, am_app, webhook(alert(0)))
    past = datetime.now(UTC) + timedelta(hours=am_app.settings.alertmanager.expire_after_h + 0.1)
    assert expire_stale_alerts(am_app.factory, am_app.settings, now=lambda: past) == 1
    assert all_tickets(am_app)[0].status == "resolved"
    (again,) = post(am_client, am_app, webhook(alert(0)))
    assert again["outcome"] == "reopened"
    (ticket,) = all_tickets(am_app)
    assert ticket.is_open
    with am_app.factory() as session:
        assert list(session.scalars(select(AlertmanagerAlert.status))) == ["firing"]
    assert post(am_client, am_app, webhook(alert(0)))[0]["outcome"] == "repeat"
