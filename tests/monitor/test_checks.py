from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from core.errors import ConfigError
from hypercare.config import load_settings
from monitor.checks import (
    CheckDefinitionError,
    CheckSpec,
    QuerySide,
    configured_checks,
    load_checks,
    load_path,
    make_read_only,
    parse_checks,
    run_check,
)
from monitor.collect import collect
from monitor.reconcile import run_reconcile
from monitor.sources import UnsupportedSourceError, source_engine
from tests.servers import fresh_database

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


def _server_erp(kind: str, tmp_path: Path) -> Iterator[Engine]:
    """The ERP tables in a fresh database on the server, with a sequence, read through a source engine."""
    for url in fresh_database(kind, tmp_path, prefix="hc_erp"):
        writer = create_engine(url)
        _fill(writer)
        with writer.begin() as conn:
            conn.execute(text("CREATE SEQUENCE counter"))
        writer.dispose()
        engine = source_engine(url)
        yield engine
        engine.dispose()


@pytest.fixture
def pg_erp(tmp_path: Path) -> Iterator[Engine]:
    yield from _server_erp("postgres", tmp_path)


@pytest.fixture
def mariadb_erp(tmp_path: Path) -> Iterator[Engine]:
    yield from _server_erp("mariadb", tmp_path)


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
    """Under the allow-list (which refuses nextval at load), the database refuses the write itself."""
    with pg_erp.connect() as conn:
        make_read_only(conn, 5.0)
        with pytest.raises(DBAPIError, match="read-only transaction"):
            conn.execute(text("SELECT nextval('counter') AS n"))


