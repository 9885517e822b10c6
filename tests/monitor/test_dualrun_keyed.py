"""Keyed row diff across engines: planted differences are found exactly, and normalisation makes equal values
equal (decimal scale, time zones, NULLs, trimmed text, mapped codes)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from monitor.dualrun import keyed
from monitor.dualrun.model import ComparisonConfig, EntityResult
from monitor.dualrun.runner import run_comparison
from tests.monitor.dualrun_fixtures import load, source
from tests.servers import fresh_database

PAIRS = [
    pytest.param(
        ("postgres", "mariadb"), marks=[pytest.mark.postgres, pytest.mark.mariadb], id="mariadb->pg"
    ),
    pytest.param(("postgres", "sqlite"), marks=pytest.mark.postgres, id="sqlite->pg"),
    pytest.param(
        ("mariadb", "postgres"), marks=[pytest.mark.postgres, pytest.mark.mariadb], id="pg->mariadb"
    ),
    pytest.param(("postgres", "postgres"), marks=pytest.mark.postgres, id="pg->pg"),
    pytest.param(("sqlite", "sqlite"), id="sqlite->sqlite"),
]

DDL = {
    "postgres": {
        "legacy": "CREATE TABLE gl_line (entry_no integer, line_no integer, acct varchar(20), amount numeric(14,3),"
        " posted_local timestamp, posting_date date, memo varchar(40), PRIMARY KEY (entry_no, line_no))",
        "new": "CREATE TABLE journal_line (entry_no bigint, line_no integer, account text, amount numeric(12,2),"
        " posted_at timestamptz, posting_date date, memo text, PRIMARY KEY (entry_no, line_no))",
    },
    "mariadb": {
        "legacy": "CREATE TABLE gl_line (entry_no int, line_no int, acct varchar(20), amount decimal(14,3),"
        " posted_local datetime, posting_date date, memo varchar(40), PRIMARY KEY (entry_no, line_no))",
        "new": "CREATE TABLE journal_line (entry_no bigint, line_no int, account varchar(20), amount decimal(12,2),"
        " posted_at datetime, posting_date date, memo varchar(40), PRIMARY KEY (entry_no, line_no))",
    },
    "sqlite": {
        "legacy": "CREATE TABLE gl_line (entry_no integer, line_no integer, acct text, amount numeric,"
        " posted_local text, posting_date text, memo text, PRIMARY KEY (entry_no, line_no))",
        "new": "CREATE TABLE journal_line (entry_no integer, line_no integer, account text, amount numeric,"
        " posted_at text, posting_date text, memo text, PRIMARY KEY (entry_no, line_no))",
    },
}

ACCOUNTS = ["1122", "4000", "5000"]
MAPPED = {"1122": "112201", "4000": "400000", "5000": "500000"}


def _q(value: object) -> str:
    return "NULL" if value is None else "'" + str(value).replace("'", "''") + "'"


def ledger() -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Legacy rows (Shanghai wall time, 3 decimals, codes 1122...) and new rows (UTC, 2 decimals, 112201...)."""
    legacy, new = [], []
    for entry in range(1, 41):
        for line in range(1, 4):
            acct = ACCOUNTS[(entry + line) % 3]
            amount = Decimal(entry * 10 + line) + Decimal("0.5")
            hour = (entry % 12) + 8
            local = f"2026-11-{(entry % 28) + 1:02d} {hour:02d}:15:00"
            utc = f"2026-11-{(entry % 28) + 1:02d} {hour - 8:02d}:15:00"
            day = f"2026-11-{(entry % 28) + 1:02d}"
            memo = None if line == 2 else f"  entry {entry} "
            legacy.append((entry, line, acct, amount.quantize(Decimal("0.001")), local, day, memo))
            new_memo = None if memo is None else memo.strip()
            new.append((entry, line, MAPPED[acct], amount.quantize(Decimal("0.01")), utc, day, new_memo))
    index = {(r[0], r[1]): n for n, r in enumerate(new)}

    def change(key: tuple[int, int], column: int, value: object) -> None:
        row = list(new[index[key]])
        row[column] = value
        new[index[key]] = tuple(row)

    change((5, 2), 3, new[index[(5, 2)]][3] + Decimal("1.00"))  # type: ignore[operator]  # defect
    change((9, 3), 5, "2026-11-11")  # posting one day later: timing
    legacy_index = {(r[0], r[1]): n for n, r in enumerate(legacy)}
    row = list(legacy[legacy_index[(11, 1)]])
    row[2] = "1999"  # a legacy code the map does not know: mapping
    legacy[legacy_index[(11, 1)]] = tuple(row)
    change((11, 1), 2, "199901")
    row = list(legacy[legacy_index[(13, 2)]])
    row[3] = Decimal("132.505")  # 132.51 at scale 2 vs 132.50: within the 0.01 tolerance
    legacy[legacy_index[(13, 2)]] = tuple(row)
    del new[index[(7, 1)]]  # missing in new
    new.append((41, 1, "400000", Decimal("99.99"), "2026-11-30 01:00:00", "2026-11-30", None))  # extra
    return legacy, new


