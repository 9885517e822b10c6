"""SLA clocks: business-hours calendars with holidays and time zones, the clock paused while waiting, and
the time used and paused kept across priority changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from tests.tickets.factories import T0, Clock, make_event
from tickets import sla
from tickets.calendar import Calendar
from tickets.lifecycle import Lifecycle
from tickets.service import TicketService
from tickets.settings import BusinessCalendar, SlaSettings

MON = datetime(2026, 11, 23, tzinfo=UTC)  # a Monday


def cal(**overrides: object) -> Calendar:
    return Calendar.from_settings(BusinessCalendar(**overrides))  # type: ignore[arg-type]


def test_business_seconds_count_only_working_hours() -> None:
    c = cal()  # UTC, Mon-Fri 09:00-18:00
    assert c.seconds_between(MON.replace(hour=8), MON.replace(hour=10)) == 3600
    assert c.seconds_between(MON.replace(hour=17), MON.replace(hour=10) + timedelta(days=1)) == 2 * 3600
    friday_5pm = MON.replace(hour=17) + timedelta(days=4)
    assert c.seconds_between(friday_5pm, friday_5pm + timedelta(days=3, hours=-7)) == 2 * 3600  # Mon 10:00
    assert c.seconds_between(MON.replace(hour=12), MON.replace(hour=11)) == 0


def test_adding_business_time_skips_nights_weekends_and_holidays() -> None:
    c = cal(holidays=(date(2026, 11, 30),))
    friday_5pm = MON.replace(hour=17) + timedelta(days=4)
    # 2 working hours from Friday 17:00: 1 h on Friday, Monday 30 Nov is a holiday, 1 h on Tuesday
    assert c.add(friday_5pm, 2 * 3600) == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    assert c.add(MON.replace(hour=6), 60) == MON.replace(hour=9, minute=1), "starts at opening time"
    assert c.add(MON.replace(hour=10), 0) == MON.replace(hour=10)


def test_calendar_in_a_time_zone() -> None:
    c = cal(timezone="Asia/Shanghai")  # 09:00-18:00 Shanghai = 01:00-10:00 UTC
    assert c.seconds_between(MON.replace(hour=0), MON.replace(hour=12)) == 9 * 3600
    assert c.add(MON.replace(hour=9, minute=30), 3600) == MON.replace(hour=1) + timedelta(days=1, minutes=30)


def test_24x7_calendar_counts_wall_time() -> None:
    c = Calendar.from_settings(BusinessCalendar(), always=True)
    saturday = MON + timedelta(days=5)
    assert c.seconds_between(saturday, saturday + timedelta(hours=3)) == 3 * 3600
    assert c.add(saturday, 60) == saturday + timedelta(minutes=1)


def test_bad_calendars_are_refused_with_the_reason() -> None:
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Olympus'"):
        BusinessCalendar(timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="must be before their end"):
        BusinessCalendar(start="18:00", end="09:00")
    with pytest.raises(ValidationError, match="missing P4"):
        SlaSettings(targets={p: {"response_min": 1, "resolution_min": 2} for p in ("P1", "P2", "P3")})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no working hours"):
        Calendar.from_settings(BusinessCalendar(days=(0,))).__class__(
            zone=cal().zone,
            days=frozenset({0}),
            start=(9, 0),
            end=(18, 0),
            holidays=frozenset(),
            always=False,
        ).add(MON, 10**12)


def test_new_ticket_gets_due_dates_from_its_priority(service: TicketService) -> None:
    ticket = service.ingest(make_event()).ticket  # P2 at Monday 09:00: 60 min response, 27 h resolution
    assert ticket is not None
    assert ticket.sla_response_due_at == T0 + timedelta(hours=1)
    assert ticket.sla_resolution_due_at == T0 + timedelta(days=2, hours=9)  # 9 h Mon, Tue, Wed
    assert ticket.sla_state == "ok"


def test_p1_runs_24x7_in_hypercare(service: TicketService) -> None:
    ticket = service.ingest(make_event(p1=True)).ticket
    assert ticket is not None and ticket.priority == "P1"
    assert ticket.sla_response_due_at == T0 + timedelta(minutes=30)
    assert ticket.sla_resolution_due_at == T0 + timedelta(hours=24)


def test_waiting_pauses_the_clock_and_a_priority_change_keeps_used_and_paused_time(
    service: TicketService, clock: Clock
) -> None:
    ticket = service.ingest(make_event(severity="P3")).ticket  # P3: 90 business hours to resolve
    assert ticket is not None
    life = Lifecycle(service)
    life.change_status(ticket.id, "alice", "acknowledged")
    clock.advance(hours=2)  # 11:00: 2 h used
    life.change_status(ticket.id, "alice", "waiting", waiting_reason="vendor")
    assert (ticket.status, ticket.waiting_reason, ticket.sla_state) == ("waiting", "vendor", "paused")
    clock.advance(hours=5)  # 16:00: waiting does not count
    assert sla.resolution_used(ticket, service.settings, clock()) == 2 * 3600
    life.change_priority(ticket.id, "alice", "P2", "finance close tomorrow")
    assert ticket.sla_elapsed_s == 2 * 3600, "the time used is kept, not restarted"
    clock.advance(hours=1)  # 17:00
    life.change_status(ticket.id, "alice", "in_progress")
    assert ticket.sla_paused_s == 6 * 3600, "paused time survives the priority change"
    # P2 resolution 27 business hours, 2 used: 25 left from Monday 17:00 -> 1 h Mon, 9 Tue, 9 Wed, 6 Thu
    assert ticket.sla_resolution_due_at == T0 + timedelta(days=3, hours=6)
    status = sla.evaluate(ticket, service.settings, clock())
    assert (status.resolution.used_s, status.resolution.state) == (2 * 3600, "ok")


def test_at_risk_then_breached_then_met_or_breached_on_resolution(
    service: TicketService, clock: Clock
) -> None:
    ticket = service.ingest(make_event()).ticket  # P2: response 60 business minutes
    assert ticket is not None
    clock.advance(minutes=44)
    assert sla.evaluate(ticket, service.settings, clock()).response.state == "ok"
    clock.advance(minutes=1)  # 75 %
    assert sla.evaluate(ticket, service.settings, clock()).state == "at_risk"
    assert ticket.sla_state == "at_risk", "the stored state follows, so the queue can filter on it"
    clock.advance(minutes=15)
    assert sla.evaluate(ticket, service.settings, clock()).state == "at_risk", "due at exactly 60 min"
    clock.advance(minutes=1)
    assert sla.evaluate(ticket, service.settings, clock()).state == "breached"
    service.acknowledge(ticket.id, "alice")
    assert sla.evaluate(ticket, service.settings, clock()).response.state == "breached"
    service.resolve(ticket.id, "alice", "fixed")
    status = sla.evaluate(ticket, service.settings, clock())
    assert (status.resolution.state, status.response.state, ticket.sla_clock_at) == ("met", "breached", None)
