"""Triage: an event's impact and urgency, and the priority they give through the ITIL matrix.

The producer may state impact and urgency (it knows best, e.g. a close-day deadline); otherwise both are
derived from its severity. The matrix itself is configuration (``triage.matrix``), so a customer can make
a medium-impact, high-urgency break a P1 on close day without touching code.
"""

from __future__ import annotations

from dataclasses import dataclass

from anomaly.events import Event
from core.vocabulary import Level, Priority
from tickets.settings import TriageSettings

SEVERITY_LEVELS: dict[Priority, tuple[Level, Level]] = {
    Priority.P1: (Level.HIGH, Level.HIGH),
    Priority.P2: (Level.HIGH, Level.MEDIUM),
    Priority.P3: (Level.MEDIUM, Level.MEDIUM),
    Priority.P4: (Level.LOW, Level.MEDIUM),
}
"""(impact, urgency) assumed for a severity when the event does not say."""


@dataclass(frozen=True, slots=True)
class Triage:
    impact: Level
    urgency: Level
    priority: Priority


def triage(event: Event, settings: TriageSettings) -> Triage:
    """Impact and urgency from the event when given, else from its severity; priority from the matrix."""
    default_impact, default_urgency = SEVERITY_LEVELS[event.severity]
    impact = event.impact or default_impact
    urgency = event.urgency or default_urgency
    return Triage(impact=impact, urgency=urgency, priority=settings.matrix[impact][urgency])


def priority_rank(priority: str) -> int:
    """0 for P1 (most urgent) to 3 for P4; lower is more urgent."""
    return Priority(priority).rank


def more_urgent(a: str, b: str) -> bool:
    """True when priority ``a`` is strictly more urgent than ``b``."""
    return priority_rank(a) < priority_rank(b)