def _insert(table: str, rows: list[tuple[object, ...]], columns: str, pg_tz: bool) -> str:
    values = []
    for r in rows:
        stamp = _q(r[4]) + ("::timestamptz" if pg_tz else "")
        values.append(f"({r[0]}, {r[1]}, {_q(r[2])}, {r[3]}, {stamp}, {_q(r[5])}, {_q(r[6])})")
    return f"INSERT INTO {table} ({columns}) VALUES " + ", ".join(values)


def config(entry_type: str = "integer", segment_rows: int = 128) -> ComparisonConfig:
    return ComparisonConfig.model_validate(
        {
            "name": "gl-cutover",
            "legacy": "legacy_db",
            "new": "new_db",
            "entities": [
                {
                    "name": "gl_lines",
                    "legacy": {"table": "gl_line"},
                    "new": {"table": "journal_line"},
                    "key": [{"name": "entry_no", "type": entry_type}, {"name": "line_no", "type": "integer"}],
                    "columns": [
                        {"name": "account", "legacy": "acct", "map": dict(MAPPED)},
                        {"name": "amount", "type": "decimal", "scale": 2, "money": True},
                        {
                            "name": "posted_at",
                            "legacy": "posted_local",
                            "type": "timestamp",
                            "legacy_timezone": "Asia/Shanghai",
                        },
                        {"name": "posting_date", "type": "date"},
                        {"name": "memo", "trim": True},
                    ],
                    "tolerance": {"abs": "0.01", "days": 2},
                    "segment_rows": segment_rows,
                }
            ],
        }
    )


@pytest.fixture
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str, str, str]]:
    new_kind, legacy_kind = request.param
    legacy_gen = fresh_database(legacy_kind, tmp_path)
    new_gen = fresh_database(new_kind, tmp_path)
    legacy_url, new_url = next(legacy_gen), next(new_gen)
    legacy_rows, new_rows = ledger()
    legacy_cols = "entry_no, line_no, acct, amount, posted_local, posting_date, memo"
    new_cols = "entry_no, line_no, account, amount, posted_at, posting_date, memo"
    load(legacy_url, [DDL[legacy_kind]["legacy"], _insert("gl_line", legacy_rows, legacy_cols, False)])
    load(
        new_url,
        [DDL[new_kind]["new"], _insert("journal_line", new_rows, new_cols, new_kind == "postgres")],
    )
    yield legacy_kind, new_kind, legacy_url, new_url
    for gen in (legacy_gen, new_gen):
        for _ in gen:
            pass


def _run(legacy_url: str, new_url: str, cfg: ComparisonConfig) -> EntityResult:
    legacy, new = source("legacy", legacy_url), source("new", new_url)
    try:
        result = run_comparison(cfg, legacy, new)
    finally:
        legacy.engine.dispose()
        new.engine.dispose()
    (entity,) = result.entities
    assert entity.error is None, entity.error
    return entity


