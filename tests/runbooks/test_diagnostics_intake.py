"""Tickets opened through the API — an event, an Alertmanager alert, an employee's report (API and form) —
get the same runbook link and diagnostics as the pipeline's, after the request and without making it
wait; the results are served by ``GET /api/v1/tickets/{ticket_id}/diagnostics``."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import OperationalError
from starlette.testclient import TestClient

import runbooks
from core.session import make_engine, session_factory
from hypercare.app import ports
from hypercare.serving import BackgroundServer
from hypercare.store import upgrade
from runbooks.lint import lint
from tests.runbooks.factories import CHECK_ID, RUNBOOK_ID, ShopErp, build_shop, runbook_markdown
from tests.servers import PG_URL, unavailable
from tests.tickets.factories import seed_users
from tests.tickets.web import csrf_of, login
from tickets.app import create_app
from tickets.models import Report, Ticket, TicketAudit

ALERT_RUNBOOK = """diagnostics:
  - name: loader_entries
    title: Entries the failing loader wrote
    sql: SELECT number, created_by FROM entry WHERE created_by = :loader ORDER BY number
    params: {loader: labels.loader}
"""
REPORT_RUNBOOK = """diagnostics:
  - name: reported_entry
    title: The entry the employee named
    source: erp
    sql: SELECT number, created_by FROM entry WHERE number = :document
    params: {document: entity.document_number}
