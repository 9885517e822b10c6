"""The canonical row text and its hash are the same on every engine, with and without the lean SQL; text is
as stored (spaces kept) and timestamps keep their microseconds.

The keyed diff hashes a *lean* text (conversions the source column type makes unnecessary are skipped) and
fetches the *full* one; both must be byte for byte the text Python builds, and the database's 64-bit hash
must be :func:`py_hash64` of it, or equal rows on two engines would not hash equal.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.dualrun.model import ComparisonConfig, EntityConfig
from monitor.dualrun.normalise import MOD64, NULL_MARK, SEPARATOR, concat, py_hash64, row_hash
from monitor.dualrun.sql import SourceQuery
from tests.monitor.dualrun_fixtures import ENGINES, load, source
from tests.servers import fresh_database

DDL = {
    "postgres": "CREATE TABLE t (id bigint PRIMARY KEY, n integer NOT NULL, amt numeric(14,2), amt3 numeric(14,3),"
    " d date, s varchar(40), ts timestamp)",
    "mariadb": "CREATE TABLE t (id bigint PRIMARY KEY, n int NOT NULL, amt decimal(14,2), amt3 decimal(14,3),"
    " d date, s varchar(40), ts datetime(6)) DEFAULT CHARSET=utf8mb4",
    "sqlite": "CREATE TABLE t (id integer PRIMARY KEY, n integer NOT NULL, amt numeric, amt3 numeric, d text,"
    " s text, ts text)",
}
ROWS: list[tuple[object, ...]] = [
    (1, 7, "10.50", "10.505", "2026-11-30", "  Müller 株式会社 ", "2026-11-30 23:59:59"),
    (2, -3, "-0.01", "-2.004", "2000-02-29", "plain", "2026-01-01 00:00:00.000001"),
    (3, 0, "0.00", "0.000", None, None, None),
    (4, 123456, None, "99999999999.999", "1999-12-31", "", "1999-12-31 12:00:00"),
]
EXPECTED = [
    ["1", "7", "10.50", "10.51", "2026-11-30", "  Müller 株式会社 ", "2026-11-30T23:59:59.000000"],
    ["2", "-3", "-0.01", "-2.00", "2000-02-29", "plain", "2026-01-01T00:00:00.000001"],
    ["3", "0", "0.00", "0.00", NULL_MARK, NULL_MARK, NULL_MARK],
    ["4", "123456", NULL_MARK, "100000000000.00", "1999-12-31", "", "1999-12-31T12:00:00.000000"],
]
ENTITY = {
    "name": "t",
    "legacy": {"table": "t"},
    "new": {"table": "t"},
    "key": [{"name": "id", "type": "integer"}],
    "columns": [
        {"name": "n", "type": "integer"},
        {"name": "amt", "type": "decimal", "scale": 2},
        {"name": "amt3", "type": "decimal", "scale": 2},
        {"name": "d", "type": "date"},
        {"name": "s"},
        {"name": "ts", "type": "timestamp"},
    ],
}


@pytest.fixture(params=ENGINES)
def table(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    database = fresh_database(request.param, tmp_path)
    url = next(database)
    try:
        values = ", ".join(
            "(" + ", ".join("NULL" if v is None else f"'{v}'" for v in row) + ")" for row in ROWS
        )
        load(url, [DDL[request.param], f"INSERT INTO t VALUES {values}"])
        yield url
    finally:
        database.close()


def _entity() -> EntityConfig:
    return ComparisonConfig.model_validate(
        {"name": "c", "legacy": "a", "new": "b", "entities": [ENTITY]}
    ).entities[0]


def test_lean_and_full_canonical_text_and_hash_are_the_same_everywhere(table: str) -> None:
    entity = _entity()
    columns = (*entity.key, *entity.columns)
    q = SourceQuery(source("new", table), entity.new)
    try:
        q.describe(columns)
        if q.dialect != "sqlite":
            kinds = {name: native.kind for name, native in q.natives.items()}
            assert kinds == {
                "id": "integer", "n": "integer", "amt": "decimal", "amt3": "decimal", "d": "date",
                "s": "text", "ts": "other",
            }  # fmt: skip
        full = concat([q.canon(c) for c in columns], q.dialect)
        lean = concat([q.canon(c, lean=True) for c in columns], q.dialect)
        if q.dialect == "mysql":  # the lean SQL really is leaner: no DECIMAL/DATE conversion, no COALESCE(n)
            assert "DATE_FORMAT(`d`" not in lean and "DECIMAL(38,2)" in lean and "COALESCE(`n`" not in lean
        rows = q.fetch(
            f"SELECT {full}, {lean}, {row_hash(full, q.dialect)}, {row_hash(lean, q.dialect)} "
            f"{q.from_clause()} ORDER BY 1"
        )
    finally:
        q.source.engine.dispose()
    assert len(rows) == len(EXPECTED)
    for (full_text, lean_text, full_hash, lean_hash), expected in zip(rows, EXPECTED, strict=True):
        text = SEPARATOR.join(expected)
        assert full_text == text
        assert lean_text == text
        assert int(full_hash) % MOD64 == int(lean_hash) % MOD64 == py_hash64(text) % MOD64
