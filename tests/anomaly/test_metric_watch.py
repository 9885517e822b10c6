"""Metric series in the pipeline: streaming detectors whose state lives in the store (anomaly/state.py)."""

from __future__ import annotations

import json
import random
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from anomaly import state as anomaly_state
from anomaly.calendar import calendar_from_mapping
from anomaly.ensemble import UnivariateEnsemble
from anomaly.events import fingerprint
from anomaly.settings import AnomalySettings, FixedThreshold
from anomaly.severity import SeverityContext
from anomaly.state import MetricWatch, SeriesState, create_rows, series_name, severity_context
from core.errors import ConfigError
from core.session import make_engine, session_factory, session_scope
from monitor.results import CheckResult, MetricSample

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in Shanghai
LATENCY = "hypercare_probe_duration_seconds"
LABELS = {"probe": "erp-trial-balance", "source": "erp"}
SERIES = "probe_duration_seconds{probe=erp-trial-balance}"


def latencies(n: int, seed: int = 7, start: int = 0) -> list[MetricSample]:
    rng = random.Random(seed)  # noqa: S311 - seeded test data
    values = [0.05 + rng.gauss(0, 0.003) for _ in range(start + n)][start:]
    return [
        MetricSample(LATENCY, v, dict(LABELS), T0 + timedelta(minutes=start + i))
        for i, v in enumerate(values)
    ]


def slow(at: int, n: int, value: float = 0.4) -> list[MetricSample]:
    return [MetricSample(LATENCY, value, dict(LABELS), T0 + timedelta(minutes=at + i)) for i in range(n)]


def probe_result(status: str, at: datetime) -> CheckResult:
    return CheckResult(
        check_id="probe.erp-trial-balance",
        source="erp",
        status=status,  # type: ignore[arg-type]
        title="ERP transaction erp-trial-balance",
        category="technical",
        severity="P2",
        started_at=at,
        finished_at=at,
        runbook="erp-slow-transaction",
    )


def settings(**kw: object) -> AnomalySettings:
    return AnomalySettings.model_validate({"warmup_points": 40, **kw})


def feed(
    session: Session, watch: MetricWatch, samples: list[MetricSample], size: int = 10
) -> list[tuple[int, str]]:
    """Feed in passes of ``size`` points (as collection passes would); (point index, action) per event."""
    fired: list[tuple[int, str]] = []
    for start in range(0, len(samples), size):
        for event in watch.observe(session, samples[start : start + size]):
            fired.append((start, event.action))
    return fired


def test_an_incident_on_a_series_is_one_trigger_and_one_resolve_with_an_explanation(session: Session) -> None:
    watch = MetricWatch(settings())
    normal, incident, after = latencies(60), slow(60, 6), latencies(30, start=66)
    assert watch.observe(session, normal) == []
    trigger = watch.observe(session, incident)
    resolve = watch.observe(session, after)
    assert [e.action for e in trigger] == ["trigger"] and [e.action for e in resolve] == ["resolve"]
    (t,), (r,) = trigger, resolve
    assert t.fingerprint == r.fingerprint == fingerprint("metric", SERIES, "erp")
    assert (t.category, t.source, t.producer, t.check_id) == ("technical", "erp", "anomaly", None)
    assert t.summary.startswith(f"Anomaly on erp: {SERIES}: ")
    assert r.summary.startswith(f"Back to normal on erp: {SERIES}: ")
    assert "robust sigmas above normal" in t.evidence["explanation"]
    assert t.evidence["expected"] == pytest.approx(0.05, abs=0.01) and t.evidence["value"] == 0.4
    assert t.evidence["labels"] == LABELS and t.evidence["warming_up"] is False
    assert t.severity == "P3"
    assert t.severity_reasons == ("P3 as configured for metric alarms (anomaly.alarm_severity)",)
    # back to normal after clear_points=3 points below alarm_off, within a few points of the recovery
    assert T0 + timedelta(minutes=66 + 2) <= r.occurred_at <= T0 + timedelta(minutes=66 + 6)
    (row,) = session.scalars(select(SeriesState))
    assert (row.series, row.points, row.alarm_active) == (SERIES, 96, False)


