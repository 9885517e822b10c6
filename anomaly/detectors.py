"""Streaming detectors for one metric series: causal, O(1) per point, state saved and restored as plain data.

* :class:`SeasonalBaseline` - the robust expected value of the next point: a level plus a time-of-day
  profile (one for business days, one for rest days) plus a day-of-week offset, all moved by Huber-clipped
  residuals (a median approximation), and a robust scale tracked as the running median of the absolute
  residual (MAD). Expected peaks (close days, payroll runs) and the cutover are neither learnt nor paged on;
  unusual quiet on a business day is. Its statistic is the robust z of the point.
* :class:`LevelShift` - two-sided CUSUM on the baseline's robust z (clipped, so one spike cannot fire it).
* :class:`TrendChange` - the gap between a fast and a slow level, in robust scales: it grows steadily
  through a drift or a gradual degradation, which a fast-adapting baseline would otherwise absorb.
* :class:`RollingZScore` - the plain rolling z-score every evaluation compares against.

Every statistic becomes a score in [0, 1] through :func:`calibrate`, which puts 0.5 exactly at the
detector's alarm threshold. No I/O here.
"""

from __future__ import annotations

import math
from collections import deque
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