def _check_planted(entity: EntityResult) -> None:
    assert (entity.rows_legacy, entity.rows_new) == (120, 120)
    assert (entity.changed, entity.missing_in_new, entity.extra_in_new) == (3, 1, 1)
    assert entity.matched == 116
    found = {(tuple(d.key.values()), d.kind): d for d in entity.samples}
    assert set(found) == {
        (("5", "2"), "changed"),
        (("9", "3"), "changed"),
        (("11", "1"), "changed"),
        (("7", "1"), "missing_in_new"),
        (("41", "1"), "extra_in_new"),
    }
    amount = found[(("5", "2"), "changed")]
    assert [(c.column, c.legacy, c.new, c.delta) for c in amount.columns] == [
        ("amount", "52.50", "53.50", Decimal("1.00"))
    ]
    assert amount.classification == "defect"
    assert amount.money_affected == Decimal("1.00")
    timing = found[(("9", "3"), "changed")]
    assert [c.column for c in timing.columns] == ["posting_date"]
    assert (timing.classification, timing.rule) == ("timing", "timing.days")
    mapping = found[(("11", "1"), "changed")]
    assert [(c.column, c.legacy, c.new) for c in mapping.columns] == [("account", "1999", "199901")]
    assert (mapping.classification, mapping.rule) == ("mapping", "mapping.unmapped_code")
    assert found[(("7", "1"), "missing_in_new")].classification == "data"
    assert found[(("7", "1"), "missing_in_new")].money_affected == Decimal("71.50")
    assert entity.money_affected == Decimal("1.00") + Decimal("71.50") + Decimal("99.99")
    assert entity.by_classification == {"defect": 1, "timing": 1, "mapping": 1, "data": 2}
    # of the 116 matched rows: all mapped, all read in Shanghai time, one rounded, 77 legacy memos trimmed
    assert entity.normalised == {
        "account.map": {"legacy": 116, "new": 0},
        "amount.scale": {"legacy": 1, "new": 0},
        "posted_at.timezone": {"legacy": 116, "new": 0},
        "memo.trim": {"legacy": 77, "new": 0},
    }


@pytest.mark.parametrize("pair", PAIRS, indirect=True)
def test_planted_differences_found_exactly_across_engines(pair: tuple[str, str, str, str]) -> None:
    _legacy_kind, _new_kind, legacy_url, new_url = pair
    _check_planted(_run(legacy_url, new_url, config()))


@pytest.mark.parametrize(
    "pair",
    [PAIRS[0], PAIRS[1]],
    indirect=True,
)
def test_text_keys_bucketed_by_hash_find_the_same(
    pair: tuple[str, str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _legacy_kind, _new_kind, legacy_url, new_url = pair
    # (integer columns in both databases would get key ranges: the bucket plan is forced here)
    monkeypatch.setattr(keyed.KeyedDiff, "_plan", lambda _self: (False, "key-hash buckets (forced)"))
    entity = _run(legacy_url, new_url, config(entry_type="text"))
    _check_planted(entity)
    assert entity.plan == "key-hash buckets (forced)"


@pytest.mark.parametrize("pair", [PAIRS[0], PAIRS[1]], indirect=True)
def test_integer_key_columns_get_key_ranges_without_declaring_their_type(
    pair: tuple[str, str, str, str],
) -> None:
    _legacy_kind, _new_kind, legacy_url, new_url = pair
    entity = _run(legacy_url, new_url, config(entry_type="text"))
    _check_planted(entity)
    assert entity.plan == "key ranges on entry_no (an integer column in both databases)"


@pytest.mark.parametrize("pair", [PAIRS[0]], indirect=True)
def test_bisection_over_several_levels_finds_the_same(
    pair: tuple[str, str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _legacy_kind, _new_kind, legacy_url, new_url = pair
    monkeypatch.setattr(keyed, "MAX_SEGMENTS", 1)  # one 64-key segment first, then bisected
    monkeypatch.setattr(keyed, "REFINE", 4)
    entity = _run(legacy_url, new_url, config(segment_rows=8))
    _check_planted(entity)
    assert entity.queries > 6  # bounds, three checksum levels, rows


@pytest.mark.parametrize("pair", [PAIRS[4]], indirect=True)
def test_equal_tables_match_without_fetching_rows(pair: tuple[str, str, str, str]) -> None:
    _legacy_kind, _new_kind, legacy_url, _new_url = pair
    cfg = ComparisonConfig.model_validate(
        {
            **config().model_dump(mode="json", exclude_defaults=False),
            "entities": [
                {
                    **config().entities[0].model_dump(mode="json"),
                    "new": {"table": "gl_line"},
                    "columns": [{"name": "acct"}, {"name": "amount", "type": "decimal", "money": True}],
                }
            ],
        }
    )
    entity = _run(legacy_url, legacy_url, cfg)
    assert (entity.matched, entity.differences, entity.queries) == (120, 0, 4)
