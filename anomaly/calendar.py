"""The business calendar: which days are business days, close days, payroll runs, holidays, the cutover.

Expected peaks (month-end and year-end close, payroll runs, the cutover weekend) are not anomalies; unusual
quiet on a business day is. The detectors ask :meth:`BusinessCalendar.day_kind`; the severity rules ask
:meth:`BusinessCalendar.in_close_window`. Pure and immutable except for a per-instance memo of day kinds.

The YAML file (``anomaly.calendar_file``)::

    utc_offset_minutes: 480          # local time of the business (Asia/Shanghai: +08:00, no DST)
    weekend: [5, 6]                  # 0 = Monday
    holidays: [2026-10-01, ...]      # public holidays (China: see anomaly/calendars/cn-2026.yaml)
    workdays: [2026-10-10]           # weekend days that are worked (China's adjusted working days)
    close: {before: 1, after: 3}     # month-end close days: last N business days and first M of the next
    quarter_end_close: {before: 2, after: 5}  # the close of Mar/Jun/Sep/Dec (longer than a month's)
    year_end_close: {before: 3, after: 8}
    vat_filing: {day: 15, before: 3}   # VAT return due the 15th (the next business day when that is not one);
                                       # its last 3 business days up to it are close days
    vat_filing_dates: [2026-10-26]     # the tax bureau's published deadlines, when they differ (they win)
    close_days: [2026-11-30]         # further close days
    payroll_days_of_month: [10]      # moved to the business day before when not a business day
    payroll_dates: []
    cutover: {start: 2026-11-20, end: 2026-11-22}
    country: CN                      # public holidays and make-up workdays from the `holidays` library

``country`` (an ISO 3166 code; also ``anomaly.calendar_country``) adds the public holidays the `holidays`
library knows for that country, year by year as days are asked about, and the weekend days it knows are
worked in exchange (China's 调休 make-up working days, ``weekend_workdays``). The dates listed in the file
win over the library: a date under ``holidays`` is a rest day, one under ``workdays`` a working day, even
where the library says otherwise. For a year whose official schedule is not yet published the library
computes the fixed and lunar holidays by rule and knows no make-up days: list them here until it does.
"""

from __future__ import annotations

import calendar as _cal
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml

from core.holidays import UnknownCountry, known_country
from core.holidays import country_days as holidays_of

DayKind = Literal["business", "weekend", "holiday", "close", "payroll", "cutover"]
PEAK_DAYS: frozenset[str] = frozenset({"close", "payroll"})
"""Day kinds on which a peak in volume or load is expected."""
REST_DAYS: frozenset[str] = frozenset({"weekend", "holiday", "cutover"})
"""Day kinds on which quiet is expected (their own time-of-day profile)."""


class CalendarError(ValueError):
    """The calendar file is unreadable or holds a wrong key or value."""


