"""A multivariate detector over windows of related series (latency, error rate, throughput, backlog).

Each point becomes a feature row: per series its value, its deviation from the mean of the last ``window``
points and that window's spread. An IsolationForest is fitted on the trailing ``train_size`` rows every
``refit_every`` points, and a point is scored only by a model fitted before it (causal). Scores are
calibrated against the training rows' own scores (0.5 near their upper tail) and explained by the series
whose value is furthest from its training median. The state is the rows: a restore refits the same model
(fixed seed), so nothing is pickled. No I/O.
"""
# size: one model (fit, score, alarm) and its saved state belong together

from __future__ import annotations

import hashlib
import itertools
import math
import warnings
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sklearn.ensemble import IsolationForest  # type: ignore[import-untyped]  # no type hints shipped

from anomaly.detectors import MAD_TO_SIGMA
from anomaly.scores import calibrate


class WindowedIsolationForest:
    name = "iforest"

    def __init__(
        self,
        series: Sequence[str],
        *,
        window: int = 12,
        train_size: int = 2000,
        refit_every: int = 500,
        min_train: int = 288,
        n_estimators: int = 100,
        seed: int = 0,
        threshold: float = 1.0,
    ) -> None:
        if not series:
            raise ValueError("needs at least one series")
        if window < 2 or min_train < 16 or train_size < min_train:
            raise ValueError("needs window >= 2 and 16 <= min_train <= train_size")
        self.series = tuple(series)
        self.window, self.train_size, self.refit_every = window, train_size, refit_every
        self.min_train, self.n_estimators, self.seed, self.threshold = (
            min_train,
            n_estimators,
            seed,
            threshold,
        )
        self.recent: deque[list[float]] = deque(maxlen=window)
        self.history: deque[list[float]] = deque(maxlen=train_size + refit_every)
        self.n = 0
        self.fitted_at: int | None = None
        self._model: IsolationForest | None = None
        self._ref = (0.0, 1.0)
        self._median = np.zeros(0)
        self._mad = np.zeros(0)

    # --- features and model ------------------------------------------------------------------------------

    def _features(self, values: Sequence[float]) -> list[float]:
        if len(values) != len(self.series):
            raise ValueError(
                f"expected {len(self.series)} values ({', '.join(self.series)}), got {len(values)}"
            )
        self.recent.append([float(v) for v in values])
        k = len(self.recent)
        row: list[float] = []
        for j, value in enumerate(values):
            column = [r[j] for r in self.recent]
            mean = sum(column) / k
            spread = math.sqrt(sum((c - mean) ** 2 for c in column) / k)
            row.extend((float(value), float(value) - mean, spread))
        return row

    def _training_rows(self) -> list[list[float]]:
        end = len(self.history) - (self.n - (self.fitted_at or 0))
        return list(self.history)[max(0, end - self.train_size) : end]

    def _fit(self) -> None:
        self.fitted_at = self.n
        self._fit_rows(self._training_rows())

    def _due(self) -> bool:
        if self.n < self.min_train:
            return False
        return self.fitted_at is None or self.n - self.fitted_at >= self.refit_every

    def _score_rows(self, rows: list[list[float]]) -> list[float]:
        if not rows:
            return []
        if self._model is None:
            return [0.0] * len(rows)
        raw = -self._model.score_samples(np.asarray(rows, dtype=float))
        median, spread = self._ref
        return [calibrate(max(0.0, (float(r) - median) / spread), self.threshold) for r in raw]

    # --- streaming -----------------------------------------------------------------------------------

    def update(self, values: Sequence[float]) -> tuple[float, str]:
        """Score one time step of every series (a past-fitted model only), then learn from it."""
        row = self._features(values)
        (score,) = self._score_rows([row])
        explanation = self.explain(row) if self._model is not None else "warming up"
        self.history.append(row)
        self.n += 1
        if self._due():
            self._fit()
        return score, explanation

    def score_many(self, rows: Sequence[Sequence[float]]) -> list[float]:
        """Scores of many time steps, the same as :meth:`update` on each, scored in batches between refits."""
        out: list[float] = []
        pending: list[list[float]] = []
        for values in rows:
            row = self._features(values)
            pending.append(row)
            self.history.append(row)
            self.n += 1
            if self._due():
                out.extend(self._score_rows(pending))
                pending = []
                self._fit()
        out.extend(self._score_rows(pending))
        return out

    def explain(self, row: Sequence[float]) -> str:
        """Which series is furthest from its training median, in robust sigmas."""
        if self._model is None:
            return "warming up"
        z = (np.asarray(row, dtype=float) - self._median) / self._mad
        values = z[0::3]
        worst = int(np.argmax(np.abs(values)))
        return (
            f"{self.series[worst]} is {abs(float(values[worst])):.1f} robust sigmas "
            f"{'above' if values[worst] > 0 else 'below'} its trailing median "
            f"{float(self._median[worst * 3]):.4g}"
        )

    # --- state ---------------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": self.name,
            "params": {
                "series": list(self.series),
                "window": self.window,
                "train_size": self.train_size,
                "refit_every": self.refit_every,
                "min_train": self.min_train,
                "n_estimators": self.n_estimators,
                "seed": self.seed,
                "threshold": self.threshold,
            },
            "n": self.n,
            "fitted_at": self.fitted_at,
            "recent": [list(r) for r in self.recent],
            "history": [list(r) for r in self.history],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> WindowedIsolationForest:
        params = dict(state["params"])
        self = cls(params.pop("series"), **params)
        self.recent.extend([float(v) for v in r] for r in state["recent"])
        self.history.extend([float(v) for v in r] for r in state["history"])
        self.n = int(state["n"])
        if state["fitted_at"] is not None:
            self.fitted_at = int(state["fitted_at"])
            self._fit_rows(self._training_rows())  # the very rows the saved model was fitted on
        return self

    def _fit_rows(self, train_rows: list[list[float]]) -> None:
        from sklearn.ensemble import IsolationForest  # noqa: PLC0415 - slow to import: only on the first fit

        train = np.asarray(train_rows, dtype=float)
        model = IsolationForest(n_estimators=self.n_estimators, random_state=self.seed)
        model.fit(train)
        raw = -model.score_samples(train)
        median, high = float(np.median(raw)), float(np.quantile(raw, 0.995))
        self._model, self._ref = model, (median, max(high - median, 1e-9))
        self._median = np.median(train, axis=0)
        self._mad = np.maximum(np.median(np.abs(train - self._median), axis=0) * MAD_TO_SIGMA, 1e-9)


