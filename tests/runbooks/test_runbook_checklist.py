"""The runbook on the ticket page: a checklist agents tick (each tick audited), and `Verify`, which re-runs
the linked check, records the proof in the timeline and resolves the ticket on a pass."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from core.session import make_engine, session_factory
from hypercare.config import Settings
from hypercare.pipeline import run_pipeline
from monitor.checks import load_checks
from monitor.models import CheckResultRow
from runbooks.library import load_runbooks
from runbooks.models import RunbookStep
from runbooks.steps import steps
from runbooks.verification import run_signal
from tests.runbooks.factories import CHECK_ID, RUNBOOK_ID, Shop, build_shop
from tests.tickets.web import csrf_of, login
from tickets.audit import verify as verify_chain
from tickets.models import Ticket, TicketAudit


def audit(shop: Shop, *actions: str) -> list[TicketAudit]:
    with shop.factory() as session:
        return list(
            session.scalars(
                select(TicketAudit).where(TicketAudit.action.in_(actions)).order_by(TicketAudit.id)
            )
        )


def test_the_checklist_is_the_runbooks_task_items_with_stable_keys(tmp_path: Path) -> None:
    erp = build_shop(tmp_path)
    runbook = load_runbooks(erp.settings.runbooks_dir)[RUNBOOK_ID]
    assert [(s.key, s.text) for s in steps(runbook)] == [
        ("first-15-minutes-1", "Acknowledge and post the entry number."),
        ("first-15-minutes-2", "Stop the loader."),
        ("fix-1", "Reverse the entry."),
        ("fix-2", "Re-post it balanced."),
        ("verify-1", "Press Verify."),
    ]
    shipped = load_runbooks()["gl-unbalanced-entries"]
    keys = [s.key for s in steps(shipped)]
    assert keys[0] == "first-15-minutes-1" and "fix-1" in keys and len(keys) == len(set(keys))


def test_an_agent_ticks_and_unticks_a_step_and_each_change_is_audited(shop: Shop) -> None:
    login(shop.client, "agent")
    page = shop.client.get(f"/tickets/{shop.ticket_id}").text
    assert 'aria-label="Tick step: Stop the loader."' in page
    assert "0 of 5 steps done" in page
    token = csrf_of(page)
    url = f"/tickets/{shop.ticket_id}/runbook/step"
    done = shop.client.post(url, data={"csrf": token, "step": "first-15-minutes-2"})
    assert "Step marked done: Stop the loader." in done.text
    assert 'aria-label="Untick step: Stop the loader."' in done.text and 'aria-pressed="true"' in done.text
    assert "1 of 5 steps done" in done.text
    undone = shop.client.post(url, data={"csrf": token, "step": "first-15-minutes-2"})
    assert "Step marked not done: Stop the loader." in undone.text

    rows = audit(shop, "step_done", "step_undone")
    assert [(r.action, r.actor, r.detail["step"]) for r in rows] == [
        ("step_done", "agent", "first-15-minutes-2"),
        ("step_undone", "agent", "first-15-minutes-2"),
    ]
    assert rows[0].detail == {
        "runbook_id": RUNBOOK_ID,
        "step": "first-15-minutes-2",
        "section": "First 15 minutes",
        "text": "Stop the loader.",
    }
    with shop.factory() as session:
        step = session.scalars(select(RunbookStep)).one()
        assert (step.done, step.by) == (False, "agent")
        assert verify_chain(session).ok

    unknown = shop.client.post(url, data={"csrf": token, "step": "fix-9"})
    assert f"Step not recorded: runbook {RUNBOOK_ID} has no step &#39;fix-9&#39;." in unknown.text


def test_ticking_needs_an_agent_and_the_forms_csrf_token(shop: Shop) -> None:
    login(shop.client, "viewer")
    page = shop.client.get(f"/tickets/{shop.ticket_id}").text
    assert "Tick step" not in page and "Verify</button>" not in page  # read-only checklist for a viewer
    assert '<input type="checkbox" disabled>' in page
    token = csrf_of(page)
    url = f"/tickets/{shop.ticket_id}/runbook/step"
    assert shop.client.post(url, data={"csrf": token, "step": "fix-1"}).status_code == 403
    assert shop.client.post(f"/tickets/{shop.ticket_id}/verify", data={"csrf": token}).status_code == 403
    shop.client.post("/logout", data={"csrf": token})
    login(shop.client, "agent")
    assert shop.client.post(url, data={"csrf": "forged", "step": "fix-1"}).status_code == 403
    assert audit(shop, "step_done") == []


def test_verify_records_a_fail_then_resolves_the_ticket_with_its_proof_once_fixed(shop: Shop) -> None:
    login(shop.client, "agent")
    token = csrf_of(shop.client.get(f"/tickets/{shop.ticket_id}").text)
    verify_url = f"/tickets/{shop.ticket_id}/verify"

    still = shop.client.post(verify_url, data={"csrf": token})
    assert re.search(
        rf'<p class="flash failed" role="alert">Verification failed: {re.escape(CHECK_ID)} fail '
        r"\(check result #\d+, measured 1\)",
        still.text,
    )
    # the entry is reversed and re-posted balanced in the ERP
    shop.erp.execute("UPDATE line SET credit = 113.00 WHERE id = 2")
    fixed = shop.client.post(verify_url, data={"csrf": token})
    assert f"ticket #{shop.ticket_id} resolved." in fixed.text
    assert 'id="ticket-status">resolved<' in fixed.text

    first, second = audit(shop, "verified")
    assert (first.detail["status"], first.detail["resolves"]) == ("fail", False)
    assert (second.detail["status"], second.detail["check_status"], second.detail["resolves"]) == (
        "pass",
        "pass",
        True,
    )
    assert second.actor == "agent" and second.detail["check_id"] == CHECK_ID
    with shop.factory() as session:
        result = session.get(CheckResultRow, second.detail["result_id"])
        assert result is not None and result.status == "pass" and result.check_id == CHECK_ID
        assert second.detail["checked_at"] == result.finished_at.isoformat()
        ticket = session.get(Ticket, shop.ticket_id)
        assert ticket is not None and ticket.status == "resolved"
        (resolved,) = audit(shop, "resolved")
        assert resolved.detail["reason"] == f"verified: {CHECK_ID} passes (check result #{result.id})"
        assert verify_chain(session).ok
    assert f"check result #{second.detail['result_id']}" in fixed.text  # the proof is in the timeline


def test_verify_without_resolving_where_not_configured(store_url: str, tmp_path: Path) -> None:
    from runbooks.verification import verify_ticket

    erp = build_shop(tmp_path, database_url=store_url, runbooks={"verify_resolves": False})
    engine = make_engine(store_url)
    factory = session_factory(engine)
    run_pipeline(erp.settings, factory, load_checks((), erp.settings.checks.paths))
    erp.execute("UPDATE line SET credit = 113.00 WHERE id = 2")
    with factory() as session:
        ticket_id = session.scalars(select(Ticket.id)).one()
    verdict = verify_ticket(erp.settings, factory, ticket_id, "agent")
    assert (verdict.status, verdict.resolved) == ("pass", False)
    with factory() as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None and ticket.status == "new"
    engine.dispose()


def test_verify_says_why_when_there_is_no_check_to_rerun(shop: Shop) -> None:
    from runbooks.verification import verify_ticket
    from tickets.ports import CannotVerify

    with shop.factory() as session:
        ticket = session.get(Ticket, shop.ticket_id)
        assert ticket is not None
        ticket.check_id = "shop.gone"
        session.commit()
    with pytest.raises(CannotVerify, match=r"no check, probe or collector produces shop\.gone"):
        verify_ticket(shop.erp.settings, shop.factory, shop.ticket_id, "agent")
    assert audit(shop, "verified") == []


def test_verify_on_a_volume_ticket_says_the_watch_resolves_it_itself(tmp_path: Path) -> None:
    from tickets.ports import CannotVerify

    settings = Settings(data_dir=tmp_path, checks={"packs": ["demo_erp"]})  # type: ignore[arg-type]
    with pytest.raises(CannotVerify, match=r"sales\.volume\.invoices is a volume watch"):
        run_signal(settings, "sales.volume.invoices", "erp", now=datetime.now(UTC))
