"""Bulk actions on the queue with each ticket's outcome, and saved views (own, or shared with a team)."""

from __future__ import annotations

import re

from sqlalchemy import select
from starlette.testclient import TestClient

from core.session import session_scope
from tests.tickets.factories import TicketApp, open_ticket
from tests.tickets.web import csrf_of, login
from tickets.models import Ticket, TicketAudit
from tickets.service import TicketService


def outcomes(html: str) -> dict[int, str]:
    rows = re.findall(r'<tr class="bulk-outcome (ok|failed)" data-id="(\d+)">', html)
    return {int(ticket_id): kind for kind, ticket_id in rows}


def test_bulk_resolve_reports_each_ticket_and_keeps_going_past_a_refusal(
    client: TestClient, ticket_app: TicketApp
) -> None:
    ids = [
        open_ticket(ticket_app, fingerprint=f"p3-{n}", severity="P3", summary=f"Slow report {n}")
        for n in range(3)
    ]
    with session_scope(ticket_app.factory) as session:
        TicketService(session, ticket_app.settings).resolve(ids[1], "agent", "already fixed")
    login(client, "agent")
    html = client.get("/tickets").text
    assert re.search(rf'<input type="checkbox" name="ids" value="{ids[0]}" form="bulk"', html)
    token = csrf_of(html)

    form = {"csrf": token, "action": "resolve", "reason": "index rebuilt", "ids": [str(i) for i in ids]}
    result = client.post("/tickets/bulk", data=form)
    assert result.status_code == 200
    assert outcomes(result.text) == {ids[0]: "ok", ids[1]: "failed", ids[2]: "ok"}
    assert "Bulk resolve: 2 done, 1 not done" in result.text
    assert f"✗ not done: ticket {ids[1]} is resolved: cannot resolve it" in result.text
    with ticket_app.factory() as session:
        statuses = dict(session.execute(select(Ticket.id, Ticket.status).where(Ticket.id.in_(ids))).all())
        assert set(statuses.values()) == {"resolved"}
        reasons = [
            a.detail.get("reason")
            for a in session.scalars(
                select(TicketAudit).where(TicketAudit.action == "resolved", TicketAudit.actor == "agent")
            )
        ]
        assert reasons.count("index rebuilt") == 2

    no_reason = client.post("/tickets/bulk", data={**form, "reason": " "})
    assert (
        '<p class="flash failed" role="alert">Nothing done: resolving needs a reason.</p>' in no_reason.text
    )


def test_bulk_acknowledge_and_assign(client: TestClient, ticket_app: TicketApp) -> None:
    ids = [open_ticket(ticket_app, fingerprint=f"a-{n}", summary=f"Entry {n}") for n in range(2)]
    login(client, "agent")
    token = csrf_of(client.get("/tickets").text)
    html = client.post("/tickets/bulk", data={"csrf": token, "action": "acknowledge", "ids": ids}).text
    assert outcomes(html) == dict.fromkeys(ids, "ok")
    html = client.post(
        "/tickets/bulk", data={"csrf": token, "action": "assign", "assignee": "oncall", "ids": ids}
    ).text
    assert outcomes(html) == dict.fromkeys(ids, "ok")
    assert "<td>oncall</td>" in client.get("/tickets").text
    unknown = client.post(
        "/tickets/bulk", data={"csrf": token, "action": "link_problem", "problem": "99", "ids": ids}
    )
    assert "Nothing done: problem 99 not found." in unknown.text
    nothing = client.post("/tickets/bulk", data={"csrf": token, "action": "acknowledge"})
    assert "Nothing done: select at least one ticket." in nothing.text

    login(client, "viewer")
    token = csrf_of(client.get("/tickets").text)
    assert 'id="bulk"' not in client.get("/tickets").text
    assert (
        client.post("/tickets/bulk", data={"csrf": token, "action": "acknowledge", "ids": ids}).status_code
        == 403
    )


def test_saved_views_are_own_or_shared_with_a_team(client: TestClient, ticket_app: TicketApp) -> None:
    login(client, "agent")
    token = csrf_of(client.get("/tickets?priority=P1&q=bank").text)
    form = {
        "csrf": token,
        "name": "Bank P1s",
        "status": "open",
        "priority": "P1",
        "q": "bank",
        "sort": "priority",
    }
    html = client.post("/views", data=form).text
    assert "View &#39;Bank P1s&#39; saved." in html
    link = re.search(r'<a href="([^"]+)">Bank P1s</a>', html)
    assert link is not None and "priority=P1" in link.group(1) and "q=bank" in link.group(1)
    client.post("/views", data={**form, "name": "Finance open", "priority": "", "q": "", "team": "finance"})
    unnamed = client.post("/views", data={**form, "name": " "}).text
    assert "View not saved: a view needs a name of 1 to 64 characters." in unnamed

    login(client, "oncall")
    html = client.get("/views").text
    assert "Finance open" in html and "team finance" in html, "shared with the team"
    assert "Bank P1s" not in html, "the agent's own"
    view_id = re.search(r'<tr class="saved-view" data-id="(\d+)">', html)
    assert view_id is not None
    token = csrf_of(html)
    assert client.post(f"/views/{view_id.group(1)}/delete", data={"csrf": token}).status_code == 404, (
        "not theirs"
    )
