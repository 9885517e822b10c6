"""Comparison files: SQL a side hands to a source is checked like a check's, and fragments pasted into the
generated SQL (filters, measures, column expressions) are one read-only expression each."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from core.errors import ConfigError
from hypercare.config import load_settings
from monitor.checks import CheckDefinitionError, parse_checks
from monitor.dualrun.config import load_comparison, parse_comparison, resolve_sources
from monitor.readonly import check_query as check_read_only
from monitor.settings import SourceSettings

DEMO = Path(__file__).resolve().parents[2] / "hypercare" / "demo" / "dualrun.yaml"


def comparison(**entity: Any) -> str:
    """A comparison file whose one entity ``e`` has these fields (over a plain keyed table on each side)."""
    fields: dict[str, Any] = {"legacy": {"table": "t"}, "new": {"table": "t"}, "key": ["id"], **entity}
    return yaml.safe_dump({"name": "c", "legacy": "old", "new": "erp", "entities": [{"name": "e", **fields}]})


def refusal(text: str) -> str:
    with pytest.raises(ConfigError) as refused:
        parse_comparison(text, "dr.yaml")
    return str(refused.value)


def test_the_demo_comparison_still_loads() -> None:
    config = load_comparison(DEMO)
    assert [e.name for e in config.entities] == [
        "customers",
        "suppliers",
        "ar_documents",
        "ap_documents",
        "trial_balance",
    ]


@pytest.mark.parametrize(
    "query",
    [
        "DELETE FROM t",
        "SELECT 1; DROP TABLE t",
        "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x",
        "SELECT * INTO t_copy FROM t",
        "SELECT id FROM t FOR UPDATE",
        "SELECT '/*' AS a; DROP TABLE t; SELECT '*/' AS b",  # the old startswith("select") let this through
    ],
)
def test_a_side_query_is_refused_like_a_check_query_with_the_same_message(query: str) -> None:
    with pytest.raises(ValueError, match=r"^must (be|only read)") as expected:
        check_read_only(query)
    found = refusal(comparison(new={"query": query}))
    assert found.startswith(f"dr.yaml: entity e: field 'new.query': {expected.value}"), found
    check = {"id": "x.q", "title": "t", "source": "erp", "category": "data", "severity": "P3", "sql": query}
    with pytest.raises(CheckDefinitionError, match=rf"field 'sql': {re.escape(str(expected.value))}$"):
        parse_checks(yaml.safe_dump(check), "checks.yaml")


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("company = 'A'; DROP TABLE t", "must be one SQL expression, not statements (found ';')"),
        ("company = 'A' -- and the rest", "must not hold a comment ('--', '/* */' or '#')"),
        ("company = 'A' /* hidden */", "must not hold a comment"),
        ("company = 'A' # MySQL reads the rest as a comment", "must not hold a comment"),
        ("id IN (SELECT id FROM t FOR UPDATE)", "must only read: holds FOR UPDATE / FOR SHARE at line 1"),
        ("id IN (SELECT pg_read_file('x') INTO y)", "must only read: calls pg_read_file() at line 1"),
        ("company = 'A') OR (1 = 1", "has a ')' without its '('"),
        ("(company = 'A'", "has a '(' without its ')'"),
        ("company = 'A", "is not SQL any supported engine can read"),
        ("  ", "must be an SQL expression; it is empty"),
    ],
)
def test_a_filter_that_could_do_more_than_filter_is_refused_naming_the_field(
    condition: str, message: str
) -> None:
    found = refusal(comparison(legacy={"table": "t", "filter": condition}))
    assert found.startswith(f"dr.yaml: entity e: field 'legacy.filter': {message}"), found


def test_measures_and_column_expressions_are_checked_like_filters() -> None:
    aggregate = {"key": [], "group_by": ["account"]}
    measures = [{"name": "total", "legacy": "sum(amount)", "new": "sum(amount); DELETE FROM t"}]
    assert refusal(comparison(**aggregate, measures=measures)).startswith(
        "dr.yaml: entity e: field 'measures.0.new': must be one SQL expression, not statements (found ';')"
    )
    measures = [{"name": "total", "legacy": "sum(amount) -- of what"}]
    assert "field 'measures.0.legacy': must not hold a comment" in refusal(
        comparison(**aggregate, measures=measures)
    )
    group_by = [{"name": "account", "legacy": "substr(acct, 1, 4)) FROM t; DROP TABLE t; SELECT (1"}]
    assert "field 'group_by.0.legacy': " in refusal(
        comparison(key=[], group_by=group_by, measures=[{"name": "n", "legacy": "count(*)"}])
    )
    columns = [{"name": "amount", "new": "(SELECT 1 INTO x)", "type": "decimal"}]
    assert refusal(comparison(columns=columns)).startswith(
        "dr.yaml: entity e: field 'columns.0.new': must only read: holds SELECT ... INTO at line 1"
    )


def test_valid_expressions_with_tricky_literals_and_subqueries_still_load() -> None:
    config = parse_comparison(
        comparison(
            legacy={
                "table": "gl.t",
                "filter": "note <> '--;/*' AND kind IN (SELECT k FROM kinds WHERE w = 'drop')",
            },
            new={
                "query": "SELECT id, \"update\" AS changed FROM t WHERE note <> 'delete me'",
                "filter": "d <= :as_of",
            },
            columns=[
                {"name": "period", "legacy": "substr(posting_date, 1, 7)"},
                {"name": "update_date", "type": "date"},
                {"name": "changed", "legacy": "update"},  # a name: quoted into the SQL, never pasted
            ],
        ),
        "dr.yaml",
    )
    entity = config.entities[0]
    assert entity.legacy.filter is not None and entity.new.query is not None
    assert [c.side("legacy") for c in entity.columns] == [
        "substr(posting_date, 1, 7)",
        "update_date",
        "update",
    ]


def test_resolve_sources_refuses_an_unsupported_engine_naming_the_source(tmp_path: Path) -> None:
    erp = tmp_path / "erp.db"
    erp.touch()
    settings = load_settings(None, sources={"erp": {"url": f"sqlite:///{erp}"}})
    # Settings refuse such a source when they load; a comparison still refuses one that got past them.
    old = SourceSettings.model_construct(url=SecretStr("mssql+pymssql://hc:s3cret@legacy-db/erp"))
    settings = settings.model_copy(update={"sources": {**settings.sources, "old": old}})
    config = parse_comparison(comparison(), "dr.yaml")
    with pytest.raises(ConfigError) as refused:
        resolve_sources(config, settings, "dr.yaml")
    assert str(refused.value) == (
        "source 'old' is a mssql database: Hypercare reads only PostgreSQL, MySQL/MariaDB and SQLite "
        "sources, the engines whose sessions it can make read-only"
    )
