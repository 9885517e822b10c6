"""Business volumes through the detectors: a real SQLite ERP table, China's holidays and make-up workdays
from the holidays library, state in the store, each complete bucket fed once."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from anomaly.calendar import BusinessCalendar, calendar_from_mapping
from anomaly.events import Event
from anomaly.settings import AnomalySettings
from anomaly.severity import SeverityContext
from anomaly.state import SeriesState, severity_context
from anomaly.volumes import VolumeWatch, state_metric, volume_fingerprint
from monitor.sources import source_engine
from monitor.volumes import VolumeSpec, parse_volumes, run_volume

WATCH = """
volumes:
  - id: sales.volume.invoices
    title: Invoices per type and day
    source: erp
    sql: |
      SELECT invoice_date AS bucket, kind, COUNT(*) AS count, SUM(amount_total) AS amount
      FROM invoice WHERE invoice_date >= :since_date GROUP BY invoice_date, kind
    bucket: day
    key_columns: [kind]
    measures: [count, amount]
    lookback: 120d
    severity: P2
    runbook: business-volume-invoices
"""
CN = BusinessCalendar(country="CN")
START = date(2025, 7, 1)
SPIKE = date(2025, 10, 15)  # a Wednesday: an integration replays its queue
QUIET = date(2025, 9, 17)  # a Wednesday: the billing interface stopped
MAKEUP = (date(2025, 9, 28), date(2025, 10, 11))  # a Sunday and a Saturday worked for 国庆
NOW = datetime(2025, 10, 20, 10, 0, tzinfo=UTC)  # a Monday
TODAY = NOW.date()


def usual(day: date, rng: random.Random, calendar: BusinessCalendar = CN) -> int:
    if calendar.is_business_day(day):
        return rng.randint(55, 65)
    return 1 if calendar.is_holiday(day) else rng.randint(3, 6)


def erp(path: Path, until: date = TODAY, extra: dict[date, int] | None = None) -> str:
    """A SQLite invoice table: ~60 sales invoices a business day, a few on weekends, one on holidays."""
    rng = random.Random(11)  # noqa: S311 - seeded test data
    counts = {}
    day = START
    while day <= until:
        counts[day] = usual(day, rng)
        day += timedelta(days=1)
    counts[SPIKE] = 20 * 60
    counts[QUIET] = 0
    counts.update(extra or {})
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE invoice (id INTEGER PRIMARY KEY, kind TEXT, invoice_date DATE, amount_total REAL)"
    )
    rows = [(d.isoformat(), "out", 1000.0) for d, n in counts.items() for _ in range(n)]
    db.executemany("INSERT INTO invoice (invoice_date, kind, amount_total) VALUES (?, ?, ?)", rows)
    db.commit()
    db.close()
    return f"sqlite:///{path}"


def spec() -> VolumeSpec:
    return parse_volumes(WATCH, "t.yaml")[0]


def settings(**volumes: object) -> AnomalySettings:
    return AnomalySettings.model_validate({"volumes": {"alert_days": 60, **volumes}})


def watch_once(
    session: Session, url: str, now: datetime = NOW, calendar: BusinessCalendar = CN, **volumes: object
) -> list[Event]:
    run = run_volume(spec(), source_engine(url), now=now)
    assert run.result.status == "pass", run.result.error
    context = SeverityContext(calendar=calendar)
    return VolumeWatch(settings(**volumes), context).observe(session, run.series, now=now)


def test_the_china_calendar_knows_national_day_and_its_make_up_working_days() -> None:
    assert all(CN.day_kind(date(2025, 10, d)) == "holiday" for d in (1, 2, 3, 6, 7, 8))
    assert [CN.is_business_day(d) for d in MAKEUP] == [True, True]  # Sunday and Saturday, worked
    assert CN.day_kind(date(2025, 10, 11)) == "business" and CN.day_kind(date(2025, 10, 12)) == "weekend"
    assert CN.is_holiday(date(2026, 10, 1)) and CN.is_business_day(date(2026, 10, 10))  # a Saturday in 2026
    # the calendar file wins over the library: a listed workday is worked, a listed holiday is not
    mine = calendar_from_mapping({"country": "cn", "workdays": ["2025-10-08"], "holidays": ["2025-10-11"]})
    assert (
        mine.country == "CN"
        and mine.is_business_day(date(2025, 10, 8))
        and not mine.is_business_day(date(2025, 10, 11))
    )


def test_a_spike_and_an_unusual_quiet_business_day_are_found_not_holidays_weekends_or_make_up_days(
    session: Session, tmp_path: Path
) -> None:
    events = watch_once(session, erp(tmp_path / "erp.db"))
    got = [(e.action, e.evidence["bucket"], e.evidence["direction"]) for e in events]
    assert got == [
        ("trigger", "2025-09-17", "drop"),
        ("resolve", "2025-09-19", ""),  # two normal business days later
        ("trigger", "2025-10-15", "spike"),
        ("resolve", "2025-10-17", ""),
    ]
    quiet, _, spike, _ = events
    assert quiet.summary.startswith("Invoices per type and day: unusual quiet on 2025-09-17 (business day)")
    fp = volume_fingerprint("sales.volume.invoices", "erp", {"kind": "out"}, "count")
    assert {e.fingerprint for e in events} == {fp}  # the watch, the key, the measure: never the day
    assert spike.check_id == "sales.volume.invoices" and spike.runbook == "business-volume-invoices"
    assert (spike.category, spike.severity, spike.entity) == (
        "process",
        "P2",
        {"kind": "out", "measure": "count"},
    )
    evidence = spike.evidence
    assert evidence["value"] == 1200 and 50 < evidence["expected"] < 70 and evidence["day_kind"] == "business"
    assert evidence["band"]["low"] < evidence["expected"] < evidence["band"]["high"] < 1200
    assert evidence["detector"] == "seasonal" and evidence["robust_z"] > 4.5
    # the amount moved with the count: the same incident, one ticket, the amount in its evidence
    assert (
        evidence["also"]["amount"]["direction"] == "spike"
        and evidence["also"]["amount"]["value"] == 1_200_000
    )


def test_without_the_holiday_calendar_national_day_and_the_make_up_days_would_page(
    session: Session, tmp_path: Path
) -> None:
    events = watch_once(session, erp(tmp_path / "erp.db"), calendar=BusinessCalendar())
    buckets = {e.evidence["bucket"] for e in events if e.action == "trigger"}
    assert (
        "2025-10-01" in buckets
        or "2025-09-30" in buckets
        or "2025-10-08" in buckets
        or ({d.isoformat() for d in MAKEUP} & buckets)
    )


def test_buckets_are_fed_once_across_runs_and_the_incomplete_day_is_not_scored(
    session: Session, tmp_path: Path
) -> None:
    url = erp(tmp_path / "erp.db", extra={NOW.date(): 2})  # today has started: 2 invoices so far
    first = watch_once(session, url)
    assert first
    rows = {
        r.series: r
        for r in session.scalars(
            select(SeriesState).where(SeriesState.metric == state_metric("sales.volume.invoices"))
        )
    }
    count = rows["sales.volume.invoices{kind=out,measure=count}"]
    fed, last = count.points, count.detector["last_bucket"]
    assert last == "2025-10-19T00:00:00"  # yesterday: today is still filling and is not scored
    assert watch_once(session, url) == []  # a re-run within the day feeds nothing
    session.refresh(count)
    assert (count.points, count.detector["last_bucket"]) == (fed, last)
    later = NOW + timedelta(days=1)
    assert watch_once(session, erp(tmp_path / "erp2.db", until=later.date()), now=later) == []
    session.refresh(count)
    assert count.points == fed + 1 and count.detector["last_bucket"] == "2025-10-20T00:00:00"


def test_a_young_series_is_judged_against_the_median_of_its_kind_of_day(
    session: Session, tmp_path: Path
) -> None:
    url = erp(tmp_path / "erp.db")
    db = sqlite3.connect(tmp_path / "erp.db")
    rows = []
    for n in range(1, 15):  # supplier bills since two weeks: 10 a business day, then a replay of 200
        day = NOW.date() - timedelta(days=n)
        bills = (200 if n == 3 else 10) if CN.is_business_day(day) else 0
        rows += [(day.isoformat(), "in", 50.0)] * bills
    db.executemany("INSERT INTO invoice (invoice_date, kind, amount_total) VALUES (?, ?, ?)", rows)
    db.commit()
    db.close()
    events = [e for e in watch_once(session, url, alert_days=3) if e.entity.get("kind") == "in"]
    assert [(e.action, e.evidence["bucket"], e.evidence["detector"]) for e in events] == [
        ("trigger", "2025-10-17", "median")
    ]
    assert events[0].evidence["young_series"] is True and events[0].evidence["expected"] == 10


def test_buckets_older_than_alert_days_only_teach_the_baseline(session: Session, tmp_path: Path) -> None:
    events = watch_once(session, erp(tmp_path / "erp.db"), alert_days=3)
    assert events == []  # the spike (5 days ago) and the quiet day are history on a first run
    with pytest.raises(ValueError, match="young_ratio"):
        AnomalySettings.model_validate({"volumes": {"young_ratio": 1}})


HOURLY = """
volumes:
  - id: outbox.volume.messages_per_hour
    title: Outbox messages per hour
    source: erp
    sql: |
      SELECT SUBSTR(CAST(created_at AS CHAR(19)), 1, 13) AS bucket, COUNT(*) AS count
      FROM integration_outbox WHERE created_at >= :since
      GROUP BY SUBSTR(CAST(created_at AS CHAR(19)), 1, 13)
    bucket: hour
    measures: [count]
    lookback: 30d
    grace: 5m
    runbook: business-volume-operations