@dataclass(frozen=True)
class BusinessCalendar:
    utc_offset_minutes: int = 0
    weekend: frozenset[int] = frozenset({5, 6})
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    close_before: int = 0
    close_after: int = 0
    year_end_before: int = 0
    year_end_after: int = 0
    quarter_end_before: int = 0
    quarter_end_after: int = 0
    vat_filing_day: int | None = None
    """Day of the month the VAT return is due (China: the 15th), moved to the next business day."""
    vat_filing_before: int = 0
    """Business days up to and including the filing deadline that are close days (a peak is expected)."""
    vat_filing_dates: frozenset[date] = frozenset()
    """Published filing deadlines; a month listed here ignores ``vat_filing_day``."""
    close_days: frozenset[date] = frozenset()
    payroll_days_of_month: tuple[int, ...] = ()
    payroll_dates: frozenset[date] = frozenset()
    cutover: tuple[date, date] | None = None
    country: str | None = None
    """ISO 3166 code whose public holidays and make-up workdays come from the `holidays` library."""
    _memo: dict[date, DayKind] = field(default_factory=dict, compare=False, repr=False)
    _years: dict[int, tuple[frozenset[date], frozenset[date]]] = field(
        default_factory=dict, compare=False, repr=False
    )

    # --- days ---------------------------------------------------------------------------------------

    def local_date(self, ts: datetime | float) -> date:
        """The business's local date of an aware datetime or a Unix timestamp."""
        seconds = ts.timestamp() if isinstance(ts, datetime) else ts
        return datetime.fromtimestamp(seconds + self.utc_offset_minutes * 60, UTC).date()

    def _country_days(self, year: int) -> tuple[frozenset[date], frozenset[date]]:
        """The library's (holidays, make-up workdays) of ``self.country`` in ``year`` (memoised)."""
        found = self._years.get(year)
        if found is None:
            found = country_days(self.country, year) if self.country else (frozenset(), frozenset())
            self._years[year] = found
        return found

    def is_holiday(self, day: date) -> bool:
        """A public holiday: listed in the file, or known to the library and not listed as a workday."""
        if day in self.holidays:
            return True
        return day not in self.workdays and day in self._country_days(day.year)[0]

    def is_makeup_workday(self, day: date) -> bool:
        """A weekend day worked in exchange for a holiday (listed, or China's 调休 from the library)."""
        if day in self.workdays:
            return True
        return day not in self.holidays and day in self._country_days(day.year)[1]

    def is_business_day(self, day: date) -> bool:
        if self.is_holiday(day):
            return False
        return day.weekday() not in self.weekend or self.is_makeup_workday(day)

    def _shift_business(self, day: date, step: int) -> date:
        day += timedelta(days=step)
        while not self.is_business_day(day):
            day += timedelta(days=step)
        return day

    def _month_business_days(self, year: int, month: int) -> list[date]:
        last = _cal.monthrange(year, month)[1]
        days = (date(year, month, d) for d in range(1, last + 1))
        return [d for d in days if self.is_business_day(d)]

    def in_close_window(self, day: date, before: int, after: int) -> bool:
        """True on the last ``before`` business days of a month and the first ``after`` of the next."""
        if day in self.close_days:
            return True
        if not self.is_business_day(day):
            return False
        month_days = self._month_business_days(day.year, day.month)
        return (before > 0 and day in month_days[-before:]) or (after > 0 and day in month_days[:after])

    def _is_payroll(self, day: date) -> bool:
        if day in self.payroll_dates:
            return True
        for dom in self.payroll_days_of_month:
            last = _cal.monthrange(day.year, day.month)[1]
            target = date(day.year, day.month, min(dom, last))
            if not self.is_business_day(target):
                target = self._shift_business(target, -1)
            if target == day:
                return True
        return False

    def _is_year_end(self, day: date) -> bool:
        if day.month == 12:
            days = self._month_business_days(day.year, 12)
            return self.year_end_before > 0 and day in days[-self.year_end_before :]
        if day.month == 1:
            return (
                self.year_end_after > 0
                and day in self._month_business_days(day.year, 1)[: self.year_end_after]
            )
        return False

    def _is_quarter_end(self, day: date) -> bool:
        """In a quarter's close window (the last business days of Mar/Jun/Sep/Dec, the first of the next)."""
        if self.quarter_end_before > 0 and day.month in {3, 6, 9, 12}:
            return day in self._month_business_days(day.year, day.month)[-self.quarter_end_before :]
        if self.quarter_end_after > 0 and day.month in {1, 4, 7, 10}:
            return day in self._month_business_days(day.year, day.month)[: self.quarter_end_after]
        return False

    def vat_deadline(self, year: int, month: int) -> date | None:
        """The VAT filing deadline of a month: a published date, else ``vat_filing_day`` moved to the next
        business day (China postpones a deadline that falls on a rest day or in a holiday break)."""
        listed = [d for d in self.vat_filing_dates if (d.year, d.month) == (year, month)]
        if listed:
            return min(listed)
        if self.vat_filing_day is None:
            return None
        last = _cal.monthrange(year, month)[1]
        deadline = date(year, month, min(self.vat_filing_day, last))
        return deadline if self.is_business_day(deadline) else self._shift_business(deadline, 1)

    def _is_vat_filing(self, day: date) -> bool:
        if self.vat_filing_before <= 0 or not self.is_business_day(day):
            return False
        deadline = self.vat_deadline(day.year, day.month)
        if deadline is None or day > deadline:
            return False
        lead = [d for d in self._month_business_days(day.year, day.month) if d <= deadline]
        return day in lead[-self.vat_filing_before :]

    def day_kind(self, day: date) -> DayKind:
        """What kind of day this is for the detectors (cutover > holiday > weekend > close > payroll)."""
        known = self._memo.get(day)
        if known is not None:
            return known
        kind: DayKind
        if self.cutover is not None and self.cutover[0] <= day <= self.cutover[1]:
            kind = "cutover"
        elif self.is_holiday(day):
            kind = "holiday"
        elif not self.is_business_day(day):
            kind = "weekend"
        elif (
            self.in_close_window(day, self.close_before, self.close_after)
            or self._is_year_end(day)
            or self._is_quarter_end(day)
            or self._is_vat_filing(day)
        ):
            kind = "close"
        elif self._is_payroll(day):
            kind = "payroll"
        else:
            kind = "business"
        self._memo[day] = kind
        return kind


def country_days(country: str, year: int) -> tuple[frozenset[date], frozenset[date]]:
    """Public holidays and make-up workdays (weekend days worked, China's 调休) of ``country`` in ``year``,
    from the `holidays` library (core/holidays.py); a country it does not know is a :class:`CalendarError`."""
    try:
        return holidays_of(country, year)
    except UnknownCountry as exc:
        raise CalendarError(str(exc)) from None


def check_country(country: str) -> str:
    """``country`` upper-cased when the `holidays` library knows it; else :class:`CalendarError`."""
    try:
        return known_country(country)
    except UnknownCountry as exc:
        raise CalendarError(str(exc)) from None


# --- loading ------------------------------------------------------------------------------------------

