"""A support agent's round trip in a real browser: log in, the queue, a ticket, acknowledge, the audit."""

from __future__ import annotations

from typing import Any

import pytest
from ticket_factories import PASSWORD, make_event

from hypercare.store import session_scope
from tickets.service import TicketService


@pytest.mark.browser
def test_an_agent_logs_in_opens_a_ticket_and_acknowledges_it(live_server: Any, browser_page: Any) -> None:
    from playwright.sync_api import expect

    with session_scope(live_server.factory) as session:
        service = TicketService(session, live_server.settings)
        service.ingest(make_event(fingerprint="fp-p3", severity="P3", summary="Integration message stuck"))
        ticket = service.ingest(make_event(p1=True, summary="Bank statement import rejected")).ticket
        assert ticket is not None
        ticket_id = ticket.id

    page = browser_page
    page.goto(live_server.url + "/")
    expect(page).to_have_url(live_server.url + "/login?next=/tickets")
    page.get_by_label("Username").fill("agent")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    expect(page).to_have_url(live_server.url + "/tickets")
    rows = page.locator("tr.ticket")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Bank statement import rejected")
    expect(rows.first.locator(".badge")).to_have_text("P1")

    page.get_by_role("link", name="Bank statement import rejected").click()
    expect(page).to_have_url(f"{live_server.url}/tickets/{ticket_id}")
    expect(page.locator("#ticket-status")).to_have_text("new")
    expect(page.locator("table.grid.evidence")).to_contain_text("JE-1001")

    page.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_role("status")).to_have_text(f"Ticket #{ticket_id} acknowledged.")
    expect(page.locator("#ticket-status")).to_have_text("acknowledged")
    expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)
    last = page.locator("tr.audit-entry").last
    expect(last).to_contain_text("agent")
    expect(last).to_contain_text("acknowledged")
    expect(last).to_contain_text("status: new → acknowledged")
