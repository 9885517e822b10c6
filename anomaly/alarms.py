"""Alarm post-processing: scores become at most one trigger and one resolve event per incident.

An alarm starts when the score stays at or above ``on`` for ``min_duration`` consecutive points (or reaches
``instant`` once); while it is active, further high scores raise nothing (repeat suppression); it resolves
only after ``clear_points`` consecutive points below ``off`` (hysteresis: ``off`` < ``on``), so a flapping
series is one incident, not many. Events carry the fingerprint ``fingerprint("metric", series, source)``.
No I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from anomaly.ensemble import Score
from anomaly.events import Event, fingerprint
from core.vocabulary import Category, Priority


class AlarmProcessor:
    def __init__(
        self,
        series: str,
        source: str,
        *,
        on: float = 0.5,
        off: float = 0.3,
        instant: float = 0.9,
        min_duration: int = 3,
        clear_points: int = 3,
        severity: Priority = Priority.P2,
        category: Category = Category.TECHNICAL,
    ) -> None:
        if not 0 <= off < on <= instant <= 1:
            raise ValueError("needs 0 <= off < on <= instant <= 1")
        self.series, self.source = series, source
        self.on, self.off, self.instant = on, off, instant
        self.min_duration, self.clear_points = min_duration, clear_points
        self.severity, self.category = severity, category
        self.active = False
        self.high_run = 0
        self.low_run = 0
        self.peak = 0.0

    @property
    def fingerprint(self) -> str:
        return fingerprint("metric", self.series, self.source)

    def update(self, at: datetime, score: Score) -> Event | None:
        """Feed one scored point; return the event it starts or ends, if any."""
        value = score.score
        if not self.active:
            self.high_run = self.high_run + 1 if value >= self.on else 0
            if value >= self.instant or self.high_run >= self.min_duration:
                self.active, self.low_run, self.peak = True, 0, value
                return self._event("trigger", at, score)
            return None
        self.peak = max(self.peak, value)
        self.low_run = self.low_run + 1 if value < self.off else 0
        if self.low_run >= self.clear_points:
            self.active, self.high_run = False, 0
            return self._event("resolve", at, score)
        return None

    def _event(self, action: str, at: datetime, score: Score) -> Event:
        explanation = score.explain(self.series)
        if action == "trigger":
            summary = f"Anomaly on {self.source}: {explanation}"
        else:
            summary = f"Back to normal on {self.source}: {explanation}"
        return Event(
            fingerprint=self.fingerprint,
            action="resolve" if action == "resolve" else "trigger",
            severity=self.severity,
            category=self.category,
            summary=summary[:300],
            source=self.source,
            producer="anomaly",
            labels={"kind": "metric", "series": self.series, "detector": score.detector},
            entity={"series": self.series},
            evidence={
                "score": round(score.score, 4),
                "peak_score": round(self.peak, 4),
                "detector": score.detector,
                "value": score.value,
                "expected": score.expected,
                "sigma": score.sigma,
                "explanation": explanation,
            },
            occurred_at=at,
        )

    def to_state(self) -> dict[str, Any]:
        return {"active": self.active, "high_run": self.high_run, "low_run": self.low_run, "peak": self.peak}

    def restore(self, state: dict[str, Any]) -> AlarmProcessor:
        self.active, self.peak = bool(state["active"]), float(state["peak"])
        self.high_run, self.low_run = int(state["high_run"]), int(state["low_run"])
        return self
