"""The demo ERP's HTTP API: real answers from the generated data, clear 404s, and the simulated slowness."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, select
from starlette.testclient import TestClient

from hypercare.demo import erp_schema as s
from hypercare.demo.builder import DemoErp
from hypercare.demo.erp_api import create_erp_api
from tests.demo_erp import DemoErpFactory

AS_OF = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
PROBE_LATENCY_FAIL_S = 1.0  # what the demo's probe of /api/trial-balance is configured with


@pytest.fixture(scope="module")
def erp(demo_erp: DemoErpFactory) -> DemoErp:
    return demo_erp(scale=0.05, faults=[], as_of=AS_OF)


@pytest.fixture
def client(erp: DemoErp) -> Iterator[TestClient]:
    with TestClient(create_erp_api(erp.erp_url)) as test_client:
        yield test_client


def test_health_names_the_company(client: TestClient) -> None:
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "company": "上海华东贸易有限公司",
        "go_live_date": "2026-11-03",
    }


def test_invoice_list_filters_and_limits(client: TestClient) -> None:
    drafts = client.get("/api/invoices", params={"state": "draft", "limit": 3}).json()
    assert 1 <= len(drafts) <= 3
    assert {d["state"] for d in drafts} == {"draft"}
    posted = client.get("/api/invoices", params={"state": "posted", "kind": "out", "limit": 10}).json()
    assert len(posted) == 10
    first = posted[0]
    assert Decimal(first["amount_untaxed"]) + Decimal(first["amount_tax"]) == Decimal(first["amount_total"])
    assert len(first["fapiao_no"]) == 20
    assert client.get("/api/invoices", params={"limit": 0}).status_code == 422
    assert client.get("/api/invoices", params={"state": "paid"}).status_code == 422


def test_invoice_detail_has_lines_and_journal_entry(client: TestClient, erp: DemoErp) -> None:
    engine = create_engine(erp.erp_url)
    with engine.connect() as conn:
        number = conn.execute(
            select(s.invoice.c.number)
            .where(s.invoice.c.kind == "out", s.invoice.c.state == "posted")
            .limit(1)
        ).scalar_one()
    engine.dispose()
    response = client.get(f"/api/invoices/{number}")  # numbers carry slashes: INV/2026/000001
    assert response.status_code == 200
    body = response.json()
    assert body["number"] == number
    assert body["journal_entry"].startswith(("SAL/", "MIG/SAL/"))
    assert sum(Decimal(line["amount_untaxed"]) for line in body["lines"]) == Decimal(body["amount_untaxed"])
    missing = client.get("/api/invoices/INV/1999/000001")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "invoice 'INV/1999/000001' not found"}


def test_partner_shows_open_receivables(client: TestClient) -> None:
    body = client.get("/api/partners/C00001").json()
    assert body["code"] == "C00001"
    assert body["kind"] == "customer"
    assert body["open_invoices"] >= 0
    assert Decimal(body["open_amount"]) >= 0
    assert client.get("/api/partners/X99999").status_code == 404


def test_trial_balance_balances_overall_and_per_period(client: TestClient) -> None:
    whole = client.get("/api/trial-balance")
    assert whole.status_code == 200
    body = whole.json()
    assert body["total_debit"] == body["total_credit"]
    assert Decimal(body["total_debit"]) > 0
    assert {row["code"] for row in body["accounts"]} >= {"1122", "2202", "6001", "222102"}
    month = client.get("/api/trial-balance", params={"period": "2026-10"}).json()
    assert (month["date_from"], month["date_to"]) == ("2026-10-01", "2026-10-31")
    assert month["total_debit"] == month["total_credit"]
    assert Decimal(month["total_debit"]) < Decimal(body["total_debit"])
    assert client.get("/api/trial-balance", params={"period": "1999-01"}).status_code == 404
    assert client.get("/api/trial-balance", params={"period": "2026-1"}).status_code == 422


def _timed(client: TestClient, path: str) -> float:
    started = time.perf_counter()
    assert client.get(path).status_code == 200
    return time.perf_counter() - started


def test_trial_balance_is_fast_without_the_fault(client: TestClient) -> None:
    assert _timed(client, "/api/trial-balance") < PROBE_LATENCY_FAIL_S / 2


def test_slow_endpoint_fault_delays_only_the_trial_balance(demo_erp: DemoErpFactory) -> None:
    erp = demo_erp(scale=0.05, faults=["slow_erp_endpoint"], as_of=AS_OF)
    with TestClient(create_erp_api(erp.erp_url)) as client:
        assert _timed(client, "/api/trial-balance") >= 1.5 > PROBE_LATENCY_FAIL_S
        assert _timed(client, "/api/health") < PROBE_LATENCY_FAIL_S / 2
        assert _timed(client, "/api/invoices?limit=50") < PROBE_LATENCY_FAIL_S / 2
