"""Typed results every collector yields: metric samples and check results. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

CheckStatus = Literal["pass", "warn", "fail", "error"]
Bucket = Literal["day", "hour"]
BUCKET_LENGTH: dict[str, timedelta] = {"day": timedelta(days=1), "hour": timedelta(hours=1)}


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


@dataclass(frozen=True, slots=True)
class VolumeSeries:
    """One series of a business-volume watch: a (key, measure) of the watch and its complete buckets.

    ``points`` are (bucket start, value), oldest first, in the watch's local time (naive), complete
    buckets only; a bucket the query did not return is not there (the detectors read it as 0 between the
    series' first bucket and ``complete_until``). How a bucket is judged (``spike_ratio``, ``drop_ratio``,
    ``min_change``) is the watch's; the detectors decide, monitor/ only measures.
    """

    watch_id: str
    source: str
    title: str
    measure: str
    key: dict[str, str]
    bucket: Bucket
    points: tuple[tuple[datetime, float], ...]
    complete_until: datetime
    """Start of the first bucket that is not complete yet (local, naive): every bucket before it is."""
    timezone: str
    """IANA name of the watch's local time (its buckets' clock)."""
    category: str
    severity: str
    runbook: str | None = None
    owner: str | None = None
    tags: tuple[str, ...] = ()
    spike_ratio: float = 3.0
    drop_ratio: float = 3.0
    min_change: float = 5.0