# --- related series of one source: a forest over their robust residuals ----------------------------------

MODELS = ("covariance", "iforest")
Z_CLIP = 8.0
"""Residuals are clipped to +/- this many robust sigmas before learning: one wild point cannot stretch
the model's notion of normal."""


@dataclass(frozen=True, slots=True)
class Contribution:
    """How far one series' features are from the training median, in robust sigmas (signed)."""

    series: str
    deviation: float
    residual: float
    """The series' own robust z against its seasonal baseline at this point."""


@dataclass(frozen=True, slots=True)
class MultivariateScore:
    score: float
    statistic: float
    """Raw isolation score above the training median, in units of (99.5th percentile - median)."""
    contributions: tuple[Contribution, ...] = ()
    """Every series, the furthest from normal first; empty while the model warms up."""
    fitted: bool = True

    def explain(self, top: int = 3) -> str:
        if not self.fitted:
            return "warming up"
        shown = [c for c in self.contributions[:top] if abs(c.deviation) >= 1.0] or list(
            self.contributions[:1]
        )
        parts = [
            f"{c.series} {abs(c.deviation):.1f} robust sigmas {'above' if c.deviation > 0 else 'below'}"
            " normal"
            for c in shown
        ]
        return f"jointly abnormal (multivariate {self.score:.2f}): " + ", ".join(parts)


@dataclass(frozen=True, slots=True)
class ModelFit:
    """A fitted model and its calibration: what a refit from the same rows rebuilds exactly."""

    model: Any  # a fitted IsolationForest or MinCovDet
    kind: str
    ref_median: float
    ref_spread: float
    median: Any  # numpy arrays: the training features' median and robust scale
    mad: Any


def trailing_features(rows: Sequence[Sequence[float]]) -> list[float]:
    """The last row's values followed by the mean of ``rows`` per series (the trailing window)."""
    k = len(rows)
    means = [sum(r[j] for r in rows) / k for j in range(len(rows[-1]))]
    return [*rows[-1], *means]


