"""Exact by default: a 1 µs timestamp difference and a trailing space are differences unless the comparison
file asks for a normalisation, and then the report says how many matched rows each rule changed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.dualrun.model import ComparisonConfig, EntityResult
from monitor.dualrun.runner import run_comparison
from tests.monitor.dualrun_fixtures import load, source
from tests.servers import fresh_database

pytestmark = [pytest.mark.postgres, pytest.mark.mariadb]

LEGACY_DDL = (
    "CREATE TABLE ledger (id int PRIMARY KEY, ref varchar(20), posted datetime(6), amount decimal(12,3))"
    " DEFAULT CHARSET=utf8mb4"
)
NEW_DDL = "CREATE TABLE ledger_new (id bigint PRIMARY KEY, ref text, posted timestamp, amount numeric(12,3))"


def _rows(n: int) -> list[tuple[int, str, str, str]]:
    return [
        (i, f"R{i:04d}", f"2026-11-{i % 28 + 1:02d} 10:00:{i % 60:02d}.{i:06d}", f"{i}.500")
        for i in range(1, n + 1)
    ]


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """MariaDB legacy, PostgreSQL new, 200 equal rows but two: row 7's timestamp is 1 µs later in the new
    system, row 11's reference has a trailing space in the legacy one."""
    legacy_gen, new_gen = fresh_database("mariadb", tmp_path), fresh_database("postgres", tmp_path)
    legacy_url, new_url = next(legacy_gen), next(new_gen)
    legacy, new = _rows(200), _rows(200)
    legacy[10] = (11, "R0011 ", legacy[10][2], legacy[10][3])
    new[6] = (7, new[6][1], new[6][2][:-1] + "8", new[6][3])  # ...000007 -> ...000008

    def values(rows: list[tuple[int, str, str, str]]) -> str:
        return ", ".join(f"({i}, '{ref}', '{ts}', {amt})" for i, ref, ts, amt in rows)

    load(legacy_url, [LEGACY_DDL, f"INSERT INTO ledger VALUES {values(legacy)}"])
    load(new_url, [NEW_DDL, f"INSERT INTO ledger_new VALUES {values(new)}"])
    yield legacy_url, new_url
    for gen in (legacy_gen, new_gen):
        for _ in gen:
            pass


def _config(**columns: dict[str, Any]) -> ComparisonConfig:
    return ComparisonConfig.model_validate(
        {
            "name": "exact",
            "legacy": "legacy_db",
            "new": "new_db",
            "entities": [
                {
                    "name": "ledger",
                    "legacy": {"table": "ledger"},
                    "new": {"table": "ledger_new"},
                    "key": ["id"],
                    "columns": [
                        {"name": "ref", **columns.get("ref", {})},
                        {"name": "posted", "type": "timestamp", **columns.get("posted", {})},
                    ],
                }
            ],
        }
    )


def _run(urls: tuple[str, str], cfg: ComparisonConfig) -> EntityResult:
    legacy, new = source("legacy", urls[0]), source("new", urls[1])
    try:
        (entity,) = run_comparison(cfg, legacy, new).entities
    finally:
        legacy.engine.dispose()
        new.engine.dispose()
    assert entity.error is None, entity.error
    return entity


def test_one_microsecond_and_a_trailing_space_are_reported_by_default(ledger: tuple[str, str]) -> None:
    entity = _run(ledger, _config())
    assert (entity.matched, entity.changed, entity.missing_in_new, entity.extra_in_new) == (198, 2, 0, 0)
    found = {d.key["id"]: [(c.column, c.legacy, c.new) for c in d.columns] for d in entity.samples}
    assert found == {
        "7": [("posted", "2026-11-08T10:00:07.000007", "2026-11-08T10:00:07.000008")],
        "11": [("ref", "R0011 ", "R0011")],
    }
    assert entity.normalised == {}  # nothing was normalised: nothing was asked for
    # `key: [id]` on integer columns in both databases: key ranges, found without `type: integer`
    assert entity.plan == "key ranges on id (an integer column in both databases)"


def test_explicit_normalisations_match_and_say_how_many_rows_they_changed(ledger: tuple[str, str]) -> None:
    cfg = _config(ref={"trim": True}, posted={"precision": "second"})
    entity = _run(ledger, cfg)
    assert (entity.matched, entity.differences) == (200, 0)
    # every legacy/new timestamp has a fraction: the precision rule changed all 200 on both sides
    assert entity.normalised == {
        "ref.trim": {"legacy": 1, "new": 0},
        "posted.precision": {"legacy": 200, "new": 200},
    }


def test_a_text_key_falls_back_to_hash_buckets_and_says_why(ledger: tuple[str, str]) -> None:
    cfg = ComparisonConfig.model_validate(
        {
            **_config().model_dump(mode="json"),
            "entities": [
                {
                    **_config().entities[0].model_dump(mode="json"),
                    "key": ["ref"],
                    "columns": [{"name": "id"}, {"name": "posted", "type": "timestamp"}],
                }
            ],
        }
    )
    entity = _run(ledger, cfg)
    assert entity.plan.startswith("key-hash buckets (slower")
    assert (
        "ref is not an integer column in both databases (text on the legacy side, text on the new side)"
        in (entity.plan)
    )
    assert (entity.matched, entity.missing_in_new, entity.extra_in_new, entity.changed) == (198, 1, 1, 1)
