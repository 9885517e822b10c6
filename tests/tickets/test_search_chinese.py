"""The queue's text search finds Chinese terms (no spaces between words) in a ticket's title, evidence,
comments and entity keys, through the UI and the API, on SQLite and PostgreSQL."""

from __future__ import annotations

import re

from sqlalchemy import text
from starlette.testclient import TestClient

from core.search import extended, flatten, normalise
from core.session import session_scope
from tests.tickets.factories import TicketApp, make_event
from tests.tickets.web import login
from tickets.conversation import add_comment
from tickets.service import TicketService

AR_DRIFT = {"check": "ar.subledger_vs_gl", "sample": [{"科目": "1122 应收账款", "差额": "502.53"}]}


def seed(app: TicketApp) -> dict[str, int]:
    """Tickets whose Chinese words sit in different places: evidence, a comment, the title, entity keys."""
    events = {
        "evidence": make_event(fingerprint="ar", summary="AR subledger drifts from GL", evidence=AR_DRIFT),
        "comment": make_event(fingerprint="ap", summary="AP aging off", evidence={"rows": 3}),
        "title": make_event(fingerprint="vat", summary="红字发票 not matched to its original invoice"),
        "entity": make_event(fingerprint="inv", summary="Invoice stuck", entity={"凭证号": "记-0042"}),
        "other": make_event(fingerprint="gl", summary="Journal entry JE-1001 does not balance"),
    }
    ids: dict[str, int] = {}
    with session_scope(app.factory) as session:
        service = TicketService(session, app.settings)
        for name, event in events.items():
            found = service.ingest(event).ticket
            assert found is not None
            ids[name] = found.id
        service.comment(ids["comment"], "agent", "供应商对账单显示应付账款差异，已联系财务")
        add_comment(service, ids["other"], "agent", "进项税额转出待财务确认")  # the conversation's note
    return ids


def queue_ids(html: str) -> set[int]:
    return {int(found) for found in re.findall(r'<tr class="ticket [a-z]+" data-id="(\d+)">', html)}


def api_ids(client: TestClient, app: TicketApp, q: str) -> set[int]:
    response = client.get("/api/v1/tickets", params={"q": q, "status": "open"}, headers=app.auth("agent"))
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


def test_chinese_terms_are_found_wherever_the_ticket_holds_them(
    client: TestClient, ticket_app: TicketApp
) -> None:
    ids = seed(ticket_app)
    login(client, "agent")
    cases = {
        "应收账款": {ids["evidence"]},  # in the evidence's sample rows
        "应付账款差异": {ids["comment"]},  # inside a comment, no spaces around it
        "红字发票": {ids["title"]},  # in the title
        "凭证号=记-0042": {ids["entity"]},  # an entity key as it is written
        "记-0042": {ids["entity"]},
        "账款": {ids["evidence"], ids["comment"]},  # two characters: still a substring match
        "ＡＰ　ａｇｉｎｇ": {ids["comment"]},  # full-width, as a Chinese IME types it
        "应收账款 502.53": {ids["evidence"]},  # every word must match
        "应收账款 红字发票": set(),
        "增值税": set(),
        "进项税额转出": {ids["other"]},  # in a note of the ticket's conversation
    }
    for q, expected in cases.items():
        assert queue_ids(client.get("/tickets", params={"q": q, "status": "all"}).text) == expected, q
        assert api_ids(client, ticket_app, q) == expected, q


def test_the_search_text_is_kept_normalised_and_bounded() -> None:
    assert normalise("  ＡＲ　應收帳款\tDrift ") == "ar 應收帳款 drift"
    assert (
        flatten({"invoice_id": 4711, "rows": [{"科目": "应收账款"}], "ok": True})
        == "invoice_id=4711 科目=应收账款"
    )
    text = extended(None, "应收账款", "应收账款")
    assert text == "应收账款", "a piece already in the text is not added again"
    assert len(extended(None, *(f"第{n}行 " + "差" * 1500 for n in range(20)))) <= 8000


def test_postgresql_answers_a_chinese_search_from_the_trigram_index(ticket_app: TicketApp) -> None:
    if ticket_app.engine.dialect.name != "postgresql":
        return  # the index is PostgreSQL's; SQLite scans the column (the same answers, above)
    seed(ticket_app)
    with ticket_app.engine.connect() as conn:
        conn.execute(text("SET enable_seqscan = off"))
        plan = "\n".join(
            row[0]
            for row in conn.execute(
                text("EXPLAIN SELECT ticket_id FROM ticket_search_text WHERE text LIKE :p"),
                {"p": "%应收账款%"},
            )
        )
    assert "ix_ticket_search_text_trgm" in plan, plan
