from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime

import pytest

from anomaly.alarms import AlarmProcessor
from anomaly.calendar import BusinessCalendar
from anomaly.change import LevelShift, RollingZScore
from anomaly.detectors import Observation, SeasonalBaseline
from anomaly.ensemble import Score, UnivariateEnsemble
from anomaly.events import fingerprint
from anomaly.multivariate import WindowedIsolationForest
from anomaly.scores import calibrate

T0 = datetime(2026, 11, 2, tzinfo=UTC).timestamp()  # a Monday
STEP = 300.0


def seasonal(n: int, seed: int = 1) -> list[tuple[float, float]]:
    rng = random.Random(seed)  # noqa: S311 - seeded test data
    return [
        (T0 + i * STEP, 100 + 10 * math.sin(2 * math.pi * (i % 288) / 288) + rng.gauss(0, 1))
        for i in range(n)
    ]


def test_calibration_puts_the_threshold_at_one_half() -> None:
    assert calibrate(4.0, 4.0) == 0.5
    assert calibrate(0.0, 4.0) == 0.0
    assert calibrate(8.0, 4.0) == pytest.approx(16 / 17)
    assert calibrate(2.0, 4.0) == pytest.approx(1 / 17)


def test_rolling_zscore_on_exact_values() -> None:
    z = RollingZScore(window=4)
    assert [z.update(v) for v in (1.0, 2.0, 3.0)] == [0.0, 0.0, 0.0]
    assert z.update(2.0) == pytest.approx(0.0)  # mean 2, std sqrt(2/3)
    assert z.update(10.0) == pytest.approx(8 / math.sqrt(0.5))  # window 1,2,3,2 -> 2,3,2 ... mean 2, var .5


def test_cusum_ignores_one_spike_but_fires_on_a_sustained_shift_and_drains() -> None:
    cusum = LevelShift(drift=1.0, threshold=8.0, clip=4.0, cap=2.0)

    def obs(z: float) -> Observation:
        return Observation(0.0, 0.0, 1.0, z, "business", 0.0, True)

    assert cusum.update(obs(50.0)) == 3.0  # clipped to 4, minus the drift
    assert cusum.update(obs(0.0)) == 2.0
    stats = [cusum.update(obs(3.0)) for _ in range(6)]
    assert stats == [4.0, 6.0, 8.0, 10.0, 12.0, 14.0]
    assert max(cusum.update(obs(4.0)) for _ in range(10)) == 16.0  # capped at 2 x threshold
    assert cusum.direction() == "up"


def test_seasonal_baseline_learns_the_daily_shape_and_flags_a_spike_and_quiet() -> None:
    base = SeasonalBaseline(slot_minutes=60)
    points = seasonal(288 * 10)
    for ts, value in points:
        base.update(ts, value)
    ts = points[-1][0] + STEP
    expected = 100 + 10 * math.sin(2 * math.pi * 1 / 288)
    normal = base.update(ts, expected)
    assert abs(normal.z) < 2 and abs(normal.expected - expected) < 2
    spike = base.update(ts + STEP, expected + 30)
    assert spike.z > 10
    quiet = base.update(ts + 2 * STEP, 0.0)
    assert quiet.z < -10 and quiet.day_kind == "business"


def test_expected_month_end_peak_is_not_an_anomaly_but_the_same_peak_mid_month_is() -> None:
    calendar = BusinessCalendar(close_before=1, close_after=0)
    points = [(t, v) for t, v in seasonal(288 * 10)]
    close_day = datetime(2026, 11, 30, 12, tzinfo=UTC).timestamp()
    plain_day = datetime(2026, 11, 25, 12, tzinfo=UTC).timestamp()
    results = {}
    for label, when in (("close", close_day), ("plain", plain_day)):
        base = SeasonalBaseline(calendar=calendar)
        for ts, value in points:
            base.update(ts, value)
        results[label] = base.update(when, 100 + 25)
    assert results["close"].day_kind == "close" and not results["close"].learnt
    assert results["plain"].z > base.threshold > results["close"].z


def test_ensemble_is_silent_in_warm_up_except_for_the_fixed_band_and_explains_alarms() -> None:
    ens = UnivariateEnsemble(warmup_points=50, fixed_high=150.0)
    early = [ens.update(ts, v) for ts, v in seasonal(50)]
    assert all(s.score == 0.0 for s in early[:-1])
    ens = UnivariateEnsemble(warmup_points=50, fixed_high=150.0)
    ens.update(T0, 100.0)
    hot = ens.update(T0 + STEP, 200.0)
    assert (hot.score, hot.detector) == (1.0, "fixed")
    assert "above the fixed threshold 150" in hot.explain("latency")
    ens = UnivariateEnsemble(warmup_points=288 * 3)
    points = seasonal(288 * 8)
    scores = [ens.update(ts, v) for ts, v in points]
    assert max(s.score for s in scores[288 * 4 :]) < 0.9
    spike = ens.update(points[-1][0] + STEP, 160.0)
    assert spike.score > 0.9 and spike.detector == "seasonal"
    assert "robust sigmas above normal on a business day" in spike.explain("latency")


def test_scores_are_causal_and_state_restores_exactly() -> None:
    points = seasonal(3000, seed=5)
    whole = UnivariateEnsemble(warmup_points=300).score_many(points)
    first = UnivariateEnsemble(warmup_points=300)
    head = first.score_many(points[:1700])
    assert head == whole[:1700]
    restored = UnivariateEnsemble.from_state(json.loads(json.dumps(first.to_state())))
    assert restored.score_many(points[1700:]) == whole[1700:]


def test_alarm_post_processing_turns_an_incident_into_one_trigger_and_one_resolve() -> None:
    alarms = AlarmProcessor("erp-trial-balance latency", "erp", min_duration=3, clear_points=3)
    at = datetime(2026, 11, 2, tzinfo=UTC)
    flapping = [0.1, 0.6, 0.1, 0.6, 0.6, 0.6, 0.7, 0.4, 0.6, 0.2, 0.6, 0.1, 0.1, 0.1, 0.1]
    events = [alarms.update(at, Score(s, "seasonal", 1.0)) for s in flapping]
    fired = [(i, e.action) for i, e in enumerate(events) if e is not None]
    assert fired == [(5, "trigger"), (13, "resolve")]
    assert {e.fingerprint for e in events if e} == {fingerprint("metric", "erp-trial-balance latency", "erp")}
    assert alarms.update(at, Score(0.95, "seasonal", 9.0)) is not None  # instant level skips min duration


def test_isolation_forest_scores_only_with_past_models_and_restores() -> None:
    rng = random.Random(3)  # noqa: S311 - seeded test data
    rows = [[rng.gauss(100, 2), rng.gauss(1, 0.1)] for _ in range(400)]
    rows[350] = [100.0, 9.0]  # error rate jumps while latency looks normal
    forest = WindowedIsolationForest(
        ("latency", "error_rate"), min_train=200, refit_every=100, n_estimators=50
    )
    scores = forest.score_many(rows)
    assert scores[:200] == [0.0] * 200
    assert scores[350] > max(scores[200:350])
    again = WindowedIsolationForest(
        ("latency", "error_rate"), min_train=200, refit_every=100, n_estimators=50
    )
    again.score_many(rows[:320])
    restored = WindowedIsolationForest.from_state(json.loads(json.dumps(again.to_state())))
    assert restored.score_many(rows[320:]) == scores[320:]
    score, why = restored.update([100.0, 9.0])
    assert score > max(scores[200:350]) and why.startswith("error_rate is")
