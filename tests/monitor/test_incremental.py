"""Incremental checks against the demo ERP on SQLite and PostgreSQL: after inserts and updates each pass
equals a full scan while reading only the changed rows; a back-dated edit and a delete, which a watermark
cannot see, are caught by the full pass, which reports the drift (gauge and log line) and corrects it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.session import make_engine, session_factory
from hypercare.config import Settings
from hypercare.demo.builder import DemoErp
from monitor.checks import CheckDefinitionError, load_pack, parse_checks, run_check
from monitor.incremental import DRIFT_METRIC, ROWS_METRIC, Outcome, run_incremental_check
from monitor.results import CheckResult
from monitor.sources import source_engine
from monitor.units import build_units
from tests.demo_erp import DemoErpFactory
from tests.servers import fresh_database

SPEC = {spec.id: spec for spec in load_pack("demo_erp")}["gl.unbalanced_entries"]


@pytest.fixture
def erp(backend: str, tmp_path: Path, demo_erp: DemoErpFactory) -> Iterator[DemoErp]:
    """A clean demo ERP on the test's backend (the store is on the same one)."""
    if backend == "sqlite":
        yield demo_erp(seed=5, scale=0.02, faults=[])
        return
    for url in fresh_database("postgres", tmp_path, prefix="hc_incr_erp"):
        yield demo_erp(seed=5, scale=0.02, faults=[], erp_url=url)