@pytest.mark.postgres
def test_postgres_statement_timeout_turns_a_slow_check_into_an_error(pg_erp: Engine) -> None:
    spec = CheckSpec(
        id="x.slow",
        title="t",
        source="erp",
        sql="SELECT count(*) AS n FROM generate_series(1, 2000000000) AS g",
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
        ("sql: WITH x AS (SELECT 1) UPDATE t SET a = 1", "single SELECT"),
        ("sql: WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x", "must only read: holds DELETE"),
        ("sql: SELECT * INTO outbox_copy FROM outbox", "must only read: holds SELECT ... INTO at line 1"),
        ("sql: SELECT id FROM outbox FOR UPDATE", "must only read: holds FOR UPDATE / FOR SHARE at line 1"),
        # a string that looks like a comment opener must not hide what follows it from the guard
        ("sql: \"SELECT '/*' AS a; DROP TABLE outbox; SELECT '*/' AS b\"", "one statement"),
        ('sql: "SELECT \'unclosed AS a"', "field 'sql': is not SQL any supported engine can read"),
        ("severity: P9", "field 'severity'"),
        ("colour: red", "field 'colour': unknown field"),
        ("params: {cutoff: now-4x}", "field 'params'"),
        ("params: {cutoff: today-3h}", "whole days"),
        ("params: {now: 1}", "built-in"),
        ("schedule: every fortnight", "field 'schedule'.*followed by s, m, h or d"),
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


def test_quoted_names_and_words_that_only_start_like_write_keywords_are_read_only() -> None:
    sql = "SELECT \"update\" AS u, created_at, update_date FROM t WHERE note <> '--;';"
    spec = CheckSpec(id="x.ok", title="t", source="erp", category="data", severity="P3", sql=sql)
    assert spec.sql == sql


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


def test_the_sample_limit_setting_applies_to_checks_without_their_own(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(PACK, encoding="utf-8")  # ledger.unbalanced sets sample_limit: 1
    own = {spec.id: spec.sample_limit for spec in load_checks([], [tmp_path], sample_limit=3)}
    assert own["ledger.unbalanced"] == 1
    assert set(own.values()) == {1, 3}, own
    settings = load_settings(None, checks={"packs": ["demo_erp"], "sample_limit": 7})
    assert {spec.sample_limit for spec in configured_checks(settings)} == {7}


def test_unknown_pack_lists_the_shipped_ones() -> None:
    with pytest.raises(CheckDefinitionError, match=r"unknown check pack 'sap'; shipped packs:"):
        load_checks(["sap"])


# --- expectations: warn/fail thresholds on a measured value ------------------------------------------

LINE_TOTALS = "SELECT entry_id, SUM(debit) AS debit FROM journal_line GROUP BY entry_id ORDER BY entry_id"


def spec_with(**fields: object) -> CheckSpec:
    base: dict[str, object] = {
        "id": "x.measured",
        "title": "t",
        "source": "erp",
        "category": "technical",
        "severity": "P3",
        "sql": LINE_TOTALS,
        "key_columns": ["entry_id"],
    }
    return CheckSpec.model_validate({**base, **fields})


@pytest.mark.parametrize(
    ("expect", "status", "measured", "entities"),
    [
        ({"value_column": "debit", "warn_above": 200, "fail_above": 300}, "warn", 250.0, ["2"]),
        ({"value_column": "debit", "warn_above": 50, "fail_above": 200}, "fail", 250.0, ["1", "2"]),
        ({"value_column": "debit", "fail_above": 1000}, "pass", 250.0, []),
        ({"value_column": "debit", "warn_below": 1, "fail_below": -1}, "warn", 0.0, ["3"]),
        ({"warn_above": 2, "fail_above": 5}, "warn", 3.0, ["1", "2", "3"]),
        ({"fail_above": 3}, "pass", 3.0, ["1", "2", "3"]),
    ],
)
def test_thresholds_judge_the_measured_value(
    erp: Engine, expect: dict[str, object], status: str, measured: float | None, entities: list[str]
) -> None:
    result = run_check(spec_with(expect=expect), erp, now=NOW)
    assert (result.status, result.measured_value) == (status, measured)
    assert [e["entry_id"] for e in result.entities] == entities
    assert result.violations == len(entities)


def test_without_expect_any_row_fails_as_before(erp: Engine) -> None:
    result = run_check(spec_with(), erp, now=NOW)
    assert (result.status, result.violations, result.measured_value) == ("fail", 3, 3.0)


def test_a_value_column_that_is_missing_or_not_a_number_is_an_error(erp: Engine) -> None:
    missing = run_check(spec_with(expect={"value_column": "backlog", "fail_above": 1}), erp, now=NOW)
    assert missing.status == "error" and "['backlog']" in (missing.error or "")
    text_sql = "SELECT number AS entry_id, number AS backlog FROM journal_entry"
    wrong = run_check(
        spec_with(sql=text_sql, expect={"value_column": "backlog", "fail_above": 1}), erp, now=NOW
    )
    assert wrong.status == "error" and "'backlog' is not a number in row 1: 'JE-1'" in (wrong.error or "")


EXPECT_BASE = "id: x.bad\ntitle: t\nsource: erp\ncategory: data\nseverity: P1\nsql: SELECT 1 AS one\n"
RECONCILE_BASE = (
    "id: x.bad\ntitle: t\nkind: reconcile\ncategory: data\nseverity: P1\nkey_columns: [k]\n"
    "left: {source: erp, sql: SELECT 1 AS k}\n"
)


@pytest.mark.parametrize(
    ("text_", "message"),
    [
        (EXPECT_BASE + "expect: {value_column: v}", "field 'expect': .*set at least one of warn_above"),
        (EXPECT_BASE + "expect: {warn_above: 10, fail_above: 5}", "warn_above must not exceed fail_above"),
        (EXPECT_BASE + "expect: {warn_below: 1, fail_below: 5}", "warn_below must not be under fail_below"),
        (EXPECT_BASE + "expect: {fail_over: 5}", "field 'expect.fail_over': unknown field"),
        (EXPECT_BASE + "left: {source: erp, sql: SELECT 1}", "field 'left': only for kind: reconcile"),
        (EXPECT_BASE.replace("sql: SELECT 1 AS one\n", ""), "field 'sql': field required"),
        (RECONCILE_BASE, "field 'right': required for kind: reconcile"),
        (RECONCILE_BASE + "right: {source: fin, sql: DELETE FROM t}", "field 'right.sql': .*single SELECT"),
        (
            RECONCILE_BASE + "right: {source: fin, sql: SELECT 1}\nsql: SELECT 1",
            "field 'sql': a reconciliation",
        ),
        (RECONCILE_BASE + "right: {source: fin, sql: SELECT 1}\nreport: [gone]", "field 'report.0'"),
        (
            RECONCILE_BASE + "right: {source: fin, sql: SELECT 1}\ncompare: [{column: a, absolute: -1}]",
            "field 'compare.0.absolute'",
        ),
        (
            RECONCILE_BASE.replace("key_columns: [k]\n", "") + "right: {source: fin, sql: SELECT 1}",
            "field 'key_columns': a reconciliation matches rows on key_columns",
        ),
    ],
)
def test_bad_expectations_and_reconciliations_name_the_file_check_and_field(text_: str, message: str) -> None:
    with pytest.raises(CheckDefinitionError, match=rf"checks\.yaml: check x\.bad: .*{message}"):
        parse_checks(text_, "checks.yaml")


# --- reconciliation across two sources ---------------------------------------------------------------

RECONCILE = """
id: x.recon
title: Entry totals agree with the finance copy
kind: reconcile
left:
  source: erp
  sql: |
    SELECT e.number AS entry_number, SUM(l.debit) AS debit, COUNT(*) AS n_lines
    FROM journal_entry e JOIN journal_line l ON l.entry_id = e.id GROUP BY e.number
right:
  source: finance
  sql: SELECT ref AS entry_number, amount AS debit, n AS n_lines FROM fin_entry
key_columns: [entry_number]
compare: [n_lines, {column: debit, absolute: 0.01}]
amount_column: debit
category: data
severity: P2
"""


@pytest.fixture
def finance(tmp_path: Path) -> Engine:
    path = tmp_path / "finance.db"
    writer = create_engine(f"sqlite:///{path}")
    with writer.begin() as conn:
        conn.execute(text("CREATE TABLE fin_entry (ref VARCHAR(20), amount NUMERIC(18,2), n INTEGER)"))
        conn.execute(
            text("INSERT INTO fin_entry VALUES ('JE-1', 100.105, 2), ('JE-2', 260.00, 2), ('JE-4', 75.00, 1)")
        )
    writer.dispose()
    return source_engine(f"sqlite:///{path}")


def test_reconciliation_reports_missing_and_differing_rows_with_money_at_risk(
    erp: Engine, finance: Engine
) -> None:
    spec = parse_checks(RECONCILE, "recon.yaml")[0]
    assert (spec.source, spec.sources) == ("erp", ("erp", "finance"))
    result = run_reconcile(spec, {"erp": erp, "finance": finance}, now=NOW)
    assert result.status == "fail"
    by_key = {row["entry_number"]: row for row in result.sample}
    assert [e["entry_number"] for e in result.entities] == ["JE-2", "JE-3", "JE-4"]  # JE-1 within 0.01
    assert by_key["JE-2"]["issue"] == "different"
    assert Decimal(by_key["JE-2"]["diff_debit"]) == Decimal(-10)
    assert "diff_n_lines" not in by_key["JE-2"]  # only the columns that differ
    assert by_key["JE-3"]["issue"] == "missing_right" and by_key["JE-3"]["right_debit"] is None
    assert by_key["JE-4"]["issue"] == "missing_left" and by_key["JE-4"]["left_n_lines"] is None
    assert result.amounts == [Decimal("10.00"), Decimal("0.00"), Decimal("75.00")]
    assert result.amount_at_risk == Decimal("85.00")


def test_reconciliation_report_selects_issues_and_relative_tolerance_applies(
    erp: Engine, finance: Engine
) -> None:
    spec = parse_checks(
        RECONCILE.replace("absolute: 0.01", "relative: 0.05") + "report: [different]\n", "recon.yaml"
    )[0]
    result = run_reconcile(spec, {"erp": erp, "finance": finance}, now=NOW)
    assert (result.status, result.violations) == ("pass", 0)  # 10 on 260 is within 5 %


def test_reconciliation_errors_name_the_side(
    erp: Engine, finance: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = parse_checks(RECONCILE, "recon.yaml")[0]
    missing = run_reconcile(spec, {"erp": erp}, now=NOW)
    assert missing.status == "error" and "right (finance): source 'finance' is not configured" in (
        missing.error or ""
    )
    broken = spec.model_copy(update={"right": QuerySide(source="finance", sql="SELECT nope FROM fin_entry")})
    failed = run_reconcile(broken, {"erp": erp, "finance": finance}, now=NOW)
    assert (
        failed.status == "error"
        and (failed.error or "").startswith("right (finance): ")
        and "nope" in (failed.error or "")
    )
    twice = spec.model_copy(
        update={
            "right": QuerySide(
                source="finance", sql="SELECT 'JE-1' AS entry_number, 1 AS debit, 1 AS n_lines FROM fin_entry"
            )
        }
    )
    dup = run_reconcile(twice, {"erp": erp, "finance": finance}, now=NOW)
    assert dup.status == "error" and "returned key {'entry_number': 'JE-1'} twice" in (dup.error or "")
    monkeypatch.setattr("monitor.reconcile.RECONCILE_ROW_CAP", 2)
    capped = run_reconcile(spec, {"erp": erp, "finance": finance}, now=NOW)
    assert capped.status == "error" and "more than 2 rows" in (capped.error or "")


def test_run_check_refuses_a_reconciliation_instead_of_half_running_it(erp: Engine) -> None:
    result = run_check(parse_checks(RECONCILE, "recon.yaml")[0], erp, now=NOW)
    assert result.status == "error" and "run_reconcile" in (result.error or "")


@pytest.mark.usefixtures("finance")  # writes tmp_path / "finance.db"
def test_collect_runs_a_reconciliation_on_both_configured_sources(tmp_path: Path) -> None:
    path = tmp_path / "erp.db"
    writer = create_engine(f"sqlite:///{path}")
    _fill(writer)
    writer.dispose()
    settings = load_settings(
        None,
        sources={
            "erp": {"url": f"sqlite:///{path}"},
            "finance": {"url": f"sqlite:///{tmp_path / 'finance.db'}"},
        },
    )
    spec = parse_checks(RECONCILE, "recon.yaml")[0]
    results = collect(settings, [spec], now=NOW).results
    assert [(r.check_id, r.source, r.status, r.violations) for r in results] == [
        ("x.recon", "erp", "fail", 3)
    ]
    unconfigured = load_settings(None, sources={"erp": {"url": f"sqlite:///{path}"}})
    (lonely,) = collect(unconfigured, [spec], now=NOW).results
    assert lonely.status == "error" and "finance" in (lonely.error or "")


def test_a_check_file_that_is_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("title: caf\xe9".encode("latin-1"))
    with pytest.raises(CheckDefinitionError, match=r"latin1\.yaml: not UTF-8 text"):
        load_path(bad)


# --- engines Hypercare cannot make read-only -----------------------------------------------------------


@pytest.mark.parametrize("url", ["mssql+pymssql://hc:pw@erp-db/erp", "oracle+oracledb://hc:pw@erp-db/erp"])
def test_source_engine_refuses_an_engine_it_cannot_make_read_only(url: str) -> None:
    with pytest.raises(UnsupportedSourceError) as refused:
        source_engine(url)  # refused before any driver is loaded or connection made
    engine = url.partition("+")[0]
    assert str(refused.value) == (
        f"the source is a {engine} database: Hypercare reads only PostgreSQL, MySQL/MariaDB and SQLite "
        "sources, the engines whose sessions it can make read-only"
    )
    assert isinstance(refused.value, ConfigError) and isinstance(refused.value, ValueError)


def test_make_read_only_refuses_a_connection_it_has_no_guard_for(
    sqlite_erp: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An engine made some other way than source_engine still never runs a query unguarded."""
    monkeypatch.setattr(sqlite_erp.dialect, "name", "mssql")
    with sqlite_erp.connect() as conn, pytest.raises(UnsupportedSourceError, match=r"is a mssql database"):
        make_read_only(conn, 5.0)
    spec = parse_checks(PACK, "pack.yaml")[0]
    result = run_check(spec, sqlite_erp, now=NOW)  # an error result, not a crash and not a pass
    assert result.status == "error"
    assert "mssql database: Hypercare reads only PostgreSQL, MySQL/MariaDB and SQLite" in (result.error or "")


def test_an_unsupported_source_is_refused_before_any_check_runs() -> None:
    """Refused when the settings load (the runtime guards above cover engines made any other way)."""
    with pytest.raises(ConfigError) as info:
        load_settings(None, sources={"erp": {"url": "mssql+pymssql://hc:s3cret@erp-db/erp"}})
    assert "sources.erp.url" in str(info.value) and "mssql database" in str(info.value)
    assert "s3cret" not in str(info.value)
