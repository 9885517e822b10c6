"""Pure pieces of the multivariate path: the residual model, slot alignment and the combined score."""

from __future__ import annotations

import json
import random

from anomaly.ensemble import Score
from anomaly.groups import AlignedGroup, MemberPoint, combine
from anomaly.multivariate import Contribution, MultivariateScore, ResidualModel, trailing_features


def test_trailing_features_are_the_last_row_then_the_window_means() -> None:
    assert trailing_features([[1.0, 4.0], [3.0, 0.0]]) == [3.0, 0.0, 2.0, 2.0]


def test_the_residual_model_scores_with_past_fits_and_restores_to_identical_scores() -> None:
    rng = random.Random(4)  # noqa: S311 - seeded test data
    rows = []
    for _ in range(300):
        load = rng.gauss(0, 1)
        rows.append([0.8 * load + 0.6 * rng.gauss(0, 1), 0.8 * load + 0.6 * rng.gauss(0, 1)])
    rows[280] = [3.0, -3.0]  # each under 3 sigmas, but they always move together
    model = ResidualModel(("a", "b"), min_train=100, train_size=150, refit_every=50)
    scores = model.score_many(rows)
    assert not any(s.fitted for s in scores[:100]) and all(s.fitted for s in scores[100:])
    assert scores[280].score > max(s.score for s in scores[100:280]) and scores[280].score > 0.9
    assert {c.series for c in scores[280].contributions} == {"a", "b"}
    again = ResidualModel(("a", "b"), min_train=100, train_size=150, refit_every=50)
    again.score_many(rows[:230])
    restored = ResidualModel.from_state(json.loads(json.dumps(again.to_state())))
    assert restored.score_many(rows[230:]) == scores[230:]


def test_a_slot_is_scored_when_complete_or_when_a_later_one_starts_and_only_once_warm() -> None:
    group = AlignedGroup("g", ("a", "b"), align_seconds=60, stale_seconds=120, min_train=16, train_size=16)
    quiet = Score(0.1, "seasonal", 1.0, z=0.5)
    assert group.observe("a", 0.0, quiet, warm=False) is None
    assert group.observe("b", 10.0, quiet, warm=True) is None  # complete, but "a" is still warming up
    assert group.forest.n == 0
    for minute in range(1, 17):
        assert group.observe("a", minute * 60.0, quiet, warm=True) is None
        assert group.observe("b", minute * 60.0 + 5, quiet, warm=True) is None  # learning, no score yet
    assert group.forest.n == 16
    assert group.observe("a", 17 * 60.0, quiet, warm=True) is None  # "b" not in this slot yet
    step = group.close_before(18 * 60.0)  # a later slot begins: "b" is carried (5 s... 55 s old)
    assert step is not None and step.fresh == ("a",) and step.at == 17 * 60.0
    assert group.forest.n == 17
    assert group.close_before(18 * 60.0) is None  # nothing open any more


def test_the_group_score_is_the_largest_and_explained_by_whichever_gave_it() -> None:
    mv = MultivariateScore(0.7, 1.5, (Contribution("errors", 4.2, 2.5), Contribution("latency", -1.1, -0.4)))
    members = {"latency": MemberPoint(0.0, 1.0, 0.2, "latency: fine", True)}
    score = combine(mv, members)
    assert (score.score, score.detector) == (0.7, "multivariate")
    assert score.explain("group:erp") == (
        "group:erp: jointly abnormal (multivariate 0.70): errors 4.2 robust sigmas above normal, "
        "latency 1.1 robust sigmas below normal"
    )
    loud = {"latency": MemberPoint(0.0, 6.0, 0.95, "latency: 6.0 robust sigmas above normal", True)}
    assert combine(mv, loud).score == 0.95
    assert combine(mv, loud).explain("group:erp") == "group:erp: latency: 6.0 robust sigmas above normal"
