"""Statistics to scores: every detector's statistic becomes a score in [0, 1) that keeps its order in the
tail (a 20-sigma point above an 8-sigma one, neither exactly 1), with 0.5 at the detector's threshold; and
each series' own tail, so a series that often moves far stops paging on what is ordinary for it."""

from __future__ import annotations

import math
from typing import Any

_LN10 = math.log(10.0)
_HALF_LN_2PI = 0.5 * math.log(2.0 * math.pi)
_SQRT2 = math.sqrt(2.0)


TAIL_KNOTS = (4.0, 6.0, 9.0, 14.0, 22.0)
"""|z| levels at which each series' own exceedance rate is tracked (:class:`TailCalibration`)."""


def calibrate(statistic: float, threshold: float) -> float:
    """Map a non-negative statistic to [0, 1): 0.5 at the threshold, ~0.06 at half of it, ~0.94 at twice.

    Kept for the isolation forest's calibrated statistic; it saturates far in the tail, which is why the
    univariate detectors use :func:`tail_score`."""
    if statistic <= 0.0:
        return 0.0
    ratio = threshold / statistic
    return 1.0 / (1.0 + ratio * ratio * ratio * ratio)


def log10_tail(z: float) -> float:
    """-log10 P(|Z| >= z) for a standard normal Z: 0 at z = 0, ~5.2 at 4.5, ~88 at 20, finite for any z."""
    z = abs(z)
    if z < 30.0:
        return -math.log10(math.erfc(z / _SQRT2))
    # erfc underflows near z = 38: the asymptotic series of the two-sided tail is exact to ~1e-3 here
    return (0.5 * z * z + math.log(z) + _HALF_LN_2PI - math.log(2.0)) / _LN10


def ratio_score(ratio: float) -> float:
    """A statistic's ratio to its threshold as a score: 0.5 at 1, linear below, 1 - 0.5/ratio above.

    Strictly increasing and below 1 for any finite ratio (0.9 at five times the threshold, 0.99 at 50),
    so the order of strong anomalies survives, and a stuck detector is not confused with a strong one."""
    if ratio <= 0.0:
        return 0.0
    if ratio <= 1.0:
        return 0.5 * ratio
    return 1.0 - 0.5 / ratio


def tail_score(z: float, threshold: float) -> float:
    """Score of a robust z: :func:`ratio_score` of its log tail probability over the threshold's."""
    return ratio_score(log10_tail(z) / log10_tail(threshold))


class TailCalibration:
    """How rare a robust z is *for this series*: the Gaussian tail, made heavier where the series showed it.

    Real series have heavier tails than a Gaussian (hourly batch jobs, bursty query rates): a 9-sigma
    point every hour is that series' normal, and paging on it is what made the old detector useless. The
    rate at which |z| exceeded each of :data:`TAIL_KNOTS` is tracked (a running mean, then exponentially
    weighted over ``horizon`` points); the first ``allowance`` exceedances in a horizon are not counted
    (one or two real anomalies must not teach the series that anomalies are normal). The surprise of a z
    is ``min(Gaussian, empirical)`` in -log10 units, the empirical curve interpolated between the knots
    and Gaussian-shaped beyond the last, plus 1% of the Gaussian surprise: strictly increasing in |z|, so
    a larger deviation always scores higher, and equal to the Gaussian one on a well-behaved series."""

    def __init__(self, *, horizon: int = 2000, allowance: float = 10.0) -> None:
        self.horizon, self.allowance = horizon, allowance
        self.n = 0
        self._counts = [0.0] * len(TAIL_KNOTS)
        self._gain = 1.0
        """Exceedance rate at knot i is ``_counts[i] * _gain``: decaying every rate is one multiplication."""
        self._knot_surprise = [log10_tail(k) for k in TAIL_KNOTS]

    @property
    def rates(self) -> list[float]:
        return [c * self._gain for c in self._counts]

    def learn(self, z: float) -> None:
        a = -z if z < 0 else z
        self.n += 1
        counts = self._counts
        if self.n == 1:
            self._gain = 1.0
            for i, k in enumerate(TAIL_KNOTS):
                counts[i] = 1.0 if a >= k else 0.0
            return
        eta = max(1.0 / self.horizon, 1.0 / self.n)
        gain = self._gain * (1.0 - eta)
        if a >= TAIL_KNOTS[0]:
            for i, k in enumerate(TAIL_KNOTS):
                if a >= k:
                    counts[i] += eta / gain
        if gain < 1e-150:  # fold the gain back into the counts before it underflows
            self._counts = [c * gain for c in counts]
            gain = 1.0
        self._gain = gain

    def _curve(self, i: int) -> float:
        """The empirical surprise at knot ``i``: at most the Gaussian one."""
        gaussian = self._knot_surprise[i]
        effective = self.n if self.n < self.horizon else self.horizon
        excess = self._counts[i] * self._gain * effective - self.allowance
        if excess <= 0.0:
            return gaussian
        empirical = -math.log10(excess / effective)
        return empirical if empirical < gaussian else gaussian

    def surprise(self, z: float) -> float:
        """-log10 of the tail probability of ``|z|`` for this series (strictly increasing in ``|z|``)."""
        a = -z if z < 0 else z
        gaussian = log10_tail(a)
        knots = TAIL_KNOTS
        if a < knots[0]:
            first = self._curve(0)
            if first >= self._knot_surprise[0]:  # the Gaussian surprise is convex: below the chord
                return 1.01 * gaussian
            empirical = first * a / knots[0]
        elif a >= knots[-1]:
            empirical = self._curve(len(knots) - 1) + gaussian - self._knot_surprise[-1]
        else:
            i = 1
            while a >= knots[i]:
                i += 1
            lo_x, hi_x = knots[i - 1], knots[i]
            lo_y, hi_y = self._curve(i - 1), self._curve(i)
            empirical = lo_y + (hi_y - lo_y) * (a - lo_x) / (hi_x - lo_x)
        return (gaussian if gaussian < empirical else empirical) + 0.01 * gaussian

    def to_state(self) -> dict[str, Any]:
        return {
            "horizon": self.horizon,
            "allowance": self.allowance,
            "n": self.n,
            "counts": list(self._counts),
            "gain": self._gain,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TailCalibration:
        self = cls(horizon=int(state["horizon"]), allowance=float(state["allowance"]))
        self.n = int(state["n"])
        self._counts = [float(v) for v in state["counts"]]
        self._gain = float(state["gain"])
        return self
