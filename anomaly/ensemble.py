"""The univariate ensemble: one calibrated anomaly score in [0, 1) per point, with its explanation.

The seasonal baseline (spikes, dips, unusual quiet, and a step: one alarm, then the new level is learnt)
and the level-shift CUSUM (a shift too small for one point) each give a score calibrated so that 0.5 is
their alarm threshold and that keeps its order in the tail; the ensemble's score is the largest, and the
explanation names the detector that gave it and how far the point is from normal. The trend detector and
the rolling z-score can be reported alone (``only``) but are not in the default: on the real labelled
series of bench/anomaly_real_eval.py adding the trend detector lowered the score (a drift is usually
learnt as the new normal by operators too). Before ``warmup_points`` points nothing statistical alarms; a
fixed band from settings covers the gap. A point not newer than the last one learnt is scored by the
baseline and learnt by nothing (see anomaly/detectors.py). No I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from anomaly.calendar import BusinessCalendar
from anomaly.change import LevelShift, RollingZScore, TrendChange
from anomaly.detectors import STATE_VERSION, SeasonalBaseline
from anomaly.scores import ratio_score, tail_score

COMPONENTS = ("seasonal", "level-shift", "trend", "zscore")
"""Detectors the ensemble can also report alone (``--detector``); ``zscore`` is the comparison baseline."""
DEFAULT_COMBINATION: tuple[str, ...] = ("seasonal",)
"""Components whose largest score is the ensemble's (chosen on the dev half of the real corpus)."""
SHIFT_HOLD_POINTS = 3
"""Points a fired level-shift CUSUM keeps its score before it re-baselines: the alarm post-processing's
default minimum duration (anomaly.alarm's ``min_duration``), so a detected shift becomes one alarm."""


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
        season: str = "auto",
        rebaseline_points: int = 10,
        combine: tuple[str, ...] = DEFAULT_COMBINATION,
    ) -> None:
        if only is not None and only not in COMPONENTS:
            raise ValueError(f"unknown detector {only!r}; choose one of {', '.join(COMPONENTS)}")
        unknown = [c for c in combine if c not in COMPONENTS or c == "zscore"]
        if unknown or not combine:
            raise ValueError(f"combine needs some of seasonal, level-shift, trend; got {combine!r}")
        self.warmup_points, self.fixed_low, self.fixed_high = warmup_points, fixed_low, fixed_high
        self.only, self.combine = only, tuple(combine)
        self.slot_minutes, self.zscore_window = slot_minutes, zscore_window
        self.n = 0
        self.shift_held = 0
        """Consecutive points the level-shift CUSUM has been at or above its threshold."""
        self.relearning = False
        """Restored from a state of an older version, which was discarded: learning again from scratch."""
        self.baseline = SeasonalBaseline(
            slot_minutes=slot_minutes, calendar=calendar, season=season, rebaseline_points=rebaseline_points
        )
        self.level = LevelShift()
        self.trend = TrendChange(warmup=warmup_points)
        self.zscore = RollingZScore(window=zscore_window)
        slow = {"level-shift", "trend"}
        self._shifts = only in slow or (only is None and bool(slow & set(self.combine)))
        """Whether the CUSUM and the trend detector are run (they are not part of the default)."""

    @property
    def late(self) -> int:
        """Points scored but not learnt: not newer than the last point learnt."""
        return self.baseline.late

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
        fresh = ts > self.baseline.last_ts
        if only == "zscore":
            # the plain baseline has no clock; it still learns nothing from a late point
            stat = self.zscore.update(value) if fresh else self.zscore.peek(value)
            self.baseline.update(ts, value)  # keeps the clock and the late count
            if self.n <= self.warmup_points:
                return self._fixed(value)
            z = self.zscore.threshold
            return Score(tail_score(stat, z), "zscore", value, statistic=stat, threshold=z)
        obs = self.baseline.update(ts, value)
        shift = trend = 0.0
        if fresh and self._shifts:
            shift = self.level.update(obs)
            trend = self.trend.update(obs)
        lv = self.level
        direction = lv.direction()
        if shift >= lv.threshold:
            # Fired. It stays fired for SHIFT_HOLD_POINTS points (the alarm post-processing's minimum
            # duration sees one incident), then the shift is the new normal.
            self.shift_held += 1
            if self.shift_held >= SHIFT_HOLD_POINTS:
                self.baseline.shift_level(lv.shift())
                self.trend.slow = None
                lv.reset()
                self.shift_held = 0
        elif fresh:
            self.shift_held = 0
        if self.n <= self.warmup_points:
            return self._fixed(value)
        b, tr = self.baseline, self.trend
        spike = abs(obs.z)
        best = ("seasonal", ratio_score(obs.surprise / b.surprise_threshold), spike, b.threshold)
        if self._shifts:
            options = (
                best,
                ("level-shift", ratio_score(shift / lv.threshold), shift, lv.threshold),
                ("trend", ratio_score(trend / tr.threshold), trend, tr.threshold),
            )
            if only is not None:
                best = next(o for o in options if o[0] == only)
            else:
                best = max((o for o in options if o[0] in self.combine), key=lambda o: o[1])
        name, score, stat, threshold = best
        return Score(
            score,
            name,
            value,
            obs.expected,
            obs.sigma,
            stat,
            threshold,
            obs.z,
            obs.day_kind,
            direction if name == "level-shift" else "",
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

    def params(self) -> dict[str, Any]:
        return {
            "warmup_points": self.warmup_points,
            "fixed_low": self.fixed_low,
            "fixed_high": self.fixed_high,
            "only": self.only,
            "slot_minutes": self.slot_minutes,
            "zscore_window": self.zscore_window,
            "combine": list(self.combine),
        }

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": self.name,
            "version": STATE_VERSION,
            "params": self.params(),
            "n": self.n,
            "shift_held": self.shift_held,
            "baseline": self.baseline.to_state(),
            "level": self.level.to_state(),
            "trend": self.trend.to_state(),
            "zscore": self.zscore.to_state(),
        }

    @classmethod
    def from_state(
        cls, state: dict[str, Any], calendar: BusinessCalendar | None = None
    ) -> UnivariateEnsemble:
        """Restore a saved ensemble. A state saved by an older version (no ``version``, or another one) is
        discarded: the ensemble starts learning again with the old warm-up and fixed band (``relearning``),
        because the old scale and level are the very estimates that stuck on real series."""
        params = dict(state.get("params") or {})
        if state.get("version") != STATE_VERSION:
            keep = {k: params[k] for k in ("warmup_points", "fixed_low", "fixed_high", "only") if k in params}
            if keep.get("only") not in (None, *COMPONENTS):
                keep.pop("only")
            fresh = cls(calendar=calendar, **keep)
            fresh.relearning = True
            return fresh
        params["combine"] = tuple(params.get("combine") or DEFAULT_COMBINATION)
        self = cls(calendar=calendar, **params)
        self.n, self.shift_held = int(state["n"]), int(state["shift_held"])
        self.baseline = SeasonalBaseline.from_state(state["baseline"], calendar=calendar)
        self.level = LevelShift.from_state(state["level"])
        self.trend = TrendChange.from_state(state["trend"])
        self.zscore = RollingZScore.from_state(state["zscore"])
        return self
