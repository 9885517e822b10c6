from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from monitor.checks import CheckDefinitionError, CheckSpec, load_checks, load_path, parse_checks, run_check
from monitor.sources import source_engine
from tests.conftest import MARIADB_URL, PG_URL, unavailable

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

PACK = """
checks:
  - id: ledger.unbalanced
    title: Unbalanced entries
    source: erp
    sql: |
      SELECT e.number AS entry_number, SUM(l.debit) - SUM(l.credit) AS difference
      FROM journal_entry e JOIN journal_line l ON l.entry_id = e.id
      GROUP BY e.number HAVING ABS(SUM(l.debit) - SUM(l.credit)) >= 0.005
      ORDER BY e.number
    category: data
    severity: P1
    amount_column: difference
    key_columns: [entry_number]
    sample_limit: 1
  - id: outbox.stuck
    title: Stuck messages
    source: erp
    sql: SELECT id AS message_id FROM outbox WHERE status = 'pending' AND created_at < :stale_before
    params: {stale_before: now-4h}
    category: technical
    severity: P2
    key_columns: [message_id]
"""


def _fill(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE journal_entry (id INTEGER PRIMARY KEY, number VARCHAR(20))"))
        conn.execute(
            text(
                "CREATE TABLE journal_line (id INTEGER PRIMARY KEY, entry_id INTEGER, debit NUMERIC(18,2), "
                "credit NUMERIC(18,2))"
            )
        )
        conn.execute(
            text("CREATE TABLE outbox (id INTEGER PRIMARY KEY, status VARCHAR(10), created_at TIMESTAMP)")
        )
        conn.execute(text("INSERT INTO journal_entry VALUES (1, 'JE-1'), (2, 'JE-2'), (3, 'JE-3')"))
        conn.execute(
            text(
                "INSERT INTO journal_line VALUES (1, 1, 100.10, 0), (2, 1, 0, 100.10), (3, 2, 250.00, 0), "
                "(4, 2, 0, 200.00), (5, 3, 0, 10.55)"
            )
        )
        conn.execute(
            text("INSERT INTO outbox VALUES (1, 'pending', :old), (2, 'pending', :fresh), (3, 'sent', :old)"),
            {"old": datetime(2026, 11, 23, 6, 0), "fresh": datetime(2026, 11, 23, 11, 0)},
        )


@pytest.fixture
def sqlite_erp(tmp_path: Path) -> Engine:
    path = tmp_path / "erp.db"
    writer = create_engine(f"sqlite:///{path}")
    _fill(writer)
    writer.dispose()
    return source_engine(f"sqlite:///{path}")


@pytest.fixture
def pg_erp() -> Iterator[Engine]:
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"hc_erp_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        unavailable("PostgreSQL", exc.orig)
    url = admin.url.set(database=name)
    writer = create_engine(url)
    _fill(writer)
    with writer.begin() as conn:
        conn.execute(text("CREATE SEQUENCE counter"))
    writer.dispose()
    engine = source_engine(url)
    yield engine
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def mariadb_erp() -> Iterator[Engine]:
    admin = create_engine(MARIADB_URL)
    name = f"hc_erp_{uuid.uuid4().hex[:8]}"
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
    except OperationalError as exc:
        unavailable("MariaDB", exc.orig)
    url = admin.url.set(database=name)
    writer = create_engine(url)
    _fill(writer)
    with writer.begin() as conn:
        conn.execute(text("CREATE SEQUENCE counter"))
    writer.dispose()
    engine = source_engine(url)
    yield engine
    engine.dispose()
    with admin.begin() as conn:
        conn.execute(text(f"DROP DATABASE {name}"))
    admin.dispose()


ENGINES = {"sqlite": "sqlite_erp", "postgres": "pg_erp", "mariadb": "mariadb_erp"}


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ]
)
def erp(request: pytest.FixtureRequest) -> Engine:
    return request.getfixturevalue(ENGINES[request.param])  # type: ignore[no-any-return]


def test_failing_check_reports_each_offending_entity_with_money_at_risk(erp: Engine) -> None:
    unbalanced = parse_checks(PACK, "pack.yaml")[0]
    result = run_check(unbalanced, erp, now=NOW)
    assert result.status == "fail"
    assert result.violations == 2
    assert result.entities == [{"entry_number": "JE-2"}, {"entry_number": "JE-3"}]
    assert result.amounts == [Decimal("50.00"), Decimal("10.55")]
    assert result.amount_at_risk == Decimal("60.55")
    assert len(result.sample) == 1  # sample_limit caps the evidence, not the count


def test_relative_time_parameters_are_bound_as_timestamps(erp: Engine) -> None:
    stuck = parse_checks(PACK, "pack.yaml")[1]
    result = run_check(stuck, erp, now=NOW)
    assert (result.status, result.entities) == ("fail", [{"message_id": "1"}])
    later = run_check(stuck, erp, now=datetime(2026, 11, 23, 16, 0, tzinfo=UTC))
    assert later.entities == [{"message_id": "1"}, {"message_id": "2"}]


