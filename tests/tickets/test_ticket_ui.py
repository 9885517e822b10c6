"""The server-rendered UI through TestClient: login, roles, CSRF, escaping, POST-redirect-GET."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from core.session import session_scope
from hypercare.app import ports
from tests.queries import record_statements
from tests.tickets.factories import PASSWORD, TicketApp, make_settings, open_ticket
from tests.tickets.web import csrf_of, login
from tickets.app import create_app
from tickets.auth import create_user
from tickets.lifecycle import Lifecycle
from tickets.service import TicketService


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


def test_a_ticket_number_out_of_range_is_refused_not_a_store_error(
    client: TestClient, ticket_app: TicketApp
) -> None:
    ticket_id = open_ticket(ticket_app)
    login(client, "agent")
    token = csrf_of(client.get(f"/tickets/{ticket_id}").text)
    huge = "99999999999999999999"
    assert client.get(f"/tickets/{huge}").status_code == 422
    assert client.post(f"/tickets/{huge}/comment", data={"csrf": token, "text": "x"}).status_code == 422
    for other in (str(2**31), "\u00b2"):  # past the id column; a digit int() cannot read
        response = client.post(f"/tickets/{ticket_id}/link", data={"csrf": token, "other": other})
        assert "Not linked: give the other ticket&#39;s number" in response.text


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
    with TestClient(
        create_app(settings, ports=ports(settings)), base_url="https://hypercare.example"
    ) as secure:
        cookie = secure.get("/login").headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie


# --- the queue: filters, counts, sorting, pagination, bounded queries ---------------------------------


def seed_queue(ticket_app: TicketApp) -> dict[str, int]:
    """Five tickets over priorities, categories, sources and queues; one assigned to the agent."""
    ids = {
        "bank": open_ticket(
            ticket_app, fingerprint="bank", severity="P1", summary="Bank file rejected", source="bank"
        ),
        "stuck": open_ticket(
            ticket_app,
            fingerprint="stuck",
            severity="P3",
            category="technical",
            summary="Stuck integration message",
        ),
        "dup": open_ticket(
            ticket_app,
            fingerprint="dup",
            severity="P2",
            category="process",
            summary="Duplicate vendor invoice",
        ),
        "gl": open_ticket(
            ticket_app,
            fingerprint="gl",
            severity="P2",
            summary="Journal JE-77 unbalanced",
            check_id="gl.x_100%_check",
        ),
        "old": open_ticket(ticket_app, fingerprint="old", severity="P4", summary="Old report slow"),
    }
    with session_scope(ticket_app.factory) as session:
        service = TicketService(session, ticket_app.settings)
        Lifecycle(service).assign(ids["dup"], "admin", "agent")
        service.resolve(ids["old"], "admin", "fixed")
    return ids


def queue_ids(html: str) -> list[int]:
    return [int(found) for found in re.findall(r'<tr class="ticket [a-z]+" data-id="(\d+)">', html)]


def test_the_queue_filters_in_every_dimension(client: TestClient, ticket_app: TicketApp) -> None:
    ids = seed_queue(ticket_app)
    login(client, "agent")
    assert set(queue_ids(client.get("/tickets").text)) == {ids["bank"], ids["stuck"], ids["dup"], ids["gl"]}
    assert queue_ids(client.get("/tickets?status=all").text)[-1] == ids["old"], "closed tickets last"
    assert queue_ids(client.get("/tickets?category=technical").text) == [ids["stuck"]]
    assert queue_ids(client.get("/tickets?source=bank").text) == [ids["bank"]]
    assert queue_ids(client.get("/tickets?assignee=me").text) == [ids["dup"]]
    assert queue_ids(client.get("/tickets?assignee=agent").text) == [ids["dup"]]
    assert ids["dup"] not in queue_ids(client.get("/tickets?assignee=none").text)
    assert queue_ids(client.get("/tickets?queue=hypercare&priority=P1").text) == [ids["bank"]]
    assert queue_ids(client.get("/tickets?queue=elsewhere").text) == []
    assert queue_ids(client.get("/tickets?q=vendor+INVOICE").text) == [ids["dup"]]
    assert queue_ids(client.get(f"/tickets?q=%23{ids['gl']}").text) == [ids["gl"]]
    assert queue_ids(client.get("/tickets?q=100%25").text) == [ids["gl"]], "% is a literal, not a wildcard"
    assert queue_ids(client.get("/tickets?q=x_1").text) == [ids["gl"]]
    assert queue_ids(client.get("/tickets?q=e_e").text) == [], "_ is a literal (else: 'rejected')"
    assert queue_ids(client.get("/tickets?status=resolved").text) == [ids["old"]]
    assert queue_ids(client.get("/tickets?status=all&q=report").text) == [ids["old"]]
    html = client.get("/tickets?assignee=me").text
    assert "<td>agent</td>" in html, "the assignee column"
    assert client.get("/tickets?sort=bogus").status_code == 422
    assert client.get("/tickets?category=bogus").status_code == 422


def test_the_queue_counts_per_status_and_priority_under_the_other_filters(
    client: TestClient, ticket_app: TicketApp
) -> None:
    seed_queue(ticket_app)
    login(client, "viewer")
    html = client.get("/tickets").text
    assert 'data-status="open">open <b>4</b>' in html
    assert 'data-status="resolved">resolved <b>1</b>' in html
    assert 'data-status="all">all <b>5</b>' in html
    assert re.search(r'data-priority="P2">.*?<b>2</b>', html)
    assert re.search(r'data-priority="P4">.*?<b>0</b>', html), "P4 is resolved: not among the open"
    filtered = client.get("/tickets?category=data").text
    assert 'data-status="open">open <b>2</b>' in filtered
    assert 'id="queue-total">2 tickets' in filtered


def test_the_queue_sorts(client: TestClient, ticket_app: TicketApp) -> None:
    ids = seed_queue(ticket_app)
    login(client, "viewer")
    by_priority = queue_ids(client.get("/tickets").text)
    assert by_priority[0] == ids["bank"] and by_priority[-1] == ids["stuck"]
    oldest = queue_ids(client.get("/tickets?sort=oldest").text)
    assert oldest == sorted(oldest)
    assert queue_ids(client.get("/tickets?sort=newest").text) == sorted(oldest, reverse=True)
    by_sla = queue_ids(client.get("/tickets?sort=sla_due").text)
    assert by_sla[0] == ids["bank"], "the P1 has the nearest SLA deadline"
    assert set(by_sla) == set(by_priority)


def test_the_queue_pages_and_keeps_its_filters(client: TestClient, ticket_app: TicketApp) -> None:
    from tickets.ui.routes import PAGE_SIZE

    for n in range(PAGE_SIZE + 5):
        open_ticket(ticket_app, fingerprint=f"fp-{n}", severity="P3", summary=f"Stuck message {n}")
    login(client, "viewer")
    first = client.get("/tickets?priority=P3&sort=oldest").text
    assert len(queue_ids(first)) == PAGE_SIZE
    assert f"1–{PAGE_SIZE} of {PAGE_SIZE + 5}" in first
    next_link = re.search(r'<a href="([^"]+)" rel="next">', first)
    assert next_link is not None
    url = next_link.group(1).replace("&amp;", "&")
    assert "priority=P3" in url and "sort=oldest" in url and f"offset={PAGE_SIZE}" in url
    second = client.get(url).text
    assert len(queue_ids(second)) == 5
    assert not set(queue_ids(first)) & set(queue_ids(second))
    assert 'rel="prev"' in second and 'rel="next"' not in second


def test_the_queue_and_ticket_pages_run_a_fixed_number_of_queries(
    client: TestClient, ticket_app: TicketApp
) -> None:
    ids = seed_queue(ticket_app)
    login(client, "agent")
    statements = record_statements(ticket_app.engine)

    def queries_for(path: str) -> int:
        statements.clear()
        assert client.get(path).status_code == 200
        return len(statements)

    few = queries_for("/tickets?status=all")
    ticket_few = queries_for(f"/tickets/{ids['dup']}")
    for n in range(30):
        open_ticket(ticket_app, fingerprint=f"more-{n}", summary=f"More {n}")
        open_ticket(ticket_app, fingerprint="dup")  # occurrences pile up on one ticket
    with session_scope(ticket_app.factory) as session:
        lifecycle = Lifecycle(TicketService(session, ticket_app.settings))
        for n in range(5):
            lifecycle.assign(ids["bank"] + 0, "admin", "agent" if n % 2 else "admin")
    assert queries_for("/tickets?status=all") == few
    # one status reads one page (all statuses: the open tickets' and the others'); a search also reads the
    # text version twice and, once per text version, the ids it matches
    assert queries_for("/tickets?status=open&q=more&sort=sla_due&assignee=none") == few - 1 + 3
    assert queries_for(f"/tickets/{ids['dup']}") == ticket_few
    assert few <= 8, (
        "a miss: the hot lookup, user, version, facet version, counts, the open tickets' page and the"
        " others', the bulk bar's users"
    )
    # A hit: the user and the version in one statement, through the engine or (PostgreSQL) the event loop's
    # own connections.
    hot = ticket_app.app.state.hypercare.hot
    assert queries_for("/tickets?status=all") == (0 if hot.on_event_loop else 1)


# --- the ticket page's actions -------------------------------------------------------------------------


def test_an_agent_assigns_changes_status_and_priority_with_reasons_and_links(
    client: TestClient, ticket_app: TicketApp
) -> None:
    ids = seed_queue(ticket_app)
    ticket_id = ids["gl"]
    login(client, "agent")
    page = client.get(f"/tickets/{ticket_id}").text
    token = csrf_of(page)
    assert ">Change status</button>" in page and ">Change priority</button>" in page

    html = client.post(f"/tickets/{ticket_id}/assign", data={"csrf": token, "assignee": "me"}).text
    assert "Assigned to agent." in html and '<dd id="assignee-name">agent</dd>' in html
    html = client.post(f"/tickets/{ticket_id}/assign", data={"csrf": token, "assignee": "ghost"}).text
    assert "Not assigned: no active user named &#39;ghost&#39;." in html

    no_reason = client.post(f"/tickets/{ticket_id}/priority", data={"csrf": token, "priority": "P1"}).text
    assert "Priority not changed: say why." in no_reason
    html = client.post(
        f"/tickets/{ticket_id}/priority", data={"csrf": token, "priority": "P1", "reason": "month-end close"}
    ).text
    assert "Priority set to P1." in html and '<span class="badge p1">P1</span> #' in html

    client.post(f"/tickets/{ticket_id}/acknowledge", data={"csrf": token})
    refused = client.post(
        f"/tickets/{ticket_id}/status", data={"csrf": token, "to": "waiting", "reason": "x"}
    ).text
    assert "Not moved to waiting: waiting needs a waiting_reason" in refused
    html = client.post(
        f"/tickets/{ticket_id}/status",
        data={
            "csrf": token,
            "to": "waiting",
            "waiting_reason": "vendor",
            "reason": "vendor patch due Friday",
        },
    ).text
    assert f"Ticket #{ticket_id} moved to waiting." in html
    assert '<span class="status waiting" id="ticket-status">waiting</span>' in html
    assert 'id="sla-clock">paused</span>' in html
    bad = client.post(
        f"/tickets/{ticket_id}/status", data={"csrf": token, "to": "closed", "reason": "x"}
    ).text
    assert "Not moved to closed: ticket" in bad

    html = client.post(
        f"/tickets/{ticket_id}/link", data={"csrf": token, "other": f"#{ids['bank']}", "kind": "caused_by"}
    ).text
    assert f"Linked to #{ids['bank']} (caused by)." in html
    assert f'<a href="/tickets/{ids["bank"]}">#{ids["bank"]}</a>' in html
    assert (
        "Not linked" in client.post(f"/tickets/{ticket_id}/link", data={"csrf": token, "other": "abc"}).text
    )
    assert (
        "Not linked: ticket 999999 not found."
        in client.post(f"/tickets/{ticket_id}/link", data={"csrf": token, "other": "999999"}).text
    )

    audit = re.findall(r'<tr class="audit-entry">.*?</tr>', html, re.S)
    actions = [re.findall(r"<td>(.*?)</td>", row, re.S)[1] for row in audit]
    assert actions == ["opened", "assigned", "priority_changed", "acknowledged", "status_changed", "linked"]
    assert "reason: month-end close" in audit[2] and "reason: vendor patch due Friday" in audit[4]


def test_viewers_cannot_use_the_new_actions(client: TestClient, ticket_app: TicketApp) -> None:
    ticket_id = open_ticket(ticket_app)
    login(client, "viewer")
    token = csrf_of(client.get(f"/tickets/{ticket_id}").text)
    for action, form in (
        ("assign", {"assignee": "viewer"}),
        ("priority", {"priority": "P1", "reason": "x"}),
        ("status", {"to": "resolved", "reason": "x"}),
        ("link", {"other": "1"}),
    ):
        response = client.post(f"/tickets/{ticket_id}/{action}", data={"csrf": token, **form})
        assert response.status_code == 403, action
        assert "may look but not change tickets" in response.text


# --- the report form ---------------------------------------------------------------------------------------


def test_an_employee_files_a_report_with_an_attachment(client: TestClient, ticket_app: TicketApp) -> None:
    with session_scope(ticket_app.factory) as session:
        create_user(session, "clerk", PASSWORD, "reporter")
    login(client, "clerk")
    assert client.get("/tickets", follow_redirects=False).headers["location"] == "/report"
    form = client.get("/report").text
    assert 'enctype="multipart/form-data"' in form
    values = {
        "csrf": csrf_of(form),
        "title": "Invoice INV/2026/0042 cannot be posted",
        "module": "AP",
        "category": "process",
        "urgency": "high",
        "affected": "team",
        "document_number": "INV/2026/0042",
        "amount_at_risk": "1,250.00",
        "description": "Posting says the period is closed.",
    }
    missing = client.post("/report", data={**values, "module": " "})
    assert missing.status_code == 422 and "Say where it happened" in missing.text
    assert 'value="Invoice INV/2026/0042 cannot be posted"' in missing.text, "the form keeps what was typed"
    bad_amount = client.post("/report", data={**values, "amount_at_risk": "12.345"})
    assert bad_amount.status_code == 422 and "at most 2 decimals" in bad_amount.text
    files = {"attachments": ("error.txt", b"period 2026-11 is closed", "text/plain")}
    done = client.post("/report", data=values, files=files)
    assert done.status_code == 200 and str(done.url).endswith("/report")
    assert re.search(r"Report #\d+ filed as ticket #\d+ at [-0-9: ]+ UTC\. Thank you\.", done.text)
    login(client, "agent")
    html = client.get("/tickets?q=INV/2026/0042").text
    assert len(queue_ids(html)) == 1


def test_who_may_file_reports(client: TestClient, ticket_app: TicketApp) -> None:
    login(client, "viewer")
    assert client.get("/report").status_code == 403
    login(client, "agent")
    assert client.get("/report").status_code == 200
