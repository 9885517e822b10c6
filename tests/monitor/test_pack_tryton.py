"""The Tryton pack against a real Tryton 8 database: quiet when clean, each fault caught by its check.

The clean database is built once per session with trytond-admin and proteus (tests/monitor/
tryton_fixture.py); each broken case is a copy of it (CREATE DATABASE ... TEMPLATE) broken with SQL.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlglot
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import OperationalError

from anomaly.rules import events_for_result
from core.session import make_engine, session_factory, session_scope
from hypercare.store import upgrade
from monitor.checks import load_pack, run_check
from monitor.incremental import Outcome, run_incremental_check
from monitor.results import CheckResult
from monitor.sources import source_engine
from monitor.volumes import load_volumes, run_volume
from tests.monitor.tryton_fixture import TrytonUnavailable, build_tryton_database, tryton_skip
from tests.servers import PG_URL, unavailable
from tests.tickets.factories import make_settings
from tickets.models import Ticket
from tickets.service import TicketService

pytestmark = pytest.mark.postgres

PACK = {spec.id: spec for spec in load_pack("tryton")}


@pytest.fixture(scope="session")
def tryton_clean() -> Iterator[str]:
    """The name of a clean Tryton database (a template: never connect to it while copying)."""
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"hc_tryton_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        unavailable("PostgreSQL", exc.orig)
    server = admin.url.set(drivername="postgresql", database="").render_as_string(hide_password=False)
    try:
        with tempfile.TemporaryDirectory() as workdir:
            build_tryton_database(name, server.rstrip("/") + "/", Path(workdir))
    except TrytonUnavailable as exc:
        _drop(name)
        tryton_skip(str(exc))
    yield name
    _drop(name)
    admin.dispose()


def _drop(name: str) -> None:
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@dataclass
class Copy:
    name: str
    url: str

    def write(self, sql: str) -> None:
        """Break this copy (tests only: Hypercare never writes to a monitored database)."""
        engine = create_engine(self.url)
        with engine.begin() as conn:
            for statement in sql.strip().split(";\n"):
                conn.execute(text(statement))
        engine.dispose()

    def scalar(self, sql: str) -> object:
        engine = create_engine(self.url)
        with engine.connect() as conn:
            value = conn.execute(text(sql)).scalar()
        engine.dispose()
        return value

    def run(self, check_id: str) -> CheckResult:
        engine = source_engine(self.url)
        try:
            return run_check(PACK[check_id], engine)
        finally:
            engine.dispose()


@pytest.fixture
def tryton(tryton_clean: str) -> Iterator[Copy]:
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"{tryton_clean}_{uuid.uuid4().hex[:6]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{tryton_clean}"'))
    yield Copy(name, admin.url.set(database=name).render_as_string(hide_password=False))
    _drop(name)
    admin.dispose()


# Ids in the clean database are looked up, not assumed: a trytond release may number records differently.
# The invoices keyed by hand without tax (the fixture's taxed customer invoice is TAXED; the sale's and the
# purchase's invoices have lines whose origin is the order line).
KEYED = (
    "tax_amount_cache = 0 AND NOT EXISTS "
    "(SELECT 1 FROM account_invoice_line o WHERE o.invoice = account_invoice.id AND o.origin IS NOT NULL)"
)
FIRST_OUT = f"(SELECT MIN(id) FROM account_invoice WHERE type = 'out' AND state = 'posted' AND {KEYED})"
LAST_OUT = f"(SELECT MAX(id) FROM account_invoice WHERE type = 'out' AND state = 'posted' AND {KEYED})"
FIRST_IN = f"(SELECT MIN(id) FROM account_invoice WHERE type = 'in' AND state = 'posted' AND {KEYED})"
LAST_IN = f"(SELECT MAX(id) FROM account_invoice WHERE type = 'in' AND state = 'posted' AND {KEYED})"
SALE_LINE = "(SELECT MIN(id) FROM sale_line)"
PURCHASE_LINE = "(SELECT MIN(id) FROM purchase_line)"
TAXED = "(SELECT id FROM account_invoice WHERE state = 'posted' AND tax_amount_cache <> 0)"
DRAFT = "(SELECT MIN(id) FROM account_invoice WHERE state = 'draft')"
CLOSED = "(SELECT MIN(id) FROM account_period WHERE state = 'closed')"
PRODUCT = "(SELECT MIN(id) FROM product_product)"
STORAGE = "(SELECT id FROM stock_location WHERE code = 'STO')"
SHIPPED_BEFORE_STOCK_PERIOD = "(SELECT id FROM stock_move WHERE state = 'done' AND internal_quantity = 30)"
RECEIVED_AFTER_STOCK_PERIOD = "(SELECT id FROM stock_move WHERE state = 'done' AND internal_quantity = 20)"
PLANNED_SHIPMENT = "(SELECT id FROM stock_move WHERE state = 'draft')"


# The year closed the way Tryton closes it, as far as the balance sheet goes: one deferral per balance-sheet
# account holding its lines' cumulative debit and credit.
CLOSE_WITH_DEFERRALS = (
    "UPDATE account_fiscalyear SET state = 'closed';\n"
    "INSERT INTO account_account_deferral (account, fiscalyear, debit, credit, amount_second_currency, line_count) "
    "SELECT l.account, (SELECT MIN(id) FROM account_fiscalyear), SUM(l.debit), SUM(l.credit), 0, COUNT(*) "
    "FROM account_move_line l JOIN account_account a ON a.id = l.account "
    "JOIN account_account_type t ON t.id = a.type WHERE t.statement IN ('balance', 'off-balance') "
    "GROUP BY l.account"
)


def receivable_line(invoice: str) -> str:
    return f"(SELECT l.id FROM account_move_line l JOIN account_invoice i ON i.move = l.move AND i.account = l.account WHERE i.id = {invoice})"


def revenue_line(invoice: str) -> str:
    return f"(SELECT l.id FROM account_move_line l JOIN account_invoice i ON i.move = l.move AND i.account <> l.account WHERE i.id = {invoice})"


def move_of(invoice: str) -> str:
    return f"(SELECT move FROM account_invoice WHERE id = {invoice})"


def same_as(column: str, table: str, key: str, source: str, target: str) -> str:
    """Copy ``column`` of the ``table`` row(s) whose ``key`` is ``source`` onto those whose ``key`` is ``target``."""
    values = column.strip("()")  # a column list (a, b) is selected as a, b
    return f"UPDATE {table} SET {column} = (SELECT {values} FROM {table} WHERE {key} = {source}) WHERE {key} = {target}"


@dataclass(frozen=True)
class Fault:
    check_id: str
    sql: str
    entity: str
    """SQL giving the key the check must report (a one-key check), evaluated on the broken copy."""
    amount: Decimal | None = None


FAULTS: dict[str, Fault] = {
    "a line changed after posting unbalances its move": Fault(
        "tryton.ledger.unbalanced_moves",
        f"UPDATE account_move_line SET credit = credit - 100 WHERE id = {revenue_line(FIRST_OUT)}",
        move_of(FIRST_OUT),
        Decimal("100.00"),
    ),
    "the same change breaks the trial balance": Fault(
        "tryton.ledger.trial_balance",
        f"UPDATE account_move_line SET credit = credit - 100 WHERE id = {revenue_line(FIRST_OUT)}",
        "(SELECT MIN(id) FROM account_fiscalyear)",
        Decimal("100.00"),
    ),
    "a carried-forward receivable balance edited after the year closed": Fault(
        "tryton.ledger.deferral_vs_lines",
        f"{CLOSE_WITH_DEFERRALS};\n"
        "UPDATE account_account_deferral SET debit = debit + 100 "
        "WHERE account = (SELECT default_account_receivable FROM account_configuration_default_account)",
        "(SELECT MIN(id) FROM account_fiscalyear)",
        Decimal("100.00"),
    ),
    "a credit loaded as a negative debit (balance unchanged)": Fault(
        "tryton.ledger.line_sanity",
        f"UPDATE account_move_line SET debit = -credit, credit = 0 WHERE id = {revenue_line(FIRST_OUT)}",
        revenue_line(FIRST_OUT),
    ),
    "a euro line loaded at another rate": Fault(
        "tryton.ledger.second_currency_rate",
        "UPDATE account_move_line SET amount_second_currency = amount_second_currency * 1.1 "
        "WHERE second_currency IS NOT NULL AND debit > 0",
        "(SELECT id FROM account_move_line WHERE second_currency IS NOT NULL AND debit > 0)",
        Decimal("5.00"),
    ),
    "goods shipped three weeks ago whose invoice was cancelled and never re-issued": Fault(
        "tryton.flow.shipped_not_invoiced",
        "UPDATE stock_move SET effective_date = effective_date - 20, planned_date = planned_date - 20 "
        f"WHERE product = (SELECT product FROM sale_line WHERE id = {SALE_LINE});\n"
        "UPDATE account_invoice SET state = 'cancelled' "
        f"WHERE id = (SELECT invoice FROM account_invoice_line WHERE origin = 'sale.line,' || {SALE_LINE})",
        SALE_LINE,
        Decimal("280.00"),
    ),
    "a supplier invoice line billing more than was received": Fault(
        "tryton.flow.purchase_invoice_vs_receipt",
        f"UPDATE account_invoice_line SET quantity = 15 WHERE origin = 'purchase.line,' || {PURCHASE_LINE}",
        PURCHASE_LINE,
        Decimal("45.00"),
    ),
    "a reconciliation that does not balance": Fault(
        "tryton.subledger.control_vs_open_lines",
        "INSERT INTO account_move_reconciliation (company, date, number) "
        "SELECT id, CURRENT_DATE, 'HC-BROKEN' FROM company_company;\n"
        "UPDATE account_move_line SET reconciliation = "
        "(SELECT id FROM account_move_reconciliation WHERE number = 'HC-BROKEN') "
        f"WHERE id = {receivable_line(FIRST_OUT)}",
        f"(SELECT account FROM account_invoice WHERE id = {FIRST_OUT})",
    ),
    "an invoice marked paid with its line open": Fault(
        "tryton.subledger.invoice_state_vs_lines",
        f"UPDATE account_invoice SET state = 'paid' WHERE id = {LAST_OUT}",
        "(SELECT id FROM account_invoice WHERE state = 'paid')",
    ),
    "a posted invoice lost its move": Fault(
        "tryton.documents.posted_invoice_without_move",
        f"UPDATE account_invoice SET move = NULL WHERE id = {LAST_OUT}",
        "(SELECT id FROM account_invoice WHERE move IS NULL AND state = 'posted')",
    ),
    "an invoice total changed after posting": Fault(
        "tryton.documents.invoice_total_vs_move",
        "UPDATE account_invoice SET total_amount_cache = total_amount_cache + 50, "
        f"untaxed_amount_cache = untaxed_amount_cache + 50 WHERE id = {FIRST_OUT}",
        FIRST_OUT,
        Decimal("50.00"),
    ),
    "a supplier invoice keyed twice": Fault(
        "tryton.documents.duplicate_supplier_invoices",
        f"UPDATE account_invoice SET (party, reference, total_amount_cache) = "
        f"(SELECT party, reference, total_amount_cache FROM account_invoice WHERE id = {FIRST_IN}) "
        f"WHERE id = {LAST_IN}",
        f"(SELECT party FROM account_invoice WHERE id = {FIRST_IN})",
    ),
    "a draft invoice forgotten for a month": Fault(
        "tryton.documents.stuck_before_posting",
        f"UPDATE account_invoice SET invoice_date = CURRENT_DATE - 30 WHERE id = {DRAFT}",
        DRAFT,
    ),
    "a customer invoice deleted after posting leaves a gap": Fault(
        "tryton.documents.invoice_numbering",
        f"DELETE FROM account_invoice WHERE id = {LAST_OUT}",
        f"(SELECT number FROM account_invoice WHERE id = {LAST_OUT})",  # the number before the gap
    ),
    "the last invoice number given twice": Fault(
        "tryton.documents.invoice_numbering",
        "UPDATE account_invoice SET number = CAST(CAST(number AS INTEGER) - 1 AS VARCHAR) "
        "WHERE id = (SELECT MAX(id) FROM account_invoice WHERE number IS NOT NULL)",
        "(SELECT MAX(CAST(number AS INTEGER)) FROM account_invoice)",
    ),
    "a move re-dated out of its period": Fault(
        "tryton.periods.move_outside_period",
        f"UPDATE account_move SET date = date - 60 WHERE id = {move_of(LAST_IN)}",
        move_of(LAST_IN),
        Decimal("75.25"),
    ),
    "a move booked into the closed period": Fault(
        "tryton.periods.posting_in_closed_period",
        f"UPDATE account_move SET period = {CLOSED}, "
        f"date = (SELECT start_date + 14 FROM account_period WHERE id = {CLOSED}), "
        f"create_date = (CURRENT_TIMESTAMP AT TIME ZONE 'UTC') WHERE id = {move_of(FIRST_IN)}",
        move_of(FIRST_IN),
        Decimal("640.00"),
    ),
    "a receivable line without its customer": Fault(
        "tryton.masterdata.receivable_payable_line_without_party",
        f"UPDATE account_move_line SET party = NULL WHERE id = {receivable_line(LAST_OUT)}",
        receivable_line(LAST_OUT),
    ),
    "the last customer invoice re-keyed with the first one's lines and total": Fault(
        "tryton.documents.duplicate_customer_invoices",
        same_as("unit_price", "account_invoice_line", "invoice", FIRST_OUT, LAST_OUT)
        + ";\n"
        + same_as(
            "(untaxed_amount_cache, tax_amount_cache, total_amount_cache)",
            "account_invoice",
            "id",
            FIRST_OUT,
            LAST_OUT,
        ),
        f"(SELECT party FROM account_invoice WHERE id = {FIRST_OUT})",
        Decimal("1200.00"),
    ),
    "an invoice line's price changed after posting": Fault(
        "tryton.documents.invoice_lines_vs_header",
        f"UPDATE account_invoice_line SET unit_price = unit_price + 0.01 WHERE invoice = {FIRST_OUT}",
        FIRST_OUT,
        Decimal("0.01"),
    ),
    "a posted invoice put back to draft under its posted move": Fault(
        "tryton.ledger.orphan_moves",
        f"UPDATE account_invoice SET state = 'draft' WHERE id = {LAST_OUT}",
        "(SELECT move FROM account_invoice WHERE state = 'draft' AND move IS NOT NULL)",
        Decimal("89.99"),
    ),
    "a move on the revenue journal without origin": Fault(
        "tryton.ledger.orphan_moves",
        f"UPDATE account_move SET origin = NULL WHERE id = {move_of(FIRST_OUT)}",
        move_of(FIRST_OUT),
        Decimal("1200.00"),
    ),
    "a draft journal entry forgotten for a month": Fault(
        "tryton.documents.stuck_draft_moves",
        "INSERT INTO account_move (company, journal, period, date, state, description) "
        "SELECT c.id, (SELECT id FROM account_journal WHERE code = 'MISC'), p.id, CURRENT_DATE - 30, 'draft', "
        "'accrual' FROM company_company c JOIN account_period p "
        "ON CURRENT_DATE - 30 BETWEEN p.start_date AND p.end_date AND p.type = 'standard'",
        "(SELECT id FROM account_move WHERE state = 'draft')",
    ),
    "a shipment back-dated before the goods arrived": Fault(
        "tryton.stock.negative_stock",
        f"UPDATE stock_move SET effective_date = effective_date - 10 WHERE id = {SHIPPED_BEFORE_STOCK_PERIOD}",
        PRODUCT,
    ),
    "a shipment before the closed stock period changed behind the ORM": Fault(
        "tryton.stock.period_cache_vs_moves",
        f"UPDATE stock_move SET quantity = 25, internal_quantity = 25 WHERE id = {SHIPPED_BEFORE_STOCK_PERIOD}",
        PRODUCT,
    ),
    "a planned shipment reserved and re-dated into the closed stock period": Fault(
        "tryton.stock.assigned_moves_in_closed_period",
        f"UPDATE stock_move SET state = 'assigned', planned_date = planned_date - 40 WHERE id = {PLANNED_SHIPMENT}",
        "(SELECT id FROM stock_move WHERE state = 'assigned')",
    ),
    "an inventory counted a third short": Fault(
        "tryton.stock.inventory_count_variance",
        "UPDATE stock_inventory_line SET quantity = 60",
        "(SELECT MIN(id) FROM stock_inventory_line)",
    ),
    "a receipt loaded without its price": Fault(
        "tryton.stock.receipt_without_price",
        f"UPDATE stock_move SET unit_price = NULL WHERE id = {RECEIVED_AFTER_STOCK_PERIOD}",
        RECEIVED_AFTER_STOCK_PERIOD,
    ),
    "a move posted with next year's date": Fault(
        "tryton.periods.move_dated_after_posting",
        f"UPDATE account_move SET date = date + 365 WHERE id = {move_of(LAST_OUT)}",
        move_of(LAST_OUT),
        Decimal("89.99"),
    ),
    "a fiscal year closed in SQL after a closing entry that forgot the expenses": Fault(
        "tryton.periods.closed_year_not_balanced",
        "INSERT INTO account_move (company, journal, period, date, state, number, post_date, description) "
        "SELECT f.company, (SELECT id FROM account_journal WHERE code = 'MISC'), "
        "(SELECT p.id FROM account_period p WHERE p.fiscalyear = f.id ORDER BY p.end_date DESC, p.id DESC LIMIT 1), "
        "f.end_date, 'posted', 'HC-CLOSE', f.end_date, 'balance non-deferral' FROM account_fiscalyear f;\n"
        "INSERT INTO account_move_line (move, account, debit, credit, state) "
        "SELECT (SELECT id FROM account_move WHERE number = 'HC-CLOSE'), l.account, "
        "GREATEST(SUM(l.credit - l.debit), 0), GREATEST(SUM(l.debit - l.credit), 0), 'valid' "
        "FROM account_move_line l JOIN account_account a ON a.id = l.account "
        "JOIN account_account_type t ON t.id = a.type WHERE t.revenue GROUP BY l.account;\n"
        "INSERT INTO account_move_line (move, account, debit, credit, state) "
        "SELECT MIN(l.move), (SELECT id FROM account_account WHERE code = '3.2.1'), "
        "GREATEST(SUM(l.credit - l.debit), 0), GREATEST(SUM(l.debit - l.credit), 0), 'valid' "
        "FROM account_move_line l WHERE l.move = (SELECT id FROM account_move WHERE number = 'HC-CLOSE');\n"
        "UPDATE account_fiscalyear SET state = 'closed'",
        "(SELECT MIN(id) FROM account_fiscalyear)",
        Decimal("945.25"),  # expenses: 640.00 + 75.25 keyed, 50.00 in euros, 180.00 purchased
    ),
    "a tax amount raised after posting": Fault(
        "tryton.tax.invoice_tax_vs_rate",
        f"UPDATE account_invoice_tax SET amount = amount + 2 WHERE invoice = {TAXED}",
        f"(SELECT id FROM account_invoice_tax WHERE invoice = {TAXED})",
        Decimal("2.00"),
    ),
    "a tax-report base lowered behind the ORM": Fault(
        "tryton.tax.tax_lines_vs_move_lines",
        "UPDATE account_tax_line SET amount = amount - 20 WHERE type = 'base'",
        "(SELECT move_line FROM account_tax_line WHERE type = 'base')",
        Decimal("20.00"),
    ),
    "the default receivable account made non-reconcilable": Fault(
        "tryton.masterdata.account_determination",
        "UPDATE account_account SET reconcile = false "
        "WHERE id = (SELECT default_account_receivable FROM account_configuration_default_account)",
        "'default receivable'",
    ),
    "a supplier created twice": Fault(
        "tryton.masterdata.duplicate_parties",
        "INSERT INTO party_party (name, active, code) VALUES ('  globex   SUPPLIES ', true, 'HC-DUP')",
        "'name'",
    ),
}


def test_the_pack_covers_every_check_with_a_fault() -> None:
    assert {f.check_id for f in FAULTS.values()} == set(PACK)


def test_the_clean_tryton_database_passes_every_check(tryton: Copy) -> None:
    posted = tryton.scalar("SELECT COUNT(*) FROM account_invoice WHERE state = 'posted'")
    assert posted == 8, "four customer (one taxed) and two supplier invoices, a sale's and a purchase's"
    results = {check_id: tryton.run(check_id) for check_id in PACK}
    assert {k: (r.status, r.error) for k, r in results.items()} == dict.fromkeys(PACK, ("pass", None))
    assert results["tryton.ledger.trial_balance"].measured_value == 0.0


@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
def test_each_fault_is_caught_by_its_check(tryton: Copy, fault: str) -> None:
    case = FAULTS[fault]
    spec = PACK[case.check_id]
    tryton.write(case.sql)
    expected = str(tryton.scalar(f"SELECT {case.entity}"))

    result = tryton.run(case.check_id)
    assert result.status == "fail", result.error
    assert result.violations == 1
    first_key = spec.key_columns[0]
    assert [e[first_key] for e in result.entities] == [expected]
    if case.amount is not None:
        assert result.amount_at_risk == case.amount


def test_a_second_identifier_on_another_party_is_a_duplicate(tryton: Copy) -> None:
    tryton.write(
        "INSERT INTO party_identifier (party, type, code, code_compact, active, sequence) "
        "SELECT id, 'eu_vat', 'BE0897290877', 'BE0897290877', true, 1 FROM party_party "
        "WHERE name IN ('Acme Retail', 'Globex Supplies')"
    )
    result = tryton.run("tryton.masterdata.duplicate_parties")
    assert result.status == "fail"
    assert result.entities == [{"matched_on": "identifier eu_vat", "match_value": "BE0897290877"}]


def test_the_trial_balance_threshold_measures_the_imbalance(tryton: Copy) -> None:
    tryton.write(
        f"UPDATE account_move_line SET debit = debit + 0.004 WHERE id = {receivable_line(FIRST_OUT)}"
    )
    within = tryton.run("tryton.ledger.trial_balance")
    assert (within.status, within.violations) == ("pass", 0)
    assert within.measured_value == pytest.approx(0.004)
    tryton.write(f"UPDATE account_move_line SET debit = debit + 0.5 WHERE id = {receivable_line(FIRST_OUT)}")
    beyond = tryton.run("tryton.ledger.trial_balance")
    assert beyond.status == "fail"
    assert beyond.measured_value == pytest.approx(0.504)


# --- business-volume watches (monitor/volumes.py) ---------------------------------------------------------

VOLUMES = {watch.id: watch for watch in load_volumes(["tryton"], check_ids=list(PACK))}
NEEDS_MODULES = {"tryton.volume.statement_lines": "account_statement", "tryton.volume.stock_moves": "stock"}
"""Watches over modules the fixture does not activate: their SQL is parsed, not run."""


def test_the_volume_watches_read_the_tryton_schema(tryton: Copy) -> None:
    later = datetime.now(UTC) + timedelta(days=2)  # the fixture's documents are dated today: make it complete
    engine = source_engine(tryton.url)
    try:
        runs = {i: run_volume(w, engine, now=later) for i, w in VOLUMES.items() if i not in NEEDS_MODULES}
    finally:
        engine.dispose()
    assert {i: (r.result.status, r.result.error) for i, r in runs.items()} == dict.fromkeys(
        runs, ("pass", None)
    )

    def total(watch_id: str, measure: str = "count") -> float:
        found = runs[watch_id].series
        return sum(v for s in found if s.measure == measure for _, v in s.points)

    assert total("tryton.volume.invoices") == tryton.scalar(
        "SELECT COUNT(*) FROM account_invoice WHERE state <> 'cancelled'"
    )
    assert {s.key["type"] for s in runs["tryton.volume.invoices"].series} == {"out", "in"}
    assert total("tryton.volume.moves") == tryton.scalar(
        "SELECT COUNT(*) FROM account_move WHERE state = 'posted'"
    )


@pytest.mark.parametrize("watch_id", sorted(NEEDS_MODULES))
def test_the_watches_of_optional_modules_are_postgresql_selects(watch_id: str) -> None:
    statement = sqlglot.parse_one(VOLUMES[watch_id].sql, read="postgres")
    assert isinstance(statement, sqlglot.exp.Select)
    tables = {t.name for t in statement.find_all(sqlglot.exp.Table)}
    assert tables <= {"account_statement_line", "account_statement", "stock_move", "stock_location"}


def test_negative_stock_reports_the_position_its_low_and_now(tryton: Copy) -> None:
    tryton.write(FAULTS["a shipment back-dated before the goods arrived"].sql)
    result = tryton.run("tryton.stock.negative_stock")
    product, storage, company = (
        str(tryton.scalar(f"SELECT {q}")) for q in (PRODUCT, STORAGE, "MIN(id) FROM company_company")
    )
    assert result.entities == [{"product_id": product, "location_id": storage, "company_id": company}]
    (row,) = result.sample
    assert (row["lowest_quantity"], row["quantity_now"]) == (
        -30.0,
        74.0,
    )  # shipped 30 ten days before receiving 100


def test_the_stock_period_cache_difference_is_the_changed_quantity(tryton: Copy) -> None:
    tryton.write(FAULTS["a shipment before the closed stock period changed behind the ORM"].sql)
    (row,) = tryton.run("tryton.stock.period_cache_vs_moves").sample
    assert (row["cached_quantity"], row["moved_quantity"], row["difference"]) == (70.0, 75.0, -5.0)


STUCK = "tryton.documents.stuck_before_posting"


def test_ageing_counts_on_the_datas_own_clock_not_the_wall_clock(tryton: Copy) -> None:
    """The same books two months later (a restored copy, a quiet period): nothing has aged."""
    tryton.write(
        "UPDATE account_invoice SET invoice_date = invoice_date - 60, create_date = create_date - INTERVAL '60 days';\n"
        "UPDATE account_move SET date = date - 60, post_date = post_date - 60"
    )
    assert tryton.scalar(f"SELECT invoice_date FROM account_invoice WHERE id = {DRAFT}") is not None
    result = tryton.run(STUCK)
    assert (result.status, result.violations) == ("pass", 0)


def test_work_in_progress_is_not_stuck(tryton: Copy) -> None:
    """A draft a week old: fewer business days than the threshold."""
    tryton.write(f"UPDATE account_invoice SET invoice_date = CURRENT_DATE - 7 WHERE id = {DRAFT}")
    result = tryton.run(STUCK)
    assert (result.status, result.violations) == ("pass", 0)


def test_a_draft_within_its_peers_usual_wait_is_not_stuck(tryton: Copy) -> None:
    """Customer invoices here are usually posted 45 days after their date: a 30-day-old draft is normal."""
    tryton.write(
        f"UPDATE account_invoice SET invoice_date = CURRENT_DATE - 30 WHERE id = {DRAFT};\n"
        "UPDATE account_invoice SET invoice_date = CURRENT_DATE - 45 WHERE type = 'out' AND state = 'posted'"
    )
    within = tryton.run(STUCK)
    assert (within.status, within.violations) == ("pass", 0)
    tryton.write("UPDATE account_invoice SET invoice_date = CURRENT_DATE - 60 WHERE state = 'draft'")
    beyond = tryton.run(STUCK)
    assert beyond.status == "fail"
    (row,) = beyond.sample
    assert row["business_days_old"] > row["peers_usual_business_days"] > 10


def test_a_supplier_invoice_above_the_order_price_is_a_price_difference(tryton: Copy) -> None:
    tryton.write(
        f"UPDATE account_invoice_line SET unit_price = 16.50 WHERE origin = 'purchase.line,' || {PURCHASE_LINE}"
    )
    result = tryton.run("tryton.flow.purchase_invoice_vs_receipt")
    purchase_line = str(tryton.scalar(f"SELECT {PURCHASE_LINE}"))
    assert result.entities == [{"purchase_line_id": purchase_line, "problem": "price differs from order"}]
    assert result.amount_at_risk == Decimal("18.00")  # 12 billed 1.50 above the order's 15.00


def test_a_balance_sheet_account_without_its_carried_forward_balance(tryton: Copy) -> None:
    tryton.write(
        f"{CLOSE_WITH_DEFERRALS};\n"
        "DELETE FROM account_account_deferral "
        "WHERE account = (SELECT default_account_payable FROM account_configuration_default_account)"
    )
    (row,) = tryton.run("tryton.ledger.deferral_vs_lines").sample
    assert (row["problem"], row["carried_forward"], row["lines_balance"]) == (
        "no carried-forward balance",
        None,
        "-895.25",  # the payables: 640.00 + 75.25 keyed, 180.00 purchased
    )


def test_a_year_closed_the_way_tryton_closes_it_carries_forward_its_lines(tryton: Copy) -> None:
    tryton.write(CLOSE_WITH_DEFERRALS)
    result = tryton.run("tryton.ledger.deferral_vs_lines")
    assert (result.status, result.violations) == ("pass", 0)


def test_a_negative_position_resolved_long_before_is_history(tryton: Copy) -> None:
    """Negative half a year before the latest stock activity, positive ever since: not reported again."""
    tryton.write(
        f"UPDATE stock_move SET effective_date = effective_date - 200 WHERE id = {SHIPPED_BEFORE_STOCK_PERIOD}"
    )
    result = tryton.run("tryton.stock.negative_stock")
    assert (result.status, result.violations) == ("pass", 0)


def test_a_manual_accrual_without_origin_on_the_revenue_journal_is_not_an_orphan(tryton: Copy) -> None:
    """Only receivables or payables booked without a document are: an accrual between P&L and balance is not."""
    tryton.write(
        "INSERT INTO account_move (company, journal, period, date, state, number, post_date, description) "
        "SELECT company, journal, period, date, 'posted', 'HC-ACCRUAL', post_date, 'accrued revenue' "
        f"FROM account_move WHERE id = {move_of(FIRST_OUT)};\n"
        "INSERT INTO account_move_line (move, account, debit, credit, state) "
        "SELECT (SELECT id FROM account_move WHERE number = 'HC-ACCRUAL'), a.id, "
        "CASE WHEN a.code = '1.1.1' THEN 50 ELSE 0 END, CASE WHEN a.code = '1.1.1' THEN 0 ELSE 50 END, 'valid' "
        "FROM account_account a WHERE a.code IN ('1.1.1', '4.1.1')"
    )
    assert (
        tryton.scalar(
            "SELECT COUNT(*) FROM account_move_line l JOIN account_move m ON m.id = l.move "
            "WHERE m.number = 'HC-ACCRUAL'"
        )
        == 2
    )
    result = tryton.run("tryton.ledger.orphan_moves")
    assert (result.status, result.violations) == ("pass", 0)


# --- one fault, one ticket (tickets/correlation.py) on the real books ------------------------------------

SEEN_TWICE = {
    "a posted invoice lost its move": (
        "tryton.documents.posted_invoice_without_move",
        "tryton.documents.invoice_total_vs_move",
    ),
    "an invoice total changed after posting": (
        "tryton.documents.invoice_total_vs_move",
        "tryton.documents.invoice_lines_vs_header",
    ),
}
"""Faults the pack README lists as failing two checks about the same invoice."""


@pytest.mark.parametrize("fault", sorted(SEEN_TWICE))
def test_a_fault_two_checks_see_on_one_invoice_is_one_ticket(
    tryton: Copy, fault: str, tmp_path: Path
) -> None:
    tryton.write(FAULTS[fault].sql)
    results = [tryton.run(check_id) for check_id in SEEN_TWICE[fault]]
    assert [r.status for r in results] == ["fail", "fail"], [r.error for r in results]
    store = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(store)
    factory = session_factory(store)
    outcomes = []
    with session_scope(factory) as session:
        service = TicketService(session, make_settings())
        for result in results:
            for event in events_for_result(result, group_threshold=5):
                outcomes.append(service.ingest(event).outcome)
    with session_scope(factory) as session:
        opened = list(session.scalars(select(Ticket)))
    store.dispose()
    assert outcomes == ["opened", "correlated"]
    (ticket,) = opened
    assert ticket.occurrence_count == 2 and ticket.priority in {"P1", "P2"}


POSTED_LINE = (
    "SELECT {}(l.id) FROM account_move_line l JOIN account_move m ON m.id = l.move WHERE m.state = 'posted'"
)
BEHIND_THE_ORM = {  # an old line changed in place: no write_date, no new id
    "tryton.ledger.unbalanced_moves": ("debit > 0", "debit = debit + 3"),
    "tryton.ledger.line_sanity": ("credit > 0", "debit = -credit, credit = 0"),
}


@pytest.mark.parametrize("check_id", sorted(BEHIND_THE_ORM))
def test_the_incremental_tryton_checks_equal_a_full_scan(tryton: Copy, tmp_path: Path, check_id: str) -> None:
    """New lines are read by id, edits behind the ORM (no write_date) by the full pass, with its drift."""
    spec = PACK[check_id]
    store = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(store)
    factory = session_factory(store)
    engine = source_engine(tryton.url)

    def same(outcome: Outcome) -> list[str]:
        full = run_check(spec, engine)
        assert outcome.result.error is None and full.error is None
        got = sorted(str(e) for e in outcome.result.entities)
        assert (got, outcome.result.violations, outcome.result.amount_at_risk) == (
            sorted(str(e) for e in full.entities),
            full.violations,
            full.amount_at_risk,
        )
        return got

    try:
        assert run_incremental_check(spec, engine, factory).mode == "full"
        line = tryton.scalar(POSTED_LINE.format("MAX"))
        tryton.write(
            "INSERT INTO account_move_line (move, account, debit, credit, create_date, create_uid, state) "
            f"SELECT move, account, -7, 0, NOW(), 0, state FROM account_move_line WHERE id = {line}"
        )
        added = run_incremental_check(spec, engine, factory)
        assert added.mode == "incremental" and len(same(added)) == 1
        which, change = BEHIND_THE_ORM[check_id]
        oldest = tryton.scalar(POSTED_LINE.format("MIN") + f" AND l.{which}")
        tryton.write(f"UPDATE account_move_line SET {change} WHERE id = {oldest}")
        assert run_incremental_check(spec, engine, factory).result.violations == 1  # blind to it
        reconciled = run_incremental_check(spec, engine, factory, full=True)
        assert reconciled.mode == "full" and reconciled.drift == 1
        assert len(same(reconciled)) == 2
    finally:
        engine.dispose()
        store.dispose()
