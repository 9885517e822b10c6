"""The anomaly business calendar of a mainland-China site: the library's holidays and make-up working days
(调休), quarter-end close and VAT filing deadlines as close days (a peak there is expected)."""

from __future__ import annotations

from datetime import date

import pytest

from anomaly.calendar import CalendarError, calendar_from_mapping


def test_china_makeup_saturday_is_a_business_day_and_the_break_is_holiday() -> None:
    cal = calendar_from_mapping({"country": "CN"})
    assert cal.day_kind(date(2026, 2, 14)) == "business", "Saturday worked before the Spring Festival"
    assert cal.day_kind(date(2026, 2, 17)) == "holiday"
    assert cal.day_kind(date(2026, 2, 21)) in {"holiday", "weekend"}
    assert cal.day_kind(date(2026, 2, 28)) == "business", "Saturday worked after it"


def test_vat_deadline_moves_past_the_break_and_its_lead_days_are_close_days() -> None:
    cal = calendar_from_mapping({"country": "CN", "vat_filing": {"day": 15, "before": 3}})
    # 15 February 2026 is a Sunday inside the Spring Festival break: the deadline is the next business day.
    assert cal.vat_deadline(2026, 2) == date(2026, 2, 24)
    # The last three business days up to it: Fri 13, the make-up Saturday 14, Tue 24.
    assert [cal.day_kind(date(2026, 2, d)) for d in (12, 13, 14, 24, 25)] == [
        "business",
        "close",
        "close",
        "close",
        "business",
    ]
    assert cal.vat_deadline(2026, 3) == date(2026, 3, 16), "Sunday 15 March -> Monday"


def test_published_filing_dates_win_over_the_rule() -> None:
    cal = calendar_from_mapping(
        {"country": "CN", "vat_filing": {"day": 15, "before": 1}, "vat_filing_dates": ["2026-10-26"]}
    )
    assert cal.vat_deadline(2026, 10) == date(2026, 10, 26)
    assert cal.day_kind(date(2026, 10, 26)) == "close"
    assert cal.day_kind(date(2026, 10, 15)) == "business"


def test_quarter_end_close_is_longer_than_a_months() -> None:
    cal = calendar_from_mapping({"close": {"before": 1}, "quarter_end_close": {"before": 3, "after": 2}})
    assert [cal.day_kind(date(2026, 6, d)) for d in (25, 26, 29, 30)] == [
        "business",
        "close",
        "close",
        "close",
    ]
    assert cal.day_kind(date(2026, 5, 28)) == "business" and cal.day_kind(date(2026, 5, 29)) == "close"
    assert [cal.day_kind(date(2026, 7, d)) for d in (1, 2, 3)] == ["close", "close", "business"]


def test_bad_filing_settings_name_the_key() -> None:
    with pytest.raises(CalendarError, match="'vat_filing': day must be a day of the month"):
        calendar_from_mapping({"vat_filing": {"day": 40}})
    with pytest.raises(CalendarError, match="'vat_filing' must be a mapping"):
        calendar_from_mapping({"vat_filing": 15})
