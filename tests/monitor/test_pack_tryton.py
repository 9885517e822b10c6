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
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from monitor.checks import load_pack, run_check
from monitor.results import CheckResult
from monitor.sources import source_engine
from monitor.volumes import load_volumes, run_volume
from tests.monitor.tryton_fixture import TrytonUnavailable, build_tryton_database, tryton_skip
from tests.servers import PG_URL, unavailable

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
FIRST_OUT = "(SELECT MIN(id) FROM account_invoice WHERE type = 'out' AND state = 'posted')"
LAST_OUT = "(SELECT MAX(id) FROM account_invoice WHERE type = 'out' AND state = 'posted')"
FIRST_IN = "(SELECT MIN(id) FROM account_invoice WHERE type = 'in' AND state = 'posted')"
LAST_IN = "(SELECT MAX(id) FROM account_invoice WHERE type = 'in' AND state = 'posted')"
DRAFT = "(SELECT MIN(id) FROM account_invoice WHERE state = 'draft')"
CLOSED = "(SELECT MIN(id) FROM account_period WHERE state = 'closed')"


def receivable_line(invoice: str) -> str:
    return f"(SELECT l.id FROM account_move_line l JOIN account_invoice i ON i.move = l.move AND i.account = l.account WHERE i.id = {invoice})"


def revenue_line(invoice: str) -> str:
    return f"(SELECT l.id FROM account_move_line l JOIN account_invoice i ON i.move = l.move AND i.account <> l.account WHERE i.id = {invoice})"


def move_of(invoice: str) -> str:
    return f"(SELECT move FROM account_invoice WHERE id = {invoice})"


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
    "a credit loaded as a negative debit (balance unchanged)": Fault(
        "tryton.ledger.line_sanity",
        f"UPDATE account_move_line SET debit = -credit, credit = 0 WHERE id = {revenue_line(FIRST_OUT)}",
        revenue_line(FIRST_OUT),
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
    assert posted == 5, "the fixture posted three customer and two supplier invoices"
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
