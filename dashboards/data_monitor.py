"""The dashboard's read side for what monitor/ stored: check results (data consistency, K13), metric samples
(probe latency and errors, host and database health, integration backlogs, K19) and anomaly events.

Metric series are aggregated per hour (ranges up to 14 days) or per day in SQL over the ``(name, ts)`` index;
label values are read with the engine's JSON operators. "Latest" values are those of the last scrape of a
metric in the range (collectors write every series of a metric with one timestamp).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Connection, String, and_, case, func, literal, or_, select, union_all

from core.vocabulary import OPEN_STATUSES
from dashboards.data import Filters, in_range, ratio, ticket_scope
from dashboards.sql import utc_hour
from monitor import check_ids
from monitor.models import CheckResultRow, MetricSampleRow
from tickets.models import EventRecord, Ticket

NOT_DATA_KINDS = check_ids.BUILTIN_KINDS | {"source", "volume"}
"""Kinds of check ids that are technical checks, not data consistency: those of probes, collectors and
volume watches' runs (``source.*``: nothing makes such ids today; kept so the pages classify as they
always have)."""
PROBE_LATENCY = "hypercare_probe_duration_seconds"
PROBE_SUCCESS = "hypercare_probe_success"
HOST_METRICS = (
    "hypercare_host_cpu_usage_ratio",
    "hypercare_host_memory_usage_ratio",
    "hypercare_host_disk_usage_ratio",
    "hypercare_host_load1",
)
DB_METRICS = (
    "hypercare_db_up",
    "hypercare_db_connections_usage_ratio",
    "hypercare_db_active_queries",
    "hypercare_db_long_running_queries",
    "hypercare_db_lock_waiting_sessions",
    "hypercare_db_replication_lag_seconds",
    "hypercare_db_oldest_query_age_seconds",
)
INTEGRATION_BACKLOG = "hypercare_integration_backlog_messages"
INTEGRATION_AGE = "hypercare_integration_oldest_message_age_seconds"
INTEGRATION_FAILED = "hypercare_integration_failed_messages"
HOURLY_UP_TO_DAYS = 14


def is_data_check(check_id: str, pack_of: Mapping[str, str]) -> bool:
    return check_id in pack_of or check_ids.kind(check_id) not in NOT_DATA_KINDS


def _check_scope(f: Filters) -> list[ColumnElement[bool]]:
    return [CheckResultRow.source.in_(f.sources)] if f.sources else []


def _label(key: str) -> Any:
    return MetricSampleRow.labels[key].as_string()


def _metric_scope(f: Filters) -> list[ColumnElement[bool]]:
    return [_label("source").in_(f.sources)] if f.sources else []


def bucket_of(f: Filters) -> Any:
    """Hours for ranges up to two weeks, days beyond."""
    span = (f.end - f.start).days + 1
    return utc_hour(MetricSampleRow.ts) if span <= HOURLY_UP_TO_DAYS else f.day_of(MetricSampleRow.ts)


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


# --- data consistency -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PassRateDay:
    day: date
    pack: str
    check_id: str
    executed: int
    passed: int

    @property
    def pass_ratio(self) -> float | None:
        return ratio(self.passed, self.executed)


def check_pass_rates(conn: Connection, f: Filters, pack_of: Mapping[str, str]) -> list[PassRateDay]:
    """Runs and passes (status ``pass``) per data-consistency check and day. One GROUP BY; the pack of each
    check comes from the loaded check packs (``pack_of``), checks of no pack are ``(custom)``."""
    day = f.day_of(CheckResultRow.finished_at)
    rows = conn.execute(
        select(
            day,
            CheckResultRow.check_id,
            func.count(CheckResultRow.id),
            func.sum(case((CheckResultRow.status == "pass", 1), else_=0)),
        )
        .where(in_range(CheckResultRow.finished_at, f), *_check_scope(f))
        .group_by(day, CheckResultRow.check_id)
        .order_by(day, CheckResultRow.check_id)
    ).all()
    out = []
    for d, check_id, n, ok in rows:
        if is_data_check(str(check_id), pack_of):
            day_value = d if isinstance(d, date) else date.fromisoformat(str(d)[:10])
            out.append(
                PassRateDay(
                    day_value, pack_of.get(str(check_id), "(custom)"), str(check_id), int(n), int(ok or 0)
                )
            )
    return out


@dataclass(frozen=True, slots=True)
class PackDay:
    day: date
    pack: str
    executed: int
    passed: int
    pass_ratio: float | None


def per_pack(rows: Iterable[PassRateDay]) -> list[PackDay]:
    """Pass rate per pack and day, from the per-check rows."""
    sums: dict[tuple[date, str], list[int]] = {}
    for r in rows:
        acc = sums.setdefault((r.day, r.pack), [0, 0])
        acc[0] += r.executed
        acc[1] += r.passed
    return [PackDay(d, p, n, ok, ratio(ok, n)) for (d, p), (n, ok) in sorted(sums.items())]


@dataclass(frozen=True, slots=True)
class CheckSummary:
    check_id: str
    pack: str
    source: str
    executed: int
    failed: int
    """Runs in the range whose status was fail or error."""
    last_status: str
    last_violations: int
    last_amount_at_risk: Decimal | None
    last_run_at: datetime


def check_summaries(conn: Connection, f: Filters, pack_of: Mapping[str, str]) -> list[CheckSummary]:
    """Per data-consistency check and source: runs and failures in the range and its latest result there,
    worst first (failing now, then most failures). Two queries."""
    scope = [in_range(CheckResultRow.finished_at, f), *_check_scope(f)]
    bad = CheckResultRow.status.in_(("fail", "error"))
    agg = conn.execute(
        select(
            CheckResultRow.check_id,
            CheckResultRow.source,
            func.count(CheckResultRow.id),
            func.sum(case((bad, 1), else_=0)),
            func.max(CheckResultRow.id),
        )
        .where(*scope)
        .group_by(CheckResultRow.check_id, CheckResultRow.source)
    ).all()
    wanted = [r for r in agg if is_data_check(str(r[0]), pack_of)]
    latest_ids = [int(r[4]) for r in wanted]
    latest: dict[int, Any] = {}
    for chunk in range(0, len(latest_ids), 500):
        for row in conn.execute(
            select(
                CheckResultRow.id,
                CheckResultRow.status,
                CheckResultRow.violations,
                CheckResultRow.amount_at_risk,
                CheckResultRow.finished_at,
            ).where(CheckResultRow.id.in_(latest_ids[chunk : chunk + 500]))
        ):
            latest[int(row[0])] = row
    out = []
    for check_id, source, n, failed, last_id in wanted:
        last = latest[int(last_id)]
        out.append(
            CheckSummary(
                str(check_id),
                pack_of.get(str(check_id), "(custom)"),
                str(source),
                int(n),
                int(failed or 0),
                str(last[1]),
                int(last[2] or 0),
                last[3],
                last[4],
            )
        )
    order = {"error": 0, "fail": 0, "warn": 1, "pass": 2}
    return sorted(out, key=lambda c: (order.get(c.last_status, 0), -c.failed, c.check_id, c.source))


def latest_pass_ratio(summaries: Sequence[CheckSummary]) -> float | None:
    """K13 now: share of data checks whose latest result in the range passed."""
    return ratio(sum(1 for c in summaries if c.last_status == "pass"), len(summaries))


@dataclass(frozen=True, slots=True)
class MoneyAtRisk:
    check_id: str
    tickets: int
    amount: Decimal


def open_money_at_risk(conn: Connection, f: Filters) -> list[MoneyAtRisk]:
    """Money at risk of the open tickets (still unresolved breaks), per check, largest first. One query."""
    key = func.coalesce(Ticket.check_id, "(none)")
    rows = conn.execute(
        select(key.label("check"), func.count(Ticket.id), func.sum(Ticket.amount_at_risk))
        .where(Ticket.status.in_(OPEN_STATUSES), Ticket.amount_at_risk.is_not(None), *ticket_scope(f))
        .group_by("check")
        .order_by(func.sum(Ticket.amount_at_risk).desc())
    ).all()
    return [MoneyAtRisk(str(c), int(n), Decimal(str(a or 0)).quantize(Decimal("0.01"))) for c, n, a in rows]


# --- metric series -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    at: str
    """The hour (``YYYY-MM-DD HH:00``) or day (``YYYY-MM-DD``), UTC."""
    series: str
    mean: float
    max: float
    samples: int


def metric_series(conn: Connection, f: Filters, name: str, label: str) -> list[SeriesPoint]:
    """One metric's samples in the range, per time bucket and value of ``label`` (mean, max, count)."""
    bucket = bucket_of(f)
    series = func.coalesce(_label(label), "")
    rows = conn.execute(
        select(
            bucket.label("b"),
            series.label("s"),
            func.avg(MetricSampleRow.value),
            func.max(MetricSampleRow.value),
            func.count(),  # not count(id): (name, ts) INCLUDE (value, labels) then serves it index-only
        )
        .where(MetricSampleRow.name == name, in_range(MetricSampleRow.ts, f), *_metric_scope(f))
        .group_by("b", "s")
        .order_by("b", "s")
    ).all()
    return [SeriesPoint(_text(b), str(s), float(m), float(x), int(n)) for b, s, m, x, n in rows]


