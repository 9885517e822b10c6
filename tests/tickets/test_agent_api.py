"""The agents' API twins of the UI: the conversation, problem records and bulk actions."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.tickets.factories import TicketApp, open_ticket


def test_comments_over_the_api_keep_notes_and_replies_apart(
    client: TestClient, ticket_app: TicketApp
) -> None:
    ticket_id = open_ticket(ticket_app)
    url = f"/api/v1/tickets/{ticket_id}/conversation"
    agent = ticket_app.auth("agent")
    note = client.post(url, json={"text": "@oncall please look"}, headers=agent)
    assert note.status_code == 201
    assert (note.json()["visibility"], note.json()["mentions"]) == ("internal", ["oncall"])
    reply = client.post(url, json={"text": "on it", "visibility": "reply"}, headers=agent)
    assert reply.status_code == 201
    listed = client.get(url, headers=ticket_app.auth("viewer")).json()
    assert [c["visibility"] for c in listed] == ["internal", "reply"]
    assert client.post(url, json={"text": "x"}, headers=ticket_app.auth("viewer")).status_code == 403
    assert client.post(url, json={"text": "x", "visibility": "public"}, headers=agent).status_code == 422
    assert client.get("/api/v1/tickets/999/conversation", headers=agent).status_code == 404


def test_problems_over_the_api(client: TestClient, ticket_app: TicketApp) -> None:
    first = open_ticket(ticket_app, fingerprint="a", check_id="bank.import")
    second = open_ticket(ticket_app, fingerprint="b", check_id="bank.import")
    agent = ticket_app.auth("agent")
    made = client.post("/api/v1/problems", json={"title": "Bank format", "ticket_id": first}, headers=agent)
    assert made.status_code == 201
    problem = made.json()
    assert (problem["owner"], problem["ticket_ids"]) == ("agent", [first])
    linked = client.post(
        f"/api/v1/problems/{problem['id']}/tickets", json={"ticket_id": second}, headers=agent
    )
    assert linked.json()["ticket_ids"] == [first, second]
    refused = client.patch(f"/api/v1/problems/{problem['id']}", json={"status": "known_error"}, headers=agent)
    assert refused.status_code == 422 and "workaround" in refused.json()["error"]["message"]
    known = {"status": "known_error", "workaround": "import by hand", "match_check_id": "bank.import"}
    assert client.patch(f"/api/v1/problems/{problem['id']}", json=known, headers=agent).status_code == 200
    third = open_ticket(ticket_app, fingerprint="c", check_id="bank.import")
    workarounds = client.get(f"/api/v1/tickets/{third}/workarounds", headers=agent).json()
    assert [w["what"] for w in workarounds] == ["import by hand"]
    assert third in client.get(f"/api/v1/problems/{problem['id']}", headers=agent).json()["ticket_ids"]
    assert client.get("/api/v1/problems/99", headers=agent).status_code == 404
    assert (
        client.post("/api/v1/problems", json={"title": "x"}, headers=ticket_app.auth("viewer")).status_code
        == 403
    )


def test_bulk_actions_over_the_api_report_each_ticket(client: TestClient, ticket_app: TicketApp) -> None:
    ids = [open_ticket(ticket_app, fingerprint=f"p3-{n}", severity="P3") for n in range(3)]
    agent = ticket_app.auth("agent")
    body = {"ticket_ids": [*ids, 999], "action": "resolve", "reason": "fixed"}
    answer = client.post("/api/v1/bulk-actions", json=body, headers=agent)
    assert answer.status_code == 200
    assert [(o["ticket_id"], o["ok"]) for o in answer.json()] == [(i, True) for i in ids] + [(999, False)]
    assert answer.json()[-1]["message"] == "ticket 999 not found"
    no_reason = client.post("/api/v1/bulk-actions", json={**body, "reason": ""}, headers=agent)
    assert no_reason.status_code == 422
    assert (
        client.post("/api/v1/bulk-actions", json=body, headers=ticket_app.auth("viewer")).status_code == 403
    )
