"""Streaming detectors for one metric series: causal, O(1) per point, state saved and restored as plain data.

* :class:`SeasonalBaseline` - the robust expected value and scale of the next point. Three models run side
  by side: a level alone, a level plus a time-of-day profile, and a level plus a profile for business days
  and one for rest days plus a day-of-week offset; the one with the smallest recent error is used, so each
  series gets the seasonality its data shows (none, daily, weekly) without being told. Expected peaks
  (close days, payroll runs) and the cutover are neither learnt nor paged on. Its statistic is the robust
  z of the point.
* :class:`LevelShift` - two-sided CUSUM on the baseline's robust z (clipped, so one spike cannot fire it):
  shifts too small for one point to alarm.
* :class:`TrendChange` - the gap between a fast and a slow level, in robust scales (drifts).
* :class:`RollingZScore` - the plain rolling z-score every evaluation compares against.

What real series taught (docs/benchmarks.md, "Anomaly detection on real labelled series"):

* The scale can never reach 0. It is a mean absolute residual (a running mean over the first points, then
  an exponentially weighted one, each residual clipped at ``clip`` scales so an outlier cannot blow it up),
  floored by the series' *resolution* - the smallest non-zero step seen between two values, so integer
  CPU %, counts and flat lines get a floor of one quantum - and by ``min_rel_scale`` of the level.
* A sustained shift is one alarm, not hundreds: after ``rebaseline_points`` consecutive points beyond the
  threshold on the same side, the level jumps to the mean of those points and the new level is normal.
* Scores keep their order in the tail: :func:`tail_score` maps the log of the Gaussian tail probability of
  z, so a 20-sigma point scores above an 8-sigma one and neither is exactly 1.
* Time never runs backwards inside a detector: a point not newer than the last one learnt (a clock stepped
  back, a duplicate timestamp, a late arrival) is scored against the current state and not learnt; it is
  counted (``late``).

No I/O here.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import date
from typing import Any

from anomaly.calendar import PEAK_DAYS, REST_DAYS, BusinessCalendar

MAD_TO_SIGMA = 1.4826
"""Median absolute deviation to a Gaussian sigma (used by the multivariate model)."""
MEAN_ABS_TO_SIGMA = math.sqrt(math.pi / 2)
"""Mean absolute deviation to a Gaussian sigma."""
STATE_VERSION = 2
SEASONS = ("none", "daily", "weekly")
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_LN10 = math.log(10.0)
_HALF_LN_2PI = 0.5 * math.log(2.0 * math.pi)
_DAY = 86400.0
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
    rebased: bool = False
    """The level jumped to a sustained new value at this point (the shift is now normal)."""
    season: str = "none"
    """Which model gave ``expected``: none, daily or weekly."""
    surprise: float = 0.0
    """-log10 of how rare ``z`` is for this series (:class:`TailCalibration`): what the score is made of."""


class SeasonalBaseline:
    """Robust, adaptive, calendar-aware expected value and scale of a series, seasonality chosen from data.

    Rates are per point (``eta_level``, ``eta_scale``, ``eta_error``) or per visit of a profile slot
    (``eta_profile``: on minute data a 60-minute slot is visited 60 times an hour, so the profile also
    acts as a fast local level - what the real series rewarded, see docs/benchmarks.md). Level and
    profiles learn Huber-clipped residuals (``clip`` scales). Until ``bootstrap_points`` points are
    learnt, every day is learnt (a series first seen on a close day still gets a normal). The defaults
    were chosen on the dev half of the real corpus (bench/anomaly_real_eval.py)."""

    name = "seasonal"

    def __init__(
        self,
        *,
        slot_minutes: int = 60,
        calendar: BusinessCalendar | None = None,
        season: str = "auto",
        eta_level: float = 0.05,
        eta_profile: float = 0.2,
        eta_weekday: float = 0.01,
        eta_scale: float = 0.02,
        eta_error: float = 0.01,
        clip: float = 5.0,
        min_rel_scale: float = 0.001,
        resolution_scale: float = 1.0,
        peak_allowance: float = 6.0,
        threshold: float = 4.5,
        rebaseline_points: int = 10,
        tail_horizon: int = 2000,
        tail_allowance: float = 10.0,
        bootstrap_points: int = 50,
    ) -> None:
        if not 1 <= slot_minutes <= 1440 or 1440 % slot_minutes:
            raise ValueError("slot_minutes must divide a day (1..1440)")
        if season != "auto" and season not in SEASONS:
            raise ValueError(f"season must be auto or one of {', '.join(SEASONS)}")
        if rebaseline_points < 1:
            raise ValueError("rebaseline_points must be at least 1")
        self.slot_minutes, self.calendar, self.season = slot_minutes, calendar, season
        self.eta_level, self.eta_profile, self.eta_weekday = eta_level, eta_profile, eta_weekday
        self.eta_scale, self.eta_error, self.clip = eta_scale, eta_error, clip
        self.min_rel_scale, self.resolution_scale = min_rel_scale, resolution_scale
        self.peak_allowance, self.threshold, self.rebaseline_points = (
            peak_allowance,
            threshold,
            rebaseline_points,
        )
        slots = 1440 // slot_minutes
        self.n = 0
        self.late = 0
        """Points scored but not learnt because they were not newer than the last one learnt."""
        self.first_ts = math.nan
        self.last_ts = -math.inf
        self.last_value = math.nan
        self.resolution = math.inf
        """Smallest non-zero step seen between consecutive values: the series' quantum."""
        self.levels = [0.0, 0.0, 0.0]  # per model: none, daily, weekly
        self.scales = [0.0, 0.0, 0.0]
        """Mean absolute (clipped) residual per model."""
        self.errors = [0.0, 0.0, 0.0]
        """Recent mean absolute residual per model, clipped alike for all: the choice of seasonality."""
        self.daily = [0.0] * slots
        self.profile = [[0.0] * slots, [0.0] * slots]  # weekly model: [business-like, rest-like][slot]
        self.visits = [[0] * slots, [0] * slots, [0] * slots]  # daily, weekly business, weekly rest
        self.weekday = [0.0] * 7
        self.chosen = 0 if season in ("auto", "none") else SEASONS.index(season)
        self.run = 0
        """Consecutive points beyond the threshold on one side (signed: + above, - below)."""
        self.run_sum = 0.0
        """Sum of the chosen model's residuals over that run."""
        self.bootstrap_points = bootstrap_points
        self.tail = TailCalibration(horizon=tail_horizon, allowance=tail_allowance)
        self._surprise_threshold = log10_tail(threshold)
        self._kinds: dict[int, str] = {}

    # --- time and calendar --------------------------------------------------------------------------

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

    def _ready(self, model: int, ts: float) -> bool:
        """A seasonal model competes once it has seen two of its periods (days, weeks)."""
        if model == 0:
            return True
        span = ts - self.first_ts
        return span >= (2 * _DAY if model == 1 else 14 * _DAY)

    @property
    def surprise_threshold(self) -> float:
        """The surprise of a z at the threshold on a Gaussian series: where a score is 0.5."""
        return self._surprise_threshold

    # --- one point ------------------------------------------------------------------------------------

    def update(self, ts: float, value: float) -> Observation:
        """Score ``value`` at Unix time ``ts`` against the past, then learn from it (if it is newer)."""
        offset = self.calendar.utc_offset_minutes * 60 if self.calendar is not None else 0
        local = ts + offset
        day = int(local // _DAY)
        # Profiles are piecewise linear between slot centres, so they fit within a slot too.
        position = (local - day * _DAY) / (self.slot_minutes * 60) - 0.5
        base = math.floor(position)
        frac = position - base
        kind = self._kind(day)
        rest = 1 if kind in REST_DAYS else 0
        slots = len(self.daily)
        i0, i1 = base % slots, (base + 1) % slots
        weekday = (day + 3) % 7
        if self.n == 0:
            self.levels = [value, value, value]
            self.first_ts = ts
        levels, scales, daily, week = self.levels, self.scales, self.daily, self.profile[rest]
        g = 1.0 - frac
        expected = (
            levels[0],
            levels[1] + g * daily[i0] + frac * daily[i1],
            levels[2] + g * week[i0] + frac * week[i1] + self.weekday[weekday],
        )
        c = self.chosen
        # The smallest sigma: one quantum of the series, a share of its level, and never 0.
        quantum = self.resolution * self.resolution_scale if self.resolution < math.inf else 0.0
        relative = self.min_rel_scale * abs(expected[c])
        floor = quantum if quantum > relative else relative
        if floor < 1e-9:  # noqa: PLR1730 - per-point hot path: a comparison is cheaper than max()
            floor = 1e-9
        sigmas = [MEAN_ABS_TO_SIGMA * s if MEAN_ABS_TO_SIGMA * s > floor else floor for s in scales]
        residual = value - expected[c]
        sigma = sigmas[c]
        z = residual / sigma
        scored = z
        if (kind in PEAK_DAYS and z > 0) or kind == "cutover":
            scored = z / self.peak_allowance
        fresh = ts > self.last_ts
        # A baseline with no normal yet to protect learns on any day (a series first seen on a close day).
        learnt = fresh and (self.n < self.bootstrap_points or (kind not in PEAK_DAYS and kind != "cutover"))
        surprise = self.tail.surprise(scored)
        rebased = False
        if not fresh:
            self.late += 1
        elif learnt:
            self.tail.learn(z)
            where = (i0, i1, frac, rest, weekday)
            rebased = self._learn(value, expected, sigmas, where, ts=ts, z=z, residual=residual)
        if fresh:
            if self.n and value != self.last_value:
                step = abs(value - self.last_value)
                if step < self.resolution:  # noqa: PLR1730 - hot path, as above
                    self.resolution = step
            self.last_ts, self.last_value = ts, value
            self.n += 1
        return Observation(
            value, expected[c], sigma, scored, kind, self.levels[c], learnt, rebased, SEASONS[c], surprise
        )

    def _learn(
        self,
        value: float,
        expected: tuple[float, float, float],
        sigmas: list[float],
        where: tuple[int, int, float, int, int],
        *,
        ts: float,
        z: float,
        residual: float,
    ) -> bool:
        """Move every model towards the point (Huber-clipped), the scales, the choice; re-baseline a shift."""
        i0, i1, frac, rest, weekday = where
        clip, levels, scales, errors = self.clip, self.levels, self.scales, self.errors
        k = self.n
        eta_s = max(self.eta_scale, 1.0 / (k + 1)) if k else 0.0  # a running mean first, then exponential
        eta_e = max(self.eta_error, 1.0 / (k + 1))
        cap = clip * sigmas[0]
        for m in (0, 1, 2):
            r = value - expected[m]
            s = sigmas[m]
            bound = clip * s
            step = bound if r > bound else -bound if r < -bound else r
            levels[m] += self.eta_level * step
            if m == 1:
                visits = self.visits[0]
                eta0 = max(self.eta_profile, 1.0 / (visits[i0] + 1)) * (1.0 - frac)
                eta1 = max(self.eta_profile, 1.0 / (visits[i1] + 1)) * frac
                self.daily[i0] += eta0 * step
                self.daily[i1] += eta1 * step
                visits[i0] += 1
                visits[i1] += 1
            elif m == 2:
                visits = self.visits[1 + rest]
                profile = self.profile[rest]
                eta0 = max(self.eta_profile, 1.0 / (visits[i0] + 1)) * (1.0 - frac)
                eta1 = max(self.eta_profile, 1.0 / (visits[i1] + 1)) * frac
                profile[i0] += eta0 * step
                profile[i1] += eta1 * step
                visits[i0] += 1
                visits[i1] += 1
                self.weekday[weekday] += self.eta_weekday * step
            a = -r if r < 0 else r
            if eta_s:
                scales[m] += eta_s * ((bound if a > bound else a) - scales[m])
            errors[m] += eta_e * ((cap if a > cap else a) - errors[m])
        if self.season == "auto":
            self._choose(ts)
        return self._track_run(z, residual)

    def _choose(self, ts: float) -> None:
        """Switch model only when another one is clearly (10%) better and has seen two of its periods."""
        errors, best = self.errors, self.chosen
        for m in (0, 1, 2):
            if m != best and errors[m] < 0.9 * errors[best] and self._ready(m, ts):
                best = m
        self.chosen = best

    def _track_run(self, z: float, residual: float) -> bool:
        """Count a run of points beyond the threshold on one side; at ``rebaseline_points`` adopt its mean."""
        side = 1 if z >= self.threshold else -1 if z <= -self.threshold else 0
        if side == 0 or (self.run and (self.run > 0) != (side > 0)):
            self.run, self.run_sum = side, residual if side else 0.0
            return False
        self.run += side
        self.run_sum += residual
        if abs(self.run) < self.rebaseline_points:
            return False
        shift = self.run_sum / abs(self.run)
        self.levels = [level + shift for level in self.levels]
        self.run, self.run_sum = 0, 0.0
        return True

    def shift_level(self, delta: float) -> None:
        """Move every model's level by ``delta`` (another detector established a sustained shift)."""
        self.levels = [level + delta for level in self.levels]
        self.run, self.run_sum = 0, 0.0

    def statistic(self, obs: Observation) -> float:
        return abs(obs.z)

    # --- state ----------------------------------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        return {
            "slot_minutes": self.slot_minutes,
            "season": self.season,
            "eta_level": self.eta_level,
            "eta_profile": self.eta_profile,
            "eta_weekday": self.eta_weekday,
            "eta_scale": self.eta_scale,
            "eta_error": self.eta_error,
            "clip": self.clip,
            "min_rel_scale": self.min_rel_scale,
            "resolution_scale": self.resolution_scale,
            "peak_allowance": self.peak_allowance,
            "threshold": self.threshold,
            "rebaseline_points": self.rebaseline_points,
            "tail_horizon": self.tail.horizon,
            "tail_allowance": self.tail.allowance,
            "bootstrap_points": self.bootstrap_points,
        }

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": self.name,
            "version": STATE_VERSION,
            "params": self.params(),
            "n": self.n,
            "late": self.late,
            "first_ts": None if math.isnan(self.first_ts) else self.first_ts,
            "last_ts": None if math.isinf(self.last_ts) else self.last_ts,
            "last_value": None if math.isnan(self.last_value) else self.last_value,
            "resolution": None if math.isinf(self.resolution) else self.resolution,
            "levels": list(self.levels),
            "scales": list(self.scales),
            "errors": list(self.errors),
            "daily": list(self.daily),
            "profile": [list(p) for p in self.profile],
            "visits": [list(v) for v in self.visits],
            "weekday": list(self.weekday),
            "chosen": self.chosen,
            "run": self.run,
            "run_sum": self.run_sum,
            "tail": self.tail.to_state(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], calendar: BusinessCalendar | None = None) -> SeasonalBaseline:
        """Restore a saved baseline; a state of another version raises :class:`ValueError` (re-learn it)."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"baseline state version {state.get('version')!r}, expected {STATE_VERSION}")

        def number(key: str, missing: float) -> float:
            value = state[key]
            return missing if value is None else float(value)

        self = cls(calendar=calendar, **state["params"])
        self.n, self.late = int(state["n"]), int(state["late"])
        self.first_ts, self.last_ts = number("first_ts", math.nan), number("last_ts", -math.inf)
        self.last_value, self.resolution = number("last_value", math.nan), number("resolution", math.inf)
        self.levels = [float(v) for v in state["levels"]]
        self.scales = [float(v) for v in state["scales"]]
        self.errors = [float(v) for v in state["errors"]]
        self.daily = [float(v) for v in state["daily"]]
        self.profile = [[float(v) for v in p] for p in state["profile"]]
        self.visits = [[int(v) for v in p] for p in state["visits"]]
        self.weekday = [float(v) for v in state["weekday"]]
        self.chosen, self.run, self.run_sum = int(state["chosen"]), int(state["run"]), float(state["run_sum"])
        self.tail = TailCalibration.from_state(state["tail"])
        return self


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
