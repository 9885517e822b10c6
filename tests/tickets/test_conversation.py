"""The conversation apart from the audit trail: internal notes and replies to the reporter, @mentions that
notify, reporters told of status changes, and the reporter's "my reports" page (replies, never notes)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from tests.tickets.factories import Clock, TicketApp, make_settings, open_ticket, target, ticket_app_on
from tests.tickets.web import csrf_of, login
from tickets.agent_models import TicketComment
from tickets.auth import create_user
from tickets.conversation import add_comment, mentioned
from tickets.models import NotificationOutbox, TicketAudit
from tickets.service import TicketService


def test_mentions_are_active_users_named_once_in_order(session: Session, clock: Clock) -> None:
    for name in ("alice", "bob.smith"):
        create_user(session, name, "correct-horse-42", "agent")
    text = "@bob.smith and @alice, see @alice's note; not @nobody nor mail@alice or a@b"
    assert mentioned(session, text) == ["bob.smith", "alice"]
    service = TicketService(session, make_settings(), now=clock)
    with pytest.raises(ValueError, match="internal, reply"):
        add_comment(service, 1, "alice", "x", visibility="public")
    with pytest.raises(ValueError, match="needs some text"):
        add_comment(service, 1, "alice", "  ")


@pytest.fixture
def app(store_url: str, tmp_path: Path) -> Iterator[TicketApp]:
    """Personal targets for oncall and the reporter (tagged ``user:<name>``)."""
    targets = (
        target("json://127.0.0.1:9/oncall", tags=("user:oncall",)),
        target("json://127.0.0.1:9/reporter", tags=("user:reporter",)),
    )
    with ticket_app_on(store_url, tmp_path, targets=targets) as built:
        yield built


def personal(app: TicketApp) -> list[tuple[str, int, str]]:
    with app.factory() as session:
        rows = session.scalars(
            select(NotificationOutbox)
            .where(NotificationOutbox.tags.is_not(None))
            .order_by(NotificationOutbox.id)
        )
        return [
            (row.kind, row.target, row.title)
            for row in rows
            if row.kind in {"mention", "reply", "report_status", "watch"}
        ]


def file_report(client: TestClient, title: str = "Invoice cannot be posted") -> int:
    token = csrf_of(client.get("/report").text)
    form = {
        "csrf": token,
        "title": title,
        "module": "AP",
        "category": "process",
        "urgency": "high",
        "affected": "team",
    }
    response = client.post("/report", data=form, follow_redirects=False)
    assert response.status_code == 303
    with_id = re.search(r"as ticket #(\d+)", client.get("/my-reports").text) or re.search(
        r"Ticket #(\d+)", client.get("/my-reports").text
    )
    assert with_id is not None
    return int(with_id.group(1))


def test_notes_stay_internal_replies_reach_the_reporter_and_mentions_notify(app: TicketApp) -> None:
    with TestClient(app.app, base_url="http://testserver") as client:
        login(client, "reporter")
        ticket_id = file_report(client)
        login(client, "agent")
        token = csrf_of(client.get(f"/tickets/{ticket_id}").text)
        url = f"/tickets/{ticket_id}/conversation"

        html = client.post(url, data={"csrf": token, "text": "@oncall is the AP posting job stuck?"}).text
        assert "Note added." in html
        form = {"csrf": token, "text": "We are on it; post it again after 14:00.", "visibility": "reply"}
        html = client.post(url, data=form).text
        assert "Reply sent to the reporter." in html
        assert re.search(r'<li class="message internal".*?@oncall is the AP posting job stuck\?', html, re.S)
        assert "mentions oncall" in html
        assert re.search(r'<li class="message reply".*?post it again after 14:00', html, re.S)
        assert (
            "Not added: must contain visible text" in client.post(url, data={"csrf": token, "text": " "}).text
        )
        client.post(f"/tickets/{ticket_id}/resolve", data={"csrf": token, "reason": "posting job restarted"})

        login(client, "reporter")
        mine = client.get("/my-reports").text
        assert "post it again after 14:00" in mine, "the reply"
        assert "AP posting job" not in mine, "never an internal note"
        assert client.get(f"/tickets/{ticket_id}", follow_redirects=False).status_code == 303
        assert '<span class="status resolved">resolved</span>' in mine
        html = client.post(f"/tickets/{ticket_id}/rating", data={"csrf": csrf_of(mine), "score": "5"}).text
        assert "Rated 5 of 5. Thank you." in html and "You rated it 5 of 5." in html

    kinds = personal(app)
    assert ("mention", 0) in [(k, t) for k, t, _ in kinds]
    assert ("reply", 1) in [(k, t) for k, t, _ in kinds]
    statuses = [title for kind, tgt, title in kinds if kind == "report_status" and tgt == 1]
    assert any("status: resolved (posting job restarted)" in title for title in statuses)
    with app.factory() as session:
        comments = list(session.scalars(select(TicketComment).order_by(TicketComment.id)))
        assert [(c.visibility, c.mentions) for c in comments] == [("internal", ["oncall"]), ("reply", [])]
        audit = [
            a.action for a in session.scalars(select(TicketAudit).where(TicketAudit.ticket_id == ticket_id))
        ]
        assert audit.count("commented") == 2


def test_a_reporter_rates_only_tickets_of_their_reports(client: TestClient, ticket_app: TicketApp) -> None:
    other = open_ticket(ticket_app)
    login(client, "reporter")
    token = csrf_of(client.get("/my-reports").text)
    assert "You have filed no reports." in client.get("/my-reports").text
    assert client.post(f"/tickets/{other}/rating", data={"csrf": token, "score": "1"}).status_code == 403
    login(client, "viewer")
    assert client.get("/my-reports").status_code == 403
