"""Offline scoring of a ``timestamp,value`` CSV: parsing with one-line errors, scoring, writing.

Timestamps are ISO 8601 (a missing zone means UTC) or Unix seconds. Row numbers in errors count the
header as row 1, as a spreadsheet shows them. The file is read here; the detectors never do I/O.

Time order policy (the same as the streaming detectors'): rows are scored in file order, each against
what was learnt from the rows before it. A row whose timestamp is not newer than the newest one so far -
a duplicate timestamp, or a clock that stepped back (a daylight-saving change, a resynchronised host) - is
scored but not learnt, and counted (:attr:`Series.duplicates`, :attr:`Series.late`); the file is never
refused for it. The isolation forest has no clock: it learns every row in file order.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from anomaly.calendar import BusinessCalendar
from anomaly.ensemble import COMPONENTS, UnivariateEnsemble
from anomaly.multivariate import WindowedIsolationForest
from core.errors import HypercareError

DEFAULT_DETECTOR = "ensemble"
"""What ``hypercare anomaly score`` and the pipeline use (the seasonal baseline with its tail calibration:
see anomaly/ensemble.py for why the other components are not in it)."""
DETECTORS = ("ensemble", *COMPONENTS, "iforest")


class SeriesInputError(HypercareError):
    """The input CSV cannot be scored; the message names the row and column."""


@dataclass
class Series:
    header: list[str]
    rows: list[list[str]]
    timestamps: list[float]
    values: list[float]
    duplicates: int = 0
    """Rows whose timestamp equals the newest one before them (scored, not learnt)."""
    late: int = 0
    """Rows whose timestamp is earlier than the newest one before them (scored, not learnt)."""


def parse_timestamp(text: str) -> float:
    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if math.isfinite(number):
        return number
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def read_series(path: Path) -> Series:
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise SeriesInputError(f"{path}: cannot read ({exc.strerror})") from None
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise SeriesInputError(f"{path}: the file is empty; expected a header with timestamp,value")
        names = [h.strip().lstrip("\ufeff") for h in header]
        missing = [c for c in ("timestamp", "value") if c not in names]
        if missing:
            raise SeriesInputError(
                f"{path}: missing column(s) {', '.join(missing)}; "
                f"the header has {', '.join(names) or 'nothing'}"
            )
        if "anomaly_score" in names:
            raise SeriesInputError(f"{path}: already has an anomaly_score column")
        t_col, v_col = names.index("timestamp"), names.index("value")
        rows: list[list[str]] = []
        stamps: list[float] = []
        values: list[float] = []
        for row_no, row in enumerate(reader, 2):
            if not row:
                continue
            if len(row) != len(names):
                raise SeriesInputError(f"{path}: row {row_no} has {len(row)} fields, the header {len(names)}")
            try:
                ts = parse_timestamp(row[t_col])
            except ValueError:
                raise SeriesInputError(
                    f"{path}: row {row_no}: timestamp {row[t_col]!r} is not ISO 8601 or Unix seconds"
                ) from None
            try:
                value = float(row[v_col])
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise SeriesInputError(f"{path}: row {row_no}: value {row[v_col]!r} is not a finite number")
            rows.append(row)
            stamps.append(ts)
            values.append(value)
    return Series(names, rows, stamps, values, *out_of_order(stamps))


def out_of_order(timestamps: list[float]) -> tuple[int, int]:
    """(duplicates, late): timestamps equal to, or earlier than, the newest one before them."""
    newest = -math.inf
    duplicates = late = 0
    for ts in timestamps:
        if ts > newest:
            newest = ts
        elif ts == newest:
            duplicates += 1
        else:
            late += 1
    return duplicates, late


def score_series(
    series: Series,
    detector: str = "ensemble",
    *,
    warmup_points: int = 288,
    calendar: BusinessCalendar | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[float]:
    """Causal scores in [0, 1), one per row (0.5 = the detector's alarm threshold)."""
    if detector not in DETECTORS:
        raise SeriesInputError(f"unknown detector {detector!r}; choose one of {', '.join(DETECTORS)}")
    points = list(zip(series.timestamps, series.values, strict=True))
    if detector == "iforest":
        # the forest trains on at most its 2,000 newest rows and needs 16 to start
        forest = WindowedIsolationForest(("value",), min_train=min(max(warmup_points, 16), 2000))
        scores = forest.score_many([[v] for v in series.values])
        if progress is not None:
            progress(len(scores))
        return scores
    only = None if detector == "ensemble" else detector
    ensemble = UnivariateEnsemble(warmup_points=warmup_points, calendar=calendar, only=only)
    return ensemble.score_many(points, progress=progress)


def write_scores(path: Path, series: Series, scores: list[float]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*series.header, "anomaly_score"])
        for row, score in zip(series.rows, scores, strict=True):
            writer.writerow([*row, f"{score:.6f}"])
