"""Small hardening of the HTTP surface: comments need visible text, event times are ISO-8601 strings with a
time zone, UI pages carry a strict Content-Security-Policy and framing/sniffing/referrer headers, and a 405
lists every method its path supports."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from core.session import session_scope
from tests.servers import CHROMIUM_ARGS
from tests.tickets.factories import TicketApp, open_ticket
from tests.tickets.web import csrf_of, login
from tickets.models import TicketAudit

INVISIBLE = ["\x1c\x1d", " \x00 ", "\x01\x02\t", "\u200b\u2028"]


@pytest.mark.parametrize("text", INVISIBLE)
def test_a_comment_without_visible_text_is_a_422_naming_the_field(
    client: TestClient, ticket_app: TicketApp, text: str
) -> None:
    ticket_id = open_ticket(ticket_app)
    response = client.post(
        f"/api/v1/tickets/{ticket_id}/comments", json={"text": text}, headers=ticket_app.auth("agent")
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["message"].startswith("body.text: ")
    assert "visible" in error["message"]


@pytest.mark.parametrize("text", INVISIBLE)
def test_the_ui_refuses_a_comment_without_visible_text_with_a_422(
    client: TestClient, ticket_app: TicketApp, text: str
) -> None:
    ticket_id = open_ticket(ticket_app)
    login(client, "agent")
    token = csrf_of(client.get(f"/tickets/{ticket_id}").text)
    response = client.post(
        f"/tickets/{ticket_id}/comment",
        data={"csrf": token, "text": text},
        headers={"Accept": "text/html"},
        follow_redirects=False,
    )
    assert response.status_code == 422, response.text
    assert "text: " in response.text and "visible" in response.text
    with session_scope(ticket_app.factory) as session:
        assert session.scalars(select(TicketAudit).where(TicketAudit.action == "commented")).all() == []


def _event(**overrides: Any) -> dict[str, Any]:
    return {
        "fingerprint": "fp-time",
        "severity": "P3",
        "category": "data",
        "summary": "Journal entry does not balance",
        "source": "erp",
        **overrides,
    }


@pytest.mark.parametrize(
    "occurred_at", [0, 1700000000, 1.5, True, "1700000000", "2026-11-23T09:00:00", "2026-11-23", "yesterday"]
)
def test_an_event_time_must_be_an_iso_8601_string_with_a_time_zone(
    client: TestClient, ticket_app: TicketApp, occurred_at: Any
) -> None:
    response = client.post(
        "/api/v1/events", json=_event(occurred_at=occurred_at), headers=ticket_app.auth("admin")
    )
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert message.startswith("body.occurred_at: ") and "ISO-8601" in message and "time zone" in message


@pytest.mark.parametrize("occurred_at", ["2026-11-23T09:00:00Z", "2026-11-23T17:00:00.5+08:00"])
def test_an_event_time_with_a_time_zone_is_accepted(
    client: TestClient, ticket_app: TicketApp, occurred_at: str
) -> None:
    response = client.post(
        "/api/v1/events", json=_event(occurred_at=occurred_at), headers=ticket_app.auth("admin")
    )
    assert response.status_code == 201, response.text


def test_ui_pages_carry_a_strict_content_security_policy(client: TestClient, ticket_app: TicketApp) -> None:
    ticket_id = open_ticket(ticket_app)
    login(client, "agent")
    for path in ("/login", "/tickets", f"/tickets/{ticket_id}", "/tickets/424242"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["default-src"] == "'none'", path
        assert directives["frame-ancestors"] == "'none'"
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"


def test_api_answers_carry_the_headers_that_apply_to_them(client: TestClient, ticket_app: TicketApp) -> None:
    for response in (
        client.get("/api/v1/tickets", headers=ticket_app.auth("agent")),
        client.get("/api/v1/tickets"),  # a 401 too
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["referrer-policy"] == "same-origin"


def test_a_405_lists_every_method_of_its_path(client: TestClient, ticket_app: TicketApp) -> None:
    ticket_id = open_ticket(ticket_app)
    agent = ticket_app.auth("agent")
    cases = {
        "/api/v1/tickets": ("PUT", {"GET"}),
        f"/api/v1/tickets/{ticket_id}/comments": ("DELETE", {"GET", "POST"}),
        f"/api/v1/tickets/{ticket_id}/status": ("GET", {"POST"}),
        "/login": ("DELETE", {"GET", "POST"}),
    }
    for path, (method, expected) in cases.items():
        response = client.request(method, path, headers=agent)
        assert response.status_code == 405, path
        allowed = {m.strip() for m in response.headers["allow"].split(",")}
        assert allowed == expected, path
        for other in allowed:
            assert client.request(other, path, headers=agent).status_code != 405, (other, path)


def test_the_ui_policy_blocks_inline_script_in_a_real_browser(
    live_server: Any, chromium_executable: Any
) -> None:
    """Chromium enforces the UI's policy (the stylesheet loads, an injected inline script does not run) and
    reports the violation on the console, which the ``browser_page`` fixture turns into a failure: so the
    browser tests prove the policy does not break the UI."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium_executable), headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page()
        seen: list[str] = []
        page.on("console", lambda message: seen.append(message.text))
        page.goto(live_server.url + "/login")
        sheets = page.evaluate("document.styleSheets.length")
        page.evaluate(
            "() => { const s = document.createElement('script');"
            " s.textContent = 'document.title = \"injected\"'; document.head.appendChild(s); }"
        )
        title = page.title()
        browser.close()
    assert sheets == 2, "the stylesheets from /static load (hypercare.css, agent.css)"
    assert title != "injected"
    assert any("Content Security Policy" in text for text in seen), seen


def test_other_request_times_are_iso_8601_strings_too(client: TestClient, ticket_app: TicketApp) -> None:
    body = {"matchers": {"category": "data"}, "starts_at": 0, "ends_at": "2099-01-01T00:00:00Z"}
    response = client.post("/api/v1/silences", json=body, headers=ticket_app.auth("agent"))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"].startswith("body.starts_at: ")
    assert "ISO-8601" in response.json()["error"]["message"]
