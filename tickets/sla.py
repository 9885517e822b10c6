"""SLA clocks of a ticket: response (to the first acknowledgement) and resolution (to resolved, paused
while waiting).

The resolution clock is kept as *business seconds used* (``sla_elapsed_s``) up to an instant
(``sla_clock_at``; NULL while paused or stopped). Due dates are always derived from what is used, never from
the creation time: ``due = calendar.add(now, target - used)``. So a priority change mid-way keeps both the
time already used and the time spent waiting (osTicket and GLPI recompute from creation and lose it), and a
resumed clock continues where it stopped.

The response clock does not pause: a ticket is acknowledged before it can wait.

Stored columns (``sla_response_due_at``, ``sla_resolution_due_at``, ``sla_state``) are what the queue
filters and sorts on; :func:`evaluate` refreshes ``sla_state`` (the escalation sweep calls it regularly).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from core.vocabulary import CLOSED_STATUSES, Priority
from tickets.calendar import Calendar
from tickets.models import Ticket
from tickets.settings import SlaTarget, TicketsConfig

ClockState = Literal["ok", "at_risk", "breached", "paused", "met"]
_WORST: tuple[ClockState, ...] = ("breached", "at_risk", "paused", "ok", "met")


@dataclass(frozen=True, slots=True)
class Clock:
    target_s: float
    used_s: float
    due_at: datetime | None
    state: ClockState

    @property
    def ratio(self) -> float:
        return self.used_s / self.target_s


@dataclass(frozen=True, slots=True)
class SlaStatus:
    response: Clock
    resolution: Clock

    @property
    def state(self) -> ClockState:
        """The worse of the two clocks (breached > at risk > paused > ok > met)."""
        return min((self.response.state, self.resolution.state), key=_WORST.index)


def calendar_for(settings: TicketsConfig, priority: str) -> Calendar:
    always = priority == Priority.P1 and settings.sla.p1_24x7
    return Calendar.from_settings(settings.sla.calendar, always=always, site_zone=settings.site.timezone)


def target_for(settings: TicketsConfig, priority: str) -> SlaTarget:
    return settings.sla.targets[priority]  # type: ignore[index]  # priority is one of P1..P4


def resolution_used(ticket: Ticket, settings: TicketsConfig, now: datetime) -> float:
    """Business seconds the resolution clock has used by ``now``."""
    used = ticket.sla_elapsed_s or 0.0
    if ticket.sla_clock_at is not None:
        used += calendar_for(settings, ticket.priority).seconds_between(ticket.sla_clock_at, now)
    return used


def _state(used: float, target: float, ratio: float) -> ClockState:
    if used > target:
        return "breached"
    return "at_risk" if used >= ratio * target else "ok"


def evaluate(ticket: Ticket, settings: TicketsConfig, now: datetime) -> SlaStatus:
    """Both clocks as of ``now``; also stores the overall state in ``ticket.sla_state``."""
    target = target_for(settings, ticket.priority)
    cal = calendar_for(settings, ticket.priority)
    ratio = settings.sla.at_risk_ratio
    response_target = target.response_min * 60
    acked = ticket.acknowledged_at
    response_used = cal.seconds_between(ticket.created_at, acked or now)
    response_state: ClockState
    if acked is not None:
        response_state = "met" if response_used <= response_target else "breached"
    else:
        response_state = _state(response_used, response_target, ratio)
    response = Clock(response_target, response_used, ticket.sla_response_due_at, response_state)

    resolution_target = target.resolution_min * 60
    used = resolution_used(ticket, settings, now)
    resolution_state: ClockState
    if ticket.status in CLOSED_STATUSES:
        resolution_state = "met" if used <= resolution_target else "breached"
    elif ticket.sla_clock_at is None:
        resolution_state = "breached" if used > resolution_target else "paused"
    else:
        resolution_state = _state(used, resolution_target, ratio)
    resolution = Clock(resolution_target, used, ticket.sla_resolution_due_at, resolution_state)
    status = SlaStatus(response, resolution)
    if ticket.sla_state != status.state:  # unchanged: not even marked (a pass over the queue flushes nothing)
        ticket.sla_state = status.state
    return status


def _reschedule(ticket: Ticket, settings: TicketsConfig, now: datetime) -> None:
    """Due dates from what each clock has used (the resolution clock must be running or just resumed)."""
    target = target_for(settings, ticket.priority)
    cal = calendar_for(settings, ticket.priority)
    if ticket.acknowledged_at is None:
        ticket.sla_response_due_at = cal.add(ticket.created_at, target.response_min * 60)
    used = resolution_used(ticket, settings, now)
    ticket.sla_elapsed_s = used
    if ticket.sla_clock_at is not None:
        ticket.sla_clock_at = now
    ticket.sla_resolution_due_at = cal.add(now, max(target.resolution_min * 60 - used, 0.0))


def start(ticket: Ticket, settings: TicketsConfig, now: datetime) -> None:
    """A new ticket: both clocks start at ``now``."""
    ticket.sla_elapsed_s = 0.0
    ticket.sla_paused_s = 0.0
    ticket.sla_paused_at = None
    ticket.sla_clock_at = now
    _reschedule(ticket, settings, now)
    evaluate(ticket, settings, now)


def pause(ticket: Ticket, settings: TicketsConfig, now: datetime) -> None:
    """Waiting: the resolution clock stops; what it used is kept."""
    if ticket.sla_clock_at is None:
        return
    ticket.sla_elapsed_s = resolution_used(ticket, settings, now)
    ticket.sla_clock_at = None
    ticket.sla_paused_at = now
    evaluate(ticket, settings, now)


def resume(ticket: Ticket, settings: TicketsConfig, now: datetime) -> None:
    """Back from waiting (or reopened): the clock continues from what it had used."""
    if ticket.sla_paused_at is not None:
        ticket.sla_paused_s = (ticket.sla_paused_s or 0.0) + (now - ticket.sla_paused_at).total_seconds()
        ticket.sla_paused_at = None
    if ticket.sla_clock_at is None:
        ticket.sla_clock_at = now
    _reschedule(ticket, settings, now)
    evaluate(ticket, settings, now)


def stop(ticket: Ticket, settings: TicketsConfig, now: datetime) -> None:
    """Resolved: the clock stops; met or breached is final until a reopen."""
    if ticket.sla_paused_at is not None:
        ticket.sla_paused_s = (ticket.sla_paused_s or 0.0) + (now - ticket.sla_paused_at).total_seconds()
        ticket.sla_paused_at = None
    ticket.sla_elapsed_s = resolution_used(ticket, settings, now)
    ticket.sla_clock_at = None
    evaluate(ticket, settings, now)


def reprioritise(ticket: Ticket, settings: TicketsConfig, now: datetime, old_priority: str) -> None:
    """The priority changed: keep the time used (counted under the old priority's calendar up to now) and
    the time paused; reschedule under the new priority's targets."""
    if ticket.sla_clock_at is not None:
        used_before = ticket.sla_elapsed_s or 0.0
        old_cal = calendar_for(settings, old_priority)
        ticket.sla_elapsed_s = used_before + old_cal.seconds_between(ticket.sla_clock_at, now)
        ticket.sla_clock_at = now
    target = target_for(settings, ticket.priority)
    cal = calendar_for(settings, ticket.priority)
    if ticket.acknowledged_at is None:
        ticket.sla_response_due_at = cal.add(ticket.created_at, target.response_min * 60)
    remaining = max(target.resolution_min * 60 - (ticket.sla_elapsed_s or 0.0), 0.0)
    ticket.sla_resolution_due_at = cal.add(now, remaining)
    evaluate(ticket, settings, now)
