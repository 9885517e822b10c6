"""Database health of a monitored source: PostgreSQL, MySQL/MariaDB, SQLite. Read-only, time-bounded.

Metrics (label ``source``): ``hypercare_db_up``, ``hypercare_db_connections``,
``hypercare_db_max_connections``, ``hypercare_db_connections_usage_ratio``,
``hypercare_db_active_queries``, ``hypercare_db_long_running_queries``,
``hypercare_db_oldest_query_age_seconds``, ``hypercare_db_idle_in_transaction_sessions``,
``hypercare_db_lock_waiting_sessions``, ``hypercare_db_lock_blocking_sessions`` (PostgreSQL),
``hypercare_db_deadlocks_total`` (counter), ``hypercare_db_cache_hit_ratio`` (PostgreSQL),
``hypercare_db_size_bytes``, ``hypercare_db_replication_lag_seconds`` (PostgreSQL replicas),
``hypercare_db_wal_size_bytes`` (SQLite).

Checks (category technical, thresholds from ``collectors.db_health``):

* ``db.connections`` — connections / max_connections against connections_warn/fail_ratio;
* ``db.long_queries`` — queries running longer than long_query_s (fails when any);
* ``db.idle_in_transaction`` — sessions idle inside a transaction longer than idle_in_transaction_s (warns);
* ``db.lock_waits`` — sessions waiting on a lock (fails at lock_wait_fail);
* ``db.cache_hit_ratio`` — PostgreSQL buffer cache hit ratio below cache_hit_warn_ratio (warns);
* ``db.replication_lag`` — PostgreSQL replica replay lag against replication_lag_warn/fail_s.

SQLite has no server to watch: it yields size metrics only. A source that cannot be reached is a
``collector.db_health`` error result for that source and ``hypercare_db_up 0``.

Privileges: PostgreSQL needs ``pg_monitor`` (to see other sessions' queries); MySQL/MariaDB needs
``PROCESS`` (processlist, InnoDB transactions). A role without them sees only its own sessions, so the
session checks (``db.long_queries``, ``db.idle_in_transaction``, ``db.lock_waits``) would pass blind:
they are then errors that say which grant is missing, and ``hypercare_db_sees_all_sessions`` is 0.
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

from monitor import check_ids
from monitor.collectors.base import (
    COLLECTOR_ERRORS,
    CollectorOutput,
    as_float,
    check,
    error_result,
    grade,
    read_only,
    reason,
    sample,
    scalar,
)
from monitor.results import CheckResult
from monitor.settings import DbHealthSettings, SourceSettings
from monitor.sources import source_engine

_PG = """
SELECT
  (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS connections,
  current_setting('max_connections')::int AS max_connections,
  (SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid()) AS active,
  (SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid()
     AND clock_timestamp() - query_start > make_interval(secs => :long_s)) AS long_running,
  (SELECT COALESCE(max(EXTRACT(EPOCH FROM clock_timestamp() - query_start)), 0) FROM pg_stat_activity
     WHERE state = 'active' AND pid <> pg_backend_pid()) AS oldest_query_s,
  (SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'
     AND clock_timestamp() - state_change > make_interval(secs => :idle_s)) AS idle_in_tx,
  (SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock') AS lock_waiting,
  (SELECT count(DISTINCT b) FROM pg_stat_activity, unnest(pg_blocking_pids(pid)) AS b
     WHERE wait_event_type = 'Lock') AS lock_blocking,
  d.deadlocks, d.blks_hit, d.blks_read,
  pg_database_size(current_database()) AS size_bytes,
  pg_is_in_recovery() AS replica,
  CASE WHEN pg_is_in_recovery()
       THEN COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END AS lag_s,
  pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')
    OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS sees_all
FROM pg_stat_database d WHERE d.datname = current_database()
"""
SESSION_CHECKS = ("db.long_queries", "db.idle_in_transaction", "db.lock_waits")
"""Checks that count other sessions: blind without the monitoring grant."""
_BLIND = {
    "postgresql": "grant pg_monitor (or pg_read_all_stats) to it",
    "mysql": "grant PROCESS ON *.* to it",
}

_MY_STATUS = (
    "SHOW GLOBAL STATUS WHERE Variable_name IN "
    "('Threads_connected', 'Threads_running', 'Innodb_row_lock_current_waits', 'Innodb_deadlocks')"
)
_MY_QUERIES = """
SELECT COUNT(*) AS active,
       COALESCE(SUM(CASE WHEN TIME >= :long_s THEN 1 ELSE 0 END), 0) AS long_running,
       COALESCE(MAX(TIME), 0) AS oldest_query_s
FROM information_schema.PROCESSLIST
WHERE COMMAND NOT IN ('Sleep', 'Daemon', 'Binlog Dump') AND ID <> CONNECTION_ID()
"""
_MY_IDLE_TX = """
SELECT COUNT(*) FROM information_schema.INNODB_TRX t
JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
WHERE p.COMMAND = 'Sleep' AND TIMESTAMPDIFF(SECOND, t.trx_started, NOW()) >= :idle_s
"""
_MY_SIZE = (
    "SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.TABLES "
    "WHERE table_schema = DATABASE()"
)


def collect_db_health(
    name: str, source: SourceSettings, settings: DbHealthSettings, *, now: datetime
) -> CollectorOutput:
    """Health metrics and ``db.*`` checks of one source; never raises for an unreachable database."""
    started = datetime.now(UTC)
    url = source.url.get_secret_value()
    labels = {"source": name}
    try:
        engine = source_engine(url)
        try:
            with read_only(engine, source.statement_timeout_s) as conn:
                dialect = conn.dialect.name
                if dialect == "postgresql":
                    values = _postgres(conn, settings)
                elif dialect in {"mysql", "mariadb"}:
                    values = _mysql(conn, settings)
                elif dialect == "sqlite":
                    values = _sqlite(conn, make_url(url).database)
                else:
                    raise ValueError(f"database health is not supported for {dialect}")
        finally:
            engine.dispose()
    except COLLECTOR_ERRORS as exc:
        failed = error_result("db_health", name, reason(exc), started=started, severity=settings.severity)
        return [failed], [sample("hypercare_db_up", 0.0, labels, now)]
    samples = [sample("hypercare_db_up", 1.0, labels, now)]
    samples += [sample(f"hypercare_db_{key}", value, labels, now) for key, value in values.items()]
    results = _checks(name, values, settings, started)
    if values.get("sees_all_sessions", 1.0) == 0.0:
        results = [_blind(r, dialect, url) if r.check_id in SESSION_CHECKS else r for r in results]
    return results, samples


def _blind(result: CheckResult, dialect: str, url: str) -> CheckResult:
    """A session check whose role cannot see other sessions: an error naming the grant, never a pass."""
    user = make_url(url).username or "the monitoring user"
    grant = _BLIND.get("mysql" if dialect == "mariadb" else dialect, "grant it the monitoring role")
    return replace(
        result,
        status="error",
        violations=0,
        sample=[],
        entities=[],
        error=f"{user} sees only its own sessions, so this check cannot tell: {grant}",
    )


def _postgres(conn: Connection, settings: DbHealthSettings) -> dict[str, float]:
    params = {"long_s": settings.long_query_s, "idle_s": settings.idle_in_transaction_s}
    row = conn.execute(text(_PG), params).mappings().one()
    hit, read = as_float(row["blks_hit"], "blks_hit"), as_float(row["blks_read"], "blks_read")
    connections = as_float(row["connections"], "connections")
    maximum = as_float(row["max_connections"], "max_connections")
    values = {
        "connections": connections,
        "max_connections": maximum,
        "connections_usage_ratio": connections / maximum if maximum else 0.0,
        "active_queries": as_float(row["active"], "active"),
        "long_running_queries": as_float(row["long_running"], "long_running"),
        "oldest_query_age_seconds": as_float(row["oldest_query_s"], "oldest_query_s"),
        "idle_in_transaction_sessions": as_float(row["idle_in_tx"], "idle_in_tx"),
        "lock_waiting_sessions": as_float(row["lock_waiting"], "lock_waiting"),
        "lock_blocking_sessions": as_float(row["lock_blocking"], "lock_blocking"),
        "deadlocks_total": as_float(row["deadlocks"], "deadlocks"),
        "cache_hit_ratio": hit / (hit + read) if hit + read else 1.0,
        "size_bytes": as_float(row["size_bytes"], "size_bytes"),
    }
    if row["replica"]:
        values["replication_lag_seconds"] = as_float(row["lag_s"], "lag_s")
    values["sees_all_sessions"] = 1.0 if row["sees_all"] else 0.0
    return values


def _mysql(conn: Connection, settings: DbHealthSettings) -> dict[str, float]:
    status = {str(k): v for k, v in conn.exec_driver_sql(_MY_STATUS).all()}
    maximum = as_float(scalar(conn, "SELECT @@max_connections"), "max_connections")
    queries = conn.execute(text(_MY_QUERIES), {"long_s": settings.long_query_s}).mappings().one()
    connections = as_float(status.get("Threads_connected"), "Threads_connected")
    values = {
        "connections": connections,
        "max_connections": maximum,
        "connections_usage_ratio": connections / maximum if maximum else 0.0,
        "running_threads": as_float(status.get("Threads_running"), "Threads_running"),
        "active_queries": as_float(queries["active"], "active"),
        "long_running_queries": as_float(queries["long_running"], "long_running"),
        "oldest_query_age_seconds": as_float(queries["oldest_query_s"], "oldest_query_s"),
        "lock_waiting_sessions": as_float(
            status.get("Innodb_row_lock_current_waits"), "Innodb_row_lock_current_waits"
        ),
        "size_bytes": as_float(scalar(conn, _MY_SIZE), "database size"),
    }
    if "Innodb_deadlocks" in status:  # MariaDB; MySQL keeps it in INNODB_METRICS only
        values["deadlocks_total"] = as_float(status["Innodb_deadlocks"], "Innodb_deadlocks")
    values["sees_all_sessions"] = 1.0 if _has_process_privilege(conn) else 0.0
    # InnoDB's transaction table needs PROCESS too: without it the check is reported blind, not run.
    idle = (
        scalar(conn, _MY_IDLE_TX, {"idle_s": settings.idle_in_transaction_s})
        if values["sees_all_sessions"]
        else 0
    )
    values["idle_in_transaction_sessions"] = as_float(idle, "idle transactions")
    return values


def _has_process_privilege(conn: Connection) -> bool:
    """Whether this user sees every session in the processlist (PROCESS, or ALL PRIVILEGES on *.*)."""
    for (grant,) in conn.exec_driver_sql("SHOW GRANTS FOR CURRENT_USER()").all():
        text_ = str(grant).upper()
        if " ON *.* " in text_ and ("ALL PRIVILEGES" in text_ or "PROCESS" in text_.split(" ON ")[0]):
            return True
    return False


def _sqlite(conn: Connection, database: str | None) -> dict[str, float]:
    pages = as_float(scalar(conn, "PRAGMA page_count"), "page_count")
    page_size = as_float(scalar(conn, "PRAGMA page_size"), "page_size")
    values = {"size_bytes": pages * page_size}
    if database and database != ":memory:":
        wal = f"{database}-wal"
        values["wal_size_bytes"] = float(os.path.getsize(wal)) if os.path.exists(wal) else 0.0
    return values


def _checks(name: str, v: dict[str, float], s: DbHealthSettings, started: datetime) -> list[CheckResult]:
    finished = datetime.now(UTC)
    results: list[CheckResult] = []

    def add(signal: str, title: str, status: Any, measured: float, row: dict[str, Any]) -> None:
        results.append(
            check(
                check_ids.db(signal),
                name,
                title,
                status=status,
                started=started,
                finished=finished,
                severity=s.severity,
                measured=measured,
                offending=[{"metric": signal, **row}],
            )
        )

    if "connections_usage_ratio" in v:
        ratio = v["connections_usage_ratio"]
        add(
            "connections",
            "Database connections against max_connections",
            grade(ratio, s.connections_warn_ratio, s.connections_fail_ratio),
            ratio,
            {"connections": v["connections"], "max_connections": v["max_connections"]},
        )
    if "long_running_queries" in v:
        long_running = v["long_running_queries"]
        add(
            "long_queries",
            f"Queries running longer than {s.long_query_s:g}s",
            "fail" if long_running else "pass",
            long_running,
            {"long_running": long_running, "oldest_query_age_s": v["oldest_query_age_seconds"]},
        )
    if "idle_in_transaction_sessions" in v:
        idle = v["idle_in_transaction_sessions"]
        add(
            "idle_in_transaction",
            f"Sessions idle in a transaction longer than {s.idle_in_transaction_s:g}s",
            "warn" if idle else "pass",
            idle,
            {"sessions": idle},
        )
    if "lock_waiting_sessions" in v:
        waiting = v["lock_waiting_sessions"]
        add(
            "lock_waits",
            "Sessions waiting on locks",
            grade(waiting, None, s.lock_wait_fail),
            waiting,
            {"waiting": waiting, "blocking": v.get("lock_blocking_sessions")},
        )
    if "cache_hit_ratio" in v:
        ratio = v["cache_hit_ratio"]
        add(
            "cache_hit_ratio",
            "Buffer cache hit ratio",
            grade(ratio, s.cache_hit_warn_ratio, None, below=True),
            ratio,
            {"cache_hit_ratio": ratio},
        )
    if "replication_lag_seconds" in v:
        lag = v["replication_lag_seconds"]
        add(
            "replication_lag",
            "Replica replay lag",
            grade(lag, s.replication_lag_warn_s, s.replication_lag_fail_s),
            lag,
            {"lag_s": lag},
        )
    return results
