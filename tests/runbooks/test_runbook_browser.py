"""An agent works a ticket by its runbook in a real browser (Debian's chromium through Playwright): reads
the diagnostics that ran when it opened, ticks a checklist step, fixes the ERP and presses Verify, which
re-runs the check, records the proof and resolves the ticket."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from core.session import make_engine, session_factory
from hypercare.app import ports
from hypercare.pipeline import run_pipeline
from hypercare.serving import BackgroundServer, free_port
from hypercare.store import upgrade
from monitor.checks import load_checks
from tests.runbooks.factories import CHECK_ID, build_shop
from tests.tickets.factories import PASSWORD, seed_users
from tickets.app import create_app
from tickets.models import Ticket, TicketAudit


@pytest.mark.browser
def test_an_agent_ticks_a_runbook_step_and_verifies_the_fix(tmp_path: Path, browser_page: Any) -> None:
    from playwright.sync_api import expect

    port = free_port()
    store = f"sqlite:///{tmp_path / 'store.db'}"
    erp = build_shop(tmp_path, database_url=store, public_url=f"http://127.0.0.1:{port}")
    engine = make_engine(store)
    upgrade(engine)
    factory = session_factory(engine)
    seed_users(factory)
    run_pipeline(erp.settings, factory, load_checks((), erp.settings.checks.paths))
    with factory() as session:
        ticket_id = session.scalars(select(Ticket.id)).one()

    with BackgroundServer(create_app(erp.settings, ports=ports(erp.settings)), port=port) as base:
        page = browser_page
        page.goto(f"{base}/login?next=/tickets/{ticket_id}")
        page.get_by_label("Username").fill("agent")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(f"{base}/tickets/{ticket_id}")

        # the diagnostics ran when the ticket opened: a table, and the failure shown, not hidden
        diagnostics = page.locator("#diagnostics")
        expect(diagnostics.locator('[data-name="entry_lines"] table')).to_contain_text("1122")
        expect(diagnostics.locator('[data-name="broken"] .diagnostic-error')).to_contain_text("entry_archive")
        expect(page.locator("#runbook-progress")).to_have_text("0 of 5 steps done")

        step = page.get_by_role("button", name="Tick step: Stop the loader.")
        expect(step).to_have_attribute("aria-pressed", "false")
        step.click()
        expect(page.get_by_role("status")).to_have_text("Step marked done: Stop the loader.")
        expect(page.get_by_role("button", name="Untick step: Stop the loader.")).to_have_attribute(
            "aria-pressed", "true"
        )
        expect(page.locator("#runbook-progress")).to_have_text("1 of 5 steps done")
        expect(page.locator("tr.audit-entry").filter(has_text="step_done")).to_contain_text(
            "First 15 minutes: Stop the loader."
        )

        page.get_by_role("button", name="Verify").click()
        failed = page.get_by_role("alert").filter(has_text="Verification failed")
        expect(failed).to_contain_text(f"Verification failed: {CHECK_ID} fail (check result #")
        expect(failed).to_have_class("flash failed")  # red, not the green banner of a success
        expect(page.locator("#ticket-status")).to_have_text("new")

        erp.execute("UPDATE line SET credit = 113.00 WHERE id = 2")  # reversed and re-posted, balanced
        page.get_by_role("button", name="Verify").click()
        expect(page.get_by_role("status")).to_contain_text(f"ticket #{ticket_id} resolved.")
        expect(page.locator("#ticket-status")).to_have_text("resolved")
        verified = page.locator("tr.audit-entry").filter(
            has=page.locator("td:nth-child(3)", has_text=re.compile(r"^verified$"))
        )
        expect(verified).to_have_count(2)
        expect(verified.nth(1)).to_contain_text(f"{CHECK_ID} pass")
        expect(verified.nth(1)).to_contain_text("check result #")

    with factory() as session:
        actions = list(session.scalars(select(TicketAudit.action).order_by(TicketAudit.id)))
    engine.dispose()
    assert actions == ["opened", "diagnosed", "step_done", "verified", "verified", "resolved"]
