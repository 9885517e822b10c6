"""Problem records: incidents linked to one problem from the ticket page and the problem page, a known error
whose workaround new matching tickets get at intake, and a report naming a document already on an open
ticket offered that ticket (and joining it) at intake."""

from __future__ import annotations

import re

from sqlalchemy import select
from starlette.testclient import TestClient

from core.session import session_scope
from tests.tickets.factories import TicketApp, open_ticket
from tests.tickets.web import csrf_of, login
from tickets.agent_models import ProblemTicket
from tickets.models import Occurrence, Report, Ticket, TicketAudit, User, Workaround
from tickets.reports import ReportInput, create_report
from tickets.service import TicketService

INVOICE = "INV/2026/000771"


def audit_of(app: TicketApp, ticket_id: int) -> list[str]:
    with app.factory() as session:
        return [
            a.action for a in session.scalars(select(TicketAudit).where(TicketAudit.ticket_id == ticket_id))
        ]


def test_incidents_link_to_a_problem_and_a_known_error_gives_new_tickets_its_workaround(
    client: TestClient, ticket_app: TicketApp
) -> None:
    first = open_ticket(
        ticket_app, fingerprint="bank-1", check_id="bank.statement_import", summary="Import 1"
    )
    second = open_ticket(
        ticket_app, fingerprint="bank-2", check_id="bank.statement_import", summary="Import 2"
    )
    login(client, "agent")
    token = csrf_of(client.get(f"/tickets/{first}").text)

    html = client.post(
        f"/tickets/{first}/problem", data={"csrf": token, "title": "Bank file format changed"}
    ).text
    assert "Linked to the problem." in html
    found = re.search(r'<a href="/problems/(\d+)">problem #\d+ Bank file format changed</a>', html)
    assert found is not None
    problem_id = found.group(1)
    html = client.post(f"/tickets/{second}/problem", data={"csrf": token, "problem_id": problem_id}).text
    assert f"problem #{problem_id} Bank file format changed" in html

    page = client.get(f"/problems/{problem_id}").text
    assert page.count('<tr class="incident"') == 2
    refused = client.post(f"/problems/{problem_id}", data={"csrf": token, "status": "known_error"}).text
    assert "Not saved: a known error needs its workaround." in refused
    form = {
        "csrf": token,
        "status": "known_error",
        "root_cause": "The bank moved to CAMT.053 v8",
        "workaround": "Import the statement by hand from the bank portal",
        "match_check_id": "bank.statement_import",
    }
    assert "saved" in client.post(f"/problems/{problem_id}", data=form).text
    assert '<tr class="problem" data-id="' in client.get("/problems").text

    third = open_ticket(
        ticket_app, fingerprint="bank-3", check_id="bank.statement_import", summary="Import 3"
    )
    other = open_ticket(ticket_app, fingerprint="gl-9", summary="Unrelated")
    with ticket_app.factory() as session:
        [copied] = session.scalars(select(Workaround).where(Workaround.ticket_id == third))
        assert (copied.what, copied.owner, copied.active) == (form["workaround"], "agent", True)
        assert session.scalars(select(ProblemTicket).where(ProblemTicket.ticket_id == other)).first() is None
        link = session.scalars(select(ProblemTicket).where(ProblemTicket.ticket_id == third)).one()
        assert (str(link.problem_id), link.automatic) == (problem_id, True)
    assert audit_of(ticket_app, third)[:3] == ["opened", "problem_linked", "workaround_added"]
    html = client.get(f"/tickets/{third}").text
    assert "Import the statement by hand from the bank portal" in html and "1 in force" in html

    login(client, "viewer")
    assert (
        client.post(
            f"/problems/{problem_id}", data={"csrf": csrf_of(client.get("/problems").text)}
        ).status_code
        == 403
    )


def report_form(client: TestClient, **extra: str) -> dict[str, str]:
    return {
        "csrf": csrf_of(client.get("/report").text),
        "title": f"Customer says invoice {INVOICE} is wrong",
        "module": "AR",
        "category": "data",
        "urgency": "medium",
        "affected": "me",
        "document_number": INVOICE,
        **extra,
    }


def test_a_report_naming_a_document_on_an_open_ticket_is_offered_it_and_joins_it(
    client: TestClient, ticket_app: TicketApp
) -> None:
    p1 = open_ticket(
        ticket_app,
        fingerprint="inv-771",
        p1=True,
        summary="Invoice posted twice",
        entity={"invoice": INVOICE},
    )
    login(client, "reporter")
    offered = client.post("/report", data=report_form(client))
    assert offered.status_code == 200
    assert f"<b>{INVOICE}</b> is already on an open ticket" in offered.text
    assert f'name="join" value="{p1}"' in offered.text
    with ticket_app.factory() as session:
        assert session.scalars(select(Report)).first() is None, "nothing filed before the reporter chooses"

    joined = client.post("/report", data=report_form(client, join=str(p1)), follow_redirects=False)
    assert joined.status_code == 303
    with ticket_app.factory() as session:
        [report] = session.scalars(select(Report))
        assert report.ticket_id == p1
        assert len(session.scalars(select(Occurrence).where(Occurrence.ticket_id == p1)).all()) == 2
        assert session.scalar(select(Ticket.priority).where(Ticket.id == p1)) == "P1"
    assert "report_joined" in audit_of(ticket_app, p1)
    assert "Ticket #" + str(p1) in client.get("/my-reports").text

    separate = client.post(
        "/report", data=report_form(client, join="new", title="Another thing"), follow_redirects=False
    )
    assert separate.status_code == 303
    with ticket_app.factory() as session:
        ticket_ids = [r.ticket_id for r in session.scalars(select(Report).order_by(Report.id))]
        assert ticket_ids[0] == p1 and ticket_ids[1] not in (p1, None)


def test_a_report_without_a_known_document_is_filed_at_once(
    client: TestClient, ticket_app: TicketApp
) -> None:
    open_ticket(
        ticket_app,
        fingerprint="inv-771",
        p1=True,
        summary="Invoice posted twice",
        entity={"invoice": INVOICE},
    )
    login(client, "reporter")
    response = client.post(
        "/report", data=report_form(client, document_number="INV/2026/000999"), follow_redirects=False
    )
    assert response.status_code == 303


def test_the_service_joins_a_chosen_ticket(ticket_app: TicketApp) -> None:
    p1 = open_ticket(
        ticket_app,
        fingerprint="inv-771",
        p1=True,
        summary="Invoice posted twice",
        entity={"invoice": INVOICE},
    )
    with session_scope(ticket_app.factory) as session:
        service = TicketService(session, ticket_app.settings)
        user = session.scalars(select(User).where(User.username == "reporter")).one()
        ticket = session.get(Ticket, p1)
        data = ReportInput("Wrong invoice", "", "AR", "data", "low", "me", INVOICE)  # type: ignore[arg-type]
        result = create_report(service, user, data, [], join=ticket)
        assert (result.ingest.outcome, result.report.ticket_id) == ("deduplicated", p1)