_KEYS = {
    "utc_offset_minutes",
    "weekend",
    "holidays",
    "workdays",
    "close",
    "year_end_close",
    "quarter_end_close",
    "vat_filing",
    "vat_filing_dates",
    "close_days",
    "payroll_days_of_month",
    "payroll_dates",
    "cutover",
    "country",
}


def _dates(data: Mapping[str, Any], key: str) -> frozenset[date]:
    values = data.get(key) or []
    if not isinstance(values, list):
        raise CalendarError(f"'{key}' must be a list of dates (YYYY-MM-DD)")
    out = set()
    for value in values:
        if isinstance(value, date):
            out.add(value)
            continue
        try:
            out.add(date.fromisoformat(str(value)))
        except ValueError:
            raise CalendarError(f"'{key}': {value!r} is not a date (YYYY-MM-DD)") from None
    return frozenset(out)


def _window(data: Mapping[str, Any], key: str) -> tuple[int, int]:
    value = data.get(key) or {}
    if not isinstance(value, dict) or set(value) - {"before", "after"}:
        raise CalendarError(f"'{key}' must be a mapping with 'before' and 'after' business days")
    try:
        before, after = int(value.get("before", 0)), int(value.get("after", 0))
    except (TypeError, ValueError):
        raise CalendarError(f"'{key}': before/after must be whole numbers of business days") from None
    if not (0 <= before <= 15 and 0 <= after <= 15):
        raise CalendarError(f"'{key}': before/after must be between 0 and 15 business days")
    return before, after


def _vat_filing(data: Mapping[str, Any]) -> tuple[int | None, int]:
    value = data.get("vat_filing")
    if value is None:
        return None, 0
    if not isinstance(value, dict) or set(value) - {"day", "before"} or "day" not in value:
        raise CalendarError(
            "'vat_filing' must be a mapping with 'day' (of the month) and 'before' business days"
        )
    day, before = value["day"], value.get("before", 0)
    if not isinstance(day, int) or not 1 <= day <= 31:
        raise CalendarError(f"'vat_filing': day must be a day of the month from 1 to 31 (got {day!r})")
    if not isinstance(before, int) or not 0 <= before <= 15:
        raise CalendarError(f"'vat_filing': before must be 0 to 15 business days (got {before!r})")
    return day, before


def _ints(data: Mapping[str, Any], key: str, low: int, high: int) -> tuple[int, ...]:
    values = data.get(key) or []
    if not isinstance(values, list) or not all(isinstance(v, int) and low <= v <= high for v in values):
        raise CalendarError(f"'{key}' must be a list of whole numbers from {low} to {high}")
    return tuple(values)


def calendar_from_mapping(data: Mapping[str, Any]) -> BusinessCalendar:
    """Build a calendar from parsed YAML; :class:`CalendarError` names the wrong key."""
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise CalendarError(f"unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(_KEYS))}")
    offset = data.get("utc_offset_minutes", 0)
    if not isinstance(offset, int) or not -14 * 60 <= offset <= 14 * 60:
        raise CalendarError("'utc_offset_minutes' must be whole minutes between -840 and 840")
    cutover = None
    if data.get("cutover") is not None:
        raw = data["cutover"]
        if not isinstance(raw, dict) or set(raw) != {"start", "end"}:
            raise CalendarError("'cutover' must be a mapping with 'start' and 'end' dates")
        start, end = sorted(_dates({"cutover": [raw["start"], raw["end"]]}, "cutover"))
        cutover = (start, end)
    close = _window(data, "close")
    year_end = _window(data, "year_end_close")
    quarter_end = _window(data, "quarter_end_close")
    vat_day, vat_before = _vat_filing(data)
    country = data.get("country")
    if country is not None and not isinstance(country, str):
        raise CalendarError("'country' must be an ISO 3166 country code such as CN")
    return BusinessCalendar(
        utc_offset_minutes=offset,
        weekend=frozenset(_ints(data, "weekend", 0, 6)) if "weekend" in data else frozenset({5, 6}),
        holidays=_dates(data, "holidays"),
        workdays=_dates(data, "workdays"),
        close_before=close[0],
        close_after=close[1],
        year_end_before=year_end[0],
        year_end_after=year_end[1],
        quarter_end_before=quarter_end[0],
        quarter_end_after=quarter_end[1],
        vat_filing_day=vat_day,
        vat_filing_before=vat_before,
        vat_filing_dates=_dates(data, "vat_filing_dates"),
        close_days=_dates(data, "close_days"),
        payroll_days_of_month=_ints(data, "payroll_days_of_month", 1, 31),
        payroll_dates=_dates(data, "payroll_dates"),
        cutover=cutover,
        country=check_country(country) if country else None,
    )


def load_calendar(path: Path) -> BusinessCalendar:
    """Read a calendar YAML file; every problem is one :class:`CalendarError` naming the file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CalendarError(f"{path}: cannot read the calendar ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise CalendarError(f"{path}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CalendarError(f"{path}: expected a mapping at the top level")
    try:
        return calendar_from_mapping(data)
    except CalendarError as exc:
        raise CalendarError(f"{path}: {exc}") from None
