"""One definition per tile of the performance and integrations pages, shared with the drill-down table
below it: a tile is always a sum (or a pick) over the rows of its table, never a second query.

* Probe latency: per probe, runs, mean, p95 (nearest rank) and max in milliseconds. No mean across probes:
  a 5 ms health probe and a 2 s posting probe have nothing to average. The tile names the slowest probe
  by p95.
* Probe errors: per probe, runs and failed runs (``hypercare_probe_success`` samples of 0); the tile is
  failed runs / runs over the table's rows.
* Anomalies and probe failures: the tiles count the rows of the one table by kind.
* Integrations: an interface is known from its metrics (``integration=`` label), from its checks
  (``integration.<interface>.<signal>``, or a pack check whose id starts ``integration.``) and from its
  open tickets (check id ``integration.*``); each row carries its metrics when collected (None when not:
  "not collected", never 0), its failing checks and its open tickets.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, case, func, select

from core.vocabulary import OPEN_STATUSES
from dashboards.data import Filters, in_range, ratio, ticket_scope
from dashboards.data_monitor import (
    PROBE_LATENCY,
    Anomaly,
    InterfaceStatus,
    SeriesPoint,
    _label,
    _metric_scope,
    failing_checks,
    interfaces,
)
from monitor import check_ids
from monitor.models import MetricSampleRow
from tickets.models import Ticket

INTEGRATION_PREFIX = f"{check_ids.INTEGRATION}."


def _ms(seconds: object) -> float:
    return round(float(str(seconds)) * 1000, 1)


# --- probes ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProbeLatency:
    probe: str
    runs: int
    mean_ms: float
    p95_ms: float
    max_ms: float


def probe_latency(conn: Connection, f: Filters) -> list[ProbeLatency]:
    """Per probe: runs, mean, p95 (nearest rank) and max latency in the range, slowest p95 first. One
    query: a window ranks each probe's samples, the grouping picks the 95th-percentile rank."""
    probe = func.coalesce(_label("probe"), "")
    inner = (
        select(
            probe.label("probe"),
            MetricSampleRow.value.label("v"),
            func.row_number().over(partition_by=probe, order_by=MetricSampleRow.value).label("rn"),
            func.count().over(partition_by=probe).label("n"),
        )
        .where(MetricSampleRow.name == PROBE_LATENCY, in_range(MetricSampleRow.ts, f), *_metric_scope(f))
        .subquery()
    )
    at_p95 = inner.c.rn == (inner.c.n * 95 + 99) // 100  # nearest rank: ceil(n * 0.95)
    rows = conn.execute(
        select(
            inner.c.probe,
            func.count(),
            func.avg(inner.c.v),
            func.max(case((at_p95, inner.c.v))),
            func.max(inner.c.v),
        ).group_by(inner.c.probe)
    ).all()
    out = [ProbeLatency(str(p), int(n), _ms(m), _ms(q), _ms(x)) for p, n, m, q, x in rows]
    return sorted(out, key=lambda r: (-r.p95_ms, r.probe))


def slowest(rows: Sequence[ProbeLatency]) -> ProbeLatency | None:
    """The tile: the probe of the table with the highest p95."""
    return max(rows, key=lambda r: (r.p95_ms, r.probe), default=None)


@dataclass(frozen=True, slots=True)
class ProbeErrors:
    probe: str
    runs: int
    failed: int

    @property
    def error_rate(self) -> float | None:
        return ratio(self.failed, self.runs)


def probe_errors(success: Iterable[SeriesPoint]) -> list[ProbeErrors]:
    """Per probe, runs and failed runs from the ``hypercare_probe_success`` series (one sample per run, 1
    passed, 0 failed), most failures first."""
    sums: dict[str, list[float]] = {}
    for p in success:
        acc = sums.setdefault(p.series, [0, 0.0])
        acc[0] += p.samples
        acc[1] += (1 - p.mean) * p.samples
    out = [ProbeErrors(name, int(n), round(bad)) for name, (n, bad) in sums.items()]
    return sorted(out, key=lambda r: (-r.failed, r.probe))


def total_errors(rows: Iterable[ProbeErrors]) -> ProbeErrors:
    """The tile: every probe of the table together."""
    rows = list(rows)
    return ProbeErrors("all probes", sum(r.runs for r in rows), sum(r.failed for r in rows))


