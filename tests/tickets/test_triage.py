"""Priority = matrix[impact][urgency]; impact and urgency from the event or its severity."""

from __future__ import annotations

import pytest

from tests.tickets.factories import make_event
from tickets.settings import TriageSettings
from tickets.triage import Triage, more_urgent, priority_rank, triage


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        ("P1", Triage("high", "high", "P1")),
        ("P2", Triage("high", "medium", "P2")),
        ("P3", Triage("medium", "medium", "P3")),
        ("P4", Triage("low", "medium", "P4")),
    ],
)
def test_severity_gives_impact_and_urgency_when_the_event_does_not(severity: str, expected: Triage) -> None:
    assert triage(make_event(severity=severity), TriageSettings()) == expected


@pytest.mark.parametrize(
    ("impact", "urgency", "priority"),
    [
        ("high", "high", "P1"),
        ("high", "medium", "P2"),
        ("high", "low", "P3"),
        ("medium", "high", "P2"),
        ("medium", "medium", "P3"),
        ("medium", "low", "P4"),
        ("low", "high", "P3"),
        ("low", "medium", "P4"),
        ("low", "low", "P4"),
    ],
)
def test_the_default_matrix_is_the_itil_one(impact: str, urgency: str, priority: str) -> None:
    event = make_event(severity="P4", impact=impact, urgency=urgency)
    assert triage(event, TriageSettings()) == Triage(impact, urgency, priority)  # type: ignore[arg-type]


def test_one_override_keeps_the_other_level_from_the_severity() -> None:
    # close day: a P3 break with a deadline today
    assert triage(make_event(severity="P3", urgency="high"), TriageSettings()) == Triage(
        "medium", "high", "P2"
    )


def test_a_configured_matrix_wins() -> None:
    matrix = TriageSettings().matrix | {"medium": {"high": "P1", "medium": "P1", "low": "P1"}}
    settings = TriageSettings(matrix=matrix)
    assert triage(make_event(severity="P3"), settings).priority == "P1"


def test_priority_ordering() -> None:
    assert [priority_rank(p) for p in ("P1", "P2", "P3", "P4")] == [0, 1, 2, 3]
    assert more_urgent("P1", "P2")
    assert not more_urgent("P2", "P2")
    assert not more_urgent("P4", "P3")
