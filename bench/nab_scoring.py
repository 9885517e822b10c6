"""A NAB-style windowed scorer for streaming detectors, written from the published description.

Around each labelled anomaly a window is drawn: the windows of a file together span about 10% of its
length, split evenly among its anomalies and centred on each anomaly's first labelled point (a labelled
run longer than half a window extends its window to the run's end, so a detection during a labelled
anomaly is never a false positive; overlapping windows merge). Only the first detection inside a window
counts, weighted by a scaled sigmoid of its position (early earns close to the full true-positive weight,
the window's end earns nothing); a detection outside every window costs the false-positive weight times
the same sigmoid measured from the end of the window before it (so shortly after a window costs little,
far after costs the full weight), or the full weight when no window came before. A window without a
detection costs the false-negative weight. The first 15% of every file is a probation period: detections
there are ignored, and so are anomalies labelled there.

Scores are normalised over a set of files: ``100 * (S - null) / (perfect - null)``, where null is a
detector that never fires and perfect fires at the start of every window. The threshold is chosen once per
profile over the whole set (:func:`best_threshold`). numpy makes one threshold over the whole corpus a few
vector operations, so a sweep of a few hundred thresholds takes seconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

PROBATION = 0.15
WINDOW_SHARE = 0.10


@dataclass(frozen=True)
class Profile:
    name: str
    tp: float
    fp: float
    fn: float


PROFILES = (
    Profile("standard", 1.0, 0.11, 1.0),
    Profile("reward_low_FP", 1.0, 0.22, 1.0),
    Profile("reward_low_FN", 1.0, 0.11, 2.0),
)


def scaled_sigmoid(y: float | npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """2 / (1 + e^(5y)) - 1: about 0.987 at the window start (y = -1), 0 at its end, towards -1 after."""
    return np.asarray(2.0 / (1.0 + np.exp(np.clip(5.0 * np.asarray(y, dtype=np.float64), -50, 50))) - 1.0)


@dataclass
class LabelledFile:
    """One file's windows and the weight of a false positive at every index, precomputed once."""

    name: str
    source: str
    n: int
    probation: int
    starts: npt.NDArray[np.int64]
    ends: npt.NDArray[np.int64]
    """Windows as inclusive index ranges, after probation, sorted and disjoint."""
    fp_sigmoid: npt.NDArray[np.float64]
    """Per index: the (negative) sigmoid weight of a false positive there; 0 in windows and probation."""
    normal: npt.NDArray[np.bool_]
    """Per index: labelled normal, outside every window, after probation (for the false-flag share)."""

    @property
    def windows(self) -> int:
        return len(self.starts)


def runs(labels: Sequence[int]) -> list[tuple[int, int]]:
    """Inclusive (first, last) index of every run of consecutive non-zero labels."""
    out: list[tuple[int, int]] = []
    start = None
    for i, label in enumerate(labels):
        if label and start is None:
            start = i
        elif not label and start is not None:
            out.append((start, i - 1))
            start = None
    if start is not None:
        out.append((start, len(labels) - 1))
    return out


