"""A unit of scheduled work: what `hypercare collect` leases and runs (a check, probe, collector, source
ping volume watch or dual-run comparison), and the error result it stands for when it cannot run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from monitor.collect import Collection
from monitor.results import CheckResult

UnitKind = Literal["check", "volume", "probe", "collector", "source", "dualrun"]


@dataclass(frozen=True)
class WorkUnit:
    key: str
    kind: UnitKind
    source: str
    interval: timedelta
    timeout_s: float
    title: str
    run: Callable[[datetime], Collection] = field(repr=False)
    category: str = "technical"
    severity: str = "P3"
    runbook: str | None = None

    def error_result(self, started: datetime, reason: str) -> CheckResult:
        return CheckResult(
            check_id=self.key.split(":", 1)[1],
            source=self.source,
            status="error",
            title=self.title,
            category=self.category,
            severity=self.severity,
            started_at=started,
            finished_at=datetime.now(UTC),
            error=reason[:500],
            runbook=self.runbook or "collector-error",
        )