def error_rate(points: Iterable[SeriesPoint]) -> list[SeriesPoint]:
    """``hypercare_probe_success`` means turned into error rates (1 - success)."""
    return [SeriesPoint(p.at, p.series, round(1 - p.mean, 6), 1.0, p.samples) for p in points]


@dataclass(frozen=True, slots=True)
class LatestValue:
    name: str
    labels: str
    """``key=value`` pairs, comma separated."""
    value: float
    at: datetime


def latest_values(conn: Connection, f: Filters, names: Sequence[str]) -> list[LatestValue]:
    """Every series of the metrics ``names`` at their last scrape within the range. One query."""
    # the last scrape per metric: one max() per name, each a single probe of the (name, ts) index
    last = union_all(
        *(
            select(
                literal(name, String()).label("n"),
                select(func.max(MetricSampleRow.ts))
                .where(MetricSampleRow.name == name, in_range(MetricSampleRow.ts, f), *_metric_scope(f))
                .scalar_subquery()
                .label("t"),
            )
            for name in names
        )
    ).subquery()
    rows = conn.execute(
        select(MetricSampleRow.name, MetricSampleRow.labels, MetricSampleRow.value, MetricSampleRow.ts)
        .join(last, and_(MetricSampleRow.name == last.c.n, MetricSampleRow.ts == last.c.t))
        .where(*_metric_scope(f))
        .order_by(MetricSampleRow.name, MetricSampleRow.id)
    ).all()
    return [
        LatestValue(str(n), ", ".join(f"{k}={v}" for k, v in sorted((labels or {}).items())), float(v), ts)
        for n, labels, v, ts in rows
    ]


