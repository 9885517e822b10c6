from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from anomaly.calendar import BusinessCalendar, CalendarError, calendar_from_mapping, load_calendar
from anomaly.events import fingerprint
from anomaly.rules import events_for_result
from anomaly.settings import AnomalySettings
from anomaly.severity import Exposure, SeverityContext, adjust
from monitor.results import CheckResult

MID_MONTH = datetime(2026, 11, 11, 3, 0, tzinfo=UTC)  # a Wednesday, far from any month end
SETTINGS = AnomalySettings()


def exposure(**kw: object) -> Exposure:
    args: dict[str, object] = {"check_id": "gl.unbalanced", "when": MID_MONTH}
    args.update(kw)
    return Exposure(**args)  # type: ignore[arg-type]


def test_amount_at_or_above_materiality_raises_one_level_with_a_readable_reason() -> None:
    severity, reasons = adjust("P2", exposure(amount=Decimal("1204330")), SETTINGS)
    assert severity == "P1"
    assert reasons == ("raised to P1: amount at risk 1,204,330.00 CNY >= materiality 500,000",)
    assert adjust("P2", exposure(amount=Decimal("499999.99")), SETTINGS) == ("P2", ())


def test_raises_are_cumulative_and_stop_at_p1() -> None:
    many = exposure(amount=Decimal("600000"), affected=80, tags=("bank", "B5"))
    severity, reasons = adjust("P3", many, SETTINGS)
    assert severity == "P1"
    assert reasons[0].startswith("raised to P2: amount at risk 600,000.00 CNY")
    assert reasons[1] == "raised to P1: 80 documents/customers affected >= 50"
    assert reasons[2] == "stays P1 (already most urgent): an external party is affected (bank)"


def test_workaround_lowers_only_below_materiality() -> None:
    settings = AnomalySettings(workarounds=("gl.unbalanced",))
    severity, reasons = adjust("P2", exposure(amount=Decimal("10")), settings)
    assert severity == "P3"
    assert reasons == (
        "lowered to P3: documented workaround exists and amount at risk 10.00 CNY < materiality 500,000",
    )
    assert adjust("P2", exposure(amount=Decimal("500000")), settings)[0] == "P1"


def test_close_window_raises_on_the_last_and_first_business_days_only() -> None:
    calendar = BusinessCalendar()
    context = SeverityContext(calendar=calendar)
    month_end = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # Monday, last business day of November
    severity, reasons = adjust("P3", exposure(when=month_end), SETTINGS, context)
    assert severity == "P2"
    assert reasons == ("raised to P2: 2026-11-30 is inside the period-close window (-3/+5 business days)",)
    assert adjust("P3", exposure(when=MID_MONTH), SETTINGS, context) == ("P3", ())
    assert adjust("P3", exposure(when=month_end), SETTINGS) == ("P3", ())  # no calendar, no window


def test_rules_change_severity_but_never_the_fingerprint() -> None:
    result = CheckResult(
        check_id="sales.duplicate_fapiao_numbers",
        source="erp",
        status="fail",
        title="Duplicate fapiao",
        category="data",
        severity="P3",
        started_at=MID_MONTH,
        finished_at=MID_MONTH,
        violations=1,
        entities=[{"fapiao": "F-1"}],
        amounts=[Decimal("900000.00")],
        tags=("tax",),
    )
    plain = events_for_result(result, group_threshold=5)
    (ruled,) = events_for_result(result, group_threshold=5, settings=SETTINGS)
    assert plain[0].severity == "P3" and ruled.severity == "P1"
    assert (
        ruled.fingerprint
        == plain[0].fingerprint
        == fingerprint("sales.duplicate_fapiao_numbers", "erp", entity={"fapiao": "F-1"})
    )
    assert ruled.severity_reasons == (
        "P3 as declared by check sales.duplicate_fapiao_numbers",
        "raised to P2: amount at risk 900,000.00 CNY >= materiality 500,000",
        "raised to P1: an external party is affected (tax)",
    )


def test_default_settings_keep_small_single_document_faults_at_their_declared_priority() -> None:
    # The demo's faults are single documents below 100,000 CNY on internal checks: no rule applies.
    for declared in ("P1", "P2", "P3"):
        assert adjust(declared, exposure(amount=Decimal("90000"), tags=("ledger",)), SETTINGS) == (
            declared,
            (),
        )


def test_the_shipped_chinese_calendar_knows_holidays_adjusted_workdays_and_close_days() -> None:
    path = Path(__file__).parents[2] / "anomaly" / "calendars" / "cn-2026.yaml"
    cal = load_calendar(path)
    assert cal.day_kind(date(2026, 10, 1)) == "holiday"
    assert cal.day_kind(date(2026, 10, 10)) != "weekend"  # Saturday worked in exchange for National Day
    assert cal.day_kind(date(2026, 11, 30)) == "close"  # last business day of November
    assert cal.day_kind(date(2026, 12, 2)) == "close"  # second business day of December
    assert cal.day_kind(date(2026, 11, 10)) == "payroll"
    assert cal.day_kind(date(2026, 11, 11)) == "business"
    assert cal.day_kind(date(2026, 11, 14)) == "weekend"
    assert cal.local_date(datetime(2026, 11, 10, 17, 0, tzinfo=UTC)) == date(2026, 11, 11)  # UTC+8


def test_payroll_on_a_weekend_moves_to_the_business_day_before_and_cutover_wins() -> None:
    cal = calendar_from_mapping(
        {"payroll_days_of_month": [10], "cutover": {"start": "2026-10-09", "end": "2026-10-11"}}
    )
    assert cal.day_kind(date(2026, 1, 9)) == "payroll"  # 10 Jan 2026 is a Saturday
    assert cal.day_kind(date(2026, 10, 9)) == "cutover"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"holidays": ["2026-13-01"]}, "'holidays': '2026-13-01' is not a date"),
        ({"close": {"before": "x"}}, "'close': before/after must be whole numbers"),
        ({"weekends": [5]}, "unknown key(s) weekends"),
        ({"utc_offset_minutes": 10_000}, "'utc_offset_minutes' must be whole minutes"),
    ],
)
def test_a_wrong_calendar_is_one_clear_error(data: dict[str, object], message: str) -> None:
    with pytest.raises(CalendarError, match=message.replace("(", r"\(").replace(")", r"\)")):
        calendar_from_mapping(data)
