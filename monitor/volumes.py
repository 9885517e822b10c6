"""Business-volume watches: a read-only SQL that counts and sums documents per time bucket and key.

Declared in a check pack beside its checks, under ``volumes:``::

    volumes:
      - id: sales.invoices_per_type          # unique across checks and watches
        title: Posted invoices per type and day
        source: erp
        sql: |
          SELECT invoice_date AS bucket, kind, COUNT(*) AS count, SUM(amount_total) AS amount
          FROM invoice WHERE state = 'posted' AND invoice_date >= :since_date
          GROUP BY invoice_date, kind
        bucket: day                          # day | hour
        bucket_column: bucket                # the column holding the bucket (a date, or a timestamp)
        key_columns: [kind]                  # document type, journal, company, integration...
        measures: [count, amount]            # one series per key and measure
        lookback: 90d                        # :since / :since_date = now - lookback
        timezone: UTC                        # the clock of the buckets (IANA name: Asia/Shanghai)
        grace: 30m                           # a bucket is complete this long after it ends
        max_keys: 50                         # keys beyond are dropped (the largest kept), the run warns
        spike_ratio: 3                       # how far from expected a bucket must be to count
        drop_ratio: 3
        min_change: 5
        category: process
        severity: P3
        runbook: business-volume-invoices
        owner: finance-ar
        schedule: 1h

Running a watch reads the lookback read-only and time-bounded (:func:`monitor.checks.fetch_rows`, the
checks' path), keeps the complete buckets only (the current bucket is still filling), and returns one
:class:`~monitor.results.VolumeSeries` per key and measure for the detectors, a ``volume.<id>`` result
saying whether the watch could run, and the ``hypercare_business_volume`` gauge of each series' last
complete bucket. Judging the buckets is anomaly/'s job (:mod:`anomaly.volumes`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from monitor.checks import (
    ROW_CAP,
    CheckDefinitionError,
    _problem,
    fetch_rows,
    reason,
    shipped_packs,
)
from monitor.intervals import ScheduleError, parse_interval
from monitor.readonly import check_query
from monitor.results import BUCKET_LENGTH, Bucket, CheckResult, MetricSample, VolumeSeries
from monitor.sources import UnsupportedSourceError
from monitor.specs import resolve_param

log = logging.getLogger(__name__)
VOLUME_METRIC = "hypercare_business_volume"
RESULT_PREFIX = "volume."
"""A watch's own run result is ``volume.<watch id>``: it says whether the watch could run (the anomalies
it finds are events of the watch id itself, so a passing run never resolves them)."""
MAX_KEYS = 500


def _interval(value: str) -> str:
    try:
        parse_interval(value)
    except ScheduleError as exc:
        raise ValueError(str(exc).replace("schedule", "interval", 1)) from None
    return value


class VolumeSpec(BaseModel):
    """A business-volume watch as declared in a pack (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=100)
    title: str = Field(min_length=1, max_length=200)
    description: str = ""
    source: str = Field(min_length=1)
    sql: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    bucket: Bucket
    bucket_column: str = Field("bucket", min_length=1)
    key_columns: tuple[str, ...] = ()
    measures: tuple[str, ...] = Field(min_length=1)
    lookback: str = "90d"
    timezone: str = "UTC"
    grace: str = "30m"
    max_keys: int = Field(50, ge=1, le=MAX_KEYS)
    spike_ratio: float = Field(3.0, gt=1)
    drop_ratio: float = Field(3.0, gt=1)
    min_change: float = Field(5.0, ge=0)
    category: Literal["data", "process", "technical", "user"] = "process"
    severity: Literal["P1", "P2", "P3", "P4"] = "P3"
    runbook: str = Field(min_length=1)
    owner: str | None = None
    schedule: str | None = None
    tags: tuple[str, ...] = ()
    pack: str = ""

    @field_validator("sql")
    @classmethod
    def _read_only(cls, sql: str) -> str:
        return check_query(sql)  # the read-only allow-list (monitor/readonly.py); judged again at run time

    @field_validator("lookback", "grace")
    @classmethod
    def _intervals(cls, value: str) -> str:
        return _interval(value)

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        return _interval(value) if value is not None else None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone name (UTC, Asia/Shanghai...)") from None
        return value

    @field_validator("params")
    @classmethod
    def _params(cls, params: dict[str, Any]) -> dict[str, Any]:
        reserved = {"now", "today", "since", "since_date"} & set(params)
        if reserved:
            raise ValueError(f"{sorted(reserved)} are built-in parameters and cannot be redefined")
        for name, value in params.items():
            resolve_param(name, value, datetime(2000, 1, 1, tzinfo=UTC))
        return params

    @model_validator(mode="after")
    def _columns(self) -> VolumeSpec:
        names = [self.bucket_column, *self.key_columns, *self.measures]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"measures: column(s) {twice} named twice among bucket, key and measure columns")
        if parse_interval(self.lookback) < BUCKET_LENGTH[self.bucket] * 7:
            raise ValueError(f"lookback: at least 7 buckets (7 {self.bucket}s) to learn from")
        return self

    @property
    def result_id(self) -> str:
        return f"{RESULT_PREFIX}{self.id}"


