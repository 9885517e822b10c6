from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import OperationalError

from hypercare.config import Settings
from hypercare.serving import free_port
from monitor.collectors import run_collector
from monitor.collectors.dbhealth import SESSION_CHECKS, collect_db_health
from monitor.results import MetricSample
from monitor.settings import DbHealthSettings, SourceSettings
from tests.servers import MARIADB_URL, PG_URL, unavailable

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def values(samples: list[MetricSample]) -> dict[str, float]:
    return {s.name.removeprefix("hypercare_db_"): s.value for s in samples}


def source(url: str) -> SourceSettings:
    return SourceSettings(url=url)  # type: ignore[arg-type]


def test_sqlite_reports_size_and_wal_and_stays_read_only(tmp_path: Path) -> None:
    path = tmp_path / "erp.db"
    writer = sqlite3.connect(path)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("CREATE TABLE t (x TEXT)")
    writer.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 200)
    writer.commit()
    results, samples = collect_db_health("erp", source(f"sqlite:///{path}"), DbHealthSettings(), now=NOW)
    writer.close()
    v = values(samples)
    assert v["up"] == 1.0
    assert v["size_bytes"] >= 4096
    assert v["wal_size_bytes"] > 100_000  # the uncheckpointed inserts live in the WAL
    assert results == []
    assert {s.labels["source"] for s in samples} == {"erp"}


def test_missing_sqlite_file_is_an_error_result_not_an_exception(tmp_path: Path) -> None:
    results, samples = collect_db_health(
        "erp", source(f"sqlite:///{tmp_path / 'gone.db'}"), DbHealthSettings(), now=NOW
    )
    (err,) = results
    assert err.status == "error" and err.check_id == "collector.db_health" and err.source == "erp"
    assert "does not exist" in (err.error or "")
    assert values(samples) == {"up": 0.0}


def test_unreachable_server_is_an_error_result_with_the_reason(caplog: pytest.LogCaptureFixture) -> None:
    url = f"postgresql+psycopg://hc:s3cret-pw@127.0.0.1:{free_port()}/erp"
    settings = Settings(
        sources={"erp": {"url": url}},  # type: ignore[dict-item]
        collectors={"host": {"enabled": False}, "db_health": {"sources": ["erp"]}},  # type: ignore[arg-type]
    )
    with caplog.at_level("WARNING"):
        results, samples = run_collector("db_health:erp", settings, now=NOW)
    (err,) = results
    assert err.status == "error" and err.check_id == "collector.db_health"
    assert "OperationalError" in (err.error or "") and "s3cret-pw" not in (err.error or "")
    assert values(samples) == {"up": 0.0}
    record = next(r for r in caplog.records if "collector db_health on erp failed" in r.getMessage())
    assert record.source == "erp"  # type: ignore[attr-defined]
    assert "s3cret-pw" not in caplog.text


@pytest.fixture
def pg() -> str:
    engine = create_engine(PG_URL)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        unavailable("PostgreSQL", exc.orig)
    finally:
        engine.dispose()
    return PG_URL


@pytest.mark.postgres
def test_postgres_health_sees_lock_waits_long_queries_and_idle_transactions(pg: str) -> None:
    engine = create_engine(pg, isolation_level="AUTOCOMMIT")
    holder: Connection = engine.connect()
    holder.execute(text("SELECT pg_advisory_lock(734001)"))
    idle_engine = create_engine(pg)
    idle = idle_engine.connect()
    idle.execute(text("SELECT 1"))  # now idle in transaction
    waiter = threading.Thread(target=_block_on_lock, args=(pg,), daemon=True)
    waiter.start()
    try:
        time.sleep(1.2)
        settings = DbHealthSettings(long_query_s=0.5, idle_in_transaction_s=0.5, connections_warn_ratio=0.001)
        results, samples = collect_db_health("erp", source(pg), settings, now=NOW)
    finally:
        holder.execute(text("SELECT pg_advisory_unlock(734001)"))
        waiter.join(10)
        holder.close()
        idle.rollback()
        idle.close()
        idle_engine.dispose()
        engine.dispose()
    v = values(samples)
    assert v["up"] == 1.0 and v["max_connections"] >= 1
    assert v["connections"] >= 3
    assert v["lock_waiting_sessions"] >= 1 and v["lock_blocking_sessions"] >= 1
    assert v["long_running_queries"] >= 1 and v["oldest_query_age_seconds"] >= 1.0
    assert v["idle_in_transaction_sessions"] >= 1
    assert 0 < v["cache_hit_ratio"] <= 1 and v["size_bytes"] > 0 and v["deadlocks_total"] >= 0
    status = {r.check_id: r.status for r in results}
    assert status["db.lock_waits"] == "fail"
    assert status["db.long_queries"] == "fail"
    assert status["db.idle_in_transaction"] == "warn"
    assert status["db.connections"] == "warn"
    assert all(r.source == "erp" and r.category == "technical" for r in results)


