"""Business time: how many seconds of a calendar's working hours lie between two instants, and which
instant is N working seconds after another.

A calendar is weekdays between a start and an end time in one time zone, minus holidays (local dates), plus
make-up working days. With a country, its public holidays and make-up working days (China's 调休: the
Saturday worked before or after the Spring Festival break) come from the `holidays` library
(core/holidays.py), year by year as the clock reaches them; the dates the settings list win over it.
Daylight-saving changes are handled by building each day's window in local time and converting it to UTC.
``always=True`` makes a 24x7 calendar (the P1 clock during hypercare), where business time is wall time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from core.holidays import country_days
from tickets.settings import BusinessCalendar

MAX_DAYS = 3660
"""How far ahead :meth:`Calendar.add` searches before giving up (ten years of holidays would be odd)."""


def _parse(hhmm: str) -> tuple[int, int]:
    hours, minutes = hhmm.split(":")
    return int(hours), int(minutes)


@dataclass(frozen=True, slots=True)
class Calendar:
    zone: ZoneInfo
    days: frozenset[int]
    start: tuple[int, int]
    end: tuple[int, int]
    holidays: frozenset[date]
    always: bool = False
    workdays: frozenset[date] = frozenset()
    country: str | None = None
    _windows: dict[date, tuple[datetime, datetime] | None] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )
    """Each day's working hours once computed (a pass over the open queue asks for the same days
    thousands of times)."""

    @classmethod
    def from_settings(
        cls, settings: BusinessCalendar, *, always: bool = False, site_zone: str = "UTC"
    ) -> Calendar:
        """The calendar of these settings (in ``site_zone`` unless they name their own zone): one instance
        per distinct settings (it keeps its days)."""
        return _calendar_of(settings, always, settings.timezone or site_zone)

    @classmethod
    def _build(cls, settings: BusinessCalendar, always: bool, zone: str) -> Calendar:
        return cls(
            zone=ZoneInfo(zone),
            days=frozenset(settings.days),
            start=_parse(settings.start),
            end=_parse(settings.end),
            holidays=frozenset(settings.holidays),
            always=always,
            workdays=frozenset(settings.workdays),
            country=settings.country,
        )

    def is_working_day(self, day: date) -> bool:
        """A listed holiday is off; a listed or the country's make-up day is on; then the country's
        holidays are off and the weekdays of ``days`` on."""
        if day in self.holidays:
            return False
        country_off, country_on = country_days(self.country, day.year) if self.country else _NONE
        if day in self.workdays or day in country_on:
            return True
        return day not in country_off and day.weekday() in self.days

    def _window(self, day: date) -> tuple[datetime, datetime] | None:
        """The UTC bounds of ``day``'s working hours, or None on a day off."""
        try:
            return self._windows[day]
        except KeyError:
            window = self._compute_window(day)
            if len(self._windows) < MAX_DAYS * 4:
                self._windows[day] = window
            return window

    def _compute_window(self, day: date) -> tuple[datetime, datetime] | None:
        if not self.is_working_day(day):
            return None
        start = datetime.combine(day, time(*self.start), self.zone)
        if self.end == (24, 0):
            end = datetime.combine(day + timedelta(days=1), time(0, 0), self.zone)
        else:
            end = datetime.combine(day, time(*self.end), self.zone)
        return start.astimezone(UTC), end.astimezone(UTC)

    def _windows_from(self, at: datetime) -> Iterator[tuple[datetime, datetime]]:
        day = at.astimezone(self.zone).date()
        for offset in range(MAX_DAYS):
            window = self._window(day + timedelta(days=offset))
            if window is not None:
                yield window

    def seconds_between(self, start: datetime, end: datetime) -> float:
        """Working seconds in ``[start, end)``; 0 when ``end`` is not after ``start``."""
        if end <= start:
            return 0.0
        if self.always:
            return (end - start).total_seconds()
        total = 0.0
        for open_at, close_at in self._windows_from(start):
            if open_at >= end:
                break
            lo, hi = max(open_at, start), min(close_at, end)
            if hi > lo:
                total += (hi - lo).total_seconds()
        return total

    def add(self, start: datetime, seconds: float) -> datetime:
        """The instant ``seconds`` working seconds after ``start`` (``start`` itself for 0 or less)."""
        if seconds <= 0:
            return start
        if self.always:
            return start + timedelta(seconds=seconds)
        remaining = seconds
        for open_at, close_at in self._windows_from(start):
            lo = max(open_at, start)
            if close_at <= lo:
                continue
            available = (close_at - lo).total_seconds()
            if remaining <= available:
                return lo + timedelta(seconds=remaining)
            remaining -= available
        raise ValueError(f"no working hours within {MAX_DAYS} days of {start.isoformat()} (sla.calendar)")


_NONE: tuple[frozenset[date], frozenset[date]] = (frozenset(), frozenset())


@lru_cache(maxsize=64)
def _calendar_of(settings: BusinessCalendar, always: bool, zone: str) -> Calendar:
    return Calendar._build(settings, always, zone)
