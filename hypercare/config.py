"""Hypercare's one typed settings object.

Settings come from one YAML file (``hypercare.yaml``; the path is ``--config`` or ``HYPERCARE_CONFIG``) and
``HYPERCARE_*`` environment variables, which win over the file (nested keys use ``__``:
``HYPERCARE_SERVER__PORT=9000``). Everything is validated at start-up; a wrong key, type or value becomes
one :class:`ConfigError` naming the file, the key and what was expected.

Secrets (database passwords, apprise URLs, tokens) are :class:`pydantic.SecretStr` or are shown through
:func:`redact_url`; they never reach a log line or the terminal.
"""

from __future__ import annotations

import os
import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from hypercare.errors import ConfigError

DEFAULT_CONFIG_FILE = "hypercare.yaml"
PRIORITIES = ("P1", "P2", "P3", "P4")
Priority = Literal["P1", "P2", "P3", "P4"]
Category = Literal["data", "process", "technical", "user"]
Level = Literal["high", "medium", "low"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def redact_url(url: str) -> str:
    """A database or apprise URL with any password or token replaced by ``***``."""
    try:
        url = make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        url = re.sub(r"(//[^/@:]*:)[^/@]*@", r"\1***@", url)
    return re.sub(r"(?i)((?:token|key|secret|password|pass|apikey)=)[^&]*", r"\1***", url)


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    public_url: str | None = None
    """Base URL used in notifications (links to tickets). Defaults to http://host:port."""
    workers: int = Field(1, ge=1, le=32)
    """``hypercare serve`` processes. More than one needs a PostgreSQL store (the outbox claims rows with
    SKIP LOCKED there) and makes /metrics per process; 2 on 2 cores roughly doubles the queue's throughput."""
    pool_size: int = Field(20, ge=1, le=200)
    """Store connections kept open per process: as many as the requests a process serves at once (40
    threads), less what waits on the CPU anyway; fewer makes requests open and close overflow connections."""
    max_overflow: int = Field(10, ge=0, le=200)
    """Extra connections a process may open beyond ``pool_size`` at a peak (closed again after use)."""

    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


SOURCE_DIALECTS = frozenset({"postgresql", "mysql", "mariadb", "sqlite"})
"""The engines a monitored source may be on: those whose sessions Hypercare can make read-only and
time-bounded (``monitor.checks.make_read_only``). Any other is refused when the settings load."""


class SourceSettings(_Strict):
    """A monitored system (the ERP database, its integration database, the legacy copy)."""

    url: SecretStr
    """SQLAlchemy URL. Use a least-privilege, read-only user (docs/operator-guide.md)."""
    description: str = ""
    statement_timeout_s: float = Field(30.0, gt=0, le=3600)

    @field_validator("url")
    @classmethod
    def _read_only_engine(cls, value: SecretStr) -> SecretStr:
        try:
            dialect = make_url(value.get_secret_value()).get_backend_name()
        except ArgumentError:
            raise ValueError("is not a database URL (dialect+driver://user@host/database)") from None
        if dialect not in SOURCE_DIALECTS:
            raise ValueError(
                f"is a {dialect} database: Hypercare reads only PostgreSQL, MySQL/MariaDB and SQLite "
                "sources, the engines whose sessions it can make read-only"
            )
        return value


class ProbeSettings(_Strict):
    """An HTTP probe of an ERP transaction or API."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    url: str
    source: str = "erp"
    method: Literal["GET", "POST", "HEAD"] = "GET"
    expect_status: int = Field(200, ge=100, le=599)
    expect_body_contains: str | None = None
    timeout_s: float = Field(5.0, gt=0, le=120)
    latency_warn_s: float = Field(1.0, gt=0)
    latency_fail_s: float = Field(2.0, gt=0)
    severity: Priority = "P2"
    runbook: str | None = None
    owner: str | None = None
    tls_warn_days: float = Field(21.0, ge=0)
    tls_fail_days: float = Field(7.0, ge=0)
    """An https probe warns / fails when the server's certificate expires within this many days."""
    headers: dict[str, SecretStr] = {}
    """Request headers; values are secrets. ``{secret_env: NAME}`` reads the value from the environment
    variable NAME at start-up (an unset variable is a configuration error). Never logged or shown."""

    @field_validator("headers", mode="before")
    @classmethod
    def _headers_from_env(cls, value: Any) -> Any:
        return _resolve_secret_env(value)


def _resolve_secret_env(value: Any) -> Any:
    """Replace ``{secret_env: NAME}`` values of a mapping by the environment variable's content."""
    if not isinstance(value, dict):
        return value
    resolved: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, dict) and set(item) == {"secret_env"}:
            name = str(item["secret_env"])
            if name not in os.environ:
                raise ValueError(f"header '{key}': environment variable {name} is not set")
            resolved[key] = os.environ[name]
        elif isinstance(item, dict):
            raise ValueError(f"header '{key}': expected a text value or {{secret_env: NAME}}")
        else:
            resolved[key] = item
    return resolved


