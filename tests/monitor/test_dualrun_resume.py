"""An interrupted keyed diff with a checkpoint file resumes after the last chunk it completed and finds
exactly what an uninterrupted run finds; a completed run removes the file."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from monitor.dualrun import keyed
from monitor.dualrun.model import ComparisonConfig, ComparisonResult
from monitor.dualrun.runner import run_comparison
from tests.monitor.dualrun_fixtures import source

CONFIG = {
    "name": "resume",
    "legacy": "legacy_db",
    "new": "new_db",
    "entities": [
        {
            "name": "ledger",
            "legacy": {"table": "ledger"},
            "new": {"table": "ledger"},
            "key": ["id"],
            "columns": [{"name": "memo", "trim": True}, {"name": "amount", "type": "decimal", "money": True}],
        }
    ],
}


def _db(path: Path, *, new: bool) -> str:
    rows = [(i, f"memo {i}" + ("" if new else " "), f"{i}.25") for i in range(1, 1001)]
    if new:
        rows = [(i, m, "0.00" if i in {100, 700} else a) for i, m, a in rows if i != 450]
        rows.append((1001, "extra", "1.00"))
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE ledger (id integer PRIMARY KEY, memo text, amount numeric)")
        conn.executemany("INSERT INTO ledger VALUES (?, ?, ?)", rows)
    conn.close()
    return f"sqlite:///{path}"


def _run(urls: tuple[str, str], checkpoint: Path | None) -> ComparisonResult:
    legacy, new = source("legacy", urls[0]), source("new", urls[1])
    try:
        return run_comparison(ComparisonConfig.model_validate(CONFIG), legacy, new, checkpoint=checkpoint)
    finally:
        legacy.engine.dispose()
        new.engine.dispose()


def _found(result: ComparisonResult) -> dict[str, Any]:
    (e,) = result.entities
    assert e.error is None, e.error
    return {
        "counts": (e.matched, e.changed, e.missing_in_new, e.extra_in_new, e.rows_legacy, e.rows_new),
        "keys": sorted((d.kind, d.key["id"]) for d in e.samples),
        "money": e.money_affected,
        "normalised": e.normalised,
    }


def test_an_interrupted_run_resumes_and_finds_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    urls = (_db(tmp_path / "legacy.db", new=False), _db(tmp_path / "new.db", new=True))
    whole = _found(_run(urls, None))
    assert whole["counts"] == (997, 2, 1, 1, 1000, 1000)
    assert whole["keys"] == [
        ("changed", "100"),
        ("changed", "700"),
        ("extra_in_new", "1001"),
        ("missing_in_new", "450"),
    ]

    monkeypatch.setattr(keyed, "CHUNK_KEYS", 64)  # 1001 keys: 16 chunks
    spans: list[list[tuple[int, int]] | None] = []
    original = keyed.KeyedDiff._ranged_span

    def interrupted(self: keyed.KeyedDiff, lo: int, hi: int, size: int, ranges: Any) -> None:
        spans.append(ranges)
        if len(spans) == 10:
            raise KeyboardInterrupt  # the operator's Ctrl-C in the 10th chunk
        original(self, lo, hi, size, ranges)

    monkeypatch.setattr(keyed.KeyedDiff, "_ranged_span", interrupted)
    checkpoint = tmp_path / "run.checkpoint"
    with pytest.raises(KeyboardInterrupt):
        _run(urls, checkpoint)
    assert checkpoint.exists() and spans[8] == [(513, 576)]

    spans.clear()
    assert _found(_run(urls, checkpoint)) == whole  # the same as a run never interrupted
    assert spans[0] == [(577, 640)] and len(spans) == 7  # started after the 9 completed chunks
    assert not checkpoint.exists()  # complete: the next run starts over