def count_by_kind(marks: Iterable[Anomaly]) -> dict[str, int]:
    """The anomaly tiles: the rows of the anomaly table per kind (``anomaly``, ``probe failure``)."""
    counts = {"anomaly": 0, "probe failure": 0}
    for m in marks:
        counts[m.kind] = counts.get(m.kind, 0) + 1
    return counts


# --- integrations ------------------------------------------------------------------------------------


def interface_of(check_id: str) -> str:
    """``finance-out`` of ``integration.finance-out.age``; a pack's own ``integration.stuck_messages`` is
    its own interface (its id names no other)."""
    parts = check_id.split(".")
    return parts[1] if len(parts) == 3 else check_id


@dataclass(frozen=True, slots=True)
class IntegrationTicket:
    id: int
    priority: str
    title: str
    status: str
    interface: str
    check_id: str
    age_h: float


def integration_tickets(conn: Connection, f: Filters, now: datetime) -> list[IntegrationTicket]:
    """Open tickets raised by an integration check (check id ``integration.*``), most urgent first."""
    rows = conn.execute(
        select(Ticket.id, Ticket.priority, Ticket.title, Ticket.status, Ticket.check_id, Ticket.created_at)
        .where(
            Ticket.status.in_(OPEN_STATUSES),
            Ticket.check_id.like(f"{INTEGRATION_PREFIX}%"),
            *ticket_scope(f),
        )
        .order_by(Ticket.priority, Ticket.created_at, Ticket.id)
        .limit(500)
    ).all()
    return [
        IntegrationTicket(int(i), str(p), str(t), str(s), interface_of(str(c)), str(c), _hours_since(now, at))
        for i, p, t, s, c, at in rows
    ]


@dataclass(frozen=True, slots=True)
class InterfaceRow:
    interface: str
    source: str
    backlog: float | None
    """None: no backlog metric collected for it (not zero)."""
    oldest_age_s: float | None
    failed_messages: float | None
    failing_checks: int
    open_tickets: int
    last_seen: datetime | None


@dataclass(frozen=True, slots=True)
class IntegrationStatus:
    rows: list[InterfaceRow]
    tickets: list[IntegrationTicket]
    checks: list[Anomaly]

    @property
    def metrics_collected(self) -> bool:
        return any(r.backlog is not None or r.failed_messages is not None for r in self.rows)

    @property
    def failed_messages(self) -> float | None:
        values = [r.failed_messages for r in self.rows if r.failed_messages is not None]
        return sum(values) if values else None

    @property
    def backlog(self) -> float | None:
        values = [r.backlog for r in self.rows if r.backlog is not None]
        return sum(values) if values else None

    @property
    def oldest_age_s(self) -> float | None:
        ages = [r.oldest_age_s for r in self.rows if r.oldest_age_s is not None]
        return max(ages) if ages else None


def integration_status(conn: Connection, f: Filters, now: datetime) -> IntegrationStatus:
    """Every interface known from metrics, failing checks or open tickets, with what each says."""
    metrics: list[InterfaceStatus] = interfaces(conn, f)
    tickets = integration_tickets(conn, f, now)
    checks = failing_checks(conn, f, INTEGRATION_PREFIX)
    rows: dict[str, dict[str, object]] = {}
    for m in metrics:
        rows[m.integration] = {
            "source": m.source,
            "backlog": m.backlog,
            "age": m.oldest_age_s,
            "failed": m.failed,
            "seen": m.at,
        }
    failing: dict[str, set[str]] = {}
    for c in checks:
        name = interface_of(c.series)
        failing.setdefault(name, set()).add(c.series)
        entry = rows.setdefault(name, {"source": c.source})
        seen = entry.get("seen")
        entry["seen"] = c.at if not isinstance(seen, datetime) else max(seen, c.at)
    open_per: dict[str, int] = {}
    for t in tickets:
        open_per[t.interface] = open_per.get(t.interface, 0) + 1
        rows.setdefault(t.interface, {"source": ""})
    out = [
        InterfaceRow(
            name,
            str(e.get("source") or ""),
            _num(e.get("backlog")),
            _num(e.get("age")),
            _num(e.get("failed")),
            len(failing.get(name, ())),
            open_per.get(name, 0),
            e["seen"] if isinstance(e.get("seen"), datetime) else None,  # type: ignore[arg-type]
        )
        for name, e in sorted(rows.items())
    ]
    return IntegrationStatus(out, tickets, checks)


def _num(value: object) -> float | None:
    return None if value is None else float(str(value))


def _hours_since(now: datetime, at: datetime) -> float:
    return round((now - at).total_seconds() / 3600, 1)