def _select_only(sql: str | None) -> str | None:
    if sql is not None and not re.match(r"^\s*(select|with)\b", sql, re.IGNORECASE):
        raise ValueError("must be a single SELECT (or WITH ... SELECT) statement")
    return sql


_NAME = r"^[a-z0-9][a-z0-9_.-]*$"


class HostCollectorSettings(_Strict):
    """The host Hypercare runs on (or shares with the ERP): CPU, memory, disks, network, ERP processes."""

    enabled: bool = True
    processes: tuple[str, ...] = ()
    """Process names of the ERP to watch (RSS, CPU, open files, threads); a missing one fails host.process."""
    mounts: tuple[str, ...] = ("/",)
    """Mount points whose usage is measured and checked (host.disk_usage)."""
    disk_warn_ratio: float = Field(0.85, gt=0, le=1)
    disk_fail_ratio: float = Field(0.95, gt=0, le=1)
    memory_warn_ratio: float = Field(0.90, gt=0, le=1)
    memory_fail_ratio: float = Field(0.97, gt=0, le=1)
    severity: Priority = "P2"


class DbHealthSettings(_Strict):
    """Database health of monitored sources (PostgreSQL, MySQL/MariaDB, SQLite); check ids ``db.*``."""

    sources: tuple[str, ...] = ()
    """Names under ``sources:`` to watch."""
    connections_warn_ratio: float = Field(0.8, gt=0, le=1)
    connections_fail_ratio: float = Field(0.95, gt=0, le=1)
    long_query_s: float = Field(300.0, gt=0)
    """A query running longer than this is long-running (db.long_queries fails when any is)."""
    idle_in_transaction_s: float = Field(300.0, gt=0)
    lock_wait_fail: int = Field(1, ge=1)
    """Sessions waiting on a lock at which db.lock_waits fails."""
    cache_hit_warn_ratio: float = Field(0.90, ge=0, le=1)
    replication_lag_warn_s: float = Field(60.0, gt=0)
    replication_lag_fail_s: float = Field(300.0, gt=0)
    severity: Priority = "P2"


class IntegrationProbeSettings(_Strict):
    """An integration interface watched by SQL: backlog, age of the oldest unprocessed message, failures.

    Each query returns one row, one column. ``oldest_sql`` returns the timestamp (naive UTC) of the oldest
    unprocessed message, or NULL when there is none. ``failed_sql`` may use ``:since`` (now - window_s).
    """

    name: str = Field(pattern=_NAME, max_length=64)
    source: str
    backlog_sql: str
    oldest_sql: str | None = None
    failed_sql: str | None = None
    window_s: float = Field(3600.0, gt=0)
    backlog_warn: int | None = Field(None, ge=0)
    backlog_fail: int | None = Field(None, ge=0)
    oldest_age_warn_s: float | None = Field(None, gt=0)
    oldest_age_fail_s: float | None = Field(None, gt=0)
    failed_fail: int = Field(1, ge=1)
    """Failed messages within the window at which integration.<name>.failed fails."""
    severity: Priority = "P2"
    runbook: str | None = None
    owner: str | None = None

    _sql = field_validator("backlog_sql", "oldest_sql", "failed_sql")(_select_only)


class JobMonitorSettings(_Strict):
    """A scheduled job watched through its run history.

    ``sql`` returns its recent runs with columns ``started_at``, ``finished_at`` (NULL while running) and
    ``status``; it may use ``:since`` (now - lookback_s). Timestamps are naive UTC.
    """

    name: str = Field(pattern=_NAME, max_length=64)
    source: str
    sql: str
    expected_interval_s: float = Field(gt=0)
    """The job runs at least this often; no start within it means it stopped (job.<name>.stale)."""
    lookback_s: float = Field(7 * 86400.0, gt=0)
    history: int = Field(10, ge=1, le=1000)
    """Previous runs whose median duration is the job's normal duration."""
    duration_warn_factor: float = Field(2.0, gt=1)
    duration_fail_factor: float = Field(4.0, gt=1)
    success_statuses: tuple[str, ...] = ("success", "succeeded", "ok", "done", "completed")
    severity: Priority = "P2"
    runbook: str | None = None
    owner: str | None = None

    _sql = field_validator("sql")(_select_only)