class ResidualModel:
    """A scikit-learn model over aligned vectors of related series' robust residuals (causal, no I/O).

    ``model``: ``covariance`` (default) - the robust Mahalanobis distance of a Minimum Covariance
    Determinant fit (``sklearn.covariance.MinCovDet``): it knows how the series move *together*, so
    latency and errors up while throughput drops is far from normal even when each moves under two or
    three sigmas; ``iforest`` - an ``IsolationForest`` (no shape assumed, but it splits one axis at a
    time and sees broken correlations poorly; bench/anomaly_eval.py compares both).

    Each vector holds, per series, its robust z against its own seasonal baseline (so daily cycles and
    calendar peaks are already taken out, and every axis is in the same unit); its features are the vector
    and its trailing mean over ``window`` vectors. The forest is fitted on the last ``train_size`` vectors
    every ``refit_every`` vectors once ``min_train`` are known, and scores a vector only with a model fitted
    before it. State: the clipped, rounded vectors (the bounded history); a restore refits the very same
    model (fixed seed) from them, or takes it from ``fits``, a cache keyed by a digest of the training
    rows, so nothing is pickled.
    """

    name = "multivariate"

    def __init__(
        self,
        series: Sequence[str],
        *,
        window: int = 5,
        train_size: int = 1440,
        refit_every: int = 288,
        min_train: int = 288,
        n_estimators: int = 100,
        seed: int = 0,
        threshold: float = 1.0,
        model: str = "covariance",
    ) -> None:
        if model not in MODELS:
            raise ValueError(f"unknown multivariate model {model!r}; choose one of {', '.join(MODELS)}")
        self.model = model
        if len(series) < 2:
            raise ValueError("a multivariate model needs at least two series")
        if window < 1 or min_train < 16 or train_size < min_train or refit_every < 1:
            raise ValueError("needs window >= 1, refit_every >= 1 and 16 <= min_train <= train_size")
        self.series = tuple(series)
        self.window, self.train_size, self.refit_every = window, train_size, refit_every
        self.min_train, self.n_estimators, self.seed, self.threshold = (
            min_train,
            n_estimators,
            seed,
            threshold,
        )
        self.history: deque[tuple[float, ...]] = deque(maxlen=train_size + refit_every + window)
        self.n = 0
        self.fitted_at: int | None = None
        self.fit: ModelFit | None = None
        self.fits: dict[str, ModelFit] | None = None
        """An optional cache of fitted models shared by the caller (same rows, same model)."""

    def _row(self, values: Sequence[float]) -> tuple[float, ...]:
        if len(values) != len(self.series):
            raise ValueError(
                f"expected {len(self.series)} values ({', '.join(self.series)}), got {len(values)}"
            )
        return tuple(round(min(max(float(v), -Z_CLIP), Z_CLIP), 3) for v in values)

    def _latest_features(self) -> list[float]:
        n = len(self.history)
        tail = list(itertools.islice(reversed(self.history), min(self.window, n)))
        return trailing_features(tail[::-1])

    def _due(self) -> bool:
        if self.n < self.min_train:
            return False
        return self.fitted_at is None or self.n - self.fitted_at >= self.refit_every

    def _refit(self) -> None:
        rows = list(self.history)
        end = len(rows) - (self.n - (self.fitted_at or 0))
        w = self.window
        train = np.asarray(
            [
                trailing_features(rows[max(0, i - w + 1) : i + 1])
                for i in range(max(0, end - self.train_size), end)
            ],
            dtype=float,
        )
        key = hashlib.sha256(
            repr((self.model, self.series, self.window, self.n_estimators, self.seed, train.shape)).encode()
            + train.tobytes()
        ).hexdigest()
        cached = self.fits.get(key) if self.fits is not None else None
        self.fit = cached or _fit_model(train, self.model, self.n_estimators, self.seed)
        if self.fits is not None and cached is None:
            if len(self.fits) >= 64:  # bounded: the oldest fit goes first (pop: worker threads share it)
                self.fits.pop(next(iter(self.fits)), None)
            self.fits[key] = self.fit

    def _score(self, features: list[list[float]]) -> list[MultivariateScore]:
        fit = self.fit
        if fit is None or not features:
            return [MultivariateScore(0.0, 0.0, fitted=False) for _ in features]
        x = np.asarray(features, dtype=float)
        raw = _raw_scores(fit, x)
        dev = (x - fit.median) / fit.mad
        k = len(self.series)
        out = []
        for r, d, f in zip(raw, dev, features, strict=True):
            stat = max(0.0, (float(r) - fit.ref_median) / fit.ref_spread)
            parts = []
            for j, name in enumerate(self.series):
                pick = j if abs(d[j]) >= abs(d[k + j]) else k + j
                parts.append(Contribution(name, float(d[pick]), f[j]))
            parts.sort(key=lambda c: -abs(c.deviation))
            out.append(MultivariateScore(calibrate(stat, self.threshold), stat, tuple(parts)))
        return out

    def update(self, values: Sequence[float]) -> MultivariateScore:
        """Score one aligned vector with a model fitted before it, then learn from it."""
        self.history.append(self._row(values))
        (score,) = self._score([self._latest_features()])
        self.n += 1
        if self._due():
            self.fitted_at = self.n
            self._refit()
        return score

    def score_many(self, vectors: Iterable[Sequence[float]]) -> list[MultivariateScore]:
        """The same as :meth:`update` on each vector, scored in batches between refits (fast)."""
        out: list[MultivariateScore] = []
        pending: list[list[float]] = []
        for values in vectors:
            self.history.append(self._row(values))
            pending.append(self._latest_features())
            self.n += 1
            if self._due():
                out.extend(self._score(pending))
                pending = []
                self.fitted_at = self.n
                self._refit()
        out.extend(self._score(pending))
        return out

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": self.name,
            "params": {
                "series": list(self.series),
                "window": self.window,
                "train_size": self.train_size,
                "refit_every": self.refit_every,
                "min_train": self.min_train,
                "n_estimators": self.n_estimators,
                "seed": self.seed,
                "threshold": self.threshold,
                "model": self.model,
            },
            "n": self.n,
            "fitted_at": self.fitted_at,
            "history": [list(r) for r in self.history],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], fits: dict[str, ModelFit] | None = None) -> ResidualModel:
        params = dict(state["params"])
        self = cls(params.pop("series"), **params)
        self.fits = fits
        self.history.extend(tuple(float(v) for v in r) for r in state["history"])
        self.n = int(state["n"])
        if state["fitted_at"] is not None:
            self.fitted_at = int(state["fitted_at"])
            self._refit()  # the very rows the saved model was fitted on (or the cached fit of them)
        return self


