"""The univariate ensemble: one calibrated anomaly score in [0, 1] per point, with its explanation.

The seasonal baseline (spikes, dips, unusual quiet), the level-shift CUSUM and the trend-change detector
each give a score calibrated so that 0.5 is their alarm threshold; the ensemble's score is the largest,
and the explanation names the detector that gave it and how far the point is from normal. Before
``warmup_points`` points nothing statistical alarms; a fixed band from settings covers the gap. No I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from anomaly.calendar import BusinessCalendar
from anomaly.detectors import (
    LevelShift,
    RollingZScore,
    SeasonalBaseline,
    TrendChange,
    calibrate,
)

COMPONENTS = ("seasonal", "level-shift", "trend", "zscore")
"""Detectors the ensemble can also report alone (``--detector``); ``zscore`` is the comparison baseline."""


@dataclass(frozen=True, slots=True)
class Score:
    """One point's score and what drove it."""

    score: float
    detector: str
    value: float
    expected: float | None = None
    sigma: float | None = None
    statistic: float = 0.0
    threshold: float = 0.0
    z: float = 0.0
    """The point's robust z against the seasonal baseline."""
    day_kind: str = ""
    direction: str = ""
    note: str = ""

    def explain(self, series: str = "value") -> str:
        if self.detector == "fixed":
            return f"{series}: {self.value:g} {self.note} (warm-up)"
        if self.detector == "multivariate":  # a group of related series (anomaly/groups.py)
            return f"{series}: {self.note}"
        if self.detector == "none":
            return f"{series}: {self.value:g} within normal ({self.note or 'no detector above 0'})"
        around = ""
        if self.expected is not None and self.sigma is not None:
            around = f" vs expected {self.expected:.4g} (±{self.sigma:.3g})"
        if self.detector == "level-shift":
            why = f"sustained shift {self.direction}"
        elif self.detector == "trend":
            why = "level drifting from its slow baseline"
        elif self.detector == "zscore":
            why = "rolling z-score"
        else:
            why = f"{abs(self.z):.1f} robust sigmas {'above' if self.z > 0 else 'below'} normal"
        day = f" on a {self.day_kind} day" if self.day_kind else ""
        return (
            f"{series}: {why}{day} ({self.detector} {self.statistic:.2f} >= threshold {self.threshold:g}"
            f" scores {self.score:.2f}), value {self.value:.4g}{around}"
        )


class UnivariateEnsemble:
    """Streaming anomaly scorer of one series. ``only`` reports a single component instead of the max."""

    name = "ensemble"

    def __init__(
        self,
        *,
        warmup_points: int = 288,
        fixed_low: float | None = None,
        fixed_high: float | None = None,
        calendar: BusinessCalendar | None = None,
        slot_minutes: int = 60,
        only: str | None = None,
        zscore_window: int = 100,
    ) -> None:
        if only is not None and only not in COMPONENTS:
            raise ValueError(f"unknown detector {only!r}; choose one of {', '.join(COMPONENTS)}")
        self.warmup_points, self.fixed_low, self.fixed_high = warmup_points, fixed_low, fixed_high
        self.only = only
        self.n = 0
        self.baseline = SeasonalBaseline(slot_minutes=slot_minutes, calendar=calendar)
        self.level = LevelShift()
        self.trend = TrendChange(warmup=warmup_points)
        self.zscore = RollingZScore(window=zscore_window)

    def _fixed(self, value: float) -> Score:
        if self.fixed_high is not None and value > self.fixed_high:
            return Score(1.0, "fixed", value, note=f"above the fixed threshold {self.fixed_high:g}")
        if self.fixed_low is not None and value < self.fixed_low:
            return Score(1.0, "fixed", value, note=f"below the fixed threshold {self.fixed_low:g}")
        return Score(0.0, "none", value, note="warming up")

    def update(self, ts: float, value: float) -> Score:
        """Score the point at Unix time ``ts`` using only earlier points, then learn from it."""
        self.n += 1
        only = self.only
        if only == "zscore":
            stat = self.zscore.update(value)
            if self.n <= self.warmup_points:
                return self._fixed(value)
            z = self.zscore.threshold
            return Score(calibrate(stat, z), "zscore", value, statistic=stat, threshold=z)
        obs = self.baseline.update(ts, value)
        shift = self.level.update(obs)
        trend = self.trend.update(obs)
        if self.n <= self.warmup_points:
            return self._fixed(value)
        b, lv, tr = self.baseline, self.level, self.trend
        spike = abs(obs.z)
        candidates = (
            (calibrate(spike, b.threshold), "seasonal", spike, b.threshold),
            (calibrate(shift, lv.threshold), "level-shift", shift, lv.threshold),
            (calibrate(trend, tr.threshold), "trend", trend, tr.threshold),
        )
        if only is None:
            best = max(candidates, key=lambda c: c[0])
        else:
            best = next(c for c in candidates if c[1] == only)
        direction = ""
        if best[1] == "level-shift":
            direction = "up" if lv.up >= lv.down else "down"
        return Score(
            best[0], best[1], value, obs.expected, obs.sigma, best[2], best[3], obs.z, obs.day_kind, direction
        )

    def score_many(
        self,
        points: Iterable[tuple[float, float]],
        progress: Callable[[int], None] | None = None,
        every: int = 10_000,
    ) -> list[float]:
        """Scores of many points in order (same as calling :meth:`update` on each)."""
        out: list[float] = []
        append, update = out.append, self.update
        for i, (ts, value) in enumerate(points, 1):
            append(update(ts, value).score)
            if progress is not None and i % every == 0:
                progress(every)
        if progress is not None and len(out) % every:
            progress(len(out) % every)
        return out

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": self.name,
            "params": {
                "warmup_points": self.warmup_points,
                "fixed_low": self.fixed_low,
                "fixed_high": self.fixed_high,
                "only": self.only,
            },
            "n": self.n,
            "baseline": self.baseline.to_state(),
            "level": self.level.to_state(),
            "trend": self.trend.to_state(),
            "zscore": self.zscore.to_state(),
        }

    @classmethod
    def from_state(
        cls, state: dict[str, Any], calendar: BusinessCalendar | None = None
    ) -> UnivariateEnsemble:
        self = cls(**state["params"])
        self.n = int(state["n"])
        self.baseline = SeasonalBaseline.from_state(state["baseline"], calendar=calendar)
        self.level = LevelShift.from_state(state["level"])
        self.trend = TrendChange.from_state(state["trend"])
        self.zscore = RollingZScore.from_state(state["zscore"])
        return self
