"""Dual-run filters, measures, column expressions and side queries are parsed, checked against the read-only
allow-list when the comparison file loads, and rendered into the generated SQL from their syntax tree,
never pasted: a filter that calls a function which writes (once per row) or a side query that updates the
ledger is refused at load with a message naming the field, and cannot run even when built past validation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, text

from core.errors import ConfigError
from monitor.checks import make_read_only
from monitor.dualrun.config import parse_comparison
from monitor.dualrun.model import ComparisonConfig, EntityConfig, SideConfig
from monitor.dualrun.runner import run_comparison
from tests.monitor.dualrun_fixtures import load, source
from tests.servers import fresh_database

LOGGING_FILTER = "log_row(id) = 1"


def comparison(**entity: Any) -> str:
    fields: dict[str, Any] = {"legacy": {"table": "journal"}, "new": {"table": "journal"}, "key": ["id"]}
    fields |= entity
    return yaml.safe_dump({"name": "c", "legacy": "old", "new": "erp", "entities": [{"name": "e", **fields}]})


def refusal(text_: str) -> str:
    with pytest.raises(ConfigError) as refused:
        parse_comparison(text_, "dr.yaml")
    return str(refused.value)


def test_a_filter_calling_a_function_that_writes_is_refused_when_the_comparison_loads() -> None:
    found = refusal(comparison(legacy={"table": "journal", "filter": LOGGING_FILTER}))
    assert found.startswith(
        "dr.yaml: entity e: field 'legacy.filter': must only read: calls log_row() at line 1, column 1, "
        "which is not on the read-only allow-list of functions"
    ), found


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "WITH u AS (UPDATE journal SET amount = 0 RETURNING *) SELECT id, amount FROM u",
            "must only read: holds UPDATE at line 1",
        ),
        (
            "SELECT id, amount FROM journal WHERE dblink_exec('dbname=erp', 'UPDATE journal SET amount = 0') = 'x'",
            "must only read: calls dblink_exec() at line 1, column 38",
        ),
        (
            "SELECT id, amount FROM journal; UPDATE journal SET amount = 0",
            "must be one statement (found ';')",
        ),
        (
            "SELECT id, amount FROM journal) src, LATERAL (SELECT erp_touch_journal()) x, (SELECT 1",
            "is not SQL any supported engine can read",
        ),
    ],
)
def test_a_side_query_that_updates_the_ledger_is_refused_when_the_comparison_loads(
    query: str, message: str
) -> None:
    found = refusal(comparison(new={"query": query}))
    assert found.startswith(f"dr.yaml: entity e: field 'new.query': {message}"), found


def test_measures_and_column_expressions_calling_unknown_functions_are_refused_at_load() -> None:
    measures = [{"name": "total", "legacy": "sum(amount)", "new": "sum(log_row(id))"}]
    found = refusal(comparison(key=[], group_by=["account"], measures=measures))
    assert "field 'measures.0.new': must only read: calls log_row() at line 1, column 5" in found
    columns = [{"name": "amount", "legacy": "pg_advisory_lock(id)", "type": "integer"}]
    assert "field 'columns.0.legacy': must only read: calls pg_advisory_lock()" in refusal(
        comparison(columns=columns)
    )


@pytest.fixture
def pg_ledger(tmp_path: Path) -> Iterator[str]:
    """18 journal lines and ``log_row(id)``, which records a row through dblink: outside the read-only
    transaction, as the hostile tester's filter did."""
    database = fresh_database("postgres", tmp_path)
    url = next(database)
    name = url.rsplit("/", 1)[1]
    load(
        url,
        [
            "CREATE EXTENSION dblink",
            "CREATE TABLE journal (id integer PRIMARY KEY, account text, amount numeric(12,2))",
            "INSERT INTO journal SELECT n, (1000 + mod(n, 3))::text, n * 10.5 FROM generate_series(1, 18) n",
            "CREATE TABLE audit_log (id integer)",
            "CREATE FUNCTION log_row(n integer) RETURNS integer LANGUAGE plpgsql AS $$ BEGIN "
            f"PERFORM dblink_exec('dbname={name} user=root host=127.0.0.1', "
            "'INSERT INTO audit_log VALUES (' || n || ')'); RETURN 1; END $$",
        ],
    )
    yield url
    next(database, None)


def audit_rows(url: str) -> int:
    engine = create_engine(url)
    with engine.begin() as conn:
        count = int(conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one())
        conn.execute(text("DELETE FROM audit_log"))
    engine.dispose()
    return count


@pytest.mark.postgres
def test_the_row_logging_filter_writes_18_rows_when_pasted_and_none_when_rendered(pg_ledger: str) -> None:
    # The threat is real: pasted into WHERE, the filter writes once per row despite the read-only transaction.
    engine = create_engine(pg_ledger)
    with engine.connect() as conn:
        make_read_only(conn, 10.0)
        conn.execute(text(f"SELECT id FROM journal src WHERE ({LOGGING_FILTER})")).all()
        conn.rollback()
    engine.dispose()
    assert audit_rows(pg_ledger) == 18

    # Built past validation (a plugin, a bug), the comparison renders the filter from its tree, which the
    # allow-list refuses: the entity is an error and nothing reaches the database.
    sneaky = SideConfig.model_construct(table="journal", query=None, filter=LOGGING_FILTER)
    entity = EntityConfig.model_validate(
        {
            "name": "lines",
            "legacy": sneaky,
            "new": {"table": "journal"},
            "key": ["id"],
            "columns": ["account"],
        }
    )
    config = ComparisonConfig(name="c", legacy="old", new="erp", entities=(entity,))
    legacy, new = source("legacy", pg_ledger), source("new", pg_ledger)
    try:
        result = run_comparison(config, legacy, new)
    finally:
        legacy.engine.dispose()
        new.engine.dispose()
    (lines,) = result.entities
    assert lines.error is not None and "calls log_row()" in lines.error, lines.error
    assert audit_rows(pg_ledger) == 0


@pytest.mark.postgres
def test_a_filter_on_the_allow_list_is_rendered_and_compares_as_written(pg_ledger: str) -> None:
    config = parse_comparison(
        comparison(
            legacy={"table": "journal", "filter": "account = '1001' AND amount > 0"},
            new={"query": "SELECT id, account, amount FROM journal -- every line\nWHERE amount > 0"},
            columns=["account", {"name": "amount", "type": "decimal", "money": True}],
        ),
        "dr.yaml",
    )
    legacy, new = source("legacy", pg_ledger), source("new", pg_ledger)
    try:
        result = run_comparison(config, legacy, new)
    finally:
        legacy.engine.dispose()
        new.engine.dispose()
    (entity,) = result.entities
    assert entity.error is None
    assert (entity.matched, entity.extra_in_new, entity.missing_in_new) == (6, 12, 0)
    assert audit_rows(pg_ledger) == 0
