"""Times shown in the site's zone with the zone named (pages, audit trail, SLA due times, the report
confirmation), while the API keeps ISO-8601 in UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from starlette.testclient import TestClient

from core.localtime import display_zone, format_time, zone
from tests.tickets.factories import T0, make_event, ticket_app_on
from tests.tickets.web import csrf_of, login
from tickets.service import TicketService

SHANGHAI_SITE = {"site": {"timezone": "Asia/Shanghai"}}


def test_a_time_names_its_zone_by_abbreviation_and_iana_name_or_offset() -> None:
    at = datetime(2027, 1, 29, 10, 0, tzinfo=UTC)
    assert format_time(at, zone("Asia/Shanghai")) == "2027-01-29 18:00 CST (Asia/Shanghai)"
    assert format_time(at, zone("Asia/Dubai")) == "2027-01-29 14:00 UTC+4 (Asia/Dubai)"
    assert format_time(at, zone("Asia/Kolkata"), seconds=True) == "2027-01-29 15:30:00 IST (Asia/Kolkata)"
    assert format_time(at, zone("UTC")) == "2027-01-29 10:00 UTC"
    assert format_time(at.replace(tzinfo=None), zone("Asia/Taipei")).startswith("2027-01-29 18:00 CST")
    assert format_time(None, zone("UTC")) == "-"


def test_the_display_zone_is_the_users_else_the_sites() -> None:
    assert display_zone(None, "Asia/Shanghai").key == "Asia/Shanghai"
    assert display_zone("Europe/Berlin", "Asia/Shanghai").key == "Europe/Berlin"
    assert display_zone("Gone/Zone", "Asia/Shanghai").key == "Asia/Shanghai", "a stale profile zone"


def test_pages_show_times_in_the_site_zone(store_url: str, tmp_path: Path) -> None:
    with ticket_app_on(store_url, tmp_path, **SHANGHAI_SITE) as app, TestClient(app.app) as client:
        with app.factory() as session:
            service = TicketService(session, app.settings, now=lambda: T0)  # Monday 09:00 UTC
            opened = service.ingest(make_event(severity="P3")).ticket
            assert opened is not None
            service.comment(opened.id, "agent", "looking")
            session.commit()
            ticket_id, due, answer_by = opened.id, opened.sla_resolution_due_at, opened.sla_response_due_at
        login(client, "agent")
        page = client.get(f"/tickets/{ticket_id}").text
        assert "2026-11-23 17:00 CST (Asia/Shanghai)" in page, "opened at 09:00 UTC = 17:00 in Shanghai"
        assert f"fix due {format_time(due, zone('Asia/Shanghai'))}" in page
        assert re.search(
            r'class="audit-entry"><td class="nowrap">2026-11-23 17:00:00 CST \(Asia/Shanghai\)', page
        )
        assert " UTC<" not in page and " UTC " not in page
        queue = client.get("/tickets").text
        assert "CST (Asia/Shanghai)" in queue
        assert f'title="due {format_time(answer_by, zone("Asia/Shanghai"))}"' in queue, "the SLA cell"

        # The report form's confirmation says when, in the same zone.
        token = csrf_of(client.get("/report").text)
        form = {
            "csrf": token,
            "title": "Invoice posted twice",
            "module": "AR",
            "category": "data",
            "urgency": "medium",
            "affected": "me",
        }
        filed = client.post("/report", data=form)
        assert filed.status_code == 200
        assert re.search(
            r"filed as ticket #\d+ at \d{4}-\d\d-\d\d \d\d:\d\d CST \(Asia/Shanghai\)", filed.text
        )

        # The API stays ISO-8601 in UTC.
        body = client.get(f"/api/v1/tickets/{ticket_id}", headers=app.auth("agent")).json()
        assert body["created_at"] in {"2026-11-23T09:00:00Z", "2026-11-23T09:00:00+00:00"}