"""


@dataclass
class Intake:
    shop: ShopErp
    client: TestClient
    tokens: dict[str, str]

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def diagnostics(self, ticket_id: int, role: str = "viewer") -> dict[str, Any]:
        response = self.client.get(f"/api/v1/tickets/{ticket_id}/diagnostics", headers=self.auth(role))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def by_name(self, ticket_id: int) -> dict[str, dict[str, Any]]:
        return {d["name"]: d for d in self.diagnostics(ticket_id)["items"]}


def write_runbooks(shop: ShopErp) -> None:
    books = shop.settings.runbooks_dir
    assert books is not None
    (books / "shop-loader-alert.md").write_text(
        runbook_markdown(
            ALERT_RUNBOOK, runbook_id="shop-loader-alert", applies="alertmanager.ShopLoaderFailing"
        ),
        encoding="utf-8",
    )
    (books / "shop-report.md").write_text(
        runbook_markdown(REPORT_RUNBOOK, runbook_id="shop-report", applies="module=shop"), encoding="utf-8"
    )


@pytest.fixture
def intake(store_url: str, tmp_path: Path) -> Iterator[Intake]:
    shop = build_shop(tmp_path, database_url=store_url)
    write_runbooks(shop)
    engine = make_engine(store_url)
    tokens = seed_users(session_factory(engine))
    app = create_app(shop.settings, engine=engine, ports=ports(shop.settings))
    with TestClient(app, base_url="http://testserver") as client:
        yield Intake(shop, client, tokens)
    engine.dispose()


def shop_event(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "fingerprint": f"shop-{uuid.uuid4().hex[:8]}",
        "severity": "P2",
        "category": "data",
        "summary": "Entry JE-1 does not balance",
        "source": "erp",
        "check_id": CHECK_ID,
        "entity": {"entry_number": "JE-1"},
        "evidence": {"row": {"entry_number": "JE-1", "created_by": "migration", "difference": "13.00"}},
    }
    return {**event, **overrides}


def alert(name: str, fingerprint: str, **labels: str) -> dict[str, Any]:
    return {
        "version": "4",
        "status": "firing",
        "receiver": "hypercare",
        "groupKey": f'{{}}:{{alertname="{name}"}}',
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": name, "severity": "critical", **labels},
                "annotations": {"summary": f"{name} on {labels.get('job', 'no job')}"},
                "startsAt": "2026-12-01T08:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": fingerprint,
            }
        ],
    }


# --- POST /api/v1/events --------------------------------------------------------------------------------


def test_an_event_posted_to_the_api_gets_its_runbook_and_diagnostics(intake: Intake) -> None:
    posted = intake.client.post("/api/v1/events", json=shop_event(), headers=intake.auth("agent"))
    assert posted.status_code == 201, posted.text
    ticket_id = posted.json()["ticket_id"]

    body = intake.diagnostics(ticket_id)
    assert body["ticket_id"] == ticket_id and body["runbook_id"] == RUNBOOK_ID
    found = {d["name"]: d for d in body["items"]}
    assert {n: d["status"] for n, d in found.items()} == {
        "entry_lines": "ok",
        "same_creator": "ok",
        "by_label": "skipped",
        "broken": "failed",
    }
    lines = found["entry_lines"]
    assert lines["columns"] == ["number", "account", "debit", "credit"]
    assert [row[1] for row in lines["rows"]] == ["1122", "6001"]
    assert lines["params"] == {"entry_number": "JE-1"} and lines["error"] is None
    assert lines["source"] == "erp" and lines["kind"] == "sql" and lines["ran_at"]
    assert [row[0] for row in found["same_creator"]["rows"]] == ["JE-1", "JE-2"]  # from the evidence row
    assert found["by_label"]["error"] == "the ticket's event carries no labels.document"
    assert "entry_archive" in found["broken"]["error"]

    # a repeat is an occurrence on the same ticket: nothing runs again
    again = intake.client.post(
        "/api/v1/events",
        json=shop_event(fingerprint=body_fp(intake, ticket_id)),
        headers=intake.auth("agent"),
    )
    assert again.status_code == 200 and again.json()["outcome"] == "deduplicated"
    assert len(intake.diagnostics(ticket_id)["items"]) == 4


def body_fp(intake: Intake, ticket_id: int) -> str:
    ticket = intake.client.get(f"/api/v1/tickets/{ticket_id}", headers=intake.auth("viewer")).json()
    return str(ticket["fingerprint"])


def test_an_event_from_a_source_hypercare_does_not_know_records_why_nothing_ran(intake: Intake) -> None:
    posted = intake.client.post(
        "/api/v1/events", json=shop_event(source="billing"), headers=intake.auth("agent")
    )
    ticket_id = posted.json()["ticket_id"]
    found = intake.by_name(ticket_id)
    assert {d["status"] for d in found.values()} == {"skipped"}  # recorded and shown, not hidden
    assert found["entry_lines"]["error"] == (
        "source 'billing' is not configured under 'sources:' in Hypercare's settings, "
        "so there is no database to run this query on"
    )
    assert found["entry_lines"]["source"] == "billing"


def test_the_diagnostics_route_follows_the_ticket_detail_roles(intake: Intake) -> None:
    ticket_id = intake.client.post("/api/v1/events", json=shop_event(), headers=intake.auth("agent")).json()[
        "ticket_id"
    ]
    url = f"/api/v1/tickets/{ticket_id}/diagnostics"
    for role in ("viewer", "agent", "oncall", "manager", "admin"):
        detail = intake.client.get(f"/api/v1/tickets/{ticket_id}", headers=intake.auth(role)).status_code
        assert intake.client.get(url, headers=intake.auth(role)).status_code == detail == 200, role
    forbidden = intake.client.get(url, headers=intake.auth("reporter"))
    assert (
        intake.client.get(f"/api/v1/tickets/{ticket_id}", headers=intake.auth("reporter")).status_code == 403
    )
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "forbidden"
    missing = intake.client.get("/api/v1/tickets/999999/diagnostics", headers=intake.auth("viewer"))
    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "code": "not_found",
        "message": "ticket 999999 not found",
        "details": None,
    }
    assert intake.client.get(url).status_code == 401
    assert (
        intake.client.get("/api/v1/tickets/0/diagnostics", headers=intake.auth("viewer")).status_code == 422
    )


def test_a_ticket_without_diagnostics_answers_an_empty_list(intake: Intake) -> None:
    event = shop_event(check_id=None, category="user", summary="Printer jams", source="office")
    ticket_id = intake.client.post("/api/v1/events", json=event, headers=intake.auth("agent")).json()[
        "ticket_id"
    ]
    assert intake.diagnostics(ticket_id)["items"] == []


# --- Alertmanager ----------------------------------------------------------------------------------------


def test_an_alertmanager_alert_gets_its_runbook_and_diagnostics(intake: Intake) -> None:
    # the ticket's source: the alert's `source` label (alertmanager.source_label), as Hypercare's metrics carry it
    body = alert("ShopLoaderFailing", "a1b2c3", source="erp", loader="migration")
    answer = intake.client.post("/api/v1/alertmanager", json=body, headers=intake.auth("oncall"))
    assert answer.status_code == 200, answer.text
    (applied,) = answer.json()["alerts"]
    assert applied["outcome"] == "opened"
    got = intake.diagnostics(applied["ticket_id"])
    assert got["runbook_id"] == "shop-loader-alert"
    (loader,) = got["items"]
    assert loader["status"] == "ok" and loader["source"] == "erp"
    assert loader["rows"] == [["JE-1", "migration"], ["JE-2", "migration"]]

    # an alert from a system Hypercare has no source for: the diagnostic is recorded as skipped
    other = alert("ShopLoaderFailing", "d4e5f6", source="warehouse", loader="migration")
    (applied,) = intake.client.post("/api/v1/alertmanager", json=other, headers=intake.auth("oncall")).json()[
        "alerts"
    ]
    (skipped,) = intake.diagnostics(applied["ticket_id"])["items"]
    assert skipped["status"] == "skipped" and skipped["rows"] == []
    assert skipped["error"].startswith("source 'warehouse' is not configured")

    # a repeat of the episode changes nothing and runs nothing
    intake.client.post("/api/v1/alertmanager", json=body, headers=intake.auth("oncall"))
    with intake.client.app.state.hypercare.session_factory() as session:  # type: ignore[attr-defined]
        diagnosed = session.scalars(select(TicketAudit.ticket_id).where(TicketAudit.action == "diagnosed"))
        assert sorted(diagnosed) == sorted({applied["ticket_id"], got["ticket_id"]})


# --- employees' reports ----------------------------------------------------------------------------------


def test_a_report_filed_through_the_api_gets_its_runbook_and_diagnostics(intake: Intake) -> None:
    form = {
        "title": "Entry JE-2 looks wrong",
        "module": "shop",
        "category": "data",
        "urgency": "high",
        "document_number": "JE-2",
    }
    filed = intake.client.post("/api/v1/reports", data=form, headers=intake.auth("reporter"))
    assert filed.status_code == 201, filed.text
    ticket_id = filed.json()["ticket_id"]
    got = intake.diagnostics(ticket_id)
    assert got["runbook_id"] == "shop-report"
    (entry,) = got["items"]
    assert entry["status"] == "ok" and entry["rows"] == [["JE-2", "migration"]]
    assert entry["params"] == {"document": "JE-2"}


def test_a_report_filed_through_the_form_gets_its_runbook_and_diagnostics(intake: Intake) -> None:
    assert login(intake.client, "reporter").status_code == 303
    token = csrf_of(intake.client.get("/report").text)
    form = {
        "csrf": token,
        "title": "Entry JE-3 was posted twice",
        "module": "shop",
        "category": "data",
        "urgency": "medium",
        "affected": "team",
        "document_number": "JE-3",
    }
    filed = intake.client.post("/report", data=form, follow_redirects=False)
    assert filed.status_code == 303, filed.text
    with intake.client.app.state.hypercare.session_factory() as session:  # type: ignore[attr-defined]
        ticket_id = session.scalars(select(Report.ticket_id).where(Report.document_number == "JE-3")).one()
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None and ticket.runbook_id == "shop-report"
    (entry,) = intake.diagnostics(ticket_id)["items"]
    assert entry["status"] == "ok" and entry["rows"] == [["JE-3", "alice"]]


# --- the webhook does not wait ---------------------------------------------------------------------------


@pytest.fixture
def locked_pg_table() -> Iterator[tuple[str, Any]]:
    """A table in the PostgreSQL test database and a connection holding an ACCESS EXCLUSIVE lock on it:
    any diagnostic reading it waits until the test releases the lock (a slow ERP, with no CPU burnt)."""
    name = f"hc_slow_{uuid.uuid4().hex[:8]}"
    engine = create_engine(PG_URL)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"CREATE TABLE {name} (n integer)"))
            conn.execute(text(f"INSERT INTO {name} VALUES (7)"))
    except OperationalError as exc:
        unavailable("PostgreSQL", exc.orig)
    locker = engine.connect()
    locker.execute(text(f"LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE"))
    yield name, locker
    locker.rollback()
    locker.close()
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
    engine.dispose()


@pytest.mark.postgres
def test_the_webhook_answers_before_a_slow_diagnostic_finishes(
    tmp_path: Path, locked_pg_table: tuple[str, Any]
) -> None:
    table, locker = locked_pg_table
    store = f"sqlite:///{tmp_path / 'store.db'}"
    engine = make_engine(store)
    upgrade(engine)
    tokens = seed_users(session_factory(engine))
    engine.dispose()
    slow = f"""diagnostics:
  - name: slow_read
    title: Reads a table another session holds locked
    source: slowerp
    sql: SELECT n FROM {table}
