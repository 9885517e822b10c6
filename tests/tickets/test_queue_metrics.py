"""/metrics for the queue: tickets by state/queue/category/priority, the flow counters, SLA breaches,
Alertmanager intake outcomes, notifications by status, build and process info; linted by promtool."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta

from starlette.testclient import TestClient

from tests.servers import tool
from tests.tickets.factories import TicketApp
from tests.tickets.test_alertmanager_intake import alert, webhook
from tickets.alertmanager import expire_stale_alerts


def value(app: TicketApp, name: str, labels: dict[str, str] | None = None) -> float | None:
    return app.registry.get_sample_value(name, labels or {})


def test_queue_flow_intake_and_notifications_are_exposed(client: TestClient, ticket_app: TicketApp) -> None:
    agent, oncall = ticket_app.auth("agent"), ticket_app.auth("oncall")
    native = client.post(
        "/api/v1/events",
        json={
            "fingerprint": "gl-1",
            "severity": "P1",
            "category": "data",
            "summary": "Unbalanced",
            "source": "erp",
            "check_id": "gl.unbalanced",
        },
        headers=agent,
    ).json()["ticket_id"]
    body = webhook(alert(0, source="erp", check_id="gl.unbalanced"), alert(1, severity="P4"), {"status": "x"})
    assert client.post("/api/v1/alertmanager", json=body, headers=oncall).status_code == 200
    done = client.post("/api/v1/alertmanager", json=webhook(alert(2, severity="P3")), headers=oncall)
    resolve = client.post(
        f"/api/v1/tickets/{done.json()['alerts'][0]['ticket_id']}/resolve",
        json={"reason": "fixed"},
        headers=agent,
    )
    assert resolve.status_code == 200, resolve.text
    later = datetime.now(UTC) + timedelta(hours=ticket_app.settings.alertmanager.expire_after_h + 1)
    assert expire_stale_alerts(ticket_app.factory, ticket_app.settings, now=lambda: later) == 3

    text = client.get("/metrics").text
    labels = {"state": "new", "queue": "hypercare", "category": "data", "priority": "P1"}
    assert value(ticket_app, "hypercare_tickets", labels) == 1  # the check's ticket, the alert folded in
    p4 = {"state": "resolved", "queue": "hypercare", "category": "technical", "priority": "P4"}
    assert value(ticket_app, "hypercare_tickets", p4) == 1  # expired: resolved by the sweep
    # tickets: the check's, the P4 alert's, the P3 alert's, the intake-error ticket of the bad alert
    assert value(ticket_app, "hypercare_tickets_created_total") == 4
    assert value(ticket_app, "hypercare_tickets_resolved_total") == 2
    outcomes = {
        o: value(ticket_app, "hypercare_alertmanager_alerts_total", {"outcome": o})
        for o in ("accepted", "folded", "expired", "refused")
    }
    assert outcomes == {"accepted": 3, "folded": 1, "expired": 3, "refused": 1}
    assert (
        value(ticket_app, "hypercare_tickets_sla_breached", {"queue": "hypercare", "priority": "P1"}) is None
    )
    assert "# TYPE hypercare_notifications gauge" in text
    assert "hypercare_notifications_total" not in text, "rows by current status go down: a gauge"
    assert value(ticket_app, "hypercare_notifications", {"status": "dead"}) == 0
    assert 'hypercare_build_info{python_version="' in text
    assert "process_resident_memory_bytes" in text
    assert native

    lint = subprocess.run(
        [tool("promtool", "prometheus"), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
