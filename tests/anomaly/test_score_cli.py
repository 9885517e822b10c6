"""`hypercare anomaly score` as a user runs it: a real process, real files."""

from __future__ import annotations

import csv
import math
import random
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.cli import run_hypercare


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_hypercare("anomaly", "score", *args, cwd=cwd)


def write(
    path: Path, rows: Sequence[tuple[str, ...]], header: tuple[str, ...] = ("timestamp", "value")
) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def series(n: int) -> list[tuple[str, str]]:
    rng = random.Random(11)  # noqa: S311 - seeded test data
    rows = []
    for i in range(n):
        value = 50 + 5 * math.sin(2 * math.pi * i / 288) + rng.gauss(0, 0.5) + (40 if i == n - 20 else 0)
        rows.append((str(1_793_000_000 + i * 300 + (i % 7)), f"{value:.3f}"))  # irregular sampling
    return rows


def scores(path: Path) -> list[float]:
    with path.open(encoding="utf-8") as handle:
        return [float(row["anomaly_score"]) for row in csv.DictReader(handle)]


def test_scores_are_in_range_flag_the_spike_and_do_not_depend_on_later_rows(tmp_path: Path) -> None:
    rows = series(1200)
    full = run(
        str(write(tmp_path / "in.csv", rows)), str(tmp_path / "out.csv"), "--warmup", "300", cwd=tmp_path
    )
    assert full.returncode == 0, full.stderr
    assert "1,200 rows scored with ensemble" in full.stdout
    whole = scores(tmp_path / "out.csv")
    assert len(whole) == 1200 and all(0.0 <= s <= 1.0 for s in whole)
    assert whole[1180] > 0.9 and whole[1180] == max(whole)
    cut = run(
        str(write(tmp_path / "head.csv", rows[:900])),
        str(tmp_path / "head-out.csv"),
        "--warmup",
        "300",
        cwd=tmp_path,
    )
    assert cut.returncode == 0, cut.stderr
    assert scores(tmp_path / "head-out.csv") == whole[:900]


@pytest.mark.parametrize("detector", ["zscore", "level-shift", "iforest"])
def test_every_detector_can_be_chosen(tmp_path: Path, detector: str) -> None:
    done = run(
        str(write(tmp_path / "in.csv", series(700))),
        str(tmp_path / "o.csv"),
        "--detector",
        detector,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert len(scores(tmp_path / "o.csv")) == 700


@pytest.mark.parametrize(
    ("rows", "header", "message"),
    [
        ([("1", "2")], ("time", "value"), "missing column(s) timestamp; the header has time, value"),
        (
            [("2026-11-02T00:00:00Z", "1"), ("yesterday", "2")],
            ("timestamp", "value"),
            "row 3: timestamp 'yesterday' is not ISO 8601",
        ),
        ([("1", "1.5"), ("2", "n/a")], ("timestamp", "value"), "row 3: value 'n/a' is not a finite number"),
    ],
)
def test_bad_csv_is_one_clear_line_naming_the_row(
    tmp_path: Path, rows: list[tuple[str, str]], header: tuple[str, ...], message: str
) -> None:
    done = run(str(write(tmp_path / "in.csv", rows, header)), str(tmp_path / "o.csv"), cwd=tmp_path)
    assert done.returncode == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "o.csv").exists()


def test_unknown_detector_is_refused(tmp_path: Path) -> None:
    done = run(
        str(write(tmp_path / "in.csv", series(10))),
        str(tmp_path / "o.csv"),
        "--detector",
        "magic",
        cwd=tmp_path,
    )
    assert done.returncode == 1 and "unknown detector 'magic'" in done.stderr


def test_a_clock_stepping_back_and_duplicate_timestamps_are_scored_and_counted(tmp_path: Path) -> None:
    """A corpus-shaped file (timestamp,value,label; 15-minute ISO times) whose clock steps back an hour (a
    daylight-saving change) and repeats two timestamps: every row is scored, none refused, all counted."""
    rng = random.Random(5)  # noqa: S311 - seeded test data
    start = datetime(2026, 10, 1, tzinfo=UTC)
    rows: list[tuple[str, ...]] = []
    minutes = 0
    for i in range(400):
        if i == 300:
            minutes -= 60  # the clock steps back: 3 rows earlier than the newest, then one equal to it
        stamp = (start + timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M:%S")
        rows.append((stamp, f"{20 + rng.gauss(0, 1):.2f}", "0"))
        if i in (120, 200):
            rows.append((stamp, f"{20 + rng.gauss(0, 1):.2f}", "0"))  # the same timestamp twice
        minutes += 15
    path = write(tmp_path / "in.csv", rows, ("timestamp", "value", "label"))
    done = run(str(path), str(tmp_path / "out.csv"), "--warmup", "100", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "402 rows scored with ensemble" in done.stdout
    assert "3 duplicate and 3 out-of-order timestamps" in done.stdout
    out = scores(tmp_path / "out.csv")
    assert len(out) == 402 and max(out) < 0.5  # noise, not an anomaly, across the step back