def test_passing_check_has_no_violations(erp: Engine) -> None:
    spec = parse_checks(PACK, "pack.yaml")[1]
    result = run_check(spec, erp, now=datetime(2026, 11, 23, 7, 0, tzinfo=UTC))
    assert (result.status, result.violations, result.amount_at_risk) == ("pass", 0, None)


def test_broken_sql_is_an_error_result_not_a_crash(erp: Engine) -> None:
    spec = CheckSpec(
        id="x.broken",
        title="t",
        source="erp",
        sql="SELECT nope FROM journal_entry",
        category="data",
        severity="P2",
    )
    result = run_check(spec, erp, now=NOW)
    assert result.status == "error"
    assert "nope" in (result.error or "")


def test_missing_key_column_is_an_error_naming_it(erp: Engine) -> None:
    spec = CheckSpec(
        id="x.keys",
        title="t",
        source="erp",
        sql="SELECT id FROM journal_entry",
        category="data",
        severity="P2",
        key_columns=("number",),
    )
    result = run_check(spec, erp, now=NOW)
    assert result.status == "error"
    assert "['number']" in (result.error or "")


def test_sqlite_sources_cannot_be_written_even_by_a_check_that_slipped_through(sqlite_erp: Engine) -> None:
    sneaky = CheckSpec.model_construct(
        id="x.write",
        title="t",
        source="erp",
        sql="DELETE FROM outbox RETURNING id",
        params={},
        category="data",
        severity="P1",
        key_columns=(),
        amount_column=None,
        sample_limit=5,
        runbook=None,
        owner=None,
        tags=(),
        pack="",
    )
    result = run_check(sneaky, sqlite_erp, now=NOW)
    assert result.status == "error"
    with sqlite_erp.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM outbox")).scalar() == 3


@pytest.mark.postgres
def test_postgres_checks_run_in_read_only_transactions(pg_erp: Engine) -> None:
    spec = CheckSpec(
        id="x.seq",
        title="t",
        source="erp",
        sql="SELECT nextval('counter') AS n",
        category="data",
        severity="P2",
    )
    result = run_check(spec, pg_erp, now=NOW)
    assert result.status == "error"
    assert "read-only" in (result.error or "")


@pytest.mark.postgres
def test_postgres_statement_timeout_turns_a_slow_check_into_an_error(pg_erp: Engine) -> None:
    spec = CheckSpec(
        id="x.slow",
        title="t",
        source="erp",
        sql="SELECT pg_sleep(3) AS slept",
        category="technical",
        severity="P3",
    )
    result = run_check(spec, pg_erp, now=NOW, timeout_s=0.2)
    assert result.status == "error"
    assert "statement timeout" in (result.error or "")
    assert result.duration_s < 2


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("sql: DELETE FROM outbox", "field 'sql'.*single SELECT"),
        ("sql: SELECT 1; DROP TABLE outbox", "one statement"),
        ("sql: WITH x AS (SELECT 1) UPDATE t SET a = 1", "read-only; found 'UPDATE'"),
        ("severity: P9", "field 'severity'"),
        ("colour: red", "field 'colour': unknown field"),
        ("params: {cutoff: now-4x}", "field 'params'"),
        ("params: {cutoff: today-3h}", "whole days"),
        ("params: {now: 1}", "built-in"),
    ],
)
def test_bad_definitions_name_the_file_check_and_field(snippet: str, message: str) -> None:
    base = {
        "id": "x.bad",
        "title": "t",
        "source": "erp",
        "category": "data",
        "severity": "P1",
        "sql": "SELECT 1 AS one",
    }
    key = snippet.split(":", 1)[0]
    lines = [f"{k}: {v}" for k, v in base.items() if k != key] + [snippet]
    with pytest.raises(CheckDefinitionError, match=rf"checks\.yaml: check x\.bad: .*{message}"):
        parse_checks("\n".join(lines), "checks.yaml")


def test_string_literals_and_comments_do_not_trip_the_read_only_guard() -> None:
    spec = parse_checks(
        "id: x.ok\ntitle: t\nsource: erp\ncategory: data\nseverity: P3\n"
        "sql: \"SELECT 'update me' AS note -- delete later\"\n",
        "c.yaml",
    )[0]
    assert spec.id == "x.ok"


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("checks:\n  - id: x\n    title: [unclosed\n", encoding="utf-8")
    with pytest.raises(CheckDefinitionError, match=r"bad\.yaml: line \d"):
        load_path(bad)


def test_duplicate_ids_across_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(PACK, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(PACK, encoding="utf-8")
    with pytest.raises(CheckDefinitionError, match=r"ledger\.unbalanced' is defined twice"):
        load_checks([], [tmp_path])


def test_unknown_pack_lists_the_shipped_ones() -> None:
    with pytest.raises(CheckDefinitionError, match=r"unknown check pack 'sap'; shipped packs:"):
        load_checks(["sap"])
