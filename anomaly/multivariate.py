"""A multivariate detector over windows of related series (latency, error rate, throughput, backlog).

Each point becomes a feature row: per series its value, its deviation from the mean of the last ``window``
points and that window's spread. An IsolationForest is fitted on the trailing ``train_size`` rows every
``refit_every`` points, and a point is scored only by a model fitted before it (causal). Scores are
calibrated against the training rows' own scores (0.5 near their upper tail) and explained by the series
whose value is furthest from its training median. The state is the rows: a restore refits the same model
(fixed seed), so nothing is pickled. No I/O.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sklearn.ensemble import IsolationForest  # type: ignore[import-untyped]  # no type hints shipped

from anomaly.detectors import MAD_TO_SIGMA, calibrate


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
        from sklearn.ensemble import IsolationForest  # slow to import: only on the first fit

        train = np.asarray(train_rows, dtype=float)
        model = IsolationForest(n_estimators=self.n_estimators, random_state=self.seed)
        model.fit(train)
        raw = -model.score_samples(train)
        median, high = float(np.median(raw)), float(np.quantile(raw, 0.995))
        self._model, self._ref = model, (median, max(high - median, 1e-9))
        self._median = np.median(train, axis=0)
        self._mad = np.maximum(np.median(np.abs(train - self._median), axis=0) * MAD_TO_SIGMA, 1e-9)
