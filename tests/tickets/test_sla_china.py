"""SLA clocks of a Shanghai site: business hours in the site's zone, China's public holidays off and its
make-up working days (调休) on, from the `holidays` library.

The library (holidays 0.109) carries the official arrangement for 2026 but not yet 2027 (for 2027 it knows
the lunar holidays by rule and no make-up day), so the Spring Festival test uses the 2026 break: off from
Sunday 15 to Monday 23 February, with Saturday 14 and Saturday 28 February worked in exchange."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from sqlalchemy.orm import Session

from core.holidays import country_days
from tests.tickets.factories import Clock, make_event, make_settings
from tickets.calendar import Calendar
from tickets.service import TicketService
from tickets.settings import BusinessCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
FRIDAY_BEFORE_BREAK = datetime(2026, 2, 13, 14, 0, tzinfo=SHANGHAI)  # Friday 14:00 local, 06:00 UTC


def shanghai_site() -> dict[str, object]:
    return {"site": {"timezone": "Asia/Shanghai"}, "sla": {"calendar": {"country": "CN"}}}


def test_the_library_knows_the_2026_spring_festival_arrangement() -> None:
    off, worked = country_days("CN", 2026)
    assert {date(2026, 2, d) for d in (16, 17, 18, 19, 20, 23)} <= off
    assert {date(2026, 2, 14), date(2026, 2, 28)} <= worked


def test_p3_opened_the_friday_before_the_spring_festival_is_due_counting_the_makeup_saturdays(
    session: Session,
) -> None:
    clock = Clock(FRIDAY_BEFORE_BREAK.astimezone(UTC))
    service = TicketService(session, make_settings(**shanghai_site()), now=clock)
    ticket = service.ingest(make_event(severity="P3")).ticket
    assert ticket is not None and ticket.priority == "P3"
    # Response, 8 business hours: 4 h on Friday (14:00-18:00), then Saturday 14 February is a make-up
    # working day: due 13:00 that Saturday, not Tuesday 24 February after the break.
    assert ticket.sla_response_due_at == datetime(2026, 2, 14, 13, 0, tzinfo=SHANGHAI)
    # Resolution, 90 business hours: Fri 4 + Sat 14th 9 = 13; the break (Sun 15 - Mon 23) counts nothing;
    # Tue 24 - Fri 27: 36 (49); Saturday 28 (make-up): 9 (58); Mon 2 - Wed 4 March: 27 (85); Thu 5: 5 h.
    assert ticket.sla_resolution_due_at == datetime(2026, 3, 5, 14, 0, tzinfo=SHANGHAI)


def test_without_the_country_the_break_and_its_saturdays_are_ordinary_days(session: Session) -> None:
    clock = Clock(FRIDAY_BEFORE_BREAK.astimezone(UTC))
    settings = make_settings(site={"timezone": "Asia/Shanghai"})
    ticket = TicketService(session, settings, now=clock).ingest(make_event(severity="P3")).ticket
    assert ticket is not None
    assert ticket.sla_response_due_at == datetime(2026, 2, 16, 13, 0, tzinfo=SHANGHAI)  # Monday, in the break


def test_business_hours_follow_the_site_zone_unless_the_calendar_names_its_own() -> None:
    monday = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
    site = Calendar.from_settings(BusinessCalendar(), site_zone="Asia/Shanghai")
    assert site.add(monday, 60) == monday.replace(hour=1, minute=1), "09:01 in Shanghai"
    own = Calendar.from_settings(BusinessCalendar(timezone="Europe/Berlin"), site_zone="Asia/Shanghai")
    assert own.add(monday, 60) == monday.replace(hour=8, minute=1), "09:01 in Berlin (CET)"


def test_listed_days_win_over_the_library() -> None:
    # 2027's make-up days are not in the library yet: an operator lists them until it has them.
    sunday_before_break = date(2027, 2, 7)
    holiday = date(2027, 2, 8)  # Spring Festival 2027 (library)
    cal = Calendar.from_settings(
        BusinessCalendar(country="CN", workdays=(sunday_before_break,), holidays=(date(2027, 3, 1),)),
        site_zone="Asia/Shanghai",
    )
    assert cal.is_working_day(sunday_before_break)
    assert not cal.is_working_day(holiday)
    assert not cal.is_working_day(date(2027, 3, 1)), "a listed holiday on a Monday"
    assert cal.is_working_day(date(2027, 3, 2))


def test_taiwan_calendar_from_the_library() -> None:
    cal = Calendar.from_settings(BusinessCalendar(country="tw"), site_zone="Asia/Taipei")
    assert not cal.is_working_day(date(2027, 2, 5)), "Lunar New Year's Eve (observed) in Taiwan"
    assert cal.is_working_day(date(2027, 2, 11))
    assert cal.add(datetime(2027, 2, 4, 9, tzinfo=ZoneInfo("Asia/Taipei")), 3600) == datetime(
        2027, 2, 11, 10, tzinfo=ZoneInfo("Asia/Taipei")
    )


def test_an_unknown_country_or_zone_is_refused_naming_it() -> None:
    with pytest.raises(ValidationError, match="country 'XX' is not known to the holidays library"):
        BusinessCalendar(country="XX")
    with pytest.raises(ValidationError, match="unknown time zone 'Asia/Shanghi'"):
        make_settings(site={"timezone": "Asia/Shanghi"})