# --- loading -------------------------------------------------------------------------------------------


def _item_lines(text_: str, key: str) -> list[int]:
    """The line of each item of the top-level ``key:`` list (for errors that name where a watch is)."""
    try:
        node = yaml.compose(text_)
    except yaml.YAMLError:
        return []
    if not isinstance(node, yaml.MappingNode):
        return []
    for name, value in node.value:
        if name.value == key and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def parse_volumes(text_: str, origin: str, pack: str = "") -> list[VolumeSpec]:
    """The watches under ``volumes:`` of a pack file; a wrong one is a :class:`CheckDefinitionError`
    naming the file, the line, the watch and the field."""
    try:
        data = yaml.safe_load(text_)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise CheckDefinitionError(f"{origin}:{where}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict) or data.get("volumes") is None:
        return []
    raw = data["volumes"]
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise CheckDefinitionError(f"{origin}: expected a list of volume watches under 'volumes:'")
    lines = _item_lines(text_, "volumes")
    specs = []
    for index, item in enumerate(raw):
        label = item.get("id") or f"#{index + 1}"
        line = f":{lines[index]}" if index < len(lines) else ""
        try:
            specs.append(VolumeSpec.model_validate({"pack": pack, **item}))
        except ValidationError as exc:
            problems = "; ".join(_problem(err) for err in exc.errors())
            raise CheckDefinitionError(f"{origin}{line}: volume watch {label}: {problems}") from None
    return specs


def unique_volumes(specs: Iterable[VolumeSpec], check_ids: Iterable[str] = ()) -> list[VolumeSpec]:
    """``specs`` when every watch id is unique and is no check's id; else :class:`CheckDefinitionError`."""
    seen: dict[str, str] = dict.fromkeys(check_ids, "a check")
    out = []
    for spec in specs:
        if spec.id in seen:
            raise CheckDefinitionError(
                f"volume watch id '{spec.id}' (pack {spec.pack or '-'}) is also the id of {seen[spec.id]}"
            )
        seen[spec.id] = f"volume watch of pack {spec.pack or '-'}"
        out.append(spec)
    return out


def load_volumes(
    packs: Iterable[str], paths: Iterable[Path] = (), check_ids: Iterable[str] = ()
) -> list[VolumeSpec]:
    """Every watch of the named packs and files; ids unique across watches and ``check_ids``."""
    specs: list[VolumeSpec] = []
    for name in packs:
        if name not in shipped_packs():
            raise CheckDefinitionError(
                f"unknown check pack '{name}'; shipped packs: {', '.join(shipped_packs())}"
            )
        resource = resources.files("monitor") / "packs" / f"{name}.yaml"
        specs += parse_volumes(resource.read_text(encoding="utf-8"), f"monitor/packs/{name}.yaml", name)
    for path in paths:
        for file in sorted(path.rglob("*.y*ml")) if path.is_dir() else [path]:
            try:
                content = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise CheckDefinitionError(f"{file}: cannot read ({exc})") from None
            specs += parse_volumes(content, str(file), pack=file.stem)
    return unique_volumes(specs, check_ids)


# --- running -------------------------------------------------------------------------------------------


@dataclass
class VolumeRun:
    """What one run of a watch measured: its run result, its series, the gauge samples."""

    result: CheckResult
    series: list[VolumeSeries] = field(default_factory=list)
    samples: list[MetricSample] = field(default_factory=list)


def bound_values(spec: VolumeSpec, now: datetime) -> dict[str, Any]:
    """``now``/``today`` (naive UTC, as for checks), ``since``/``since_date`` (now - lookback), params."""
    now = now.astimezone(UTC)
    since = (now - parse_interval(spec.lookback)).replace(tzinfo=None)
    values: dict[str, Any] = {
        "now": now.replace(tzinfo=None),
        "today": now.date(),
        "since": since,
        "since_date": since.date(),
    }
    for name, value in spec.params.items():
        values[name] = resolve_param(name, value, now)
    return values


def bucket_start(value: Any, bucket: Bucket, zone: ZoneInfo) -> datetime:
    """The naive local start of the bucket a returned value names (a date, a timestamp or ISO text)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, datetime.min.time())
    elif isinstance(value, str):
        moment = datetime.fromisoformat(value.strip())
    else:
        raise ValueError(f"bucket value {value!r} is not a date or timestamp")
    if moment.tzinfo is not None:
        moment = moment.astimezone(zone).replace(tzinfo=None)
    if bucket == "day":
        return datetime.combine(moment.date(), datetime.min.time())
    return moment.replace(minute=0, second=0, microsecond=0)


def complete_until(spec: VolumeSpec, now: datetime) -> datetime:
    """Start of the first bucket that is not complete at ``now`` (naive, the watch's local time)."""
    local = now.astimezone(ZoneInfo(spec.timezone)).replace(tzinfo=None) - parse_interval(spec.grace)
    return bucket_start(local, spec.bucket, ZoneInfo(spec.timezone))


def _number(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    try:
        return float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        raise ValueError(f"{value!r} is not a number") from None


def key_label(key: dict[str, str]) -> str:
    """The ``key`` label of a series: its key values joined by ``/`` (``all`` for a watch without keys)."""
    return "/".join(key.values()) if key else "all"


def run_volume(
    spec: VolumeSpec, engine: Engine, *, now: datetime | None = None, timeout_s: float = 30.0
) -> VolumeRun:
    """Run one watch read-only; a failure to run is an ``error`` result naming the reason, never a raise."""
    now = now or datetime.now(UTC)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    base = CheckResult(
        check_id=spec.result_id,
        source=spec.source,
        status="error",
        title=spec.title,
        category=spec.category,
        severity=spec.severity,
        started_at=started,
        finished_at=started,
        runbook=spec.runbook,
        owner=spec.owner,
        tags=spec.tags,
    )

    def done(**changes: Any) -> CheckResult:
        return replace(base, finished_at=started + timedelta(seconds=time.perf_counter() - t0), **changes)

    try:
        values = bound_values(spec, now)
        fetched = fetch_rows(engine, spec.result_id, spec.sql, values, timeout_s, cap=ROW_CAP)
    except (SQLAlchemyError, CheckDefinitionError, UnsupportedSourceError) as exc:
        return VolumeRun(done(error=reason(exc)))
    missing = [c for c in (spec.bucket_column, *spec.key_columns, *spec.measures) if c not in fetched.columns]
    if missing:
        return VolumeRun(done(error=f"query returned no column(s) {missing}; it returned {fetched.columns}"))
    if fetched.truncated:
        return VolumeRun(
            done(error=f"query returned more than {ROW_CAP} rows: aggregate per bucket and key in SQL")
        )
    zone = ZoneInfo(spec.timezone)
    until = complete_until(spec, now)
    found: dict[tuple[str, ...], dict[datetime, list[float]]] = {}
    try:
        for row in fetched.records():
            start = bucket_start(row[spec.bucket_column], spec.bucket, zone)
            key = tuple("" if row[c] is None else str(row[c]) for c in spec.key_columns)
            sums = found.setdefault(key, {}).setdefault(start, [0.0] * len(spec.measures))
            for i, measure in enumerate(spec.measures):
                sums[i] += _number(row[measure])
    except ValueError as exc:
        return VolumeRun(done(error=f"row not understood: {exc}"))
    keys = sorted(found, key=lambda k: (-sum(v[0] for v in found[k].values()), k))
    kept, dropped = keys[: spec.max_keys], keys[spec.max_keys :]
    run = VolumeRun(base)
    for key in sorted(kept):
        buckets = sorted(b for b in found[key] if b < until)
        named = dict(zip(spec.key_columns, key, strict=True))
        for i, measure in enumerate(spec.measures):
            points = tuple((b, found[key][b][i]) for b in buckets)
            run.series.append(
                VolumeSeries(
                    watch_id=spec.id,
                    source=spec.source,
                    title=spec.title,
                    measure=measure,
                    key=named,
                    bucket=spec.bucket,
                    points=points,
                    complete_until=until,
                    timezone=spec.timezone,
                    category=spec.category,
                    severity=spec.severity,
                    runbook=spec.runbook,
                    owner=spec.owner,
                    tags=spec.tags,
                    spike_ratio=spec.spike_ratio,
                    drop_ratio=spec.drop_ratio,
                    min_change=spec.min_change,
                )
            )
            last = until - BUCKET_LENGTH[spec.bucket]
            labels = {"watch": spec.id, "key": key_label(named), "measure": measure, "source": spec.source}
            run.samples.append(MetricSample(VOLUME_METRIC, dict(points).get(last, 0.0), labels, now))
    sample = []
    if dropped:  # a pass all the same: the watch ran, and a warn would not resolve a collector-error ticket
        log.warning(
            "volume watch %s: %d keys beyond max_keys %d left out",
            spec.id,
            len(dropped),
            spec.max_keys,
            extra={"check_id": spec.result_id, "source": spec.source, "dropped_keys": len(dropped)},
        )
        sample = [{"dropped_keys": len(dropped), "max_keys": spec.max_keys, "kept_keys": len(kept)}]
    run.result = done(status="pass", measured_value=float(len(kept)), sample=sample)
    return run
