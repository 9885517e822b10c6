"""Streaming detectors for one metric series: causal, O(1) per point, state saved and restored as plain data.

* :class:`SeasonalBaseline` - the robust expected value and scale of the next point. Three models run side
  by side: a level alone, a level plus a time-of-day profile, and a level plus a profile for business days
  and one for rest days plus a day-of-week offset; the one with the smallest recent error is used, so each
  series gets the seasonality its data shows (none, daily, weekly) without being told. Expected peaks
  (close days, payroll runs) and the cutover are neither learnt nor paged on. Its statistic is the robust
  z of the point.
* :mod:`anomaly.change` - the detectors that read the baseline's z for what one point cannot show (level
  shifts, drifts) and the plain rolling z-score; :mod:`anomaly.scores` - statistics to calibrated scores.

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
from dataclasses import dataclass
from datetime import date
from typing import Any

from anomaly.calendar import PEAK_DAYS, REST_DAYS, BusinessCalendar
from anomaly.scores import TailCalibration, log10_tail

MAD_TO_SIGMA = 1.4826
"""Median absolute deviation to a Gaussian sigma (used by the multivariate model)."""
MEAN_ABS_TO_SIGMA = math.sqrt(math.pi / 2)
"""Mean absolute deviation to a Gaussian sigma."""
STATE_VERSION = 2
SEASONS = ("none", "daily", "weekly")
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAY = 86400.0


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
