"""The API's request and response bodies, kept apart from the tables they are read from."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)

from anomaly.events import Event
from tickets.service import Outcome

VISIBLE = "[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u180e\\u2000-\\u200f\\u2028-\\u202f\\u205f-\\u206f\\u3000\\ufeff]"
"""A character that shows: not a control, a space of any width, a zero-width or a direction mark. The same
pattern in Python and in the OpenAPI schema (ECMA-262), so the schema says what the API accepts."""
_VISIBLE = re.compile(VISIBLE)


def visible_text(value: str) -> str:
    """``value`` without surrounding whitespace; refuses text that shows nothing (only whitespace or control
    characters)."""
    if not _VISIBLE.search(value):
        raise ValueError("must contain visible text, not only whitespace or control characters")
    return value.strip()


ISO_8601_AWARE = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:\d{2})")
AWARE_EXAMPLE = "2026-11-23T09:12:40Z or 2026-11-23T17:12:40+08:00"


def iso_8601_aware(value: object) -> object:
    """A time given over HTTP: an ISO-8601 string with a time zone, never a number (0 is not 1970) nor a
    local time. Datetime objects (callers in Python) pass."""
    if isinstance(value, datetime) or (isinstance(value, str) and ISO_8601_AWARE.fullmatch(value)):
        return value
    raise ValueError(f"must be an ISO-8601 date and time string with a time zone, e.g. {AWARE_EXAMPLE}")


IsoDateTime = Annotated[AwareDatetime, BeforeValidator(iso_8601_aware)]
"""A time in a request body: an ISO-8601 string with a time zone (a number is refused, not read as epoch)."""


class EventIn(Event):
    """An event as ``POST /api/v1/events`` takes it: :class:`~anomaly.events.Event`, with ``occurred_at``
    an ISO-8601 string carrying a time zone."""

    occurred_at: datetime = Field(
        default_factory=lambda: datetime.now(UTC),
        description=f"When it happened: ISO-8601 with a time zone ({AWARE_EXAMPLE}); default now.",
    )

    @field_validator("occurred_at", mode="before")
    @classmethod
    def _iso_8601(cls, value: object) -> object:
        return iso_8601_aware(value)


class EventAccepted(BaseModel):
    event_id: int
    ticket_id: int | None = Field(description="The ticket the event landed on; null when it was ignored.")
    outcome: Outcome


class TicketPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    fingerprint: str
    title: str
    description: str
    status: str
    priority: str
    impact: str
    urgency: str
    category: str
    source: str
    check_id: str | None
    queue: str
    runbook_id: str | None
    amount_at_risk: Decimal | None = Field(description="Exact decimal, serialised as a string.")
    entity: dict[str, Any]
    labels: dict[str, str]
    occurrence_count: int
    reopen_count: int
    first_seen_at: datetime
    last_seen_at: datetime
    created_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    assignee_id: int | None
    assigned_to: str | None = Field(None, description="The assignee's username; null when unassigned.")
    sla_response_due_at: datetime | None = Field(None, description="When the first response is due.")
    sla_resolution_due_at: datetime | None = Field(None, description="When the resolution is due.")
    sla_state: str | None = Field(None, description="The SLA clock: ok, at risk, breached, paused, met.")


class Facets(BaseModel):
    by_status: dict[str, int] = Field(description="Tickets per status, under every other filter.")
    by_priority: dict[str, int] = Field(description="Tickets per priority, under every other filter.")


class TicketList(BaseModel):
    items: list[TicketPublic]
    total: int
    limit: int
    offset: int
    facets: Facets


class OccurrencePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    event_id: int | None
    seen_at: datetime
    summary: str
    evidence: dict[str, Any]


class AuditEntryPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    action: str
    detail: dict[str, Any]


class OccurrenceList(BaseModel):
    items: list[OccurrencePublic]
    total: int
    limit: int
    offset: int


class AuditList(BaseModel):
    items: list[AuditEntryPublic]
    total: int
    limit: int
    offset: int


class TicketDetailPublic(TicketPublic):
    occurrences: list[OccurrencePublic] = Field(description="The latest occurrences, newest first.")
    audit: list[AuditEntryPublic] = Field(description="The audit trail, oldest first.")


Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
CommentText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=10000),
    AfterValidator(visible_text),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 10000, "pattern": VISIBLE}),
]


class ResolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason = Field(description="Why the ticket is resolved (kept in the audit trail).")


class CommentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: CommentText


class ErrorInfo(BaseModel):
    code: str = Field(description="A stable, machine-readable code: not_found, conflict, validation_error...")
    message: str = Field(description="What went wrong, for a person.")
    details: Any = Field(None, description="More about it: for a 422 the list of {loc, msg, type}.")


class Problem(BaseModel):
    """The body of every 4xx and 5xx answer of the API."""

    error: ErrorInfo