"""


def test_hourly_buckets_are_judged_against_the_same_hour_of_the_same_kind_of_day(
    session: Session, tmp_path: Path
) -> None:
    """Messages 09:00-18:00 on business days; the 09:00 hour of the last business day has 15x."""
    now = datetime(2025, 11, 24, 10, 30, tzinfo=UTC)  # a Monday: 09:00-10:00 is complete
    db = sqlite3.connect(tmp_path / "erp.db")
    db.execute("CREATE TABLE integration_outbox (id INTEGER PRIMARY KEY, created_at TIMESTAMP)")
    rows = []
    day = date(2025, 11, 1)
    while day <= now.date():
        for hour in range(9, 18) if CN.is_business_day(day) else ():
            n = 150 if (day, hour) == (now.date(), 9) else 10
            rows += [f"{day.isoformat()} {hour:02d}:{i % 60:02d}:{i // 60:02d}" for i in range(n)]
        day += timedelta(days=1)
    db.executemany("INSERT INTO integration_outbox (created_at) VALUES (?)", [(r,) for r in rows])
    db.commit()
    db.close()
    watch = parse_volumes(HOURLY, "h.yaml")[0]
    run = run_volume(watch, source_engine(f"sqlite:///{tmp_path / 'erp.db'}"), now=now)
    assert run.result.status == "pass", run.result.error
    (series,) = run.series
    assert series.complete_until == datetime(2025, 11, 24, 10) and series.key == {}
    events = VolumeWatch(settings(), SeverityContext(calendar=CN)).observe(session, run.series, now=now)
    assert [(e.action, e.evidence["bucket"], e.evidence["direction"]) for e in events] == [
        ("trigger", "2025-11-24T09:00", "spike")
    ]
    assert events[0].evidence["expected"] == 10 and events[0].entity == {"measure": "count"}


def test_calendar_country_joins_the_calendar_file_or_stands_alone() -> None:
    alone = severity_context(AnomalySettings(calendar_country="cn")).calendar
    assert alone is not None and alone.country == "CN" and alone.day_kind(date(2025, 10, 11)) == "business"
    both = severity_context(
        AnomalySettings(calendar_file=Path("cn-2026.yaml"), calendar_country="CN")
    ).calendar
    assert both is not None and both.country == "CN" and both.utc_offset_minutes == 480
    assert both.day_kind(date(2025, 10, 1)) == "holiday"  # 2025 from the library, 2026 from the file too
    with pytest.raises(ValueError, match="not known to the holidays library"):
        AnomalySettings(calendar_country="XX")
