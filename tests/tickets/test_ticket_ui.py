"""The server-rendered UI through TestClient: login, roles, CSRF, escaping, POST-redirect-GET."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from httpx import Response
from starlette.testclient import TestClient
from ticket_factories import PASSWORD, TicketApp, make_event, make_settings

from hypercare.store import session_scope
from tickets.api import create_app
from tickets.service import TicketService


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page carries a CSRF token"
    return found.group(1)


def login(
    client: TestClient, username: str, password: str = PASSWORD, next_url: str = "/tickets"
) -> Response:
    token = csrf_of(client.get("/login").text)
    form = {"username": username, "password": password, "csrf": token, "next": next_url}
    return client.post("/login", data=form, follow_redirects=False)


def open_ticket(ticket_app: TicketApp, **event: object) -> int:
    with session_scope(ticket_app.factory) as session:
        ticket = TicketService(session, ticket_app.settings).ingest(make_event(**event)).ticket
        assert ticket is not None
        return ticket.id


def test_pages_need_a_login_and_come_back_after_it(client: TestClient, ticket_app: TicketApp) -> None:
    ticket_id = open_ticket(ticket_app)
    for path in ("/tickets", f"/tickets/{ticket_id}"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == f"/login?next={path}"
    assert client.get("/", follow_redirects=False).headers["location"] == "/tickets"

    response = login(client, "agent", next_url=f"/tickets/{ticket_id}")
    assert response.status_code == 303
    assert response.headers["location"] == f"/tickets/{ticket_id}"
    assert "Journal entry JE-1001 does not balance" in client.get(f"/tickets/{ticket_id}").text


def test_a_wrong_password_is_refused_without_saying_which_part(client: TestClient) -> None:
    response = login(client, "agent", "not-the-password")
    assert response.status_code == 401
    assert "Wrong username or password." in response.text
    assert login(client, "nobody").status_code == 401
    assert client.get("/tickets", follow_redirects=False).status_code == 303


def test_login_never_redirects_off_site(client: TestClient) -> None:
    response = login(client, "agent", next_url="//evil.example/phish")
    assert response.headers["location"] == "/tickets"


def test_forms_without_the_session_csrf_token_are_refused(client: TestClient, ticket_app: TicketApp) -> None:
    form = {"username": "agent", "password": PASSWORD, "csrf": "forged"}
    client.get("/login")
    assert client.post("/login", data=form).status_code == 403
    ticket_id = open_ticket(ticket_app)
    login(client, "agent")
    forged = client.post(f"/tickets/{ticket_id}/acknowledge", data={"csrf": "forged"}, follow_redirects=False)
    assert forged.status_code == 403
    assert client.post(f"/tickets/{ticket_id}/acknowledge", data={}).status_code == 422


def test_the_queue_shows_open_tickets_by_priority_and_filters(
    client: TestClient, ticket_app: TicketApp
) -> None:
    open_ticket(ticket_app, fingerprint="a", severity="P3", summary="Stuck integration message")
    open_ticket(ticket_app, fingerprint="b", severity="P1", summary="Bank file rejected")
    login(client, "viewer")

    html = client.get("/tickets").text
    assert html.index("Bank file rejected") < html.index("Stuck integration message")
    assert '<span class="badge p1">P1</span>' in html
    assert "1,250.00" in html
    filtered = client.get("/tickets?priority=P3").text
    assert "Stuck integration message" in filtered and "Bank file rejected" not in filtered
    assert "No tickets match" in client.get("/tickets?status=resolved").text
    assert client.get("/tickets?status=bogus").status_code == 422


def test_what_the_store_holds_is_escaped(client: TestClient, ticket_app: TicketApp) -> None:
    ticket_id = open_ticket(
        ticket_app, summary="<script>alert(1)</script> in memo", evidence={"memo": "<b>x</b>"}
    )
    login(client, "viewer")
    for html in (client.get("/tickets").text, client.get(f"/tickets/{ticket_id}").text):
        assert "<script>alert(1)</script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_ticket_page_shows_details_entity_evidence_occurrences_and_audit(
    client: TestClient, ticket_app: TicketApp
) -> None:
    ticket_id = open_ticket(ticket_app)
    open_ticket(ticket_app)  # a repeat
    login(client, "agent")
    html = client.get(f"/tickets/{ticket_id}").text
    assert "ACME-DE" in html and "JE-1001" in html
    assert "gl-unbalanced-entry" in html
    assert "<th>debit</th>" in html and "<td>1250.00</td>" in html, "sample rows as a table"
    assert html.count('class="audit-entry"') == 1
    assert "2 in all" in html
    assert ">Acknowledge</button>" in html and ">Resolve</button>" in html


def test_an_agent_acknowledges_and_resolves_with_post_redirect_get(
    client: TestClient, ticket_app: TicketApp
) -> None:
    ticket_id = open_ticket(ticket_app)
    login(client, "agent")
    token = csrf_of(client.get(f"/tickets/{ticket_id}").text)

    response = client.post(f"/tickets/{ticket_id}/acknowledge", data={"csrf": token}, follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, f"/tickets/{ticket_id}")
    html = client.get(f"/tickets/{ticket_id}").text
    assert f"Ticket #{ticket_id} acknowledged." in html
    assert ">Acknowledge</button>" not in html
    assert re.search(r"<td>agent</td><td>acknowledged</td>", html)

    no_reason = client.post(f"/tickets/{ticket_id}/resolve", data={"csrf": token, "reason": " "})
    assert "say why the ticket is resolved" in no_reason.text
    client.post(f"/tickets/{ticket_id}/comment", data={"csrf": token, "text": "reposting JE-1001"})
    html = client.post(f"/tickets/{ticket_id}/resolve", data={"csrf": token, "reason": "reposted"}).text
    assert f"Ticket #{ticket_id} resolved." in html
    assert "reason: reposted" in html and "reposting JE-1001" in html
    assert ">Resolve</button>" not in html


@pytest.mark.parametrize("role", ["viewer", "manager"])
def test_viewers_see_but_cannot_act(client: TestClient, ticket_app: TicketApp, role: str) -> None:
    ticket_id = open_ticket(ticket_app)
    login(client, role)
    html = client.get(f"/tickets/{ticket_id}").text
    assert "Journal entry JE-1001" in html
    assert ">Acknowledge</button>" not in html and ">Resolve</button>" not in html
    response = client.post(f"/tickets/{ticket_id}/acknowledge", data={"csrf": csrf_of(html)})
    assert response.status_code == 403


def test_an_unknown_ticket_is_a_404_page(client: TestClient) -> None:
    login(client, "viewer")
    response = client.get("/tickets/424242")
    assert response.status_code == 404
    assert "ticket 424242 not found" in response.text


def test_logging_out_ends_the_session(client: TestClient) -> None:
    login(client, "viewer")
    token = csrf_of(client.get("/tickets").text)
    assert (
        client.post("/logout", data={"csrf": token}, follow_redirects=False).headers["location"] == "/login"
    )
    assert client.get("/tickets", follow_redirects=False).status_code == 303


def test_the_session_cookie_is_secure_http_only_and_same_site_behind_https(
    store_url: str, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path=tmp_path, database_url=store_url, public_url="https://hypercare.example"
    )
    with TestClient(create_app(settings), base_url="https://hypercare.example") as secure:
        cookie = secure.get("/login").headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie
