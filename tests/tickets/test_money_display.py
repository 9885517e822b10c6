"""A Shanghai site (CNY, zh_CN): the report form and the API read ``¥1,250.00``; the ticket page, the queue
and notifications show amounts with the currency symbol and times in China Standard Time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from tests.tickets.factories import T0, TicketApp, make_event, make_settings, ticket_app_on
from tests.tickets.web import csrf_of, login
from tickets.outbox import compose
from tickets.service import TicketService

SHANGHAI = {"site": {"timezone": "Asia/Shanghai", "currency": "CNY", "locale": "zh_CN"}}


@pytest.fixture
def cny_app(store_url: str, tmp_path: Path) -> Iterator[TicketApp]:
    with ticket_app_on(store_url, tmp_path, **SHANGHAI) as app:
        yield app


def report_form(token: str, amount: str) -> dict[str, str]:
    return {
        "csrf": token,
        "title": "应收账款 subledger does not match GL",
        "module": "AR",
        "category": "data",
        "urgency": "medium",
        "affected": "me",
        "amount_at_risk": amount,
    }


def test_the_report_form_reads_yuan_as_typed_and_the_pages_show_it(cny_app: TicketApp) -> None:
    with TestClient(cny_app.app) as client:
        login(client, "agent")
        form_page = client.get("/report").text
        assert "Amount at risk (CNY)" in form_page and "e.g. ¥1,250.00" in form_page
        bad = client.post("/report", data=report_form(csrf_of(form_page), "¥1.2.3"))
        assert bad.status_code == 422
        assert "Amount at risk: &#39;¥1.2.3&#39; is not an amount" in bad.text
        assert 'value="¥1.2.3"' in bad.text, "what was typed is kept for correcting"

        filed = client.post("/report", data=report_form(csrf_of(bad.text), "¥1,250.00"))
        assert filed.status_code == 200 and "/tickets/" in str(filed.url)
        assert "¥1,250.00" in filed.text
        assert "¥1,250.00" in client.get("/tickets").text


def test_the_api_reads_amounts_with_a_currency_and_names_the_field_when_it_cannot(
    cny_app: TicketApp,
) -> None:
    with TestClient(cny_app.app) as client:
        fields = {"title": "Duplicate payment", "module": "AP", "category": "data", "urgency": "high"}
        ok = client.post(
            "/api/v1/reports",
            data={**fields, "amount_at_risk": "CNY 1,250.5"},
            headers=cny_app.auth("reporter"),
        )
        assert ok.status_code == 201, ok.text
        assert ok.json()["amount_at_risk"] == "1250.50"
        wrong = client.post(
            "/api/v1/reports", data={**fields, "amount_at_risk": "€5"}, headers=cny_app.auth("reporter")
        )
        assert wrong.status_code == 422
        assert (
            wrong.json()["error"]["message"]
            == "amount_at_risk: '€5' is in €; this site records amounts in CNY"
        )


def test_a_notification_names_the_currency_and_the_sites_time(session: Session) -> None:
    settings = make_settings(**SHANGHAI)
    ticket = TicketService(session, settings, now=lambda: T0).ingest(make_event()).ticket
    assert ticket is not None
    _, body = compose(ticket, "opened", "https://hypercare.example", site=settings.site)
    assert "Amount at risk: ¥1,250.00" in body
    assert "Opened: 2026-11-23 17:00 CST (Asia/Shanghai)" in body
    assert "Fix due: " in body and "CST (Asia/Shanghai)" in body.split("Fix due: ")[1]
