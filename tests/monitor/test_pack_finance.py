"""The finance-integration reconciliation pack on the demo ERP: quiet when clean, each fault caught."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from hypercare.demo.builder import DemoErp
from monitor.checks import CheckSpec, load_pack
from monitor.reconcile import run_reconcile
from monitor.results import CheckResult
from monitor.sources import source_engine
from tests.demo_erp import DemoErpFactory
from tests.servers import fresh_database

PACK = {spec.id: spec for spec in load_pack("finance_recon")}
SCALE = 0.05


def run(demo: DemoErp, spec: CheckSpec) -> CheckResult:
    engines = {"erp": source_engine(demo.erp_url), "finance": source_engine(demo.finance_url)}
    try:
        return run_reconcile(spec, engines, now=demo.as_of)
    finally:
        for engine in engines.values():
            engine.dispose()


@pytest.fixture
def sqlite_demo(demo_erp: DemoErpFactory) -> DemoErp:
    return demo_erp(seed=11, scale=SCALE, faults=[])


@pytest.fixture
def postgres_demo(tmp_path: Path, demo_erp: DemoErpFactory) -> Iterator[DemoErp]:
    """The ERP on PostgreSQL, the finance system on SQLite: the reconciliation crosses engines.

    (Only the ERP goes to PostgreSQL: the demo builder keeps the three loads open in one transaction each
    and ends each with a database-wide ANALYZE, which waits on the shared catalogs another load holds.)
    """
    for url in fresh_database("postgres", tmp_path, prefix="hc_fin_erp"):
        yield demo_erp(seed=11, scale=SCALE, faults=[], erp_url=url)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def clean_demo(request: pytest.FixtureRequest) -> DemoErp:
    return request.getfixturevalue(f"{request.param}_demo")  # type: ignore[no-any-return]


def write(url: str, sql: str, **params: object) -> None:
    """Break one of the demo's databases (tests only; Hypercare never writes to a monitored system)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(sql), params)
    engine.dispose()


def pick_message(demo: DemoErp) -> tuple[int, str, str]:
    """A sent message of the window: (id, doc_ref, delivery day)."""
    engine = create_engine(demo.erp_url)
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT id, doc_ref, processed_at FROM integration_outbox "
                "WHERE status = 'sent' AND doc_type = 'customer_invoice' ORDER BY processed_at DESC, id"
            )
        ).first()
    engine.dispose()
    assert row is not None
    return int(row.id), str(row.doc_ref), str(row.processed_at)[:10]


def test_the_clean_demo_erp_passes_every_reconciliation(clean_demo: DemoErp) -> None:
    results = {check_id: run(clean_demo, spec) for check_id, spec in PACK.items()}
    assert {k: (r.status, r.error) for k, r in results.items()} == dict.fromkeys(PACK, ("pass", None))
    assert all(r.measured_value == 0 for r in results.values())


Break = Callable[[DemoErp, int], None]


def lose_message(demo: DemoErp, message_id: int) -> None:
    write(demo.finance_url, "DELETE FROM finance_inbox WHERE source_message_id = :m", m=message_id)


def post_other_amount(demo: DemoErp, message_id: int) -> None:
    write(
        demo.finance_url,
        "UPDATE finance_inbox SET amount = amount + 100 WHERE source_message_id = :m",
        m=message_id,
    )


def lose_acknowledgement(demo: DemoErp, message_id: int) -> None:
    write(demo.erp_url, "UPDATE integration_outbox SET status = 'failed' WHERE id = :m", m=message_id)


FAULTS: dict[str, tuple[Break, str, str]] = {
    # fault: (break, the message-level check that must catch it, the issue it reports)
    "finance lost a message": (lose_message, "finance.sent_not_received", "missing_right"),
    "finance posted another amount": (post_other_amount, "finance.amount_mismatch", "different"),
    "ERP lost the acknowledgement": (lose_acknowledgement, "finance.received_not_sent", "missing_left"),
}


@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
def test_each_fault_is_caught_by_its_check_and_by_the_daily_parity(clean_demo: DemoErp, fault: str) -> None:
    breaker, check_id, issue = FAULTS[fault]
    message_id, doc_ref, day = pick_message(clean_demo)
    breaker(clean_demo, message_id)

    result = run(clean_demo, PACK[check_id])
    assert (result.status, result.entities) == ("fail", [{"message_id": str(message_id)}])
    assert result.sample[0]["issue"] == issue
    assert doc_ref in {result.sample[0].get("left_doc_ref"), result.sample[0].get("right_doc_ref")}
    assert result.amount_at_risk is not None and result.amount_at_risk > 0
    if issue == "different":
        assert result.amount_at_risk == 100
    others = {
        k: run(clean_demo, s).status for k, s in PACK.items() if k not in {check_id, "finance.daily_parity"}
    }
    assert set(others.values()) == {"pass"}, others

    daily = run(clean_demo, PACK["finance.daily_parity"])
    assert (daily.status, daily.entities) == ("fail", [{"day": day, "doc_type": "customer_invoice"}])
    if issue == "different":
        # SQLite returns NUMERIC sums as floats, so the scale of the text differs by engine, not the value
        assert Decimal(daily.sample[0]["diff_amount"]) == Decimal("-100")
        assert "diff_messages" not in daily.sample[0]
    else:
        assert abs(int(daily.sample[0]["diff_messages"])) == 1


def test_the_demo_rounding_fault_is_seen_from_the_finance_side_too(demo_erp: DemoErpFactory) -> None:
    demo = demo_erp(seed=7, scale=SCALE, faults=["invoice_total_differs_from_entry"])
    (fault,) = demo.faults
    result = run(demo, PACK["finance.amount_mismatch"])
    assert result.status == "fail"
    assert [row["left_doc_ref"] for row in result.sample] == [fault.entity["invoice_number"]]
    assert result.amount_at_risk is not None and 0 < result.amount_at_risk < 1


def test_an_unreachable_side_is_an_error_naming_it(sqlite_demo: DemoErp) -> None:
    engines = {"erp": source_engine(sqlite_demo.erp_url)}
    result = run_reconcile(PACK["finance.daily_parity"], engines, now=sqlite_demo.as_of)
    assert result.status == "error"
    assert result.error is not None and "right (finance)" in result.error
