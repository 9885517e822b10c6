"""Typed results every collector yields: metric samples and check results. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

CheckStatus = Literal["pass", "warn", "fail", "error"]


@dataclass(frozen=True, slots=True)
class MetricSample:
    name: str
    value: float
    labels: dict[str, str] = field(default_factory=dict)
    ts: datetime | None = None


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one check against one source.

    ``sample`` holds offending rows (capped), each a plain dict of JSON-safe values; ``entities`` holds the
    key columns of every offending row (uncapped up to the engine's row cap), in order,
    and ``amounts`` the money at risk of each.
    """

    check_id: str
    source: str
    status: CheckStatus
    title: str
    category: str
    severity: str
    started_at: datetime
    finished_at: datetime
    violations: int = 0
    measured_value: float | None = None
    amount_at_risk: Decimal | None = None
    sample: list[dict[str, Any]] = field(default_factory=list)
    entities: list[dict[str, Any]] = field(default_factory=list)
    amounts: list[Decimal | None] = field(default_factory=list)
    """Money at risk per offending row, parallel to ``entities`` (empty when the check has no amount)."""
    error: str | None = None
    runbook: str | None = None
    owner: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def duration_s(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def ok(self) -> bool:
        return self.status == "pass"
