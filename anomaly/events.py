"""The event: anomaly/'s output and tickets/' input. What an exception is about, how bad, and the evidence."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.vocabulary import Category, Level, Priority

Action = Literal["trigger", "acknowledge", "resolve"]


def fingerprint(*parts: str, entity: dict[str, Any] | None = None) -> str:
    """A stable identity for an exception: what it is about (check, source, entity), never when.

    The same inputs give the same fingerprint on every run, machine and restart; key order in ``entity``
    does not matter.
    """
    payload = json.dumps(
        [list(parts), sorted((str(k), str(v)) for k, v in (entity or {}).items())],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


class Event(BaseModel):
    """A business exception (or its recovery) raised by a detector, an external alert or a person."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fingerprint: str = Field(min_length=1, max_length=128, description="Dedup key: what this is about.")
    action: Action = "trigger"
    severity: Priority = Field(description="The producer's view of how bad it is (P1 most urgent).")
    category: Category
    summary: str = Field(min_length=1, max_length=300)
    source: str = Field(min_length=1, max_length=64, description="The monitored system it concerns.")
    check_id: str | None = Field(None, max_length=128)
    producer: str = Field("monitor", max_length=32)
    impact: Level | None = Field(None, description="Overrides the impact derived from severity.")
    urgency: Level | None = Field(None, description="Overrides the urgency derived from severity.")
    labels: dict[str, str] = Field(default_factory=dict)
    entity: dict[str, Any] = Field(default_factory=dict, description="Keys of the offending entity.")
    evidence: dict[str, Any] = Field(default_factory=dict, description="Sample rows, measured values.")
    amount_at_risk: Decimal | None = Field(None, ge=0, max_digits=20, decimal_places=2)
    runbook: str | None = Field(None, max_length=128)
    severity_reasons: tuple[str, ...] = ()
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must carry a time zone (UTC recommended)")
        return value.astimezone(UTC)