"""
    shop = build_shop(tmp_path / "shop", database_url=store, runbooks={"diagnostic_timeout_s": 20})
    assert shop.settings.runbooks_dir is not None
    (shop.settings.runbooks_dir / "slow-alert.md").write_text(
        runbook_markdown(slow, runbook_id="slow-alert", applies="alertmanager.ErpSlow"), encoding="utf-8"
    )
    pg = shop.settings.sources["erp"].model_copy(
        update={"url": type(shop.settings.sources["erp"].url)(PG_URL)}
    )
    settings = shop.settings.model_copy(update={"sources": {**shop.settings.sources, "slowerp": pg}})
    headers = {"Authorization": f"Bearer {tokens['oncall']}"}
    with (
        BackgroundServer(create_app(settings, ports=ports(settings))) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        started = time.perf_counter()
        answer = http.post(
            "/api/v1/alertmanager", json=alert("ErpSlow", "0f0f0f", source="erp"), headers=headers
        )
        latency = time.perf_counter() - started
        assert answer.status_code == 200, answer.text
        (applied,) = answer.json()["alerts"]
        assert applied["outcome"] == "opened"
        assert latency < 2.0, f"the webhook took {latency:.2f}s: it waited for the diagnostic"
        diagnostics = f"/api/v1/tickets/{applied['ticket_id']}/diagnostics"
        # the diagnostic is still waiting on the lock: nothing stored yet, yet the alert is answered
        assert http.get(diagnostics, headers=headers).json()["items"] == []
        locker.rollback()  # the ERP answers again
        deadline = time.monotonic() + 15
        while not (items := http.get(diagnostics, headers=headers).json()["items"]):
            assert time.monotonic() < deadline, "the diagnostic never finished"
            time.sleep(0.1)
    (done,) = items
    assert done["status"] == "ok" and done["rows"] == [[7]] and done["source"] == "slowerp"


# --- the shipped Tryton and dual-run runbooks ------------------------------------------------------------


def test_the_tryton_and_dualrun_runbooks_carry_diagnostics_the_lint_accepts() -> None:
    report = lint()
    assert report.ok, "\n".join(map(str, report.problems))
    tryton = {k: rb for k, rb in report.runbooks.items() if k.startswith("tryton-")}
    shipped = {p.stem for p in Path(runbooks.__file__).parent.glob("tryton-*.md")}
    assert set(tryton) == shipped and len(shipped) >= 9  # every shipped Tryton runbook, each checked below
    for runbook_id, runbook in tryton.items():
        assert runbook.diagnostics, runbook_id
        for diagnostic in runbook.diagnostics:
            assert diagnostic.engines == ("postgresql",), (runbook_id, diagnostic.name)
            assert diagnostic.params, (runbook_id, diagnostic.name)  # about the ticket's own records
    dualrun = report.runbooks["dualrun-difference"]
    assert {d.name for d in dualrun.diagnostics} >= {"first_document", "first_total_postings"}


def test_the_lint_refuses_a_dualrun_diagnostic_parameter_the_event_does_not_carry(tmp_path: Path) -> None:
    books = tmp_path / "books"
    books.mkdir()
    broken = """diagnostics:
  - name: by_account
    title: By account
    sql: SELECT 1 AS one WHERE :account = 'x'
    params: {account: entity.account}
"""
    path = books / "dualrun-difference.md"
    path.write_text(
        runbook_markdown(broken, runbook_id="dualrun-difference", applies='"dualrun.*"'), encoding="utf-8"
    )
    problems = [str(p) for p in lint([books]).problems]
    assert any(
        str(path) in p and "parameter account: entity.account is not in the events of dualrun.*" in p
        for p in problems
    ), problems
