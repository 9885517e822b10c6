"""Header + lines objects (reordered lines equal, one changed line different), aggregate reconciliation with
tolerance and code maps, and comparison files with clear errors."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from core.errors import ConfigError
from monitor.dualrun.config import parse_comparison
from monitor.dualrun.model import ComparisonConfig, ComparisonResult
from monitor.dualrun.runner import run_comparison
from tests.monitor.dualrun_fixtures import load, source
from tests.servers import fresh_database

LEGACY_DDL = [
    "CREATE TABLE inv_head (number varchar(10) PRIMARY KEY, customer varchar(10), total numeric(12,2))",
    "CREATE TABLE inv_line (number varchar(10), pos integer, acct varchar(10), amount numeric(12,3))",
]
NEW_DDL = [
    "CREATE TABLE invoice (number varchar(10) PRIMARY KEY, customer varchar(10), total numeric(12,2))",
    "CREATE TABLE invoice_line (invoice varchar(10), seq integer, account varchar(10), amount numeric(12,2))",
]


def _data() -> tuple[list[str], list[str]]:
    legacy, new = [], []
    for n in range(1, 7):
        legacy.append(f"INSERT INTO inv_head VALUES ('INV{n}', 'C{n % 2}', {n * 30}.00)")
        new.append(f"INSERT INTO invoice VALUES ('INV{n}', 'C{n % 2}', {n * 30}.00)")
        lines = [("1122", n * 10), ("4000", n * 20)]
        for pos, (acct, amount) in enumerate(lines, start=1):
            legacy.append(f"INSERT INTO inv_line VALUES ('INV{n}', {pos}, '{acct}', {amount}.000)")
        mapped = [("112201" if a == "1122" else "400000", amt) for a, amt in lines]
        if n == 2:
            mapped.reverse()  # reordered lines: the same object
        if n == 4:
            mapped[1] = (mapped[1][0], mapped[1][1] + 5)  # one line changed: a different object
        for seq, (acct, amount) in enumerate(mapped, start=1):
            new.append(f"INSERT INTO invoice_line VALUES ('INV{n}', {seq}, '{acct}', {amount}.00)")
    return legacy, new


CONFIG = """
name: invoices
legacy: legacy_db
new: new_db
entities:
  - name: invoices
    legacy: {table: inv_head}
    new: {table: invoice}
    key: [number]
    columns: [customer, {name: total, type: decimal, money: true}]
    lines:
      - name: lines
        legacy: {table: inv_line}
        new: {table: invoice_line}
        parent: [{name: number, new: invoice}]
        columns:
          - {name: account, legacy: acct, map: {"1122": "112201", "4000": "400000"}}
          - {name: amount, type: decimal, money: true}
  - name: revenue_by_account
    legacy: {table: inv_line}
    new: {table: invoice_line}
    group_by: [{name: account, legacy: acct, map: {"1122": "112201", "4000": "400000"}}]
    measures:
      - {name: amount, legacy: "SUM(amount)"}
      - {name: lines, legacy: "COUNT(*)", money: false}
    tolerance: {abs: "1.00"}
"""


@pytest.fixture(
    params=[
        pytest.param(
            ("mariadb", "postgres"), marks=[pytest.mark.postgres, pytest.mark.mariadb], id="mariadb->pg"
        ),
        pytest.param(("sqlite", "postgres"), marks=pytest.mark.postgres, id="sqlite->pg"),
        pytest.param(("sqlite", "sqlite"), id="sqlite->sqlite"),
    ]
)
def result(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ComparisonResult]:
    legacy_kind, new_kind = request.param
    gens = [fresh_database(legacy_kind, tmp_path), fresh_database(new_kind, tmp_path)]
    legacy_url, new_url = (next(g) for g in gens)
    legacy_rows, new_rows = _data()
    load(legacy_url, [*LEGACY_DDL, *legacy_rows])
    load(new_url, [*NEW_DDL, *new_rows])
    legacy, new = source("legacy", legacy_url), source("new", new_url)
    try:
        yield run_comparison(parse_comparison(CONFIG, "test.yaml"), legacy, new)
    finally:
        legacy.engine.dispose()
        new.engine.dispose()
        for g in gens:
            for _ in g:
                pass


def test_reordered_lines_are_equal_and_a_changed_line_differs(result: ComparisonResult) -> None:
    invoices = next(e for e in result.entities if e.entity == "invoices")
    assert invoices.error is None, invoices.error
    assert (invoices.kind, invoices.matched, invoices.changed) == ("object", 5, 1)
    assert (invoices.missing_in_new, invoices.extra_in_new) == (0, 0)
    (diff,) = invoices.samples
    assert diff.key == {"number": "INV4"}
    assert diff.columns == ()  # the header agrees; one line does not
    kinds = sorted(
        (d.kind, d.legacy_row["amount"] if d.legacy_row else d.new_row["amount"]) for d in diff.lines
    )  # type: ignore[index]
    assert kinds == [("extra_in_new", "85.00"), ("missing_in_new", "80.00")]
    assert diff.money_affected == Decimal("165.00")


def test_aggregate_totals_per_mapped_account_with_tolerance(result: ComparisonResult) -> None:
    totals = next(e for e in result.entities if e.entity == "revenue_by_account")
    assert totals.error is None, totals.error
    assert (totals.kind, totals.matched, totals.changed) == ("aggregate", 1, 1)
    bad = [a for a in totals.aggregates if not a.within_tolerance]
    assert [(a.group, a.measure, a.legacy, a.new, a.delta) for a in bad] == [
        ({"account": "400000"}, "amount", Decimal(420), Decimal(425), Decimal(5))
    ]
    good = {(a.group["account"], a.measure): a for a in totals.aggregates if a.within_tolerance}
    assert good[("112201", "amount")].delta == 0
    assert good[("400000", "lines")].delta == 0
    assert totals.money_affected == Decimal(5)


def test_comparison_file_errors_name_the_entity_and_field() -> None:
    bad = CONFIG.replace("columns: [customer, {name: total, type: decimal, money: true}]",
                         "columns: [customer, {name: total, type: text, scale: 2}]")  # fmt: skip
    with pytest.raises(
        ConfigError, match=r"test.yaml: entity invoices: field 'columns.1.scale': only a decimal column"
    ):
        parse_comparison(bad, "test.yaml")
    with pytest.raises(
        ConfigError, match=r"entity revenue_by_account: field 'measures.0.bogus': unknown field"
    ):
        parse_comparison(
            CONFIG.replace('{name: amount, legacy: "SUM(amount)"}', "{name: amount, legacy: x, bogus: 1}"),
            "test.yaml",
        )
    config = ComparisonConfig.model_validate(
        {
            "name": "x",
            "legacy": "a",
            "new": "b",
            "entities": [{"name": "e", "legacy": {"table": "t"}, "new": {"table": "t"}, "key": ["id"]}],
        }
    )
    assert config.entities[0].kind == "rows"
