"""FROZEN copy of the univariate ensemble as it was on main at 7dd98d6 (anomaly/detectors.py and
anomaly/ensemble.py in one file), kept only so bench/anomaly_real_eval.py can score the previous default
next to the new one. Do not edit it and do not use it in the product."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from anomaly.calendar import PEAK_DAYS, REST_DAYS, BusinessCalendar

MAD_TO_SIGMA = 1.4826
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def calibrate(statistic: float, threshold: float) -> float:
    """Map a non-negative statistic to [0, 1): 0.5 at the threshold, ~0.06 at half of it, ~0.94 at twice."""
    if statistic <= 0.0:
        return 0.0
    ratio = threshold / statistic
    return 1.0 / (1.0 + ratio * ratio * ratio * ratio)


@dataclass(slots=True)
class Observation:
    """What the baseline made of one point: the other detectors and the explanation read it."""

    value: float
    expected: float
    sigma: float
    z: float
    """Robust z after the calendar's allowance (what is scored)."""
    day_kind: str
    level: float
    learnt: bool


class SeasonalBaseline:
    """Robust, adaptive, calendar-aware expected value and scale of a series."""

    name = "seasonal"

    def __init__(
        self,
        *,
        slot_minutes: int = 60,
        calendar: BusinessCalendar | None = None,
        eta_level: float = 0.02,
        eta_profile: float = 0.03,
        eta_weekday: float = 0.005,
        eta_scale: float = 0.05,
        clip: float = 3.0,
        min_rel_scale: float = 0.002,
        peak_allowance: float = 4.0,
        threshold: float = 4.5,
    ) -> None:
        if not 1 <= slot_minutes <= 1440 or 1440 % slot_minutes:
            raise ValueError("slot_minutes must divide a day (1..1440)")
        self.slot_minutes = slot_minutes
        self.calendar = calendar
        self.eta_level, self.eta_profile, self.eta_weekday = eta_level, eta_profile, eta_weekday
        self.eta_scale, self.clip, self.min_rel_scale = eta_scale, clip, min_rel_scale
        self.peak_allowance, self.threshold = peak_allowance, threshold
        slots = 1440 // slot_minutes
        self.n = 0
        self.level = 0.0
        self.mad = 0.0
        self.profile = [[0.0] * slots, [0.0] * slots]  # [business-like, rest-like][slot]
        self.weekday = [0.0] * 7
        self.seen = [False, False]
        self._kinds: dict[int, str] = {}

    def _kind(self, day: int) -> str:
        kind = self._kinds.get(day)
        if kind is None:
            if self.calendar is not None:
                kind = self.calendar.day_kind(date.fromordinal(_EPOCH_ORDINAL + day))
            else:
                kind = "weekend" if (day + 3) % 7 >= 5 else "business"
            if len(self._kinds) > 4096:
                self._kinds.clear()
            self._kinds[day] = kind
        return kind

    def update(self, ts: float, value: float) -> Observation:
        """Score ``value`` at Unix time ``ts`` against the past, then learn from it."""
        offset = self.calendar.utc_offset_minutes * 60 if self.calendar is not None else 0
        local = ts + offset
        day = int(local // 86400)
        # The profile is piecewise linear between slot centres, so it fits within a slot too.
        position = (local - day * 86400) / (self.slot_minutes * 60) - 0.5
        base = math.floor(position)
        frac = position - base
        rest = 1 if (kind := self._kind(day)) in REST_DAYS else 0
        if not self.seen[rest]:  # a first rest day starts from the business-day shape, and vice versa
            self.seen[rest] = True
            if self.seen[1 - rest]:
                self.profile[rest] = list(self.profile[1 - rest])
        profile = self.profile[rest]
        slots = len(profile)
        i0, i1 = base % slots, (base + 1) % slots
        weekday = (day + 3) % 7
        if self.n == 0:
            self.level = value
        expected = self.level + (1.0 - frac) * profile[i0] + frac * profile[i1] + self.weekday[weekday]
        residual = value - expected
        if self.n == 1:
            self.mad = abs(residual)
        sigma = max(self.mad * MAD_TO_SIGMA, self.min_rel_scale * abs(expected), 1e-9)
        z = residual / sigma
        scored = z
        if (kind in PEAK_DAYS and z > 0) or kind == "cutover":
            scored = z / self.peak_allowance
        learnt = kind not in PEAK_DAYS and kind != "cutover"
        if learnt:
            c = self.clip
            step = (c if z > c else -c if z < -c else z) * sigma
            self.level += self.eta_level * step
            profile[i0] += self.eta_profile * (1.0 - frac) * step
            profile[i1] += self.eta_profile * frac * step
            self.weekday[weekday] += self.eta_weekday * step
            if self.n >= 1 and -4.0 < z < 4.0:  # sustained shifts must not inflate the scale
                self.mad *= math.exp(self.eta_scale if abs(residual) > self.mad else -self.eta_scale)
        self.n += 1
        return Observation(value, expected, sigma, scored, kind, self.level, learnt)

    def statistic(self, obs: Observation) -> float:
        return abs(obs.z)

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": self.name,
            "params": {
                "slot_minutes": self.slot_minutes,
                "eta_level": self.eta_level,
                "eta_profile": self.eta_profile,
                "eta_weekday": self.eta_weekday,
                "eta_scale": self.eta_scale,
                "clip": self.clip,
                "min_rel_scale": self.min_rel_scale,
                "peak_allowance": self.peak_allowance,
                "threshold": self.threshold,
            },
            "n": self.n,
            "level": self.level,
            "mad": self.mad,
            "profile": [list(p) for p in self.profile],
            "weekday": list(self.weekday),
            "seen": list(self.seen),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], calendar: BusinessCalendar | None = None) -> SeasonalBaseline:
        self = cls(calendar=calendar, **state["params"])
        self.n, self.level, self.mad = int(state["n"]), float(state["level"]), float(state["mad"])
        self.profile = [[float(v) for v in p] for p in state["profile"]]
        self.weekday = [float(v) for v in state["weekday"]]
        self.seen = [bool(v) for v in state["seen"]]
        return self


