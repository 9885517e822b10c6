"""Settings the monitor owns: monitored sources, HTTP probes, collectors, check packs, the scheduler and
dual-run comparisons. ``hypercare/config.py`` composes them into the one ``Settings``."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import Field, SecretStr, field_validator, model_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from core.settings import NAME_PATTERN, StrictModel, resolve_secret_env
from core.vocabulary import Priority
from monitor.intervals import parse_interval
from monitor.readonly import check_query

SOURCE_DIALECTS = frozenset({"postgresql", "mysql", "mariadb", "sqlite"})
"""The engines a monitored source may be on: those whose sessions Hypercare can make read-only and
time-bounded (``monitor.checks.make_read_only``). Any other is refused when the settings load."""


def _read_only_query(sql: str | None) -> str | None:
    """A validator: one query on the read-only allow-list (:mod:`monitor.readonly`)."""
    return None if sql is None else check_query(sql)


class SourceSettings(StrictModel):
    """A monitored system (the ERP database, its integration database, the legacy copy)."""

    url: SecretStr
    """SQLAlchemy URL. Use a least-privilege, read-only user (docs/operator-guide.md)."""
    description: str = ""
    currency: str = Field("EUR", pattern=r"^[A-Z]{3}$")
    """ISO 4217 code of the company currency its amounts are in: the ``currency`` label of money metrics."""
    statement_timeout_s: float = Field(30.0, gt=0, le=3600)
    allow_privileged: bool = False
    """Run even when the user may do more than read (a superuser, the tables' owner, EXECUTE on dblink or
    on server-signal/file functions; MariaDB: write grants). Off: such a source is refused at start-up and
    by ``hypercare config check`` (:mod:`monitor.privileges`). On: a warning is logged at start-up and
    ``/readyz`` names the source. docs/security.md, "The read-only guarantee"."""

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


class ProbeSettings(StrictModel):
    """An HTTP probe of an ERP transaction or API."""

    name: str = Field(pattern=NAME_PATTERN)
    url: str
    source: str = "erp"
    method: Literal["GET", "POST", "HEAD"] = "GET"
    expect_status: int = Field(200, ge=100, le=599)
    expect_body_contains: str | None = None
    timeout_s: float = Field(5.0, gt=0, le=120)
    latency_warn_s: float = Field(1.0, gt=0)
    latency_fail_s: float = Field(2.0, gt=0)
    severity: Priority = Priority.P2
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
        return resolve_secret_env(value)


class HostCollectorSettings(StrictModel):
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
    severity: Priority = Priority.P2


class DbHealthSettings(StrictModel):
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
    severity: Priority = Priority.P2


class IntegrationProbeSettings(StrictModel):
    """An integration interface watched by SQL: backlog, age of the oldest unprocessed message, failures.

    Each query returns one row, one column. ``oldest_sql`` returns the timestamp (naive UTC) of the oldest
    unprocessed message, or NULL when there is none. ``failed_sql`` may use ``:since`` (now - window_s).
    """

    name: str = Field(pattern=NAME_PATTERN, max_length=64)
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
    severity: Priority = Priority.P2
    runbook: str | None = None
    owner: str | None = None

    _sql = field_validator("backlog_sql", "oldest_sql", "failed_sql")(_read_only_query)


class JobMonitorSettings(StrictModel):
    """A scheduled job watched through its run history.

    ``sql`` returns its recent runs with columns ``started_at``, ``finished_at`` (NULL while running) and
    ``status``; it may use ``:since`` (now - lookback_s). Timestamps are naive UTC.
    """

    name: str = Field(pattern=NAME_PATTERN, max_length=64)
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
    severity: Priority = Priority.P2
    runbook: str | None = None
    owner: str | None = None

    _sql = field_validator("sql")(_read_only_query)


class TraceQuery(StrictModel):
    """One place a business document can be: a SQL query on a source with ``:key`` (the document key)."""

    name: str = Field(pattern=NAME_PATTERN, max_length=64)
    source: str
    sql: str

    _sql = field_validator("sql")(_read_only_query)


class CollectorSettings(StrictModel):
    """The technical collectors (monitor/collectors/): host, database health, integrations, jobs."""

    host: HostCollectorSettings = HostCollectorSettings()
    db_health: DbHealthSettings = DbHealthSettings()
    integrations: tuple[IntegrationProbeSettings, ...] = ()
    jobs: tuple[JobMonitorSettings, ...] = ()
    trace: tuple[TraceQuery, ...] = ()
    """Where a document is across systems: ``hypercare check trace KEY`` runs each query."""


class CheckSettings(StrictModel):
    packs: tuple[str, ...] = ()
    """Shipped check packs to load (monitor/packs/<name>.yaml: ``demo_erp``, ``tryton``, ``finance_recon``);
    none unless named. Every source a pack reads must be configured under ``sources:`` (`config check`)."""
    paths: tuple[Path, ...] = ()
    """Extra check files or directories of the user's."""
    sample_limit: int = Field(20, ge=0, le=1000)
    """Offending rows kept as a failing check's evidence, for checks that do not set their own."""