class TraceQuery(_Strict):
    """One place a business document can be: a SQL query on a source with ``:key`` (the document key)."""

    name: str = Field(pattern=_NAME, max_length=64)
    source: str
    sql: str

    _sql = field_validator("sql")(_select_only)


class CollectorSettings(_Strict):
    """The technical collectors (monitor/collectors/): host, database health, integrations, jobs."""

    host: HostCollectorSettings = HostCollectorSettings()
    db_health: DbHealthSettings = DbHealthSettings()
    integrations: tuple[IntegrationProbeSettings, ...] = ()
    jobs: tuple[JobMonitorSettings, ...] = ()
    trace: tuple[TraceQuery, ...] = ()
    """Where a document is across systems: ``hypercare check trace KEY`` runs each query."""


class NotificationTarget(_Strict):
    """An apprise URL and the tickets it is told about."""

    url: SecretStr
    min_priority: Priority = "P2"
    """Notify for tickets of this priority or more urgent (P1 is the most urgent)."""
    tags: tuple[str, ...] = ()
    """Only tickets matching one of these: a category, source, queue, check id or ``key=value`` label.
    Empty: every ticket of the priority."""


class NotificationSettings(_Strict):
    targets: tuple[NotificationTarget, ...] = ()
    dispatch_interval_s: float = Field(30.0, gt=0, le=3600)
    """How often the server delivers due notifications (new ones and retries) from the outbox."""
    max_attempts: int = Field(8, ge=1, le=100)
    retry_base_s: float = Field(30.0, gt=0)
    """Back-off before retry n is retry_base_s * 2**(n-1), capped at one hour."""
    page_priorities: tuple[Priority, ...] = ("P1", "P2")
    """Priorities paged at once; the others wait for the periodic digest."""
    digest_interval_s: float = Field(3600.0, gt=0)
    """How often held notifications go out as one digest per target."""


def _itil_matrix() -> dict[Level, dict[Level, Priority]]:
    return {
        "high": {"high": "P1", "medium": "P2", "low": "P3"},
        "medium": {"high": "P2", "medium": "P3", "low": "P4"},
        "low": {"high": "P3", "medium": "P4", "low": "P4"},
    }


