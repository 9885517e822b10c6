"""The domain vocabulary: each enum reads and writes the same text the strings did, and the few places
that must stay ``Literal`` (API subsets, filter groups) stay in step with it."""

from __future__ import annotations

import json
from typing import get_args

import pytest
from pydantic import BaseModel, ValidationError

from anomaly.events import Event
from core.vocabulary import (
    CLOSED_STATUSES,
    OPEN_STATUSES,
    Category,
    Level,
    OutboxStatus,
    Priority,
    TicketStatus,
    parse,
)
from tickets.api.lifecycle_schemas import StatusChange
from tickets.queries import STATUS_FILTERS
from tickets.service import TRANSITIONS
from tickets.settings import NotificationTarget


def test_members_are_their_text_everywhere_text_is_written() -> None:
    assert str(Priority.P1) == "P1" and f"{Category.DATA}" == "data" and format(Level.HIGH) == "high"
    assert json.dumps({"s": TicketStatus.IN_PROGRESS}) == '{"s": "in_progress"}'
    assert {"pending": 1}[OutboxStatus.PENDING] == 1  # hashes as its text: a dict keyed by text finds it
    assert type(str(Priority.P2)) is str


def test_the_sets_and_their_order() -> None:
    assert [p.value for p in Priority] == ["P1", "P2", "P3", "P4"]
    assert [c.value for c in Category] == ["data", "process", "technical", "user"]
    assert [lv.value for lv in Level] == ["high", "medium", "low"]
    assert [s.value for s in OPEN_STATUSES] == ["new", "acknowledged", "in_progress", "waiting", "reopened"]
    assert [s.value for s in CLOSED_STATUSES] == ["resolved", "closed"]
    assert set(OPEN_STATUSES) | set(CLOSED_STATUSES) == set(TicketStatus)
    assert not set(OPEN_STATUSES) & set(CLOSED_STATUSES)
    assert {s.value for s in OutboxStatus} == {"pending", "held", "muted", "digested", "sent", "dead"}


def test_priority_rank_and_step_stop_at_the_ends() -> None:
    assert [p.rank for p in Priority] == [0, 1, 2, 3]
    assert Priority.P2.step(-1) is Priority.P1
    assert Priority.P1.step(-1) is Priority.P1
    assert Priority.P3.step(+1) is Priority.P4
    assert Priority.P4.step(+5) is Priority.P4


def test_parse_gives_the_member_or_none() -> None:
    assert parse(Category, "user") is Category.USER
    assert parse(Category, "User") is None
    assert parse(Priority, "P5") is None


def test_literals_kept_for_the_api_stay_in_step_with_the_enum() -> None:
    assert set(STATUS_FILTERS) == {"open", "closed"} | set(TicketStatus)
    allowed = get_args(StatusChange.model_fields["status"].annotation)
    assert set(allowed) == set(TicketStatus) - {TicketStatus.NEW}
    assert set(TRANSITIONS) == set(TicketStatus)
    assert all(to in TicketStatus.__members__.values() for tos in TRANSITIONS.values() for to in tos)


def test_settings_and_events_accept_and_emit_the_same_strings() -> None:
    target = NotificationTarget.model_validate({"url": "json://localhost", "min_priority": "P1"})
    assert target.min_priority is Priority.P1
    assert target.model_dump(mode="json")["min_priority"] == "P1"
    event = Event(fingerprint="fp", severity="P2", category="data", summary="s", source="erp", impact="low")  # type: ignore[arg-type]
    dumped = json.loads(event.model_dump_json())
    assert (dumped["severity"], dumped["category"], dumped["impact"]) == ("P2", "data", "low")
    with pytest.raises(ValidationError, match="Input should be 'P1', 'P2', 'P3' or 'P4'"):
        Event(fingerprint="fp", severity="P0", category="data", summary="s", source="erp")  # type: ignore[arg-type]


def test_an_enum_field_reads_text_from_json() -> None:
    class Body(BaseModel):
        status: TicketStatus

    assert Body.model_validate_json('{"status": "waiting"}').status is TicketStatus.WAITING
