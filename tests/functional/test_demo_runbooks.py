"""On the demo, every ticket a check or probe opens carries its runbook and the results of its runbook's
diagnostics, run read-only against the demo ERP when the ticket opened: one ticket per category checked in
depth (data, process, technical, user)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import select

from hypercare.demo.run import demo_environment
from runbooks.library import load_runbooks
from runbooks.models import TicketDiagnostic
from tickets.models import Ticket, TicketAudit

pytestmark = pytest.mark.slow


def test_every_demo_ticket_carries_its_runbook_and_diagnostics_one_per_category_in_depth(
    tmp_path: Path,
) -> None:
    runbooks = load_runbooks()
    with (
        demo_environment(tmp_path / "demo", port=8096, console=Console(quiet=True)) as demo,
        demo.factory() as session,
    ):
        tickets = list(session.scalars(select(Ticket).order_by(Ticket.id)))
        diagnostics: dict[int, list[TicketDiagnostic]] = {}
        for row in session.scalars(select(TicketDiagnostic).order_by(TicketDiagnostic.id)):
            diagnostics.setdefault(row.ticket_id, []).append(row)
        diagnosed = set(
            session.scalars(select(TicketAudit.ticket_id).where(TicketAudit.action == "diagnosed"))
        )

    from_checks = [t for t in tickets if not (t.check_id or "").startswith("dualrun.")]
    assert len(from_checks) >= 14
    for ticket in tickets:
        assert ticket.runbook_id in runbooks, f"#{ticket.id} {ticket.check_id}: runbook {ticket.runbook_id}"
        assert runbooks[ticket.runbook_id].applies(ticket.check_id or ""), ticket.check_id
    for ticket in from_checks:
        rows = diagnostics.get(ticket.id, [])
        assert rows, f"#{ticket.id} {ticket.check_id}: no diagnostics ran"
        assert ticket.id in diagnosed
        assert {r.runbook_id for r in rows} == {ticket.runbook_id}
        assert all(r.fingerprint == ticket.fingerprint for r in rows)

    by_category: dict[str, Ticket] = {}
    for ticket in from_checks:
        by_category.setdefault(ticket.category, ticket)
    assert set(by_category) == {"data", "process", "technical", "user"}
    for category, ticket in by_category.items():
        rows = diagnostics[ticket.id]
        assert all(r.status == "ok" for r in rows), [(r.name, r.error) for r in rows]
        first = rows[0]
        assert first.rows, f"{category}: {ticket.check_id} diagnostic {first.name} returned nothing"
        key = next(iter(ticket.entity.values()))  # the offending document the ticket is about
        assert str(key) in map(str, first.params.values()), (first.params, ticket.entity)
        assert any(str(key) in map(str, row) for row in first.rows), (key, first.rows)
