"""A support agent's day in a real browser (Debian's chromium through Playwright): log in, filter the queue,
open a ticket, acknowledge, comment, resolve, and read it all back in the audit trail.

``HYPERCARE_SCREENSHOTS=docs/screenshots`` also saves the main pages there (login, queue, ticket, report
form): ``HYPERCARE_SCREENSHOTS=docs/screenshots python -m pytest tests/tickets/test_ticket_browser.py``.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.session import session_scope
from tests.tickets.factories import PASSWORD, make_event
from tickets.lifecycle import Lifecycle
from tickets.service import TicketService

SHOTS = os.environ.get("HYPERCARE_SCREENSHOTS")


def shoot(page: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def seed(live_server: Any) -> int:
    """A realistic morning after go-live: a handful of tickets; returns the P1 the agent works on."""
    with session_scope(live_server.factory) as session:
        service = TicketService(session, live_server.settings)
        service.ingest(
            make_event(
                fingerprint="fp-p3",
                severity="P3",
                category="technical",
                summary="Integration message stuck",
                check_id="integration.outbox_age",
                entity={"queue": "finance-out"},
                evidence={"oldest_age_min": 95},
            )
        )
        service.ingest(
            make_event(
                fingerprint="fp-dup",
                severity="P2",
                category="process",
                summary="Duplicate vendor invoice VI-2210",
                check_id="ap.duplicate_invoices",
                amount_at_risk=Decimal("18400.00"),
            )
        )
        service.ingest(
            make_event(
                fingerprint="fp-drift",
                severity="P2",
                summary="AR subledger drifts from GL account 1200",
                check_id="ar.subledger_gl_drift",
                amount_at_risk=Decimal("2310.55"),
            )
        )
        ticket = service.ingest(make_event(p1=True, summary="Bank statement import rejected")).ticket
        assert ticket is not None
        service.ingest(make_event(p1=True, summary="Bank statement import rejected"))  # a repeat
        done = service.ingest(
            make_event(fingerprint="fp-old", severity="P4", summary="Slow aging report")
        ).ticket
        assert done is not None
        service.resolve(done.id, "agent", "index added")
        Lifecycle(service).assign(ticket.id, "admin", "agent")
        return ticket.id


@pytest.mark.browser
def test_an_agent_works_a_ticket_from_the_queue_to_resolution(live_server: Any, browser_page: Any) -> None:
    from playwright.sync_api import expect

    ticket_id = seed(live_server)
    page = browser_page
    base = live_server.url

    page.goto(base + "/")
    expect(page).to_have_url(base + "/login?next=/tickets")
    shoot(page, "login")
    page.get_by_label("Username").fill("agent")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    expect(page).to_have_url(base + "/tickets")
    rows = page.locator("tr.ticket")
    expect(rows).to_have_count(4)
    expect(rows.first).to_contain_text("Bank statement import rejected")
    expect(rows.first.locator(".badge")).to_have_text("P1")
    expect(rows.first.locator("td.sla")).to_contain_text("due in")
    expect(page.locator('a.facet[data-status="open"] b')).to_have_text("4")
    shoot(page, "queue")

    # filter: P1 tickets assigned to me, by SLA due
    page.get_by_label("Priority", exact=True).select_option("P1")
    page.get_by_label("Assignee").fill("me")
    page.get_by_label("Sort").select_option("sla_due")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(
        base + "/tickets?q=&status=open&priority=P1&category=&queue=&assignee=me&source=&sort=sla_due"
    )
    expect(rows).to_have_count(1)
    expect(rows.first.locator("td").nth(6)).to_have_text("agent")
    page.get_by_placeholder("Search title, check, #id").fill("vendor")
    page.get_by_label("Priority", exact=True).select_option("")
    page.get_by_label("Assignee").fill("")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Duplicate vendor invoice VI-2210")
    page.get_by_placeholder("Search title, check, #id").fill("bank")
    page.get_by_role("button", name="Filter").click()

    page.get_by_role("link", name="Bank statement import rejected").click()
    expect(page).to_have_url(f"{base}/tickets/{ticket_id}")
    expect(page.locator("#ticket-status")).to_have_text("new")
    expect(page.locator("#sla-clock")).to_contain_text("response due in")
    expect(page.locator("table.grid.evidence")).to_contain_text("JE-1001")
    expect(page.locator("table.occurrences tbody tr")).to_have_count(2)
    shoot(page, "ticket")

    page.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_role("status")).to_have_text(f"Ticket #{ticket_id} acknowledged.")
    expect(page.locator("#ticket-status")).to_have_text("acknowledged")
    expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)

    page.get_by_label("Comment").fill("Bank rejects the file: wrong IBAN format on 3 lines; re-exporting.")
    page.get_by_role("button", name="Comment").click()
    expect(page.get_by_role("status")).to_have_text("Comment added.")

    page.get_by_label("Resolution reason").fill("Re-exported with the corrected IBANs; import accepted")
    page.get_by_role("button", name="Resolve").click()
    expect(page.get_by_role("status")).to_have_text(f"Ticket #{ticket_id} resolved.")
    expect(page.locator("#ticket-status")).to_have_text("resolved")
    expect(page.get_by_role("button", name="Resolve")).to_have_count(0)

    audit = page.locator("tr.audit-entry")
    expect(audit).to_have_count(5)
    expect(audit.nth(0)).to_contain_text("opened")
    expect(audit.nth(1)).to_contain_text("assigned")
    expect(audit.nth(2)).to_contain_text("status: new → acknowledged")
    expect(audit.nth(3)).to_contain_text("agent")
    expect(audit.nth(3)).to_contain_text("wrong IBAN format")
    expect(audit.nth(4)).to_contain_text("status: acknowledged → resolved")
    expect(audit.nth(4)).to_contain_text("reason: Re-exported with the corrected IBANs")

    page.goto(base + "/tickets")
    expect(rows).to_have_count(3)
    expect(page.locator('a.facet[data-status="resolved"] b')).to_have_text("2")

    page.get_by_role("link", name="Report a problem").click()
    expect(page).to_have_url(base + "/report")
    page.get_by_label("What happened?").fill("Invoice INV/2026/0042 cannot be posted")
    page.get_by_label("Where (ERP module)").fill("AP")
    page.get_by_label("Document number").fill("INV/2026/0042")
    page.get_by_label("How urgent?").select_option("high")
    page.get_by_label("Details").fill("Posting says the period 2026-11 is closed, but it should be open.")
    shoot(page, "report")
    page.get_by_role("button", name="File the report").click()
    expect(page.get_by_role("status")).to_contain_text("filed as ticket #")
    expect(page.locator(".ticket-head h1")).to_contain_text("Invoice INV/2026/0042 cannot be posted")
