"""Business-volume watches as declared and run: validation at load, read-only runs over a real SQLite ERP."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from hypercare.config import Settings
from monitor.checks import CheckDefinitionError, load_checks, parse_checks
from monitor.collect import Collection, collect
from monitor.results import VolumeSeries
from monitor.sources import source_engine
from monitor.units import build_units
from monitor.volumes import (
    VOLUME_METRIC,
    VolumeSpec,
    load_volumes,
    parse_volumes,
    run_volume,
    unique_volumes,
)

WATCH = """
checks:
  - id: sales.some_check
    title: A check beside the watches
    source: erp
    sql: SELECT 1 AS x WHERE 1 = 0
    category: data
    severity: P3
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
    runbook: business-volume-invoices
"""
NOW = datetime(2025, 10, 20, 10, 0, tzinfo=UTC)  # a Monday


def _watch(**changes: object) -> str:
    text = WATCH
    for key, value in changes.items():
        text = text.replace("    runbook: business-volume-invoices", f"    {key}: {value}\n    runbook: x", 1)
    return text


def test_a_pack_file_holds_checks_and_volume_watches_side_by_side() -> None:
    (spec,) = parse_volumes(WATCH, "pack.yaml", pack="pack")
    assert (spec.bucket, spec.key_columns, spec.measures, spec.lookback) == (
        "day",
        ("kind",),
        ("count", "amount"),
        "90d",
    )
    assert spec.result_id == "volume.sales.volume.invoices" and spec.max_keys == 50
    assert [c.id for c in parse_checks(WATCH, "pack.yaml")] == ["sales.some_check"]
    assert parse_checks("volumes: []\n", "only-volumes.yaml") == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"bucket": "week"}, "field 'bucket': Input should be 'day' or 'hour'"),
        ({"lookback": "3d"}, "field 'lookback': at least 7 buckets (7 days)"),
        ({"grace": "soon"}, "field 'grace': interval 'soon' is not"),
        ({"timezone": "Mars/Olympus"}, "field 'timezone': 'Mars/Olympus' is not an IANA"),
        ({"max_keys": 5000}, "field 'max_keys': Input should be less than or equal to 500"),
        ({"colour": "red"}, "field 'colour': unknown field"),
        ({"params": "{since: today}"}, "['since'] are built-in parameters"),
        ({"spike_ratio": 1}, "field 'spike_ratio': Input should be greater than 1"),
    ],
)
def test_a_wrong_watch_is_refused_at_load_naming_the_file_the_line_the_watch_and_the_field(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(CheckDefinitionError) as caught:
        parse_volumes(_watch(**changes), "monitor/packs/mine.yaml")
    assert str(caught.value).startswith("monitor/packs/mine.yaml:10: volume watch sales.volume.invoices: ")
    assert message in str(caught.value)


def test_a_watch_must_read_only_name_its_runbook_and_its_measures() -> None:
    writes = WATCH.replace("SELECT invoice_date", "DELETE FROM invoice; SELECT invoice_date")
    with pytest.raises(CheckDefinitionError, match="field 'sql'"):
        parse_volumes(writes, "w.yaml")
    with pytest.raises(CheckDefinitionError, match="field 'runbook': Field required"):
        parse_volumes(WATCH.replace("    runbook: business-volume-invoices\n", ""), "w.yaml")
    with pytest.raises(CheckDefinitionError, match="named twice"):
        parse_volumes(WATCH.replace("measures: [count, amount]", "measures: [count, kind]"), "w.yaml")
    with pytest.raises(CheckDefinitionError, match="expected a list of volume watches"):
        parse_volumes("volumes: {id: x}\n", "w.yaml")


def test_watch_ids_are_unique_across_watches_and_checks() -> None:
    (spec,) = parse_volumes(WATCH, "a.yaml", pack="a")
    with pytest.raises(CheckDefinitionError, match="is also the id of a check"):
        unique_volumes([spec], ["sales.volume.invoices"])
    with pytest.raises(CheckDefinitionError, match="is also the id of volume watch of pack a"):
        unique_volumes([spec, spec])


def test_the_shipped_packs_watches_load_and_name_runbooks() -> None:
    for pack in ("demo_erp", "tryton"):
        checks = load_checks([pack])
        watches = load_volumes([pack], check_ids=[c.id for c in checks])
        assert watches, pack
        assert all(w.runbook and w.max_keys <= 50 for w in watches)


# --- running over a real SQLite ERP ----------------------------------------------------------------


def _erp(path: Path, days: dict[date, dict[str, int]]) -> str:
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE invoice (id INTEGER PRIMARY KEY, kind TEXT, invoice_date DATE, amount_total NUMERIC)"
    )
    rows = [
        (day.isoformat(), kind, 100.5)
        for day, kinds in sorted(days.items())
        for kind, n in kinds.items()
        for _ in range(n)
    ]
    db.executemany("INSERT INTO invoice (invoice_date, kind, amount_total) VALUES (?, ?, ?)", rows)
    db.commit()
    db.close()
    return f"sqlite:///{path}"


def _spec(text: str = WATCH) -> VolumeSpec:
    return parse_volumes(text, "t.yaml")[0]


def test_a_run_returns_complete_buckets_only_per_key_and_measure(tmp_path: Path) -> None:
    today = NOW.date()
    days = {today - timedelta(days=n): {"out": 10 + n, "in": 2} for n in range(0, 12)}
    days[today - timedelta(days=3)] = {"out": 7}  # no 'in' that day: the detectors read 0
    run = run_volume(_spec(), source_engine(_erp(tmp_path / "erp.db", days)), now=NOW)
    assert run.result.status == "pass" and run.result.check_id == "volume.sales.volume.invoices"
    assert run.result.measured_value == 2.0
    by = {(s.key["kind"], s.measure): s for s in run.series}
    assert sorted(by) == [("in", "amount"), ("in", "count"), ("out", "amount"), ("out", "count")]
    out = by[("out", "count")]
    assert out.complete_until == datetime(2025, 10, 20)  # today is still filling: not there
    assert out.points[-1] == (datetime(2025, 10, 19), 11.0) and len(out.points) == 11
    assert datetime(2025, 10, 17) not in dict(by[("in", "count")].points)
    assert dict(by[("out", "amount")].points)[datetime(2025, 10, 19)] == pytest.approx(11 * 100.5)
    gauges = {(s.labels["key"], s.labels["measure"]): s.value for s in run.samples if s.name == VOLUME_METRIC}
    assert gauges[("out", "count")] == 11.0 and gauges[("in", "count")] == 2.0


def test_a_bucket_is_complete_only_after_its_grace_in_the_watchs_time_zone(tmp_path: Path) -> None:
    url = _erp(tmp_path / "erp.db", {NOW.date() - timedelta(days=n): {"out": 5} for n in range(10)})
    shanghai = _spec(WATCH.replace("bucket: day", "bucket: day\n    timezone: Asia/Shanghai\n    grace: 2h"))
    # 16:30 UTC is 00:30 the next day in Shanghai: yesterday (Shanghai) is not complete until 02:00 there
    early = run_volume(shanghai, source_engine(url), now=datetime(2025, 10, 19, 16, 30, tzinfo=UTC))
    assert early.series[0].complete_until == datetime(2025, 10, 19)
    late = run_volume(shanghai, source_engine(url), now=datetime(2025, 10, 19, 18, 30, tzinfo=UTC))
    assert late.series[0].complete_until == datetime(2025, 10, 20)


def test_keys_beyond_max_keys_are_left_out_the_largest_kept(tmp_path: Path) -> None:
    kinds = {f"k{i:02d}": i + 1 for i in range(8)}
    url = _erp(tmp_path / "erp.db", {NOW.date() - timedelta(days=n): kinds for n in range(1, 9)})
    run = run_volume(
        _spec(WATCH.replace("bucket: day", "bucket: day\n    max_keys: 3")), source_engine(url), now=NOW
    )
    assert run.result.status == "pass"  # it ran: a warn would not resolve a collector-error ticket
    assert {s.key["kind"] for s in run.series} == {"k05", "k06", "k07"}
    assert run.result.sample == [{"dropped_keys": 5, "max_keys": 3, "kept_keys": 3}]


def test_a_watch_that_cannot_run_is_an_error_result_naming_why(tmp_path: Path) -> None:
    url = _erp(tmp_path / "erp.db", {})
    wrong = _spec(WATCH.replace("COUNT(*) AS count", "COUNT(*) AS n"))
    run = run_volume(wrong, source_engine(url), now=NOW)
    assert run.result.status == "error" and "no column(s) ['count']" in (run.result.error or "")
    missing = _spec(WATCH.replace("FROM invoice", "FROM invoices"))
    assert "no such table" in (run_volume(missing, source_engine(url), now=NOW).result.error or "")


def test_a_collection_carries_the_watches_series_beside_the_check_results(tmp_path: Path) -> None:
    url = _erp(tmp_path / "erp.db", {NOW.date() - timedelta(days=n): {"out": 3} for n in range(1, 9)})
    settings = Settings(sources={"erp": {"url": url}}, data_dir=tmp_path)  # type: ignore[arg-type]
    found: Collection = collect(settings, [], now=NOW, volumes=[_spec()])
    assert [r.check_id for r in found.results] == ["volume.sales.volume.invoices"]
    assert all(isinstance(s, VolumeSeries) for s in found.volumes) and len(found.volumes) == 2
    assert {s.name for s in found.samples} == {VOLUME_METRIC, "hypercare_check_duration_seconds"}


def test_the_scheduler_runs_each_watch_as_a_unit_of_its_own(tmp_path: Path) -> None:
    url = _erp(tmp_path / "erp.db", {NOW.date() - timedelta(days=n): {"out": 3} for n in range(1, 9)})
    settings = Settings(sources={"erp": {"url": url}}, data_dir=tmp_path)  # type: ignore[arg-type]
    watch = _spec(WATCH.replace("bucket: day", "bucket: day\n    schedule: 1h"))
    with httpx.Client() as client:
        units = build_units(settings, [], http_client=client, volumes=[watch])
    unit = next(u for u in units if u.kind == "volume")
    assert (unit.key, unit.source, unit.interval) == (
        "volume:volume.sales.volume.invoices",
        "erp",
        timedelta(hours=1),
    )
    assert unit.error_result(NOW, "timed out").check_id == "volume.sales.volume.invoices"
    assert "source:erp" in {u.key for u in units}  # a watch's source is pinged when it errors, as a check's
    found = unit.run(NOW)
    assert [r.status for r in found.results] == ["pass"] and len(found.volumes) == 2