@pytest.fixture
def store(store_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(store_url)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def source(erp: DemoErp) -> Iterator[Engine]:
    engine = source_engine(erp.erp_url)
    yield engine
    engine.dispose()


def write(erp: DemoErp, sql: str, **params: Any) -> Any:
    """Change the ERP as its users would (tests only: Hypercare never writes to a monitored system)."""
    engine = create_engine(erp.erp_url)
    with engine.begin() as conn:
        found = conn.execute(text(sql), params)
        value = found.scalar() if found.returns_rows else None
    engine.dispose()
    return value


def facts(result: CheckResult) -> tuple[Any, ...]:
    assert result.error is None, result.error
    entities = sorted(e["entry_number"] for e in result.entities)
    return result.status, result.violations, result.amount_at_risk, entities, result.measured_value


def passes(source: Engine, store: sessionmaker[Session], **options: Any) -> Outcome:
    return run_incremental_check(SPEC, source, store, **options)


def add_unbalanced_entry(erp: DemoErp, number: str, debit: str, credit: str) -> int:
    """A posted entry with two lines that do not balance; returns its id."""
    entry = write(
        erp,
        "INSERT INTO journal_entry (number, journal, date, period_id, state, created_at, created_by) "
        "SELECT :number, journal, date, period_id, 'posted', created_at, created_by FROM journal_entry "
        "WHERE id = (SELECT MAX(id) FROM journal_entry WHERE state = 'posted') RETURNING id",
        number=number,
    )
    for amount_d, amount_c in ((debit, "0"), ("0", credit)):
        write(
            erp,
            "INSERT INTO journal_line (entry_id, account_id, debit, credit, date) "
            "SELECT :entry, account_id, :d, :c, date FROM journal_line WHERE id = (SELECT MIN(id) FROM journal_line)",
            entry=entry,
            d=amount_d,
            c=amount_c,
        )
    return int(entry)


def test_inserts_and_updates_read_incrementally_equal_a_full_scan(
    erp: DemoErp, source: Engine, store: sessionmaker[Session]
) -> None:
    first = passes(source, store)
    assert first.mode == "full" and first.drift is None
    assert facts(first.result) == facts(run_check(SPEC, source)) and first.result.violations == 0
    assert first.rows_fetched == 0  # a clean ledger: the full query returns nothing

    quiet = passes(source, store)
    assert quiet.mode == "incremental" and quiet.rows_fetched == 0  # nothing written: nothing read

    entry = add_unbalanced_entry(erp, "INC-0001", "100.00", "90.00")
    add_unbalanced_entry(erp, "INC-0002", "5.00", "7.50")
    after_insert = passes(source, store)
    assert after_insert.mode == "incremental"
    assert facts(after_insert.result) == facts(run_check(SPEC, source))
    assert after_insert.result.violations == 2
    assert str(after_insert.result.amount_at_risk) == "12.50"
    assert after_insert.rows_fetched == 4  # two touched entries, two offending rows: not the ledger

    # an update as the ERP makes it: a correcting line on the first entry balances it
    write(
        erp,
        "INSERT INTO journal_line (entry_id, account_id, debit, credit, date) "
        "SELECT entry_id, account_id, 0, 10, date FROM journal_line WHERE entry_id = :entry AND debit > 0",
        entry=entry,
    )
    after_fix = passes(source, store)
    assert after_fix.mode == "incremental"
    assert facts(after_fix.result) == facts(run_check(SPEC, source))
    assert [e["entry_number"] for e in after_fix.result.entities] == ["INC-0002"]
    samples = {s.name: s for s in after_fix.samples}
    assert samples[ROWS_METRIC].value == after_fix.rows_fetched
    assert samples[ROWS_METRIC].labels["mode"] == "incremental"


def test_backdated_edits_and_deletes_are_caught_by_the_full_pass(
    erp: DemoErp, source: Engine, store: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    passes(source, store)
    # a back-dated edit: an old line changed in place (no watermark moves)
    old_line = write(erp, "SELECT MIN(id) FROM journal_line")
    old_number = write(
        erp,
        "SELECT e.number FROM journal_entry e JOIN journal_line l ON l.entry_id = e.id WHERE l.id = :line",
        line=old_line,
    )
    write(
        erp, "UPDATE journal_line SET debit = debit + 3, credit = credit + 0 WHERE id = :line", line=old_line
    )
    # a delete: one line of another posted entry removed
    victim = write(
        erp,
        "SELECT MAX(l.id) FROM journal_line l JOIN journal_entry e ON e.id = l.entry_id "
        "WHERE e.state = 'posted' AND e.id <> (SELECT entry_id FROM journal_line WHERE id = :line)",
        line=old_line,
    )
    write(erp, "DELETE FROM journal_line WHERE id = :line", line=victim)
    full = run_check(SPEC, source)
    assert full.violations == 2

    blind = passes(source, store)
    assert blind.mode == "incremental" and blind.result.violations == 0  # what a watermark cannot see

    with caplog.at_level(logging.WARNING, logger="monitor.incremental"):
        reconciled = passes(source, store, full=True)
    assert reconciled.mode == "full" and reconciled.drift == 2
    assert facts(reconciled.result) == facts(full)
    assert old_number in [e["entry_number"] for e in reconciled.result.entities]
    drift = next(s for s in reconciled.samples if s.name == DRIFT_METRIC)
    assert drift.value == 2 and drift.labels == {"check_id": SPEC.id, "source": "erp"}
    assert any("2 entities" in r.getMessage() for r in caplog.records)

    after = passes(source, store)  # the state was corrected: incremental again, and right
    assert after.mode == "incremental" and facts(after.result) == facts(full)
    clean = passes(source, store, full=True)
    assert clean.drift == 0


def test_the_full_pass_is_due_after_full_every_and_when_the_check_changes(
    erp: DemoErp, source: Engine, store: sessionmaker[Session]
) -> None:
    now = datetime.now(UTC)
    assert passes(source, store, now=now).mode == "full"
    assert passes(source, store, now=now + timedelta(hours=23)).mode == "incremental"
    assert passes(source, store, now=now + timedelta(hours=24, minutes=1)).mode == "full"
    changed = SPEC.model_copy(update={"title": "same check"})
    assert run_incremental_check(changed, source, store, now=now + timedelta(hours=25)).mode == "incremental"
    other_sql = SPEC.model_copy(update={"sql": SPEC.sql.replace("0.005", "0.006")})
    assert run_incremental_check(other_sql, source, store, now=now + timedelta(hours=25)).mode == "full"


def test_a_query_that_fails_is_an_error_result_and_keeps_the_marks(
    erp: DemoErp, source: Engine, store: sessionmaker[Session]
) -> None:
    passes(source, store)
    assert SPEC.incremental is not None
    broken_inc = SPEC.incremental.model_copy(
        update={"sql": SPEC.incremental.sql.replace("journal_line", "no_table", 1)}
    )
    broken = SPEC.model_copy(update={"incremental": broken_inc})
    assert run_incremental_check(broken, source, store).mode == "full"  # a changed definition starts over
    add_unbalanced_entry(erp, "INC-0003", "1.00", "2.00")
    failed = run_incremental_check(broken, source, store)
    assert failed.result.status == "error" and "no_table" in (failed.result.error or "")
    assert facts(passes(source, store).result) == facts(run_check(SPEC, source))


def test_a_check_reading_the_clock_cannot_be_incremental() -> None:
    pack = """
checks:
  - id: t.clock
    title: t
    source: erp
    sql: SELECT number FROM invoice WHERE invoice_date < :today
    category: data
    severity: P3
    key_columns: [number]
    incremental:
      watermarks: {inv: SELECT MAX(id) FROM invoice}
      changed: SELECT number FROM invoice WHERE id > :inv_from AND id <= :inv_to
      sql: SELECT number FROM invoice WHERE id > :inv_from AND id <= :inv_to AND invoice_date < :today
"""
    with pytest.raises(CheckDefinitionError, match="reads the clock"):
        parse_checks(pack, "t.yaml")
    with pytest.raises(CheckDefinitionError, match="watermark name"):
        parse_checks(pack.replace(":today", "'2020-01-01'").replace("{inv:", "{Inv:"), "t.yaml")


def test_the_scheduler_unit_of_an_incremental_check_keeps_its_state_in_the_store(
    erp: DemoErp, store: sessionmaker[Session], tmp_path: Path
) -> None:
    settings = Settings(sources={"erp": {"url": erp.erp_url}}, data_dir=tmp_path)  # type: ignore[arg-type]
    with httpx.Client() as client:
        units = build_units(settings, [SPEC], http_client=client, store=store)
        plain = build_units(settings, [SPEC], http_client=client)
    unit = next(u for u in units if u.key == f"check:{SPEC.id}")
    first, second = unit.run(datetime.now(UTC)), unit.run(datetime.now(UTC))
    modes = [next(s.labels["mode"] for s in c.samples if s.name == ROWS_METRIC) for c in (first, second)]
    assert modes == ["full", "incremental"]
    assert [r.status for r in second.results] == ["pass"]
    without_store = next(u for u in plain if u.key == f"check:{SPEC.id}").run(datetime.now(UTC))
    assert {s.name for s in without_store.samples} == {"hypercare_check_duration_seconds"}  # read in full