def _block_on_lock(url: str) -> None:
    engine = create_engine(url)
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(734001)"))  # waits for the holder
        conn.execute(text("SELECT pg_advisory_unlock(734001)"))
        conn.rollback()
    engine.dispose()


@pytest.mark.postgres
def test_postgres_quiet_database_passes_connections_and_lock_checks(pg: str) -> None:
    results, _ = collect_db_health("erp", source(pg), DbHealthSettings(lock_wait_fail=1000), now=NOW)
    status = {r.check_id: r.status for r in results}
    assert status["db.connections"] == "pass" and status["db.lock_waits"] == "pass"
    assert {"db.long_queries", "db.idle_in_transaction", "db.cache_hit_ratio"} <= set(status)


@pytest.mark.mariadb
def test_mariadb_health_sees_threads_and_a_long_query() -> None:
    engine = create_engine(MARIADB_URL)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        unavailable("MariaDB", exc.orig)
    started = threading.Event()
    sleeper = threading.Thread(target=_sleep_query, args=(MARIADB_URL, started), daemon=True)
    sleeper.start()
    started.wait(5)
    time.sleep(1.5)
    results, samples = collect_db_health(
        "erp", source(MARIADB_URL), DbHealthSettings(long_query_s=1), now=NOW
    )
    sleeper.join(10)
    engine.dispose()
    v = values(samples)
    assert v["up"] == 1.0 and v["connections"] >= 2 and v["running_threads"] >= 1
    assert v["long_running_queries"] >= 1 and v["oldest_query_age_seconds"] >= 1
    assert v["max_connections"] > 0 and "deadlocks_total" in v and "size_bytes" in v
    status = {r.check_id: r.status for r in results}
    assert status["db.long_queries"] == "fail" and status["db.connections"] == "pass"
    assert status["db.lock_waits"] == "pass"


def _sleep_query(url: str, started: threading.Event) -> None:
    engine = create_engine(url)
    with engine.connect() as conn:
        started.set()
        conn.execute(text("SELECT SLEEP(3)"))
    engine.dispose()


@pytest.mark.postgres
def test_postgres_role_without_pg_monitor_reports_blind_session_checks_not_passes(pg: str) -> None:
    role = f"hc_blind_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN PASSWORD 'blind-pass-123'"))
    try:
        url = make_url(pg).set(username=role, password="blind-pass-123").render_as_string(hide_password=False)
        results, samples = collect_db_health("erp", source(url), DbHealthSettings(), now=NOW)
        by_id = {r.check_id: r for r in results}
        assert values(samples)["sees_all_sessions"] == 0.0
        for check_id in SESSION_CHECKS:
            assert by_id[check_id].status == "error", check_id
            assert f"{role} sees only its own sessions" in (by_id[check_id].error or "")
            assert "pg_monitor" in (by_id[check_id].error or "")
        assert by_id["db.connections"].status in {"pass", "warn", "fail"}  # not about other sessions
        with admin.connect() as conn:
            conn.execute(text(f"GRANT pg_monitor TO {role}"))
        results, samples = collect_db_health("erp", source(url), DbHealthSettings(), now=NOW)
        assert values(samples)["sees_all_sessions"] == 1.0
        assert all(r.status != "error" for r in results if r.check_id in SESSION_CHECKS)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP OWNED BY {role}"))
            conn.execute(text(f"DROP ROLE {role}"))
        admin.dispose()


@pytest.mark.mariadb
def test_mariadb_user_without_process_reports_blind_session_checks_not_passes() -> None:
    admin = create_engine(MARIADB_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        unavailable("MariaDB", exc.orig)
    user = f"hc_blind_{uuid.uuid4().hex[:8]}"
    database = make_url(MARIADB_URL).database
    with admin.connect() as conn:
        conn.execute(text(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'blind-pass-123'"))
        conn.execute(text(f"CREATE USER '{user}'@'localhost' IDENTIFIED BY 'blind-pass-123'"))
        for host in ("%", "localhost"):
            conn.execute(text(f"GRANT SELECT ON `{database}`.* TO '{user}'@'{host}'"))
    try:
        url = (
            make_url(MARIADB_URL)
            .set(username=user, password="blind-pass-123")
            .render_as_string(hide_password=False)
        )
        results, samples = collect_db_health("erp", source(url), DbHealthSettings(), now=NOW)
        by_id = {r.check_id: r for r in results}
        assert values(samples)["sees_all_sessions"] == 0.0
        for check_id in ("db.long_queries", "db.idle_in_transaction", "db.lock_waits"):
            assert by_id[check_id].status == "error", check_id
            assert "PROCESS" in (by_id[check_id].error or "")
    finally:
        with admin.connect() as conn:
            for host in ("%", "localhost"):
                conn.execute(text(f"DROP USER IF EXISTS '{user}'@'{host}'"))
        admin.dispose()
