"""The API's request and response bodies, kept apart from the tables they are read from."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from tickets.service import Outcome


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
CommentText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10000)]


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