def _raw_scores(fit: ModelFit, x: Any) -> Any:
    if fit.kind == "iforest":
        return -fit.model.score_samples(x)
    return np.sqrt(fit.model.mahalanobis(x))


def _fit_model(train: Any, kind: str, n_estimators: int, seed: int) -> ModelFit:
    if kind == "iforest":
        from sklearn.ensemble import IsolationForest  # noqa: PLC0415 - slow to import: only on the first fit

        model: Any = IsolationForest(n_estimators=n_estimators, random_state=seed).fit(train)
    else:
        from sklearn.covariance import MinCovDet  # type: ignore[import-untyped]  # noqa: PLC0415 - slow to import; no type hints shipped

        with warnings.catch_warnings():
            # A flat series makes the covariance singular: MinCovDet warns, then uses a pseudo-inverse,
            # which is what we want (that axis simply carries no information).
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            try:
                model = MinCovDet(random_state=seed).fit(train)
            except ValueError:  # every row alike (flat series): the plain covariance, pseudo-inverted
                from sklearn.covariance import EmpiricalCovariance  # noqa: PLC0415 - sklearn is slow to import: only when needed

                model = EmpiricalCovariance().fit(train)
    fit = ModelFit(model, kind, 0.0, 1.0, None, None)
    raw = _raw_scores(fit, train)
    median, high = float(np.median(raw)), float(np.quantile(raw, 0.995))
    centre = np.median(train, axis=0)
    mad = np.maximum(np.median(np.abs(train - centre), axis=0) * MAD_TO_SIGMA, 0.05)
    return ModelFit(model, kind, median, max(high - median, 1e-9), centre, mad)
