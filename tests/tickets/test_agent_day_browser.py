"""A support agent's full day in a real browser (Debian's chromium through Playwright), without the API or
the CLI: triage a P1 with a workaround, bulk-resolve three P3s from the keyboard, take a reporter's report
(offered the open ticket about the same invoice), link it to a problem, resolve and rate it, and Verify the
P1's fix (a failing Verify first, shown as a failure).

Screenshots of each step are test artefacts: saved under ``HYPERCARE_SCREENSHOTS`` when set
(``HYPERCARE_SCREENSHOTS=docs/screenshots python -m pytest tests/tickets/test_agent_day_browser.py``),
else under the test's own temporary directory; the test checks each was written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from core.session import make_engine, session_factory, session_scope
from hypercare.app import ports
from hypercare.pipeline import run_pipeline
from hypercare.serving import BackgroundServer, free_port
from hypercare.store import upgrade
from monitor.checks import load_checks
from tests.runbooks.factories import CHECK_ID, build_shop
from tests.tickets.factories import PASSWORD, make_event, seed_users
from tickets.agent_models import ProblemTicket, TicketComment
from tickets.app import create_app
from tickets.lifecycle import Lifecycle
from tickets.models import Report, Ticket, TicketAudit, TicketRating, Workaround
from tickets.service import TicketService

INVOICE = "INV/2026/000771"
SHOTS = (
    "day-1-queue-help",
    "day-2-p1-triaged",
    "day-3-bulk-resolved",
    "day-4-intake-offer",
    "day-5-problem-rated",
    "day-6-verify-failed",
    "day-7-verified",
)


def login(page: Any, base: str, username: str, next_url: str = "/tickets") -> None:
    page.goto(f"{base}/login?next={next_url}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


@pytest.mark.browser
def test_an_agent_day_in_the_browser(tmp_path: Path, browser_page: Any) -> None:
    from playwright.sync_api import expect

    shots = Path(os.environ.get("HYPERCARE_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)

    def shoot(name: str) -> None:
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)

    port = free_port()
    store = f"sqlite:///{tmp_path / 'store.db'}"
    erp = build_shop(tmp_path, database_url=store, public_url=f"http://127.0.0.1:{port}")
    engine = make_engine(store)
    upgrade(engine)
    factory = session_factory(engine)
    seed_users(factory)
    run_pipeline(erp.settings, factory, load_checks((), erp.settings.checks.paths))
    with session_scope(factory) as session:
        service = TicketService(session, erp.settings)
        p1 = session.scalars(select(Ticket.id).where(Ticket.check_id == CHECK_ID)).one()
        Lifecycle(service).change_priority(p1, "admin", "P1", "month-end close blocked")
        p3s = []
        for n in range(3):
            ticket = service.ingest(
                make_event(
                    fingerprint=f"p3-{n}", severity="P3", summary=f"Slow aging report {n}", check_id=None
                )
            ).ticket
            assert ticket is not None
            p3s.append(ticket.id)
        invoice = service.ingest(
            make_event(
                fingerprint="inv-771",
                severity="P2",
                category="process",
                summary="Invoice posted twice to the customer",
                check_id=None,
                entity={"invoice": INVOICE},
            )
        ).ticket
        assert invoice is not None
        invoice_id = invoice.id

    page = browser_page
    with BackgroundServer(create_app(erp.settings, ports=ports(erp.settings)), port=port) as base:
        # --- 1. the queue: help overlay, j/k, open the P1 from the keyboard ---------------------------
        login(page, base, "agent")
        expect(page).to_have_url(f"{base}/tickets")
        page.keyboard.press("?")
        expect(page.locator("#shortcut-help")).to_be_visible()
        shoot(SHOTS[0])
        page.keyboard.press("Escape")
        expect(page.locator("#shortcut-help")).to_be_hidden()
        page.keyboard.press("j")
        expect(page.locator("tr.ticket.cursor")).to_have_attribute("data-id", str(p1))
        page.keyboard.press("o")
        expect(page).to_have_url(f"{base}/tickets/{p1}")

        # --- 2. triage the P1: acknowledge (key a), a workaround, a watcher, a note to a colleague ------
        page.keyboard.press("a")
        expect(page.get_by_role("status")).to_have_text(f"Ticket #{p1} acknowledged.")
        page.locator("#workaround-what").fill("Post the month-end accruals by hand in the GL")
        page.locator("#workaround-owner").select_option("oncall")
        page.get_by_role("button", name="Record workaround").click()
        expect(page.get_by_role("status")).to_have_text("Workaround recorded.")
        workaround = page.locator("tr.workaround.active")
        expect(workaround).to_contain_text("Post the month-end accruals by hand in the GL")
        expect(workaround).to_contain_text("oncall")
        page.locator("#watcher-name").select_option("oncall")
        page.get_by_role("button", name="Add", exact=True).click()
        expect(page.locator("#watchers")).to_contain_text("oncall")
        page.locator("#assignee").select_option("agent")
        page.get_by_role("button", name="Assign", exact=True).click()
        expect(page.locator("#assignee-name")).to_have_text("agent")
        page.locator("#message-text").fill("@oncall the loader is stopped; workaround in place")
        page.get_by_role("button", name="Send").click()
        expect(page.locator("li.message.internal")).to_contain_text("mentions oncall")
        shoot(SHOTS[1])

        # --- 3. bulk-resolve the three P3s from the keyboard ------------------------------------------
        page.goto(f"{base}/tickets?priority=P3")
        expect(page.locator("tr.ticket")).to_have_count(3)
        for _ in range(3):
            page.keyboard.press("j")
            page.keyboard.press("x")
        expect(page.locator('input[name="ids"]:checked')).to_have_count(3)
        page.keyboard.press("r")
        expect(page.locator("#bulk-reason")).to_be_focused()
        page.keyboard.type("aging report index rebuilt")
        page.keyboard.press("Enter")
        expect(page.locator("h1")).to_have_text("Bulk resolve: 3 done")
        expect(page.locator("tr.bulk-outcome.ok")).to_have_count(3)
        shoot(SHOTS[2])

        # --- 4. a reporter's report names the invoice already on an open ticket: offered, joined -------
        page.get_by_role("button", name="Log out").click()
        login(page, base, "reporter", "/report")
        page.get_by_label("What happened?").fill(f"Customer got invoice {INVOICE} twice")
        page.get_by_label("Where (ERP module)").fill("AR")
        page.get_by_label("Document number").fill(INVOICE)
        page.get_by_role("button", name="File the report").click()
        expect(page.locator("#intake-offer")).to_contain_text(f"{INVOICE} is already on an open ticket")
        shoot(SHOTS[3])
        page.get_by_role("button", name=f"Add my report to #{invoice_id}").click()
        expect(page.get_by_role("status")).to_contain_text(f"as ticket #{invoice_id}")
        page.get_by_role("button", name="Log out").click()

        # --- 5. link it to a problem, reply, resolve, rate on the reporter's behalf -------------------
        login(page, base, "agent", f"/tickets/{invoice_id}")
        expect(page.locator("#files, #conversation")).to_have_count(2)
        page.locator("#problem-title").fill("Invoice numbering collides after the cut-over")
        page.get_by_role("button", name="Link to problem").click()
        expect(page.locator("#problem-panel")).to_contain_text(
            "Invoice numbering collides after the cut-over"
        )
        page.locator("#message-text").fill("The duplicate is cancelled; a credit note follows today.")
        page.get_by_label("Reply to reporter").check()
        page.get_by_role("button", name="Send").click()
        expect(page.locator("li.message.reply")).to_contain_text("credit note")
        page.locator("#reason").fill("duplicate invoice cancelled")
        page.get_by_role("button", name="Resolve").click()
        expect(page.locator("#ticket-status")).to_have_text("resolved")
        page.locator("#rating-score").select_option("4")
        page.locator("#rating-for").fill("reporter")
        page.get_by_role("button", name="Rate").click()
        expect(page.locator("p.rating")).to_contain_text("4 of 5")
        shoot(SHOTS[4])

        # --- 6. Verify the P1: still failing (a red alert), then fixed in the ERP and resolved ---------
        page.goto(f"{base}/tickets/{p1}")
        page.get_by_role("button", name="Verify").click()
        failed = page.get_by_role("alert").filter(has_text="Verification failed")
        expect(failed).to_contain_text(f"{CHECK_ID} fail")
        expect(failed).to_have_class("flash failed")
        shoot(SHOTS[5])
        erp.execute("UPDATE line SET credit = 113.00 WHERE id = 2")  # reversed and re-posted, balanced
        page.get_by_role("button", name="Verify").click()
        expect(page.get_by_role("status")).to_contain_text(f"ticket #{p1} resolved.")
        expect(page.locator("#ticket-status")).to_have_text("resolved")
        shoot(SHOTS[6])

    with factory() as session:
        statuses = dict(session.execute(select(Ticket.id, Ticket.status)).all())
        assert [statuses[i] for i in (*p3s, invoice_id, p1)] == ["resolved"] * 5
        assert session.scalars(select(Workaround.owner).where(Workaround.ticket_id == p1)).one() == "oncall"
        assert session.scalars(select(Report.ticket_id)).one() == invoice_id
        assert session.scalars(select(ProblemTicket.ticket_id)).one() == invoice_id
        assert session.scalars(select(TicketRating.score)).one() == 4
        assert [c.visibility for c in session.scalars(select(TicketComment).order_by(TicketComment.id))] == [
            "internal",
            "reply",
        ]
        p1_actions = list(session.scalars(select(TicketAudit.action).where(TicketAudit.ticket_id == p1)))
    engine.dispose()
    for action in ("acknowledged", "workaround_added", "watcher_added", "assigned", "commented", "verified"):
        assert action in p1_actions
    for name in SHOTS:
        assert (shots / f"{name}.png").stat().st_size > 10_000, name
