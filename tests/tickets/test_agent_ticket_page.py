"""The ticket page's agent panels through TestClient: workarounds, watchers (notified), the assignee picker,
silences, attachments with previews, ratings. Each is a form that works without JavaScript, role-checked
and audited like its API twin."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from core.session import session_scope
from tests.tickets.factories import TicketApp, target, ticket_app_on
from tests.tickets.factories import open_ticket as open_one
from tests.tickets.receiver import Receiver
from tests.tickets.web import csrf_of, login
from tickets.models import NotificationOutbox, Silence, TicketAudit, Workaround
from tickets.notify import build_notifier, dispatch_pending
from tickets.service import TicketService

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.4\n%\xe2\xe3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def actions(app: TicketApp, ticket_id: int) -> list[tuple[str, str]]:
    with app.factory() as session:
        rows = session.scalars(
            select(TicketAudit).where(TicketAudit.ticket_id == ticket_id).order_by(TicketAudit.id)
        )
        return [(row.actor, row.action) for row in rows]


def page(client: TestClient, ticket_id: int) -> tuple[str, str]:
    html = client.get(f"/tickets/{ticket_id}").text
    return html, csrf_of(html)


def test_a_workaround_is_shown_with_its_owner_and_review_date_and_retired(
    client: TestClient, ticket_app: TicketApp
) -> None:
    ticket_id = open_one(ticket_app)
    login(client, "agent")
    html, token = page(client, ticket_id)
    assert "No workaround recorded." in html

    form = {
        "csrf": token,
        "what": "Post JE-1001 by hand in the GL",
        "owner": "oncall",
        "review_on": "2026-01-09",
    }
    html = client.post(f"/tickets/{ticket_id}/workarounds", data=form).text
    assert "Workaround recorded." in html
    row = re.search(r'<tr class="workaround active" data-id="(\d+)">(.*?)</tr>', html, re.S)
    assert row is not None
    assert "Post JE-1001 by hand in the GL" in row.group(2) and "<td>oncall</td>" in row.group(2)
    assert "2026-01-09" in row.group(2)
    assert "1 in force" in html

    bad = client.post(f"/tickets/{ticket_id}/workarounds", data={**form, "review_on": "next week"}).text
    assert '<p class="flash failed" role="alert">Not recorded: review date' in bad

    html = client.post(f"/workarounds/{row.group(1)}/retire", data={"csrf": token}).text
    assert "Workaround retired." in html and "0 in force" in html
    assert "retired" in html and "by agent" in html
    with ticket_app.factory() as session:
        [kept] = session.scalars(select(Workaround))
        assert (kept.active, kept.ended_by) == (False, "agent")
    assert ("agent", "workaround_added") in actions(ticket_app, ticket_id)
    assert ("agent", "workaround_changed") in actions(ticket_app, ticket_id)


def test_a_viewer_sees_the_panels_but_may_change_nothing(client: TestClient, ticket_app: TicketApp) -> None:
    ticket_id = open_one(ticket_app)
    login(client, "viewer")
    html, token = page(client, ticket_id)
    assert "Workarounds" in html and "Record workaround" not in html and ">Watch</button>" not in html
    for path, form in (
        (f"/tickets/{ticket_id}/workarounds", {"what": "x", "owner": "viewer"}),
        (f"/tickets/{ticket_id}/watchers", {"action": "add"}),
        (f"/tickets/{ticket_id}/silence", {"hours": "1"}),
        (f"/tickets/{ticket_id}/handover", {"assignee": "viewer"}),
        (f"/tickets/{ticket_id}/conversation", {"text": "hi"}),
        (f"/tickets/{ticket_id}/problem", {"title": "x"}),
    ):
        assert client.post(path, data={"csrf": token, **form}).status_code == 403, path
    assert actions(ticket_app, ticket_id) == [("system", "opened")]


@pytest.fixture
def notified_app(store_url: str, tmp_path: Path, receiver: Receiver) -> Iterator[TicketApp]:
    """The app with a notification target per person (tagged ``user:<name>``) posting to the receiver."""
    targets = (
        target(receiver.url("oncall"), tags=("user:oncall",)),
        target(receiver.url("agent"), tags=("user:agent",)),
    )
    with ticket_app_on(store_url, tmp_path, targets=targets) as app:
        yield app


def test_watchers_are_added_and_removed_and_told_of_changes_through_the_outbox(
    notified_app: TicketApp, receiver: Receiver
) -> None:
    app = notified_app
    ticket_id = open_one(app)
    with TestClient(app.app, base_url="http://testserver") as client:
        login(client, "agent")
        _, token = page(client, ticket_id)
        html = client.post(f"/tickets/{ticket_id}/watchers", data={"csrf": token, "action": "add"}).text
        assert f"agent now watches #{ticket_id}." in html
        html = client.post(
            f"/tickets/{ticket_id}/watchers", data={"csrf": token, "action": "add", "username": "oncall"}
        ).text
        assert re.search(r"<li>oncall\s*<form", html) and ">Watch</button>" not in html
        unknown = client.post(
            f"/tickets/{ticket_id}/watchers", data={"csrf": token, "action": "add", "username": "nobody"}
        ).text
        assert "Not changed: no active user named &#39;nobody&#39;." in unknown

        client.post(f"/tickets/{ticket_id}/acknowledge", data={"csrf": token})
        with app.factory() as session:
            rows = list(session.scalars(select(NotificationOutbox).where(NotificationOutbox.kind == "watch")))
        assert [(r.target, r.status) for r in rows] == [(0, "pending")], "oncall told; not agent, who did it"
        assert "status: acknowledged" in rows[0].title

        sent = dispatch_pending(app.factory, build_notifier(app.settings), app.settings)
        assert sent.sent == 1
        [delivered] = receiver.received
        assert delivered["path"] == "/oncall" and "status: acknowledged" in delivered["json"]["title"]

        html = client.post(
            f"/tickets/{ticket_id}/watchers", data={"csrf": token, "action": "remove", "username": "oncall"}
        ).text
        assert f"oncall no longer watches #{ticket_id}." in html
    assert [a for _, a in actions(app, ticket_id) if a.startswith("watcher")] == [
        "watcher_added",
        "watcher_added",
        "watcher_removed",
    ]


def test_the_assignee_picker_offers_working_users_and_queues(
    client: TestClient, ticket_app: TicketApp
) -> None:
    ticket_id = open_one(ticket_app)
    login(client, "agent")
    html, token = page(client, ticket_id)
    picker = re.search(r'<select id="assignee" name="assignee">(.*?)</select>', html, re.S)
    assert picker is not None
    options = re.findall(r'<option value="([^"]*)"', picker.group(1))
    assert options == ["", "admin", "agent", "oncall", "queue:hypercare"], "no viewer, reporter or manager"

    html = client.post(f"/tickets/{ticket_id}/handover", data={"csrf": token, "assignee": "oncall"}).text
    assert "Assigned to oncall." in html and '<dd id="assignee-name">oncall</dd>' in html
    html = client.post(
        f"/tickets/{ticket_id}/handover", data={"csrf": token, "assignee": "queue:finance"}
    ).text
    assert "Moved to queue finance." in html and '<dd id="assignee-name">-</dd>' in html
    assert "<dt>Queue</dt><dd>finance</dd>" in html
    assert ("agent", "queue_changed") in actions(ticket_app, ticket_id)


def test_a_silence_is_made_from_the_ticket_listed_and_ended(
    client: TestClient, ticket_app: TicketApp
) -> None:
    ticket_id = open_one(ticket_app)
    login(client, "agent")
    html, token = page(client, ticket_id)
    assert "No silence mutes this ticket." in html
    html = client.post(
        f"/tickets/{ticket_id}/silence", data={"csrf": token, "hours": "4", "comment": "fix deploying"}
    ).text
    assert "Notifications muted for 4 h." in html and "fix deploying" in html
    with ticket_app.factory() as session:
        [silence] = session.scalars(select(Silence))
        assert silence.matchers == {"check": "gl.unbalanced_entries", "priorities": ["P2"]}
    too_long = client.post(f"/tickets/{ticket_id}/silence", data={"csrf": token, "hours": "700"}).text
    assert (
        '<p class="flash failed" role="alert">Not silenced: role &#39;agent&#39; may silence P2' in too_long
    )
    html = client.post(f"/tickets/{ticket_id}/silences/{silence.id}/expire", data={"csrf": token}).text
    assert f"Silence {silence.id} ended." in html and "No silence mutes this ticket." in html
    assert [a for _, a in actions(ticket_app, ticket_id)][-2:] == ["silenced", "silence_ended"]


def test_attachments_upload_download_and_preview_images_and_pdf(
    client: TestClient, ticket_app: TicketApp
) -> None:
    ticket_id = open_one(ticket_app)
    login(client, "agent")
    _, token = page(client, ticket_id)
    for name, body, kind in (("screen.png", PNG, "image/png"), ("export.pdf", PDF, "application/pdf")):
        html = client.post(
            f"/tickets/{ticket_id}/attachments", data={"csrf": token}, files={"file": (name, body, kind)}
        ).text
        assert f"Attached {name}." in html
    refused = client.post(
        f"/tickets/{ticket_id}/attachments",
        data={"csrf": token},
        files={"file": ("page.html", b"<script>alert(1)</script>", "text/html")},
    ).text
    assert (
        '<p class="flash failed" role="alert">Not attached: attachment &#39;page.html&#39;: type' in refused
    )
    urls = re.findall(r'<a href="(/files/ticket/\d+)" download>', refused)
    assert len(urls) == 2
    assert f'<img src="{urls[0]}?inline=true" alt="screen.png"' in refused

    download = client.get(urls[0])
    assert download.content == PNG
    assert download.headers["content-disposition"].startswith("attachment;")
    assert "sandbox" in download.headers["content-security-policy"]
    preview = client.get(urls[1] + "?inline=true")
    assert preview.headers["content-type"] == "application/pdf"
    assert preview.headers["content-disposition"].startswith("inline;")
    assert preview.headers["x-content-type-options"] == "nosniff"
    assert [a for _, a in actions(ticket_app, ticket_id)].count("attachment_added") == 2

    login(client, "reporter")
    assert client.get(urls[0]).status_code == 403, "files of tickets are for those who read tickets"


def test_a_resolved_ticket_is_rated_once(client: TestClient, ticket_app: TicketApp) -> None:
    ticket_id = open_one(ticket_app)
    with session_scope(ticket_app.factory) as session:
        TicketService(session, ticket_app.settings).resolve(ticket_id, "agent", "reposted")
    login(client, "agent")
    _, token = page(client, ticket_id)
    form = {"csrf": token, "score": "4", "comment": "quick", "on_behalf_of": "reporter"}
    html = client.post(f"/tickets/{ticket_id}/rating", data=form).text
    assert "Rated 4 of 5. Thank you." in html
    assert "Rated <b>4 of 5</b> by agent for reporter" in html
    again = client.post(f"/tickets/{ticket_id}/rating", data=form).text
    assert f"Not rated: ticket {ticket_id} is already rated." in again
    assert client.post(f"/tickets/{ticket_id}/rating", data={**form, "score": "9"}).status_code == 422