def test_state_in_the_store_continues_exactly_where_a_single_detector_would_be(session: Session) -> None:
    samples = latencies(200)
    watch = MetricWatch(settings())
    for start in range(0, 200, 7):  # a new MetricWatch each pass: nothing survives but the store
        MetricWatch(settings()).observe(session, samples[start : start + 7])
    (row,) = session.scalars(select(SeriesState))
    alone = UnivariateEnsemble(warmup_points=40, slot_minutes=60)
    alone.score_many((s.ts.timestamp(), s.value) for s in samples if s.ts is not None)
    assert json.loads(json.dumps(row.detector)) == json.loads(json.dumps(alone.to_state()))
    assert row.last_ts == samples[-1].ts
    # a replayed pass is not learnt twice
    assert watch.observe(session, samples[-7:]) == []
    session.expire_all()
    assert row.points == 200


def detector_of(samples: list[MetricSample]) -> Any:
    """The state of one detector fed ``samples`` in order, as JSON would store it."""
    alone = UnivariateEnsemble(warmup_points=40, slot_minutes=60)
    alone.score_many((s.ts.timestamp(), s.value) for s in samples if s.ts is not None)
    return json.loads(json.dumps(alone.to_state()))


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_two_workers_meeting_a_new_series_at_once_both_go_on(store_url: str) -> None:
    """Both passes find no row to lock, both insert it: the second's insert waits for the first's commit,
    skips the key, and that pass continues from the state the first saved (no unique violation, no update
    lost)."""
    engine = make_engine(store_url)
    factory = session_factory(engine)
    samples = latencies(20)
    looked = threading.Barrier(2, timeout=10)
    first_inserted = threading.Event()
    seen: set[str] = set()

    def inserts(statement: str) -> bool:
        return statement.lstrip().upper().startswith("INSERT INTO ANOMALY_SERIES_STATE")

    def before(conn: object, cursor: object, statement: str, *args: object) -> None:
        if threading.current_thread().name == "second" and inserts(statement):
            first_inserted.wait(10)  # the first worker's row is in, not yet committed

    def after(conn: object, cursor: object, statement: str, *args: object) -> None:
        who = threading.current_thread().name
        if "FROM anomaly_series_state" in statement and "FOR UPDATE" in statement and who not in seen:
            seen.add(who)
            looked.wait()  # both have looked for the row before either creates it
        elif who == "first" and inserts(statement):
            first_inserted.set()

    sa_event.listen(engine, "before_cursor_execute", before)
    sa_event.listen(engine, "after_cursor_execute", after)
    errors: list[BaseException] = []

    def work(chunk: list[MetricSample]) -> None:
        try:
            with session_scope(factory) as session:
                MetricWatch(settings()).observe(session, chunk)
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    workers = [
        threading.Thread(target=work, args=(samples[:10],), name="first"),
        threading.Thread(target=work, args=(samples,), name="second"),
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    try:
        assert not any(worker.is_alive() for worker in workers)
        assert errors == []
        assert seen == {"first", "second"} and first_inserted.is_set()
        with session_scope(factory) as session:
            assert session.scalar(select(func.count()).select_from(SeriesState)) == 1
            row = session.scalars(select(SeriesState)).one()
            assert row.points == 20 and row.last_ts == samples[-1].ts
            assert json.loads(json.dumps(row.detector)) == detector_of(samples), "as one detector fed all"
    finally:
        engine.dispose()


def test_creating_a_state_row_that_exists_changes_nothing(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples = latencies(20)
    MetricWatch(settings()).observe(session, samples[:10])
    (row,) = session.scalars(select(SeriesState))
    identity = {k: getattr(row, k) for k in ("key", "metric", "series", "source", "labels")}
    create_rows(session, [identity], T0)  # no unique violation, and the state stays
    session.expire_all()
    (same,) = session.scalars(select(SeriesState))
    assert (same.id, same.points, same.detector) == (row.id, 10, detector_of(samples[:10]))

    # another worker created the row between this pass's look and its insert: it goes on from there
    look = anomaly_state.locked_rows
    looks: list[object] = []

    def late(session: Session, keys: Any) -> dict[str, SeriesState]:
        looks.append(keys)
        return {} if len(looks) == 1 else look(session, keys)

    monkeypatch.setattr(anomaly_state, "locked_rows", late)
    assert MetricWatch(settings()).observe(session, samples[10:]) == []
    session.expire_all()
    (row,) = session.scalars(select(SeriesState))
    assert len(looks) == 2 and row.points == 20
    assert json.loads(json.dumps(row.detector)) == detector_of(samples)


def test_no_page_during_warm_up_except_outside_the_fixed_band(session: Session) -> None:
    quiet = MetricWatch(settings(warmup_points=500))
    assert feed(session, quiet, [*latencies(30), *slow(30, 5, value=5.0), *latencies(10, start=35)]) == []
    session.execute(delete(SeriesState))
    banded = MetricWatch(settings(warmup_points=500, fixed_thresholds={LATENCY: FixedThreshold(high=1.0)}))
    events = [
        e
        for chunk in (latencies(30), slow(30, 5, value=5.0), latencies(10, start=35))
        for e in banded.observe(session, chunk)
    ]
    assert [e.action for e in events] == ["trigger", "resolve"]
    assert events[0].evidence["warming_up"] is True
    assert "above the fixed threshold 1 (warm-up)" in events[0].evidence["explanation"]


def test_an_alarm_the_probe_check_already_reports_raises_no_second_event(session: Session) -> None:
    watch = MetricWatch(settings())
    assert watch.observe(session, latencies(60)) == []
    at = T0 + timedelta(minutes=60)
    assert watch.observe(session, slow(60, 6), [probe_result("fail", at)]) == []
    (row,) = session.scalars(select(SeriesState))
    assert row.alarm_active and row.alarm["covered"] is True
    assert watch.observe(session, latencies(30, start=66), [probe_result("pass", at)]) == []
    session.expire_all()
    assert not row.alarm_active and row.alarm["covered"] is False


def test_unwatched_metrics_and_non_finite_values_are_ignored(session: Session) -> None:
    watch = MetricWatch(settings(metrics=("hypercare_integration_backlog_messages",)))
    assert watch.observe(session, latencies(50)) == []
    nan = MetricSample("hypercare_integration_backlog_messages", float("nan"), {"source": "erp"}, T0)
    assert watch.observe(session, [nan]) == []
    assert list(session.scalars(select(SeriesState))) == []


def test_metric_alarms_follow_the_close_window_with_a_reason(session: Session) -> None:
    calendar = calendar_from_mapping({"utc_offset_minutes": 480, "close_days": ["2026-11-23"]})
    watch = MetricWatch(settings(), SeverityContext(calendar))
    watch.observe(session, latencies(60))
    (event,) = watch.observe(session, slow(60, 6))
    assert event.severity == "P2"
    assert event.severity_reasons[1] == (
        "raised to P2: 2026-11-23 is inside the period-close window (-3/+5 business days)"
    )


def test_series_names_leave_the_source_to_the_event() -> None:
    assert series_name(LATENCY, LABELS) == SERIES
    assert series_name("hypercare_host_load1", {}) == "host_load1"


def test_the_calendar_file_is_checked_and_shipped_calendars_are_found_by_name(tmp_path: Path) -> None:
    assert severity_context(AnomalySettings()).calendar is None
    shipped = severity_context(AnomalySettings(calendar_file=Path("cn-2026.yaml"))).calendar
    assert shipped is not None and shipped.day_kind(datetime(2026, 10, 1).date()) == "holiday"
    bad = tmp_path / "cal.yaml"
    bad.write_text("weekend: [7]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^anomaly.calendar_file: .*cal.yaml: 'weekend' must be a list"):
        severity_context(AnomalySettings(calendar_file=bad))
    with pytest.raises(ConfigError, match=r"cannot read the calendar"):
        severity_context(AnomalySettings(calendar_file=tmp_path / "missing.yaml"))
