"""The archive of daily reports in the ticket UI: the list page, each report's HTML (its own policy: inline
styles, nothing runs) and PDF, for the roles that read tickets only."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from starlette.testclient import TestClient

from hypercare.daily_report import produce
from tests.tickets.factories import TicketApp
from tests.tickets.web import login

DAY = date(2026, 12, 6)


@pytest.fixture
def archived_day(ticket_app: TicketApp) -> date:
    produce(
        ticket_app.settings, ticket_app.engine, DAY, now=datetime(2026, 12, 7, 8, 0, tzinfo=UTC), keep=True
    )
    return DAY


def test_a_manager_lists_the_archived_reports_and_opens_one(client: TestClient, archived_day: date) -> None:
    assert login(client, "manager").status_code == 303
    page = client.get("/reports/daily")
    assert page.status_code == 200
    assert "Hypercare daily report — Sun 06 Dec 2026" in page.text
    assert 'href="/reports/daily/2026-12-06.pdf"' in page.text and "archived only" in page.text
    html = client.get("/reports/daily/2026-12-06.html")
    assert html.status_code == 200 and "Exit criteria" in html.text
    assert "script-src" not in html.headers["content-security-policy"]
    assert "style-src 'unsafe-inline'" in html.headers["content-security-policy"]
    pdf = client.get("/reports/daily/2026-12-06.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert client.get("/reports/daily/2026-12-05.pdf").status_code == 404
    assert client.get("/reports/daily/yesterday.html").status_code == 404


def test_the_list_says_why_it_is_empty(client: TestClient) -> None:
    login(client, "viewer")
    page = client.get("/reports/daily")
    assert page.status_code == 200 and "No daily report archived yet" in page.text


def test_reporters_and_strangers_may_not_read_them(client: TestClient, archived_day: date) -> None:
    anonymous = client.get("/reports/daily/2026-12-06.pdf", follow_redirects=False)
    assert anonymous.status_code in (303, 401)
    login(client, "reporter")
    assert client.get("/reports/daily").status_code == 403
    assert client.get("/reports/daily/2026-12-06.pdf").status_code == 403
