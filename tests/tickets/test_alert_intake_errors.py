"""One bad alert costs only itself: the other alerts of its Alertmanager group are stored, the bad ones are
kept (made safe) on the receiver's intake-error ticket and the answer is 200 with every alert's outcome.
On both intake paths (set-wise on PostgreSQL and SQLite, alert by alert elsewhere) and both stores."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from tests.tickets.factories import TicketApp
from tickets.alert_rejects import INTAKE_ERROR_CHECK, MAX_STRING, sanitise
from tickets.models import EventRecord, Occurrence, Ticket

EXAMPLES = Path("/work/shared/reference/alertmanager_webhook_examples.json")
URL = "/api/v1/alertmanager"
PATHS = ["set-wise", "alert-by-alert"]


def group(size: int = 10, receiver: str = "erp-oncall") -> dict[str, Any]:
    firing = json.loads(EXAMPLES.read_text(encoding="utf-8"))["firing"]
    base = firing["alerts"][0]
    alerts = []
    for i in range(size):
        alert = copy.deepcopy(base)
        alert["fingerprint"] = f"{i + 1:016x}"
        alert["labels"] = {**alert["labels"], "instance": f"erp-app-{i:02d}:8000"}
        alerts.append(alert)
    return {**firing, "receiver": receiver, "alerts": alerts}


@pytest.fixture(params=PATHS)
def intake_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "alert-by-alert":
        monkeypatch.setattr("tickets.alertmanager.BULK_DIALECTS", ())
    return str(request.param)


def post(client: TestClient, app: TicketApp, body: Any) -> Any:
    return client.post(URL, json=body, headers=app.auth("oncall"))


def intake_error_tickets(app: TicketApp) -> list[Ticket]:
    with app.factory() as session:
        return list(session.scalars(select(Ticket).where(Ticket.check_id == INTAKE_ERROR_CHECK)))


def kept_evidence(app: TicketApp, ticket_id: int) -> list[dict[str, Any]]:
    with app.factory() as session:
        return [
            dict(o.evidence)
            for o in session.scalars(
                select(Occurrence).where(Occurrence.ticket_id == ticket_id).order_by(Occurrence.id)
            )
        ]


def test_a_nul_annotation_and_a_bad_start_cost_only_their_own_alerts(
    client: TestClient, ticket_app: TicketApp, intake_path: str
) -> None:
    body = group(10)
    body["alerts"][3]["annotations"]["description"] = "queue finance\x00 stuck"
    body["alerts"][7]["startsAt"] = "2026-11-23T09:12:40+20:00"  # no such offset; PostgreSQL refuses it
    response = post(client, ticket_app, body)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["stored"], answer["rejected"]) == (8, 2)
    outcomes = [(a["index"], a["outcome"]) for a in answer["alerts"]]
    assert outcomes == [(i, "rejected" if i in (3, 7) else "opened") for i in range(10)]
    nul, start = answer["alerts"][3], answer["alerts"][7]
    assert "annotations.description" in nul["error"] and "NUL" in nul["error"]
    assert "startsAt" in start["error"] and "offset (+20:00)" in start["error"]
    assert (nul["fingerprint"], start["fingerprint"]) == (f"{4:016x}", f"{8:016x}")

    with ticket_app.factory() as session:
        stored = session.scalars(select(Ticket.fingerprint).where(Ticket.fingerprint.like("am-%"))).all()
    assert sorted(stored) == sorted(f"am-{i + 1:016x}" for i in range(10) if i not in (3, 7))
    (error_ticket,) = intake_error_tickets(ticket_app)
    assert nul["ticket_id"] == start["ticket_id"] == error_ticket.id
    assert error_ticket.category == "technical" and error_ticket.status == "new"
    assert "erp-oncall" in error_ticket.title and "2 of 10" in error_ticket.title
    (evidence,) = kept_evidence(ticket_app, error_ticket.id)
    kept = evidence["rejected"]
    assert [k["index"] for k in kept] == [3, 7]
    assert kept[0]["alert"]["annotations"]["description"] == "queue finance\u2400 stuck"
    assert kept[0]["alert"]["fingerprint"] == f"{4:016x}"
    assert kept[1]["alert"]["startsAt"] == "2026-11-23T09:12:40+20:00"
    assert evidence["receiver"] == "erp-oncall" and evidence["rejected_count"] == 2


def test_a_storm_of_bad_alerts_is_one_ticket_per_receiver_with_occurrences(
    client: TestClient, ticket_app: TicketApp, intake_path: str
) -> None:
    for n in range(3):
        body = group(2)
        body["alerts"][0]["startsAt"] = f"yesterday {n}"
        assert post(client, ticket_app, body).json()["rejected"] == 1
    other = group(1, receiver="erp-finance")
    other["alerts"][0]["labels"]["job"] = "x\x00"
    assert post(client, ticket_app, other).json()["rejected"] == 1
    tickets = {t.labels["receiver"]: t for t in intake_error_tickets(ticket_app)}
    assert set(tickets) == {"erp-oncall", "erp-finance"}
    assert tickets["erp-oncall"].occurrence_count == 3
    assert tickets["erp-finance"].occurrence_count == 1


def test_a_delivery_of_only_bad_alerts_is_answered_200_with_each_reason(
    client: TestClient, ticket_app: TicketApp, intake_path: str
) -> None:
    body = group(6)
    body["alerts"][0]["status"] = "pending"
    body["alerts"][1]["labels"] = ["x"]
    body["alerts"][2] = "not an alert"
    body["alerts"][3]["startsAt"] = "0001-01-01T00:00:00Z"
    body["alerts"][4]["startsAt"] = "2026-11-23T09:12:40.5-15:00"
    body["alerts"][5].pop("startsAt")
    response = post(client, ticket_app, body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["stored"], answer["rejected"]) == (0, 6)
    errors = [a["error"] for a in answer["alerts"]]
    assert errors[0].startswith("status") and errors[1].startswith("labels")
    assert "startsAt" in errors[3] and "startsAt" in errors[4] and "startsAt" in errors[5]
    assert "year 1" in errors[3] and "(-15:00)" in errors[4]
    assert [a["status"] for a in answer["alerts"]] == [
        "unknown",
        "firing",
        "unknown",
        "firing",
        "firing",
        "firing",
    ]
    (error_ticket,) = intake_error_tickets(ticket_app)
    (evidence,) = kept_evidence(ticket_app, error_ticket.id)
    assert evidence["rejected"][2]["alert"] == "not an alert"
    with ticket_app.factory() as session:
        assert session.scalars(select(Ticket.id)).all() == [error_ticket.id]


def test_an_unpaired_surrogate_is_rejected_not_a_store_failure(
    client: TestClient, ticket_app: TicketApp, intake_path: str
) -> None:
    raw = json.dumps(group(2)).replace("Posting queue finance is stuck", "stuck \\ud800", 1)
    headers = {**ticket_app.auth("oncall"), "Content-Type": "application/json"}
    response = client.post(URL, content=raw.encode(), headers=headers)
    assert response.status_code == 200, response.text
    assert [a["outcome"] for a in response.json()["alerts"]] == ["rejected", "opened"]
    assert "surrogate" in response.json()["alerts"][0]["error"]


def test_a_nul_common_to_the_group_does_not_cost_the_group(client: TestClient, ticket_app: TicketApp) -> None:
    body = group(2)
    body["commonAnnotations"]["summary"] = "stuck\x00"
    body["receiver"] = "erp\x00oncall"
    response = post(client, ticket_app, body)
    assert response.status_code == 200, response.text
    assert response.json()["stored"] == 2


def test_kept_alerts_are_cut_to_size_and_free_of_secrets() -> None:
    raw = {
        "labels": {"alertname": "X", "api_key": "k-123"},
        "annotations": {
            "description": "y" * 100_000,
            "token": "s3cr3t",
            "hint": "call with Authorization: Bearer abcdefghijklmnop",
        },
        "generatorURL": "https://admin:hunter2@prometheus.example/graph?g0.expr=up&access_token=t0k3n",
        "deep": {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}},
        "wide": list(range(500)),
    }
    kept = sanitise(raw)
    text = json.dumps(kept)
    for secret in ("k-123", "s3cr3t", "abcdefghijklmnop", "hunter2", "t0k3n"):
        assert secret not in text
    assert kept["labels"]["api_key"] == "[redacted]"
    assert kept["generatorURL"].startswith("https://admin:[redacted]@prometheus.example/graph?g0.expr=up&")
    description = kept["annotations"]["description"]
    assert len(description) < MAX_STRING + 50 and description.endswith("[99488 more characters]")
    assert "nested too deep" in text and len(kept["wide"]) == 51
    assert len(text) < 10_000


def test_the_kept_evidence_is_in_the_event_record_too(client: TestClient, ticket_app: TicketApp) -> None:
    body = group(3)
    body["alerts"][1]["annotations"]["password"] = "hunter2"
    body["alerts"][1]["startsAt"] = "soon"
    assert post(client, ticket_app, body).status_code == 200
    with ticket_app.factory() as session:
        (record,) = session.scalars(select(EventRecord).where(EventRecord.check_id == INTAKE_ERROR_CHECK))
        assert record.evidence["rejected"][0]["alert"]["annotations"]["password"] == "[redacted]"
        assert record.category == "technical"
