"""The shapes real operational series have and synthetic sine waves do not (each broke the old detector).

Flat and constant starts, integer-quantised values, steps that become the new normal, sparse counts,
clocks that step back, strong outliers that must keep their order, and state saved by an older version.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from anomaly.alarms import AlarmProcessor
from anomaly.detectors import SeasonalBaseline
from anomaly.ensemble import Score, UnivariateEnsemble
from anomaly.scores import log10_tail, tail_score

T0 = 1_793_000_000.0  # 2026-10-26, a Monday
MINUTE = 60.0
WARMUP = 200


def scores(values: Sequence[float], *, step: float = MINUTE, **kw: object) -> list[float]:
    ensemble = UnivariateEnsemble(warmup_points=WARMUP, **kw)  # type: ignore[arg-type]
    return ensemble.score_many((T0 + i * step, v) for i, v in enumerate(values))


def onsets(values: Sequence[float], threshold: float = 0.5) -> list[int]:
    """Indexes where the score rises to the threshold (what an operator is paged for)."""
    out, above = [], False
    for i, s in enumerate(values):
        if s >= threshold and not above:
            out.append(i)
        above = s >= threshold
    return out


def noise(n: int, mean: float, sd: float, seed: int) -> list[float]:
    rng = random.Random(seed)  # noqa: S311 - seeded test data
    return [rng.gauss(mean, sd) for _ in range(n)]


def test_a_series_whose_first_two_values_are_equal_does_not_stay_in_alarm() -> None:
    values = [42.0, 42.0, *noise(2000, 42.0, 0.5, seed=1)]
    out = scores(values)
    assert sum(s >= 0.5 for s in out[WARMUP:]) / len(out[WARMUP:]) < 0.01
    assert max(out[WARMUP:]) < 0.99  # far from a stuck detector


def test_a_metric_that_goes_flat_is_quiet_on_one_quantum_and_alarms_on_a_spike() -> None:
    rng = random.Random(1)  # noqa: S311 - seeded test data
    noisy = [round(2 * rng.gauss(7.0, 1.0)) / 2 for _ in range(400)]  # reported in steps of 0.5
    flat = [7.0] * 600  # then it goes flat for ten hours: the old scale decayed towards 0 here
    wiggle = [7.5, 7.0, 7.0, 6.5, 7.0, 7.0]  # one quantum either way
    out = scores([*noisy, *flat, *wiggle, 50.0, *flat[:50]])
    assert max(out[WARMUP:1006]) < 0.5
    assert out[1006] > 0.9
    assert max(out[1007:]) < 0.5


def test_a_step_is_one_alarm_and_the_new_level_is_normal_within_the_rebaseline_bound() -> None:
    values = noise(800, 100.0, 1.0, seed=2) + noise(600, 130.0, 1.0, seed=3)
    for bound in (10, 4):
        out = scores(values, rebaseline_points=bound)
        assert onsets(out[WARMUP:]) == [800 - WARMUP]
        assert sum(s >= 0.5 for s in out[800:]) <= bound
        assert max(out[800 + bound :]) < 0.5


def test_integer_cpu_percent_does_not_alarm_on_its_noise_but_does_on_a_real_jump() -> None:
    rng = random.Random(4)  # noqa: S311 - seeded test data
    values = [float(round(rng.gauss(12.0, 0.45))) for _ in range(3000)]  # mostly 12, sometimes 11 or 13
    out = scores(values)
    assert max(out[WARMUP:]) < 0.5
    jumped = scores([*values, 40.0])
    assert jumped[-1] > 0.9


def test_sparse_counts_with_many_zeros_stay_quiet_until_a_burst() -> None:
    rng = random.Random(5)  # noqa: S311 - seeded test data

    def poisson(lam: float) -> float:
        k, p, limit = 0, 1.0, math.exp(-lam)
        while True:
            p *= rng.random()
            if p <= limit:
                return float(k)
            k += 1

    values = [poisson(0.3) for _ in range(3000)]  # about 74% zeros, a few 2s and 3s
    out = scores(values, step=3600.0)
    assert sum(s >= 0.5 for s in out[WARMUP:]) / len(out[WARMUP:]) < 0.005
    burst = scores([*values, 25.0], step=3600.0)
    assert burst[-1] > 0.9


def test_a_stronger_outlier_scores_higher_and_neither_is_exactly_one() -> None:
    assert tail_score(20.0, 4.5) > tail_score(8.0, 4.5) > tail_score(4.5, 4.5) == 0.5
    assert tail_score(1e4, 4.5) < 1.0 and math.isfinite(log10_tail(1e6))
    base = noise(1500, 50.0, 2.0, seed=6)
    sigma = 2.0
    at = {k: scores([*base, 50 + k * sigma])[-1] for k in (8, 20, 200)}
    assert 0.5 < at[8] < at[20] < at[200] < 1.0
    assert round(at[20], 6) < round(at[200], 6) < 1.0  # still ordered as the CSV writes them


def test_seasonality_is_chosen_from_the_data() -> None:
    def fed(values: Sequence[float], step: float) -> SeasonalBaseline:
        base = SeasonalBaseline()
        for i, v in enumerate(values):
            base.update(T0 + i * step, v)
        return base

    rng = random.Random(7)  # noqa: S311 - seeded test data
    hours = 24 * 21
    daily = [100 + 30 * math.sin(2 * math.pi * i / 24) + rng.gauss(0, 2) for i in range(hours)]
    assert fed(daily, 3600.0).chosen in (1, 2)  # daily, or weekly which holds the daily shape too
    assert fed(noise(hours, 100.0, 2.0, seed=8), 3600.0).chosen == 0


def test_late_and_duplicate_points_are_scored_but_not_learnt() -> None:
    ensemble = UnivariateEnsemble(warmup_points=50)
    ensemble.score_many((T0 + i * MINUTE, v) for i, v in enumerate(noise(300, 10.0, 1.0, seed=9)))
    before = json.dumps(ensemble.baseline.to_state() | {"late": 0})
    late = ensemble.update(T0 + 100 * MINUTE, 10.5)  # an hour-old point arrives now
    duplicate = ensemble.update(T0 + 299 * MINUTE, 60.0)  # the newest timestamp again, far off
    assert late.score < 0.5 and duplicate.score > 0.9
    assert json.dumps(ensemble.baseline.to_state() | {"late": 0}) == before
    assert ensemble.late == 2


def test_a_prefix_scores_exactly_like_the_same_rows_of_the_full_run() -> None:
    values = [*noise(900, 5.0, 0.2, seed=10), 9.0, *noise(300, 5.0, 0.2, seed=11)]
    whole = scores(values)
    assert scores(values[:700]) == whole[:700]
    assert max(whole) == whole[900]


def test_state_round_trips_through_json_and_continues_exactly() -> None:
    values = noise(1200, 20.0, 1.0, seed=12)
    points = [(T0 + i * MINUTE, v) for i, v in enumerate(values)]
    whole = UnivariateEnsemble(warmup_points=100).score_many(points)
    first = UnivariateEnsemble(warmup_points=100)
    first.score_many(points[:650])
    restored = UnivariateEnsemble.from_state(json.loads(json.dumps(first.to_state())))
    assert restored.score_many(points[650:]) == whole[650:]


OLD_STATE = {  # saved by the previous version (no "version"): the very estimates that stuck
    "kind": "ensemble",
    "params": {"warmup_points": 40, "fixed_low": None, "fixed_high": 3.0, "only": None},
    "n": 500,
    "baseline": {
        "kind": "seasonal",
        "params": {"slot_minutes": 60, "eta_level": 0.02, "eta_profile": 0.03, "eta_weekday": 0.005},
        "n": 500,
        "level": 0.05,
        "mad": 0.0,
        "profile": [[0.0] * 24, [0.0] * 24],
        "weekday": [0.0] * 7,
        "seen": [True, False],
    },
    "level": {"kind": "level-shift", "params": {}, "up": 20.0, "down": 0.0},
    "trend": {"kind": "trend", "params": {}, "slow": 0.05, "n": 500},
    "zscore": {"kind": "zscore", "params": {"window": 100, "threshold": 3.0}, "values": [], "total": 0.0},
}


def test_a_state_saved_by_the_previous_version_is_discarded_and_relearnt_without_crashing() -> None:
    ensemble = UnivariateEnsemble.from_state(json.loads(json.dumps(OLD_STATE)))
    assert ensemble.relearning and ensemble.n == 0
    assert (ensemble.warmup_points, ensemble.fixed_high) == (40, 3.0)
    out = ensemble.score_many((T0 + i * MINUTE, v) for i, v in enumerate(noise(300, 0.05, 0.003, seed=13)))
    assert max(out[40:]) < 0.5
    with pytest.raises(ValueError, match="baseline state version"):
        SeasonalBaseline.from_state(OLD_STATE["baseline"])  # type: ignore[arg-type]


def test_a_small_sustained_shift_is_one_level_shift_alarm_then_the_new_normal() -> None:
    """4 sigmas: under the baseline's threshold point by point; the CUSUM fires and holds long enough for
    the alarm post-processing (3 points) to page once, and then the shifted level is normal."""
    values = noise(1000, 0.0, 1.0, seed=14) + noise(600, 4.0, 1.0, seed=15)
    out = scores(values, only="level-shift")
    alarms = AlarmProcessor("s", "bench")
    fired = [
        i
        for i, s in enumerate(out)
        if (e := alarms.update(datetime(2026, 1, 1, tzinfo=UTC), Score(s, "level-shift", 0.0))) is not None
        and e.action == "trigger"
    ]
    assert len(fired) == 1 and 1000 <= fired[0] < 1030
    assert max(out[1100:]) < 0.5