class LevelShift:
    """Two-sided CUSUM on the baseline's robust z, clipped at ``clip`` and capped at ``cap`` x threshold."""

    name = "level-shift"

    def __init__(self, *, drift: float = 1.5, threshold: float = 10.0, clip: float = 4.0, cap: float = 2.0):
        self.drift, self.threshold, self.clip, self.cap = drift, threshold, clip, cap
        self.up = 0.0
        self.down = 0.0

    def update(self, obs: Observation) -> float:
        c = self.clip
        z = c if obs.z > c else -c if obs.z < -c else obs.z
        top = self.cap * self.threshold
        self.up = min(max(0.0, self.up + z - self.drift), top)
        self.down = min(max(0.0, self.down - z - self.drift), top)
        return self.up if self.up > self.down else self.down

    def direction(self) -> str:
        return "up" if self.up >= self.down else "down"

    def to_state(self) -> dict[str, Any]:
        params = {"drift": self.drift, "threshold": self.threshold, "clip": self.clip, "cap": self.cap}
        return {"kind": self.name, "params": params, "up": self.up, "down": self.down}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LevelShift:
        self = cls(**state["params"])
        self.up, self.down = float(state["up"]), float(state["down"])
        return self


class TrendChange:
    """How far the fast level has run from a slow one, in robust scales (drifts, gradual degradation)."""

    name = "trend"

    def __init__(self, *, eta_slow: float = 0.002, threshold: float = 4.0, warmup: int = 100):
        self.eta_slow, self.threshold, self.warmup = eta_slow, threshold, warmup
        self.slow: float | None = None
        self.n = 0

    def update(self, obs: Observation) -> float:
        self.n += 1
        if self.slow is None or self.n <= self.warmup:
            self.slow = obs.level
            return 0.0
        gap = (obs.level - self.slow) / obs.sigma
        if obs.learnt:
            self.slow += self.eta_slow * (obs.level - self.slow)
        return abs(gap)

    def to_state(self) -> dict[str, Any]:
        params = {"eta_slow": self.eta_slow, "threshold": self.threshold, "warmup": self.warmup}
        return {"kind": self.name, "params": params, "slow": self.slow, "n": self.n}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TrendChange:
        self = cls(**state["params"])
        self.slow = None if state["slow"] is None else float(state["slow"])
        self.n = int(state["n"])
        return self


class RollingZScore:
    """The simple baseline: z of a point against the mean and deviation of the ``window`` points before it."""

    name = "zscore"

    def __init__(self, *, window: int = 100, threshold: float = 3.0):
        if window < 3:
            raise ValueError("window must hold at least 3 points")
        self.window, self.threshold = window, threshold
        self.values: deque[float] = deque(maxlen=window)
        self.total = 0.0
        self.squares = 0.0

    def update(self, value: float) -> float:
        n = len(self.values)
        stat = 0.0
        if n >= 3:
            mean = self.total / n
            var = max(self.squares / n - mean * mean, 0.0)
            std = math.sqrt(var) or max(abs(mean) * 1e-6, 1e-9)
            stat = abs(value - mean) / std
        if n == self.window:
            old = self.values[0]
            self.total -= old
            self.squares -= old * old
        self.values.append(value)
        self.total += value
        self.squares += value * value
        return stat

    def to_state(self) -> dict[str, Any]:
        params = {"window": self.window, "threshold": self.threshold}
        return {
            "kind": self.name,
            "params": params,
            "values": list(self.values),
            "total": self.total,
            "squares": self.squares,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RollingZScore:
        self = cls(**state["params"])
        self.values.extend(float(v) for v in state["values"])
        self.total, self.squares = float(state["total"]), float(state["squares"])
        return self


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