class TriageSettings(_Strict):
    matrix: dict[Level, dict[Level, Priority]] = Field(default_factory=_itil_matrix)
    """Priority = matrix[impact][urgency] (ITIL). Every cell must be filled."""

    @field_validator("matrix")
    @classmethod
    def _complete(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        levels = {"high", "medium", "low"}
        if set(value) != levels or any(set(row) != levels for row in value.values()):
            raise ValueError("needs a priority for every impact x urgency pair of high/medium/low")
        return value


class TicketSettings(_Strict):
    reopen_window_h: float = Field(72.0, ge=0)
    """An event for a ticket resolved less than this many hours ago reopens it (no new ticket)."""
    group_threshold: int = Field(5, ge=1)
    """A failing check with more offending entities than this raises one grouped event, not one per entity."""
    auto_close_days: float = Field(7.0, gt=0)
    """Resolved tickets close by themselves after this many days (:func:`tickets.service.auto_close`)."""


# --- SLA, escalation and routing (tickets/sla.py, tickets/escalation.py, tickets/routing.py) -----------


class BusinessCalendar(_Strict):
    """When the SLA clock runs: weekdays (0 = Monday), ``start`` to ``end`` local time, except holidays."""

    timezone: str = "UTC"
    days: tuple[int, ...] = (0, 1, 2, 3, 4)
    start: str = Field("09:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field("18:00", pattern=r"^([01]\d|2[0-4]):[0-5]\d$")
    holidays: tuple[date, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Asia/Shanghai)") from None
        return value

    @field_validator("days")
    @classmethod
    def _weekdays(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(not 0 <= day <= 6 for day in value):
            raise ValueError("needs at least one weekday, each 0 (Monday) to 6 (Sunday)")
        return value

    @model_validator(mode="after")
    def _start_before_end(self) -> BusinessCalendar:
        if self.start >= self.end:
            raise ValueError(f"business hours start ({self.start}) must be before their end ({self.end})")
        return self


class SlaTarget(_Strict):
    response_min: float = Field(gt=0)
    """Business minutes to the first acknowledgement."""
    resolution_min: float = Field(gt=0)
    """Business minutes to resolution, not counting time spent waiting."""


def _default_sla_targets() -> dict[Priority, SlaTarget]:
    return {
        "P1": SlaTarget(response_min=30, resolution_min=24 * 60),
        "P2": SlaTarget(response_min=60, resolution_min=3 * 9 * 60),
        "P3": SlaTarget(response_min=8 * 60, resolution_min=10 * 9 * 60),
        "P4": SlaTarget(response_min=2 * 9 * 60, resolution_min=20 * 9 * 60),
    }


class SlaSettings(_Strict):
    targets: dict[Priority, SlaTarget] = Field(default_factory=_default_sla_targets)
    calendar: BusinessCalendar = BusinessCalendar()
    p1_24x7: bool = True
    """P1 clocks run around the clock (hypercare), ignoring the business calendar."""
    at_risk_ratio: float = Field(0.75, gt=0, lt=1)
    """A clock that has used this share of its target is at risk."""

    @field_validator("targets")
    @classmethod
    def _every_priority(cls, value: dict[str, SlaTarget]) -> dict[str, SlaTarget]:
        missing = [p for p in PRIORITIES if p not in value]
        if missing:
            raise ValueError(f"needs a target for every priority; missing {', '.join(missing)}")
        return value


class EscalationLevel(_Strict):
    """One step up. It fires once per ticket, in order, when its condition holds."""

    unacknowledged_min: float | None = Field(None, gt=0)
    """Fires when the ticket is still unacknowledged this many minutes after it opened (ack timeout)."""
    at_risk: bool = False
    """Fires when the ticket's response or resolution SLA is at risk (or breached)."""
    notify_tags: tuple[str, ...] = ()
    """Notify the targets carrying one of these tags (``notifications.targets[].tags``)."""
    raise_priority: bool = False

    @model_validator(mode="after")
    def _has_condition(self) -> EscalationLevel:
        if self.unacknowledged_min is None and not self.at_risk:
            raise ValueError("an escalation level needs unacknowledged_min or at_risk: true")
        return self


class EscalationSettings(_Strict):
    levels: dict[Priority, tuple[EscalationLevel, ...]] = {}
    """Levels per priority; none by default (nothing changes a ticket's priority unless configured)."""


class RoutingMatch(_Strict):
    labels: dict[str, str] = {}
    category: str | None = None
    source: str | None = None
    check: str | None = None
    """Glob on the check id (``gl.*``)."""


class RoutingRule(_Strict):
    match: RoutingMatch = RoutingMatch()
    queue: str | None = Field(None, min_length=1, max_length=64)
    assignee: str | None = None
    """Username of the default assignee."""
    continue_: bool = Field(False, alias="continue")
    """Keep evaluating later rules after this one matched (later matches win)."""


class RoutingSettings(_Strict):
    rules_file: Path | None = None
    """A YAML file holding a list of rules; they come after the inline ``rules``."""
    rules: tuple[RoutingRule, ...] = ()


class CheckSettings(_Strict):
    packs: tuple[str, ...] = ("demo_erp",)
    """Shipped check packs to load (monitor/packs/<name>.yaml)."""
    paths: tuple[Path, ...] = ()
    """Extra check files or directories of the user's."""
    sample_limit: int = Field(20, ge=0, le=1000)


class SchedulerSettings(_Strict):
    """How `hypercare collect` schedules checks, probes and collectors (monitor/scheduler.py)."""

    default_interval: str = "15m"
    """Interval of a unit whose check has no ``schedule``: ``every 15m``, ``30s``, ``1h``, ``1d``."""
    jitter_ratio: float = Field(0.1, ge=0, le=0.5)
    """Each next run lands at interval x (1 +/- up to this), so units do not fire in lockstep."""
    workers: int = Field(4, ge=1, le=64)
    """Threads running units inside one `hypercare collect` process."""
    per_source_concurrency: int = Field(2, ge=1, le=64)
    """Units of one source running at once in one process (do not load the ERP)."""
    unit_timeout_s: float = Field(300.0, gt=0, le=86400)
    """Wall-clock limit of one unit; a check also has its source's statement_timeout_s in the database."""
    lease_s: float = Field(30.0, ge=1, le=3600)
    """A running unit's lease is renewed every tick; a dead worker's lease is taken over this long after."""
    backoff_base_s: float = Field(30.0, gt=0)
    """First pause after a source is found down; doubles on each failed retry."""
    backoff_max_s: float = Field(900.0, gt=0)
    """Longest pause between retries of a source that is down."""
    tick_s: float = Field(1.0, gt=0, le=60)
    """How often the scheduler looks for due work, renews leases and checks timeouts."""

    @field_validator("default_interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        from monitor.units import parse_interval  # the one definition of the syntax

        parse_interval(value)
        return value


class FixedThreshold(_Strict):
    """A plain band a metric series must stay inside while its detectors are still warming up."""

    low: float | None = None
    high: float | None = None


class MultivariateGroup(_Strict):
    """Related metric series scored together by the multivariate model (anomaly/groups.py)."""

    name: str = Field(min_length=1, max_length=64)
    metrics: tuple[str, ...] = Field(min_length=1)
    """Metric names (from ``anomaly.metrics``) whose series of one source form the group."""
    sources: tuple[str, ...] = ()
    """Sources it applies to (one group per source); empty: every source."""


class MultivariateSettings(_Strict):
    """The multivariate model over related series of one source (``anomaly.multivariate``)."""

    enabled: bool = True
    groups: tuple[MultivariateGroup, ...] = ()
    """Empty: one group per source holding all its watched series. A series joins the first group
    that lists its metric and source; a group needs two series or more to be scored."""
    model: Literal["covariance", "iforest"] = "covariance"
    """``covariance``: robust Mahalanobis distance (MinCovDet); ``iforest``: IsolationForest."""
    align_seconds: int = Field(60, ge=1, le=86400)
    """Width of a slot of the alignment grid: the members' points in one slot form one vector."""
    stale_seconds: int = Field(900, ge=0)
    """A member without a point in a slot carries its last value if not older than this."""
    min_train: int = Field(288, ge=32)
    """Aligned vectors (counted once every member is past ``warmup_points``) before any score."""
    train_size: int = Field(1440, ge=32, le=20000)
    """Bounded training window: the last this many vectors (also what the store keeps)."""
    refit_every: int = Field(288, ge=1)
    window: int = Field(5, ge=1, le=60)
    """Vectors in the trailing mean added to each vector's features (sustained small deviations)."""
    threshold: float = Field(1.25, gt=0)
    """Score 0.5 at this multiple of the training rows' 99.5th-percentile distance above their median."""
    n_estimators: int = Field(100, ge=10, le=1000)
    """Trees of the ``iforest`` model."""
    max_series: int = Field(16, ge=2, le=64)
    """A group's members beyond this many (in series-name order) are left to their univariate alarms."""

    @model_validator(mode="after")
    def _sizes(self) -> MultivariateSettings:
        if self.train_size < self.min_train:
            raise ValueError("needs min_train <= train_size")
        return self


class AnomalySettings(_Strict):
    """anomaly/: money-aware severity rules over check results and the metric detectors' alarms."""

    currency: str = Field("CNY", min_length=3, max_length=3)
    """Company currency, the unit of ``materiality`` and of every amount at risk."""
    materiality: Decimal = Field(Decimal("500000"), ge=0, decimal_places=2)
    """An exception whose amount at risk reaches this is raised one priority level."""
    many_entities: int = Field(50, ge=2)
    """A failing check with this many offending documents/customers or more is raised one level."""
    close_window_before_days: int = Field(3, ge=0, le=15)
    close_window_after_days: int = Field(5, ge=0, le=15)
    """The period-close window: period end minus/plus these business days (needs ``calendar_file``)."""
    external_party_tags: tuple[str, ...] = ("bank", "tax", "customer", "supplier")
    """Check tags meaning an outside party (bank, tax authority, customer, supplier) is affected: +1 level."""
    workarounds: tuple[str, ...] = ()
    """Check ids with a documented workaround: -1 level while the amount is below materiality."""
    calendar_file: Path | None = None
    """Business calendar YAML (close days, payroll, holidays, cutover); anomaly/calendar.py documents it."""
    warmup_points: int = Field(288, ge=1)
    """Points a metric series needs before its detectors may alarm; ``fixed_thresholds`` cover the gap."""
    fixed_thresholds: dict[str, FixedThreshold] = {}
    """Per metric series name: the band that alarms during warm-up."""
    alarm_on: float = Field(0.5, gt=0, lt=1)
    """Anomaly score at or above which an alarm starts (after ``min_duration_points``)."""
    alarm_off: float = Field(0.3, ge=0, lt=1)
    """Score below which an active alarm counts towards recovery (hysteresis: below ``alarm_on``)."""
    alarm_instant: float = Field(0.9, gt=0, le=1)
    """A score this high starts an alarm at once, without waiting ``min_duration_points``."""
    min_duration_points: int = Field(3, ge=1)
    clear_points: int = Field(3, ge=1)
    """Consecutive points below ``alarm_off`` before an alarm resolves (no flapping, one incident)."""
    metrics: tuple[str, ...] = (
        "hypercare_probe_duration_seconds",
        "hypercare_integration_backlog_messages",
        "hypercare_integration_oldest_message_age_seconds",
        "hypercare_integration_failed_messages",
        "hypercare_db_connections",
        "hypercare_db_replication_lag_seconds",
        "hypercare_job_last_duration_seconds",
    )
    """Metric names whose series (one per label set) the collection pipeline streams through the
    detectors; ``[]`` switches metric anomaly detection off."""
    alarm_severity: Priority = "P3"
    """Declared severity of a metric alarm, before the severity rules (close window) adjust it."""
    slot_minutes: int = Field(60, ge=1, le=1440)
    """Width of a time-of-day slot of the seasonal baseline (must divide a day)."""
    multivariate: MultivariateSettings = MultivariateSettings()
    """Related series of one source scored together (see :class:`MultivariateSettings`)."""

    @model_validator(mode="after")
    def _hysteresis(self) -> AnomalySettings:
        if not self.alarm_off < self.alarm_on <= self.alarm_instant:
            raise ValueError("needs alarm_off < alarm_on <= alarm_instant")
        if 1440 % self.slot_minutes:
            raise ValueError("slot_minutes must divide a day (1440 minutes): 5, 10, 15, 30, 60...")
        return self


class AlertmanagerRule(_Strict):
    """Labels (all must be equal) -> what the ticket of a matching alert gets; unset fields fall through."""

    match: dict[str, str] = {}
    priority: Priority | None = None
    category: Category | None = None
    queue: str | None = Field(None, min_length=1, max_length=64)
    resolve_on_resolved: bool | None = None


def _alert_severities() -> dict[str, Priority]:
    return {"critical": "P1", "page": "P1", "error": "P2", "major": "P2", "warning": "P3", "info": "P4"}


class AlertmanagerSettings(_Strict):
    """``POST /api/v1/alertmanager``: how an Alertmanager alert's labels become a ticket's triage."""

    severity_label: str = "severity"
    severity_priority: dict[str, Priority] = Field(default_factory=_alert_severities)
    """Value of ``severity_label`` -> priority; other values get ``default_priority``."""
    default_priority: Priority = "P3"
    category_label: str = "category"
    """A label whose value, when it is a category (data/process/technical/user), sets the category."""
    default_category: Category = "technical"
    source_label: str = "job"
    """The label naming the monitored system (ticket ``source``); ``alertmanager`` when absent."""
    rules: tuple[AlertmanagerRule, ...] = ()
    """Ordered; the first rule matching sets each field it names (a later rule fills the ones it left)."""
    resolve_on_resolved: bool = True
    """A resolved alert resolves its open ticket. Off: the ticket stays open and gets a comment."""
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024)
    max_alerts: int = Field(1000, ge=1, le=100_000)


def _attachment_types() -> tuple[str, ...]:
    return (
        "application/pdf",
        "image/png",
        "image/jpeg",
        "image/gif",
        "text/plain",
        "text/csv",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    )


class ReportSettings(_Strict):
    """Employees' exception reports (``POST /api/v1/reports``) and their attachments."""

    storage_dir: Path | None = None
    """Where attachments are kept (random names). Default: <data_dir>/attachments."""
    max_attachments: int = Field(5, ge=0, le=50)
    max_attachment_bytes: int = Field(10 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    allowed_types: tuple[str, ...] = Field(default_factory=_attachment_types)
    """Content types accepted; each is also checked against the file's first bytes."""
    high_impact_amount: Decimal = Field(Decimal("10000"), ge=0)
    """An amount at risk from this much up makes the impact high, whoever is affected."""
    source: str = Field("erp", min_length=1, max_length=64)
    modules: tuple[str, ...] = ()
    """The ERP modules a reporter chooses from; empty: any name."""

    @field_validator("allowed_types")
    @classmethod
    def _never_active(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        active = {
            "text/html",
            "image/svg+xml",
            "application/javascript",
            "text/javascript",
            "application/xhtml+xml",
        }
        bad = sorted(set(value) & active)
        if bad:
            raise ValueError(f"{', '.join(bad)} can run script in a browser and cannot be allowed")
        return value


class ExitCriteriaSettings(_Strict):
    """Thresholds of the hypercare exit criteria the dashboard shows green or red (catalog section 4.4)."""

    max_open_p2: int = Field(3, ge=0)
    """Open P2 tickets allowed at exit (and 0 open P1)."""
    net_flow_days: int = Field(10, ge=1, le=90)
    """Consecutive days with inflow <= outflow needed."""
    sla_window_days: int = Field(14, ge=1, le=90)
    sla_min_ratio: float = Field(0.90, ge=0, le=1)
    """Response and resolution SLA compliance of P1-P2 over ``sla_window_days``."""
    max_reopen_ratio: float = Field(0.05, ge=0, le=1)
    min_check_pass_ratio: float = Field(0.98, ge=0, le=1)
    """Latest result of every data-consistency check: share passing."""
    max_interface_age_s: float = Field(3600.0, gt=0)
    """No integration's oldest unprocessed message may be older than this."""
    max_active_workarounds: int = Field(0, ge=0)


class DashboardSettings(_Strict):
    """``hypercare dashboard``: the managers' Streamlit dashboards (dashboards/)."""

    host: str = "127.0.0.1"
    port: int = Field(8501, ge=1, le=65535)
    go_live_date: date | None = None
    """Day 1 of hypercare; the overview shows "go-live day N" from it."""
    login_roles: tuple[str, ...] = ("viewer", "manager", "admin")
    """Hypercare roles that may log in to the dashboard. Every visitor logs in (Streamlit's client address
    is not trustworthy enough to let anyone in without one); bind ``host`` to loopback or a private
    interface."""
    cache_ttl_s: float = Field(60.0, ge=0, le=3600)
    """How long a page's query results are reused before the store is asked again."""
    statement_timeout_s: float = Field(30.0, gt=0, le=600)
    query_threads: int = Field(4, ge=1, le=16)
    """Queries of one page run at the same time, each on its own read-only connection (1: one by one)."""
    exit: ExitCriteriaSettings = ExitCriteriaSettings()

    @field_validator("login_roles")
    @classmethod
    def _roles(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        allowed = {"viewer", "manager", "admin", "agent", "oncall"}
        bad = [role for role in value if role not in allowed]
        if bad:
            raise ValueError(f"unknown or unsuitable role(s) {', '.join(bad)}; choose from {sorted(allowed)}")
        return value


class DualRunCriterion(_Strict):
    """One exit criterion of the cutover gate (monitor/dualrun/readiness.py evaluates it).

    Kinds: ``consecutive_matches`` — the entity matched (nothing beyond tolerance) in each of the last
    ``runs`` daily runs (the latest run of each day counts); ``within_tolerance`` — the entity's latest run
    differs by at most ``max_money`` and ``max_differences``; ``match_rate`` — every entity named (all when
    ``entity`` is empty) reaches ``min_match_rate`` in its latest run; ``unexplained`` — at most
    ``max_count`` unexplained differences (not timing or mapping) in the latest runs, counting only
    entities whose unexplained money exceeds the materiality when ``above_materiality`` is set.
    """

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=64)
    description: str = ""
    kind: Literal["consecutive_matches", "within_tolerance", "match_rate", "unexplained"]
    comparison: str | None = None
    """The comparison it concerns; empty: every configured comparison."""
    entity: str | None = None
    """The entity it concerns; needed by consecutive_matches and within_tolerance."""
    runs: int = Field(3, ge=1, le=366)
    max_money: Decimal = Field(Decimal(0), ge=0)
    max_differences: int | None = Field(None, ge=0)
    min_match_rate: float = Field(1.0, ge=0, le=1)
    max_count: int = Field(0, ge=0)
    above_materiality: bool = True
    materiality: Decimal | None = Field(None, ge=0)
    """Overrides the comparison's materiality for this criterion."""

    @model_validator(mode="after")
    def _entity_needed(self) -> DualRunCriterion:
        if self.kind in {"consecutive_matches", "within_tolerance"} and not self.entity:
            raise ValueError(f"entity: a {self.kind} criterion names the entity it watches")
        return self


def _default_criteria() -> tuple[DualRunCriterion, ...]:
    return (
        DualRunCriterion(
            name="no-unexplained-differences",
            description="Zero unexplained differences above materiality",
            kind="unexplained",
        ),
    )


class DualRunSettings(_Strict):
    """Dual-run comparisons during cutover: which run on the schedule, and the gate they must pass."""

    comparisons: tuple[Path, ...] = ()
    """Comparison files (YAML, monitor/dualrun/model.py documents them) run by `hypercare collect`."""
    schedule: str = "every 1d"
    scope: Literal["all", "today", "yesterday"] = "all"
    """What a scheduled run compares: everything, or the period (day or month) holding today/yesterday."""
    timeout_s: float = Field(3600.0, gt=0, le=86400)
    """How long one scheduled comparison may take."""
    severity: Priority = "P3"
    """Declared severity of a difference event before the money rules (anomaly/severity.py) adjust it."""
    explained: tuple[Literal["timing", "mapping", "data", "defect"], ...] = ("timing", "mapping")
    """Classifications that explain a difference; the others are unexplained variance."""
    exit_criteria: tuple[DualRunCriterion, ...] = Field(default_factory=_default_criteria)

    @field_validator("schedule")
    @classmethod
    def _interval(cls, value: str) -> str:
        from monitor.units import parse_interval  # the one definition of the syntax

        parse_interval(value)
        return value

    @model_validator(mode="after")
    def _unique(self) -> DualRunSettings:
        names = [c.name for c in self.exit_criteria]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"exit_criteria: name(s) {', '.join(dupes)} appear twice")
        return self


class RunbookSettings(_Strict):
    """Runbooks on tickets (tickets/diagnostics.py, tickets/verification.py)."""

    diagnostics: bool = True
    """Run the linked runbook's read-only diagnostics once when a ticket opens."""
    diagnostic_timeout_s: float = Field(10.0, gt=0, le=300)
    """Statement timeout of one diagnostic query (capped by the source's statement_timeout_s), and the
    timeout of one diagnostic HTTP request."""
    diagnostic_row_cap: int = Field(50, ge=1, le=1000)
    """Rows kept per diagnostic."""
    verify_resolves: bool = True
    """A passing `Verify` resolves the ticket (when its runbook's verification says resolve_on_pass)."""


class Settings(BaseSettings):
    """Everything Hypercare is told. Built by :func:`load_settings`, then passed in, never read globally."""

    model_config = SettingsConfigDict(
        env_prefix="HYPERCARE_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    data_dir: Path = Path(".hypercare")
    database_url: str | None = None
    """The Hypercare store. Default: SQLite at <data_dir>/hypercare.db."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "console"
    runbooks_dir: Path | None = None
    """Your own runbooks (*.md); one with the id of a shipped runbook replaces it."""
    runbooks: RunbookSettings = RunbookSettings()
    secret_key: SecretStr | None = None
    """Signs UI session cookies. Generated and kept in <data_dir>/secret_key when not set."""
    server: ServerSettings = ServerSettings()
    sources: dict[str, SourceSettings] = {}
    probes: tuple[ProbeSettings, ...] = ()
    checks: CheckSettings = CheckSettings()
    notifications: NotificationSettings = NotificationSettings()
    triage: TriageSettings = TriageSettings()
    tickets: TicketSettings = TicketSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    sla: SlaSettings = SlaSettings()
    escalation: EscalationSettings = EscalationSettings()
    routing: RoutingSettings = RoutingSettings()
    collectors: CollectorSettings = CollectorSettings()
    alertmanager: AlertmanagerSettings = AlertmanagerSettings()
    reports: ReportSettings = ReportSettings()
    anomaly: AnomalySettings = AnomalySettings()
    dualrun: DualRunSettings = DualRunSettings()
    dashboard: DashboardSettings = DashboardSettings()

    @field_validator("database_url")
    @classmethod
    def _valid_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"is not a database URL ({exc})") from None
        return value

    @field_validator("secret_key")
    @classmethod
    def _no_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            raw = value.get_secret_value()
            if raw.lower() in {"changeme", "change-me", "secret", "replace-me"} or len(raw) < 16:
                raise ValueError("must be a real secret of 16 characters or more, not a placeholder")
        return value

    @property
    def store_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'hypercare.db').as_posix()}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment wins over the YAML file, which arrives as init kwargs.
        return (env_settings, init_settings)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}:{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected a mapping of settings at the top level, got {type(data).__name__}"
        )
    return data


def _describe(error: Any, path: Path | None) -> str:
    loc = ".".join(str(part) for part in error["loc"]) or "(top level)"
    where = str(path) if path else "settings"
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{where}: unknown key '{loc}'"
    given = error.get("input")
    shown = "" if isinstance(given, dict | list) or "url" in loc or "secret" in loc else f" (got {given!r})"
    return f"{where}: key '{loc}': {error['msg']}{shown}"


def config_path(explicit: Path | None = None) -> Path | None:
    """The configuration file to read: --config, else $HYPERCARE_CONFIG, else ./hypercare.yaml if present."""
    if explicit is not None:
        return explicit
    env = os.environ.get("HYPERCARE_CONFIG")
    if env:
        return Path(env)
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.exists() else None


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read and validate the settings; raise :class:`ConfigError` with one readable line per problem."""
    chosen = config_path(path)
    data: dict[str, Any] = _read_yaml(chosen) if chosen is not None else {}
    data.update(overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        lines = [_describe(err, chosen) for err in exc.errors()]
        raise ConfigError("; ".join(lines)) from None
    except SettingsError as exc:  # e.g. HYPERCARE_SERVER='{bad': a nested setting's variable is not JSON
        raise ConfigError(f"environment: {exc} (a nested setting's variable must be JSON)") from None