def prepare(name: str, source: str, labels: Sequence[int]) -> LabelledFile:
    n = len(labels)
    probation = math.ceil(PROBATION * n)
    anomalies = runs(labels)
    windows: list[list[int]] = []
    if anomalies:
        width = max(1, int(WINDOW_SHARE * n / len(anomalies)))
        for first, last in anomalies:
            lo = max(0, first - width // 2)
            hi = min(n - 1, max(first + width - width // 2 - 1, last))
            if windows and lo <= windows[-1][1] + 1:
                windows[-1][1] = max(windows[-1][1], hi)
            else:
                windows.append([lo, hi])
    kept = [(lo, hi) for lo, hi in windows if lo >= probation]
    fp = np.full(n, -1.0)
    in_window = np.zeros(n, dtype=bool)
    previous: tuple[int, int] | None = None
    cursor = 0
    for lo, hi in windows:  # also the dropped ones: a detection in them is neither TP nor FP
        if previous is not None:
            span = np.arange(cursor, lo)
            fp[cursor:lo] = scaled_sigmoid((span - previous[1]) / (previous[1] - previous[0] + 1))
        in_window[lo : hi + 1] = True
        fp[lo : hi + 1] = 0.0
        previous, cursor = (lo, hi), hi + 1
    if previous is not None and cursor < n:
        span = np.arange(cursor, n)
        fp[cursor:] = scaled_sigmoid((span - previous[1]) / (previous[1] - previous[0] + 1))
    fp[:probation] = 0.0
    normal = ~in_window & (np.asarray(labels) == 0)
    normal[:probation] = False
    return LabelledFile(
        name,
        source,
        n,
        probation,
        np.array([w[0] for w in kept], dtype=np.int64),
        np.array([w[1] for w in kept], dtype=np.int64),
        fp,
        normal,
    )


@dataclass
class Tally:
    """Raw NAB components of one file at one threshold (profile weights applied later)."""

    tp_sum: float
    misses: int
    fp_sum: float
    """Sum of the (negative) sigmoid weights of the false positives."""
    windows: int
    flagged_normal: float
    """Share of normal rows at or above the threshold."""


def tally(file: LabelledFile, scores: npt.NDArray[np.float64], threshold: float) -> Tally:
    detections = np.flatnonzero(scores >= threshold)
    detections = detections[detections >= file.probation]
    tp_sum, misses = 0.0, 0
    if file.windows and not len(detections):
        misses = file.windows
    elif file.windows:
        first = np.searchsorted(detections, file.starts, side="left")
        safe = np.minimum(first, len(detections) - 1)
        hit = (first < len(detections)) & (detections[safe] <= file.ends)
        positions = (detections[safe][hit] - file.ends[hit]) / (file.ends[hit] - file.starts[hit] + 1)
        tp_sum = float(scaled_sigmoid(positions).sum())
        misses = int((~hit).sum())
    fp_sum = float(file.fp_sigmoid[detections].sum())
    normal = int(file.normal.sum())
    flagged = float((scores[file.normal] >= threshold).sum() / normal) if normal else 0.0
    return Tally(tp_sum, misses, fp_sum, file.windows, flagged)


def raw(t: Tally, profile: Profile) -> tuple[float, float, float]:
    """(score, null, perfect) of one file under one profile."""
    score = profile.tp * t.tp_sum + profile.fp * t.fp_sum - profile.fn * t.misses
    perfect = profile.tp * t.windows * float(scaled_sigmoid(-1.0))
    return score, -profile.fn * t.windows, perfect


def normalised(tallies: Sequence[Tally], profile: Profile) -> float:
    score = null = perfect = 0.0
    for t in tallies:
        s, z, p = raw(t, profile)
        score, null, perfect = score + s, null + z, perfect + p
    return 100.0 * (score - null) / (perfect - null) if perfect > null else math.nan


def candidates(all_scores: Sequence[npt.NDArray[np.float64]], count: int = 300) -> npt.NDArray[np.float64]:
    """Thresholds to sweep: quantiles of the upper tail of every score (where thresholds matter)."""
    pooled = np.concatenate([s[s > 0] for s in all_scores]) if all_scores else np.zeros(0)
    if pooled.size == 0:
        return np.array([1.0])
    quantiles = 1.0 - np.geomspace(0.5, 1e-6, count)
    return np.unique(np.concatenate([np.quantile(pooled, quantiles), [pooled.max()]]))


def best_threshold(
    files: Sequence[LabelledFile], scores: Sequence[npt.NDArray[np.float64]], profile: Profile
) -> tuple[float, float]:
    """(threshold, normalised score) maximising the profile's total over ``files``."""
    best = (math.inf, -math.inf)
    for threshold in candidates(scores):
        value = normalised([tally(f, s, threshold) for f, s in zip(files, scores, strict=True)], profile)
        if value > best[1]:
            best = (float(threshold), value)
    return best