@dataclass(frozen=True, slots=True)
class Anomaly:
    at: datetime
    kind: str
    """``anomaly`` (a detector's alarm) or ``probe failure``."""
    series: str
    source: str
    severity: str
    summary: str


def anomalies(conn: Connection, f: Filters, *, limit: int = 500) -> list[Anomaly]:
    """Detector alarms (anomaly events that triggered) and failed probe runs in the range. Two queries."""
    ev_scope = [EventRecord.source.in_(f.sources)] if f.sources else []
    events = conn.execute(
        select(
            EventRecord.occurred_at,
            EventRecord.labels,
            EventRecord.source,
            EventRecord.severity,
            EventRecord.summary,
        )
        .where(
            EventRecord.producer == "anomaly",
            EventRecord.action == "trigger",
            in_range(EventRecord.occurred_at, f),
            *ev_scope,
        )
        .order_by(EventRecord.occurred_at.desc())
        .limit(limit)
    ).all()
    out = [
        Anomaly(at, "anomaly", str((labels or {}).get("series", "")), str(src), str(sev), str(summary))
        for at, labels, src, sev, summary in events
    ]
    probe_prefix = check_ids.probe("")
    probes = conn.execute(
        select(
            CheckResultRow.finished_at,
            CheckResultRow.check_id,
            CheckResultRow.source,
            CheckResultRow.status,
            CheckResultRow.error,
        )
        .where(
            CheckResultRow.check_id.like(f"{probe_prefix}%"),
            CheckResultRow.status.in_(("fail", "error")),
            in_range(CheckResultRow.finished_at, f),
            *_check_scope(f),
        )
        .order_by(CheckResultRow.finished_at.desc())
        .limit(limit)
    ).all()
    out += [
        Anomaly(
            at, "probe failure", str(check)[len(probe_prefix) :], str(src), str(status), str(err or status)
        )
        for at, check, src, status, err in probes
    ]
    return sorted(out, key=lambda a: a.at, reverse=True)[:limit]


# --- integrations ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InterfaceStatus:
    integration: str
    source: str
    backlog: float | None
    oldest_age_s: float | None
    failed: float | None
    at: datetime | None


def interfaces(conn: Connection, f: Filters) -> list[InterfaceStatus]:
    """Per integration interface: backlog, age of the oldest unprocessed message and failed messages at
    the last scrape in the range."""
    values = latest_values(conn, f, (INTEGRATION_BACKLOG, INTEGRATION_AGE, INTEGRATION_FAILED))
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for v in values:
        labels = dict(part.split("=", 1) for part in v.labels.split(", ") if "=" in part)
        key = (labels.get("integration", ""), labels.get("source", ""))
        entry = found.setdefault(key, {})
        entry[v.name] = v.value
        entry["at"] = max(entry.get("at", v.at), v.at)
    return [
        InterfaceStatus(
            i, s, e.get(INTEGRATION_BACKLOG), e.get(INTEGRATION_AGE), e.get(INTEGRATION_FAILED), e.get("at")
        )
        for (i, s), e in sorted(found.items())
    ]


def worst_age(rows: Iterable[InterfaceStatus]) -> float | None:
    ages = [r.oldest_age_s for r in rows if r.oldest_age_s is not None]
    return max(ages) if ages else None


def failing_checks(conn: Connection, f: Filters, prefix: str, *, limit: int = 200) -> list[Anomaly]:
    """Failed or errored runs of checks whose id starts with ``prefix`` in the range, latest first."""
    rows = conn.execute(
        select(
            CheckResultRow.finished_at,
            CheckResultRow.check_id,
            CheckResultRow.source,
            CheckResultRow.status,
            CheckResultRow.error,
            CheckResultRow.violations,
        )
        .where(
            or_(CheckResultRow.check_id.like(f"{prefix}%")),
            CheckResultRow.status.in_(("fail", "error")),
            in_range(CheckResultRow.finished_at, f),
            *_check_scope(f),
        )
        .order_by(CheckResultRow.finished_at.desc())
        .limit(limit)
    ).all()
    return [
        Anomaly(at, str(status), str(check), str(src), str(status), str(err or f"{viol} violation(s)"))
        for at, check, src, status, err, viol in rows
    ]
