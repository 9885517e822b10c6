"""Runbook diagnostics: linked and run once when a ticket opens, after the intake commit, read-only and
bounded, against the ticket's source; results (and failures) kept with the ticket and shown on its page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from anomaly.events import Event
from core.session import make_engine, session_factory, session_scope
from hypercare.pipeline import run_pipeline
from hypercare.serving import BackgroundServer
from hypercare.store import upgrade
from monitor.checks import load_checks
from runbooks.diagnostics import Runner, attach_runbooks
from runbooks.library import Diagnostic
from runbooks.models import TicketDiagnostic
from tests.runbooks.factories import CHECK_ID, RUNBOOK_ID, Shop, build_shop
from tests.servers import fresh_database
from tests.tickets.factories import make_event
from tests.tickets.web import login
from tickets.models import Ticket, TicketAudit
from tickets.service import TicketService


@pytest.fixture
def factory(store_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(store_url)
    yield session_factory(engine)
    engine.dispose()


def results(factory: sessionmaker[Session]) -> dict[str, TicketDiagnostic]:
    with factory() as session:
        return {d.name: d for d in session.scalars(select(TicketDiagnostic))}


def test_a_new_ticket_gets_its_runbooks_diagnostics_run_once_with_failures_kept(
    store_url: str, factory: sessionmaker[Session], tmp_path: Path
) -> None:
    shop = build_shop(tmp_path, database_url=store_url)
    checks = load_checks(shop.settings.checks.packs, shop.settings.checks.paths)
    report = run_pipeline(shop.settings, factory, checks)
    assert len(report.opened) == 1

    found = results(factory)
    assert set(found) == {"entry_lines", "same_creator", "by_label", "broken"}
    lines = found["entry_lines"]
    assert lines.status == "ok" and lines.runbook_id == RUNBOOK_ID and lines.source == "erp"
    assert lines.columns == ["number", "account", "debit", "credit"]
    assert [row[1] for row in lines.rows] == ["1122", "6001"]
    assert lines.params == {"entry_number": "JE-1"}
    creator = found["same_creator"]  # a parameter from the evidence row of the event
    assert creator.params == {"created_by": "migration"}
    assert [row[0] for row in creator.rows] == ["JE-1", "JE-2"]
    assert found["by_label"].status == "skipped"
    assert found["by_label"].error == "the ticket's event carries no labels.document"
    assert found["broken"].status == "error" and "entry_archive" in (found["broken"].error or "")

    with factory() as session:
        ticket = session.scalars(select(Ticket)).one()
        assert ticket.runbook_id == RUNBOOK_ID
        diagnosed = session.scalars(select(TicketAudit).where(TicketAudit.action == "diagnosed")).one()
    assert diagnosed.detail == {
        "runbook_id": RUNBOOK_ID,
        "ran": ["entry_lines", "same_creator", "by_label", "broken"],
        "failed": ["by_label", "broken"],
    }

    again = run_pipeline(shop.settings, factory, checks)  # a repeat: an occurrence, no second run
    assert again.outcomes["deduplicated"] == 1
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(TicketDiagnostic)) == 4
    assert attach_runbooks(shop.settings, factory, [ticket.id]).ran == 0  # run once per fingerprint


def test_tickets_without_diagnostics_cost_no_write(
    store_url: str, factory: sessionmaker[Session], tmp_path: Path
) -> None:
    shop = build_shop(tmp_path, database_url=store_url, diagnostics="")
    checks = load_checks(shop.settings.checks.packs, shop.settings.checks.paths)
    run_pipeline(shop.settings, factory, checks)
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(TicketDiagnostic)) == 0
        actions = set(session.scalars(select(TicketAudit.action)))
    assert actions == {"opened"}


def test_switched_off_diagnostics_do_not_run(
    store_url: str, factory: sessionmaker[Session], tmp_path: Path
) -> None:
    shop = build_shop(tmp_path, database_url=store_url, runbooks={"diagnostics": False})
    run_pipeline(shop.settings, factory, load_checks((), shop.settings.checks.paths))
    assert results(factory) == {}


def test_a_linked_runbook_that_does_not_apply_is_replaced_by_the_most_specific_one(
    tmp_path: Path,
) -> None:
    shop = build_shop(tmp_path / "shop")
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = make_engine(url)
    upgrade(engine)
    factory = session_factory(engine)
    probe_down = Event(
        fingerprint="fp-probe",
        severity="P2",
        category="technical",
        summary="ERP transaction erp-invoices: HTTP 503",
        source="erp",
        check_id="probe.erp-invoices",
        runbook="erp-slow-transaction",  # what monitor/probes.py names by default
        evidence={
            "row": {"url_path": "/api/invoices", "status_code": 503, "problem": "HTTP 503, expected 200"}
        },
    )
    with session_scope(factory) as session:
        ticket = TicketService(session, shop.settings).ingest(probe_down).ticket
        assert ticket is not None
        ticket_id = ticket.id
    report = attach_runbooks(shop.settings, factory, [ticket_id])
    assert report.linked == {ticket_id: "probe-down"}
    with factory() as session:
        assert session.get(Ticket, ticket_id).runbook_id == "probe-down"  # type: ignore[union-attr]
        linked = session.scalars(select(TicketAudit).where(TicketAudit.action == "runbook_linked")).one()
        assert linked.detail["after"] == {"runbook_id": "probe-down"}
        # no probe named erp-invoices is configured: the HTTP diagnostics say so, visibly
        errors = {d.name: d.error for d in session.scalars(select(TicketDiagnostic))}
    assert errors["request_again"] == "no configured probe to take the server from (name one with 'probe:')"
    engine.dispose()


def test_http_diagnostics_call_the_probes_server_read_only(tmp_path: Path) -> None:
    app = FastAPI()

    @app.get("/api/invoices")
    def invoices() -> dict[str, int]:
        return {"count": 3}

    @app.get("/api/health")
    def health() -> dict[str, str]:
        return {"status": "degraded"}

    with BackgroundServer(app) as url:
        shop = build_shop(tmp_path, probes=[{"name": "erp-invoices", "url": f"{url}/api/invoices?limit=50"}])
        runbook = Diagnostic(
            name="again", title="again", http="GET {path}", params={"path": "evidence.row.url_path"}
        )  # type: ignore[arg-type]
        ticket = Ticket(
            id=1,
            fingerprint="fp",
            check_id="probe.erp-invoices",
            source="erp",
            category="technical",
            entity={},
            labels={},
        )
        with Runner(shop.settings) as runner:
            done = runner.run(runbook, ticket, {"row": {"url_path": "/api/invoices"}})
            health = runner.run(Diagnostic(name="h", title="h", http="HEAD /api/health"), ticket, {})
    assert done.status == "ok", done.error
    assert done.columns[:3] == ["request", "status_code", "latency_s"]
    assert done.rows[0][:2] == ["GET /api/invoices", 200]
    assert done.source == url
    assert health.status == "ok" and health.rows[0][1] == 405  # HEAD is not routed: the answer is shown


def test_a_write_is_refused_before_it_reaches_the_database(tmp_path: Path) -> None:
    shop = build_shop(tmp_path)
    ticket = Ticket(
        id=1, fingerprint="fp", check_id=CHECK_ID, source="erp", category="data", entity={}, labels={}
    )
    with Runner(shop.settings) as runner:
        out = runner.run(Diagnostic(name="w", title="w", sql="DELETE FROM entry"), ticket, {})
        sneaky = runner.run(Diagnostic(name="s", title="s", sql="SELECT 1; DELETE FROM entry"), ticket, {})
    assert out.status == "error"
    assert out.error == "refused: SQL must be a single SELECT (or WITH ... SELECT) statement, not DELETE"
    assert sneaky.error == "refused: SQL must be one statement (found ';')"
    shop_db = create_engine(f"sqlite:///{shop.path}")
    with shop_db.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM entry")).scalar() == 3
    shop_db.dispose()


@pytest.fixture
def pg_source(tmp_path: Path) -> Iterator[str]:
    """A PostgreSQL database standing for the ERP, with a function that writes when selected."""
    for url in fresh_database("postgres", tmp_path, prefix="hc_rbk"):
        writer = create_engine(url)
        with writer.begin() as conn:
            conn.execute(text("CREATE TABLE shop_counter (n integer)"))
            conn.execute(
                text(
                    "CREATE FUNCTION shop_bump() RETURNS integer LANGUAGE sql AS "
                    "$$ INSERT INTO shop_counter VALUES (1) RETURNING n $$"
                )
            )
        writer.dispose()
        yield url


@pytest.mark.postgres
def test_on_postgresql_diagnostics_run_read_only_and_time_bounded(pg_source: str, tmp_path: Path) -> None:
    shop = build_shop(tmp_path, runbooks={"diagnostic_timeout_s": 0.3})
    source = shop.settings.sources["erp"].model_copy(update={"url": SecretStr(pg_source)})
    settings = shop.settings.model_copy(update={"sources": {"erp": source}})
    ticket = Ticket(id=1, fingerprint="fp", check_id=CHECK_ID, source="erp", category="data", labels={})
    typed = Diagnostic.model_validate(
        {
            "name": "t",
            "title": "t",
            "sql": "SELECT :id + 1 AS next",
            "params": {"id": {"from": "entity.id", "type": "int"}},
        }
    )
    slow_sql = "SELECT COUNT(*) AS n FROM generate_series(1, 500000000)"
    with Runner(settings) as runner:
        write = runner.run(Diagnostic(name="w", title="w", sql="SELECT shop_bump() AS n"), ticket, {})
        slow = runner.run(Diagnostic(name="s", title="s", sql=slow_sql), ticket, {})
        ticket.entity = {"id": "41"}
        counted = runner.run(typed, ticket, {})
        mysql_only = runner.run(
            Diagnostic(name="m", title="m", sql="SELECT 1 AS one", engines=("mysql",)), ticket, {}
        )
    # a function that is not on the allow-list never reaches the database (were it to, the read-only
    # transaction would refuse its write: tests/monitor/test_checks.py)
    assert write.status == "error"
    assert write.error == (
        "refused: SQL must only read: calls shop_bump() at line 1, column 8, which is not on the read-only "
        "allow-list of functions"
    )
    assert slow.status == "error" and "statement timeout" in (slow.error or "")
    assert slow.duration_s < 5
    assert counted.status == "ok" and counted.rows == [[42]]
    assert mysql_only.status == "skipped" and mysql_only.error == "written for mysql; erp is postgresql"
    check = create_engine(pg_source)
    with check.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM shop_counter")).scalar() == 0
    check.dispose()


def test_the_ticket_page_shows_diagnostic_tables_and_failures(shop: Shop) -> None:
    login(shop.client, "viewer")
    page = shop.client.get(f"/tickets/{shop.ticket_id}").text
    assert 'id="diagnostics"' in page
    assert "The entry line by line" in page and "<td>1122</td>" in page
    assert "Failed: " in page and "entry_archive" in page
    assert "Not run: the ticket&#39;s event carries no labels.document" in page
    assert make_event  # the factories stay importable for the other tests of this package
