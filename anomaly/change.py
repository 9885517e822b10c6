"""Detectors over the baseline's robust z for what one point cannot show, and the plain baseline every
evaluation compares against: :class:`LevelShift` (two-sided CUSUM: shifts too small for one point to alarm),
:class:`TrendChange` (a fast and a slow level drifting apart), :class:`RollingZScore`. O(1) per point, state
as plain data, no I/O."""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from anomaly.detectors import Observation


class LevelShift:
    """Two-sided CUSUM on the baseline's robust z, clipped at ``clip`` and capped at ``cap`` x threshold.

    It resets when the baseline re-baselines (the shift has become the normal) and when it fires itself
    (:meth:`reset`, called by the ensemble, which then moves the baseline's level by :meth:`shift`), so a
    sustained small shift is one alarm rather than an alarm that lasts until the level catches up."""

    name = "level-shift"

    def __init__(self, *, drift: float = 1.5, threshold: float = 10.0, clip: float = 4.0, cap: float = 2.0):
        self.drift, self.threshold, self.clip, self.cap = drift, threshold, clip, cap
        self.up = 0.0
        self.down = 0.0
        self.up_sum = 0.0
        self.down_sum = 0.0
        """Sum of the raw residuals since each side last left zero (the size of the shift)."""
        self.up_n = 0
        self.down_n = 0

    def update(self, obs: Observation) -> float:
        if obs.rebased:
            self.reset()
            return 0.0
        c = self.clip
        z = c if obs.z > c else -c if obs.z < -c else obs.z
        top = self.cap * self.threshold
        residual = (obs.value - obs.expected) if obs.learnt else 0.0
        up = self.up + z - self.drift
        if up > 0.0:
            self.up, self.up_sum, self.up_n = min(up, top), self.up_sum + residual, self.up_n + 1
        else:
            self.up, self.up_sum, self.up_n = 0.0, 0.0, 0
        down = self.down - z - self.drift
        if down > 0.0:
            self.down, self.down_sum, self.down_n = min(down, top), self.down_sum + residual, self.down_n + 1
        else:
            self.down, self.down_sum, self.down_n = 0.0, 0.0, 0
        return self.up if self.up > self.down else self.down

    def direction(self) -> str:
        return "up" if self.up >= self.down else "down"

    def shift(self) -> float:
        """The mean residual of the side that is ahead: how far the level has moved."""
        if self.up >= self.down:
            return self.up_sum / self.up_n if self.up_n else 0.0
        return self.down_sum / self.down_n if self.down_n else 0.0

    def reset(self) -> None:
        self.up = self.down = self.up_sum = self.down_sum = 0.0
        self.up_n = self.down_n = 0

    def to_state(self) -> dict[str, Any]:
        params = {"drift": self.drift, "threshold": self.threshold, "clip": self.clip, "cap": self.cap}
        return {
            "kind": self.name,
            "params": params,
            "up": self.up,
            "down": self.down,
            "up_sum": self.up_sum,
            "down_sum": self.down_sum,
            "up_n": self.up_n,
            "down_n": self.down_n,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LevelShift:
        self = cls(**state["params"])
        self.up, self.down = float(state["up"]), float(state["down"])
        self.up_sum, self.down_sum = float(state.get("up_sum", 0.0)), float(state.get("down_sum", 0.0))
        self.up_n, self.down_n = int(state.get("up_n", 0)), int(state.get("down_n", 0))
        return self


class TrendChange:
    """How far the fast level has run from a slow one, in robust scales (drifts, gradual degradation).

    A re-baseline (a step, already alarmed once) moves the slow level with the fast one."""

    name = "trend"

    def __init__(self, *, eta_slow: float = 0.002, threshold: float = 4.0, warmup: int = 100):
        self.eta_slow, self.threshold, self.warmup = eta_slow, threshold, warmup
        self.slow: float | None = None
        self.n = 0

    def update(self, obs: Observation) -> float:
        self.n += 1
        if self.slow is None or self.n <= self.warmup or obs.rebased:
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

    def peek(self, value: float) -> float:
        """The point's statistic without learning it."""
        n = len(self.values)
        if n < 3:
            return 0.0
        mean = self.total / n
        var = max(self.squares / n - mean * mean, 0.0)
        std = math.sqrt(var) or max(abs(mean) * 1e-6, 1e-9)
        return abs(value - mean) / std

    def update(self, value: float) -> float:
        stat = self.peek(value)
        if len(self.values) == self.window:
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
