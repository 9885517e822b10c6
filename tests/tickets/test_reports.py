"""Employees' exception reports with attachments, over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from tests.tickets.factories import TicketApp, ticket_app_on
from tickets.models import EventRecord, Report, Ticket
from tickets.reports import safe_filename

URL = "/api/v1/reports"
PDF = b"%PDF-1.7\n" + b"1 0 obj << /Type /Catalog >> endobj\n" * 20 + b"%%EOF\n"
CSV = "journal_id;debit;credit\nJE-1001;1250.00;0.00\nJE-1002;10,5 €;0\n".encode()
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def form(**overrides: Any) -> dict[str, str]:
    fields = {
        "title": "Invoice INV-2044 posted twice",
        "description": "The supplier invoice shows twice in the AP aging since this morning.",
        "module": "ap",
        "document_number": "INV-2044",
        "category": "data",
        "urgency": "high",
        "affected": "team",
        "amount_at_risk": "4800.00",
    }
    fields.update(overrides)
    return {k: v for k, v in fields.items() if v is not None}


@pytest.fixture
def rep_app(store_url: str, tmp_path: Path) -> Iterator[TicketApp]:
    with ticket_app_on(
        store_url,
        tmp_path,
        reports={"max_attachments": 2, "max_attachment_bytes": 4096, "high_impact_amount": "10000"},
    ) as app:
        yield app


@pytest.fixture
def rep_client(rep_app: TicketApp) -> Iterator[TestClient]:
    with TestClient(rep_app.app, base_url="http://testserver") as test_client:
        yield test_client


def storage(app: TicketApp) -> Path:
    return app.settings.data_dir / "attachments"


def stored_files(app: TicketApp) -> list[Path]:
    return sorted(storage(app).iterdir()) if storage(app).exists() else []


def test_a_report_with_attachments_becomes_a_triaged_ticket(
    rep_client: TestClient, rep_app: TicketApp
) -> None:
    files = [
        ("attachments", ("scan.pdf", PDF, "application/pdf")),
        ("attachments", ("rows.csv", CSV, "text/csv")),
    ]
    response = rep_client.post(URL, data=form(), files=files, headers=rep_app.auth("reporter"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["outcome"] == "opened" and body["impact"] == "medium" and body["urgency"] == "high"
    assert [a["filename"] for a in body["attachments"]] == ["scan.pdf", "rows.csv"]
    assert body["attachments"][0]["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert body["amount_at_risk"] == "4800.00"

    with rep_app.factory() as session:
        ticket = session.get(Ticket, body["ticket_id"])
        assert ticket is not None
        assert (ticket.impact, ticket.urgency, ticket.priority) == ("medium", "high", "P2"), "ITIL matrix"
        assert (ticket.category, ticket.source, ticket.amount_at_risk) == ("data", "erp", Decimal("4800.00"))
        assert ticket.entity == {"module": "ap", "document_number": "INV-2044"}
        event = session.scalars(select(EventRecord)).one()
        assert event.producer == "reporter" and event.labels["reported_by"] == "reporter"
        assert event.evidence["attachments"][1]["size"] == len(CSV)

    on_disk = stored_files(rep_app)
    assert len(on_disk) == 2
    assert {p.name for p in on_disk}.isdisjoint({"scan.pdf", "rows.csv"}), "random names"
    assert {hashlib.sha256(p.read_bytes()).hexdigest() for p in on_disk} == {
        hashlib.sha256(PDF).hexdigest(),
        hashlib.sha256(CSV).hexdigest(),
    }
    assert all(p.stat().st_mode & 0o077 == 0 for p in on_disk)


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({"affected": "many", "urgency": "high"}, ("high", "high", "P1")),
        ({"affected": "me", "urgency": "low", "amount_at_risk": None}, ("low", "low", "P4")),
        ({"affected": "me", "urgency": "medium", "amount_at_risk": "25000"}, ("high", "medium", "P2")),
    ],
)
def test_priority_comes_from_the_reporters_answers_through_the_matrix(
    rep_client: TestClient, rep_app: TicketApp, answers: dict[str, Any], expected: tuple[str, str, str]
) -> None:
    response = rep_client.post(URL, data=form(**answers), headers=rep_app.auth("reporter"))
    assert response.status_code == 201, response.text
    with rep_app.factory() as session:
        ticket = session.get(Ticket, response.json()["ticket_id"])
        assert ticket is not None and (ticket.impact, ticket.urgency, ticket.priority) == expected


def test_reports_of_the_same_document_join_one_ticket(rep_client: TestClient, rep_app: TicketApp) -> None:
    first = rep_client.post(URL, data=form(), headers=rep_app.auth("reporter")).json()
    second = rep_client.post(URL, data=form(title="Same invoice again"), headers=rep_app.auth("agent")).json()
    other = rep_client.post(URL, data=form(document_number=None), headers=rep_app.auth("reporter")).json()
    assert (first["outcome"], second["outcome"]) == ("opened", "deduplicated")
    assert first["ticket_id"] == second["ticket_id"] != other["ticket_id"]


def test_a_reporter_sees_only_their_own_reports_and_agents_see_all(
    rep_client: TestClient, rep_app: TicketApp
) -> None:
    files = [("attachments", ("rows.csv", CSV, "text/csv"))]
    mine = rep_client.post(URL, data=form(), files=files, headers=rep_app.auth("reporter")).json()
    theirs = rep_client.post(URL, data=form(document_number="X-1"), headers=rep_app.auth("manager")).json()
    own_list = rep_client.get(URL, headers=rep_app.auth("reporter")).json()
    assert [r["id"] for r in own_list] == [mine["id"]]
    assert {r["id"] for r in rep_client.get(URL, headers=rep_app.auth("agent")).json()} == {
        mine["id"],
        theirs["id"],
    }
    assert rep_client.get(f"{URL}/{theirs['id']}", headers=rep_app.auth("reporter")).status_code == 404
    assert rep_client.get(f"{URL}/{mine['id']}", headers=rep_app.auth("viewer")).status_code == 200

    att = mine["attachments"][0]["id"]
    download = rep_client.get(f"{URL}/{mine['id']}/attachments/{att}", headers=rep_app.auth("reporter"))
    assert download.status_code == 200 and download.content == CSV
    assert download.headers["content-type"] == "text/plain; charset=utf-8"
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in download.headers["content-security-policy"]
    assert rep_client.get(f"{URL}/{mine['id']}/attachments/{att}").status_code == 401
    other = rep_client.get(f"{URL}/{theirs['id']}/attachments/{att}", headers=rep_app.auth("agent"))
    assert other.status_code == 404, "an attachment is reached only through its own report"


@pytest.mark.parametrize(
    ("files", "status", "message"),
    [
        ([("attachments", ("page.html", b"<script>alert(1)</script>", "text/html"))], 415, "text/html"),
        ([("attachments", ("fake.pdf", PNG, "application/pdf"))], 415, "not application/pdf"),
        ([("attachments", ("bin.txt", b"abc\x00def", "text/plain"))], 415, "not text/plain"),
        ([("attachments", ("big.pdf", PDF * 40, "application/pdf"))], 413, "larger than 4096 bytes"),
        ([("attachments", ("empty.csv", b"", "text/csv"))], 422, "empty"),
        ([("attachments", (f"{i}.pdf", PDF, "application/pdf")) for i in range(3)], 422, "at most 2"),
        (
            [
                ("attachments", ("ok.pdf", PDF, "application/pdf")),
                ("attachments", ("x.svg", b"<svg/>", "image/svg+xml")),
            ],
            415,
            "image/svg+xml",
        ),
    ],
)
def test_refused_attachments_are_clear_and_leave_nothing_behind(
    rep_client: TestClient, rep_app: TicketApp, files: list[Any], status: int, message: str
) -> None:
    response = rep_client.post(URL, data=form(), files=files, headers=rep_app.auth("reporter"))
    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"]
    assert stored_files(rep_app) == []
    with rep_app.factory() as session:
        assert session.scalars(select(Report)).all() == [] and session.scalars(select(Ticket)).all() == []


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"title": None}, "title"),
        ({"category": "finance"}, "category"),
        ({"urgency": "asap"}, "urgency"),
        ({"amount_at_risk": "-5"}, "amount_at_risk"),
        ({"amount_at_risk": "12.345"}, "amount_at_risk"),
        ({"module": "m" * 65}, "module"),
    ],
)
def test_bad_answers_are_a_422_naming_the_field(
    rep_client: TestClient, rep_app: TicketApp, overrides: dict[str, Any], field: str
) -> None:
    response = rep_client.post(URL, data=form(**overrides), headers=rep_app.auth("reporter"))
    assert response.status_code == 422
    assert field in response.json()["error"]["message"]


def test_a_body_larger_than_the_attachments_allow_is_a_413(
    rep_client: TestClient, rep_app: TicketApp
) -> None:
    huge = b"%PDF-" + b"x" * (3 * 1024 * 1024)
    files = [("attachments", ("huge.pdf", huge, "application/pdf"))]
    response = rep_client.post(URL, data=form(), files=files, headers=rep_app.auth("reporter"))
    assert response.status_code == 413
    assert stored_files(rep_app) == []


def test_filenames_are_reduced_to_a_safe_base_name() -> None:
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("C:\\Users\\x\\report.pdf") == "report.pdf"
    assert safe_filename("a\x00b\nc.txt") == "abc.txt"
    assert safe_filename("..") == "attachment" and safe_filename(None) == "attachment"
    assert len(safe_filename("x" * 400)) == 255