class SchedulerSettings(StrictModel):
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
        parse_interval(value)
        return value


class DualRunCriterion(StrictModel):
    """One exit criterion of the cutover gate (monitor/dualrun/readiness.py evaluates it).

    Kinds: ``consecutive_matches`` — the entity matched (nothing beyond tolerance) in each of the last
    ``runs`` daily runs (the latest run of each day counts); ``within_tolerance`` — the entity's latest run
    differs by at most ``max_money`` and ``max_differences``; ``match_rate`` — every entity named (all when
    ``entity`` is empty) reaches ``min_match_rate`` in its latest run; ``unexplained`` — at most
    ``max_count`` unexplained differences (not timing or mapping) in the latest runs, counting only
    entities whose unexplained money exceeds the materiality when ``above_materiality`` is set.
    """

    name: str = Field(pattern=NAME_PATTERN, max_length=64)
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


class DualRunSettings(StrictModel):
    """Dual-run comparisons during cutover: which run on the schedule, and the gate they must pass."""

    comparisons: tuple[Path, ...] = ()
    """Comparison files (YAML, monitor/dualrun/model.py documents them) run by `hypercare collect`."""
    schedule: str = "every 1d"
    scope: Literal["all", "today", "yesterday"] = "all"
    """What a scheduled run compares: everything, or the period (day or month) holding today/yesterday."""
    timeout_s: float = Field(3600.0, gt=0, le=86400)
    """How long one scheduled comparison may take."""
    severity: Priority = Priority.P3
    """Declared severity of a difference event before the money rules (anomaly/severity.py) adjust it."""
    explained: tuple[Literal["timing", "mapping", "data", "defect"], ...] = ("timing", "mapping")
    """Classifications that explain a difference; the others are unexplained variance."""
    exit_criteria: tuple[DualRunCriterion, ...] = Field(default_factory=_default_criteria)

    @field_validator("schedule")
    @classmethod
    def _interval(cls, value: str) -> str:
        parse_interval(value)
        return value

    @model_validator(mode="after")
    def _unique(self) -> DualRunSettings:
        names = [c.name for c in self.exit_criteria]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"exit_criteria: name(s) {', '.join(dupes)} appear twice")
        return self


class MonitorConfig(Protocol):
    """The slice of Hypercare's settings the monitor reads (``hypercare.config.Settings`` provides it)."""

    @property
    def sources(self) -> Mapping[str, SourceSettings]: ...

    @property
    def probes(self) -> tuple[ProbeSettings, ...]: ...

    @property
    def checks(self) -> CheckSettings: ...

    @property
    def collectors(self) -> CollectorSettings: ...

    @property
    def scheduler(self) -> SchedulerSettings: ...

    @property
    def dualrun(self) -> DualRunSettings: ...
