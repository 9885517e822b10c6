"""Request and response bodies of the lifecycle routes (tickets/api/lifecycle.py)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from core.vocabulary import Priority
from tickets import silences
from tickets.api.schemas import IsoDateTime
from tickets.lifecycle import LinkKind

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StatusChange(_Body):
    status: Literal["acknowledged", "in_progress", "waiting", "resolved", "closed", "reopened"]
    """Every :class:`~core.vocabulary.TicketStatus` but ``new``, which no ticket goes back to (a Literal, so
    the API documents the subset; tests/core/test_vocabulary.py keeps it in step with the enum)."""
    reason: Text | None = Field(None, description="Required to resolve, close or reopen.")
    waiting_reason: Literal["vendor", "reporter", "other_team"] | None = Field(
        None, description="Required when the status is waiting."
    )


class PriorityChange(_Body):
    priority: Priority
    reason: Text


class Assignment(_Body):
    assignee: Name | None = Field(description="A username; null unassigns.")


class Watcher(_Body):
    username: Name


class LinkRequest(_Body):
    other_id: int = Field(ge=1, le=2**31 - 1)
    kind: LinkKind = "relates"


class LinkPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    ticket_id: int
    other_id: int
    kind: str
    created_by: str
    created_at: datetime


class ClockPublic(BaseModel):
    target_s: float
    used_s: float
    due_at: datetime | None
    state: str


class SlaPublic(BaseModel):
    state: str
    response: ClockPublic
    resolution: ClockPublic
    paused_s: float = Field(description="Wall-clock seconds spent waiting.")
    waiting_reason: str | None
    escalation_level: int


class NotificationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    target: int
    kind: str
    title: str
    status: str = Field(description="pending, held (for the digest), sent, dead, muted or digested.")
    attempts: int
    last_error: str | None
    tags: list[str]
    silence_id: int | None
    digest_id: int | None
    created_at: datetime
    sent_at: datetime | None


class WorkaroundCreate(_Body):
    what: Text
    owner: Name
    review_on: date
    since: IsoDateTime | None = None


class WorkaroundUpdate(_Body):
    what: Text | None = None
    owner: Name | None = None
    review_on: date | None = None
    active: bool | None = Field(None, description="false ends the workaround.")


class WorkaroundPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    ticket_id: int
    what: str
    owner: str
    since: datetime
    review_on: date
    active: bool
    created_by: str
    ended_at: datetime | None
    ended_by: str | None


class RegisterEntry(WorkaroundPublic):
    ticket_title: str
    ticket_priority: str
    ticket_status: str


class RatingCreate(_Body):
    score: int = Field(ge=1, le=5)
    comment: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] = ""
    on_behalf_of: Name | None = Field(None, description="The reporter, when an agent records their rating.")


class RatingPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    score: int
    comment: str
    rated_by: str
    on_behalf_of: str | None
    rated_at: datetime


class SilenceCreate(_Body):
    matchers: silences.SilenceMatchers
    starts_at: IsoDateTime
    ends_at: IsoDateTime
    comment: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] = ""


class SilencePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    comment: str
    matchers: dict[str, Any]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    created_at: datetime
