"""The scheduler in one process: schedules, jitter, leases, per-source limits, timeouts, source outages.

Real store (SQLite and PostgreSQL), real SQLite "ERP" files, the real pipeline; time is injected where the
test needs to move it.
"""

from __future__ import annotations

import itertools
import logging
import random
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from anomaly.events import fingerprint
from core.errors import ConfigError
from core.session import make_engine, session_factory, session_scope
from hypercare.config import Settings, load_settings
from hypercare.pipeline import scheduler_processor
from monitor import leases
from monitor.checks import CheckDefinitionError, CheckSpec, parse_checks
from monitor.models import CheckResultRow, WorkLease
from monitor.scheduler import RunSummary, ScheduleError, Scheduler, build_units, next_due, parse_interval
from tickets.models import Ticket

SLOW_SQL = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < :n) SELECT x AS n FROM c WHERE x < 0"


def make_erp(path: Path, quantities: list[int]) -> str:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, qty INTEGER NOT NULL)")
    conn.executemany("INSERT INTO item (qty) VALUES (?)", [(q,) for q in quantities])
    conn.commit()
    conn.close()
    return f"sqlite:///{path}"


def checks_yaml(*specs: dict[str, Any]) -> list[CheckSpec]:
    import yaml

    return parse_checks(yaml.safe_dump({"checks": list(specs)}), "test")


def check(id_: str, source: str = "erp", **extra: Any) -> dict[str, Any]:
    return {
        "id": id_,
        "title": f"Check {id_}",
        "source": source,
        "sql": "SELECT id FROM item WHERE qty < 0",
        "key_columns": ["id"],
        "category": "data",
        "severity": "P2",
        **extra,
    }


def slow(id_: str, source: str = "erp", n: int = 1_500_000, **extra: Any) -> dict[str, Any]:
    return check(id_, source, sql=SLOW_SQL, params={"n": n}, key_columns=[], **extra)


def settings_for(store_url: str, tmp_path: Path, sources: dict[str, str], **scheduler: Any) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=store_url,
        sources={name: {"url": url} for name, url in sources.items()},
        checks={"packs": []},
        collectors={"host": {"enabled": False}},
        scheduler={"jitter_ratio": 0.0, "tick_s": 0.05, **scheduler},
    )


class Harness:
    def __init__(self, settings: Settings, checks: list[CheckSpec]) -> None:
        self.settings = settings
        self.engine = make_engine(settings.store_url)
        self.factory: sessionmaker[Session] = session_factory(self.engine)
        self.client = httpx.Client()
        self.units = build_units(settings, checks, http_client=self.client)
        self.now = datetime.now(UTC).replace(microsecond=0)

    def scheduler(self, worker: str = "w1", **kwargs: Any) -> Scheduler:
        processor = scheduler_processor(self.settings, self.factory)
        return Scheduler(
            self.settings, self.factory, self.units, processor, worker_id=worker, seed=7,
            clock=lambda: self.now, **kwargs,
        )  # fmt: skip

    def once(self, worker: str = "w1") -> RunSummary:
        return self.scheduler(worker).run(threading.Event(), once=True)

    def leases(self) -> dict[str, WorkLease]:
        with self.factory() as session:
            return {row.key: row for row in session.scalars(select(WorkLease))}

    def close(self) -> None:
        self.client.close()
        self.engine.dispose()


@pytest.fixture
def harness(store_url: str, tmp_path: Path) -> Any:
    made: list[Harness] = []

    def build(sources: dict[str, str], checks: list[CheckSpec], **scheduler: Any) -> Harness:
        h = Harness(settings_for(store_url, tmp_path, sources, **scheduler), checks)
        made.append(h)
        return h

    yield build
    for h in made:
        h.close()


# --- schedule syntax and jitter ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"), [("every 15m", 900), ("5m", 300), ("1h", 3600), ("30s", 30), ("every 2d", 172800)]
)
def test_interval_syntax(text: str, seconds: int) -> None:
    assert parse_interval(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["15", "every 15 minutes", "0s", "-5m", "hourly", ""])
def test_bad_interval_is_a_clear_error(text: str) -> None:
    with pytest.raises(ScheduleError, match=r"is not|at least 1s"):
        parse_interval(text)


def test_bad_default_interval_in_settings_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "h.yaml").write_text("scheduler: {default_interval: 'sometimes'}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"scheduler\.default_interval.*sometimes"):
        load_settings(tmp_path / "h.yaml")


def test_bad_check_schedule_names_the_check_when_the_checks_load() -> None:
    with pytest.raises(CheckDefinitionError, match=r"check neg: field 'schedule'.*'twice a day'"):
        checks_yaml(check("neg", schedule="twice a day"))


def test_jitter_is_seeded_and_bounded() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    hour = timedelta(hours=1)
    seeded = [random.Random(3) for _ in range(2)]  # noqa: S311 - jitter, not cryptography
    first = [next_due(start, hour, 0.1, rng) for rng in seeded]
    assert first[0] == first[1]  # same seed, same schedule
    rng = random.Random(3)  # noqa: S311 - jitter, not cryptography
    dues = [next_due(start, hour, 0.1, rng) for _ in range(200)]
    assert all(start + hour * 0.9 <= d <= start + hour * 1.1 for d in dues)
    assert len(set(dues)) > 100  # spread, not lockstep
    assert next_due(start, hour, 0.0, rng) == start + hour


# --- one pass ----------------------------------------------------------------------------------------


def test_a_pass_runs_every_unit_once_through_the_pipeline_and_schedules_the_next(
    harness: Callable[..., Harness], tmp_path: Path
) -> None:
    erp = make_erp(tmp_path / "erp.db", [5, -1, 3])
    h = harness({"erp": erp}, checks_yaml(check("neg", schedule="every 1h"), check("neg.copy")))
    summary = h.once()
    assert summary.units_run == 2 and summary.statuses == {"fail": 2}
    rows = h.leases()
    assert rows["check:neg"].next_due_at == h.now + timedelta(hours=1)
    assert rows["check:neg.copy"].next_due_at == h.now + timedelta(minutes=15)  # the default interval
    assert all(r.leased_by is None and r.run_count == 1 for k, r in rows.items() if k.startswith("check:"))
    assert rows["source:erp"].next_due_at is None  # a healthy source is not polled on its own
    with h.factory() as session:
        assert session.scalar(select(func.count()).select_from(CheckResultRow)) == 2
        assert {t.check_id for t in session.scalars(select(Ticket))} == {"neg", "neg.copy"}
    # Nothing is due before the next run: a continuous worker leases nothing.
    with session_scope(h.factory) as session:
        assert leases.claim(session, [u.key for u in h.units], "w2", h.now, lease_s=30, limit=10) == []


def test_per_source_concurrency_is_a_limit(harness: Callable[..., Harness], tmp_path: Path) -> None:
    erp = make_erp(tmp_path / "erp.db", [1])
    h = harness(
        {"erp": erp}, checks_yaml(*(slow(f"slow.{i}") for i in range(4))), workers=4, per_source_concurrency=1
    )
    summary = h.once()
    assert summary.units_run == 4
    with h.factory() as session:
        spans = sorted((r.started_at, r.finished_at) for r in session.scalars(select(CheckResultRow)))
    assert len(spans) == 4
    assert all(prev[1] <= nxt[0] for prev, nxt in itertools.pairwise(spans)), spans


def test_a_unit_past_its_timeout_is_an_error_and_keeps_its_lease_until_it_ends(
    harness: Callable[..., Harness], tmp_path: Path
) -> None:
    erp = make_erp(tmp_path / "erp.db", [1])
    h = harness({"erp": erp}, checks_yaml(slow("slow", n=6_000_000)), unit_timeout_s=0.2)
    seen_leased: list[str | None] = []

    def watch(_finished: int) -> None:
        seen_leased.append(h.leases()["check:slow"].leased_by)

    summary = h.scheduler(after_tick=watch).run(threading.Event(), once=True)
    assert summary.timed_out == 1
    with h.factory() as session:
        (result,) = session.scalars(select(CheckResultRow))
    assert result.status == "error" and "timed out after 0.2s" in (result.error or "")
    assert seen_leased.count("w1") >= 2  # still held while the query ran on after the timeout
    assert h.leases()["check:slow"].leased_by is None


# --- leases --------------------------------------------------------------------------------------------


def test_an_expired_lease_is_taken_over_and_the_late_worker_cannot_finish_it(
    harness: Callable[..., Harness], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness({"erp": make_erp(tmp_path / "erp.db", [1])}, checks_yaml(check("neg")))
    keys = ["check:neg"]
    t0 = h.now
    with session_scope(h.factory) as session:
        leases.seed(session, [leases.UnitRow("check:neg", "check", "erp", t0)])
    with session_scope(h.factory) as session:
        (row,) = leases.claim(session, keys, "a", t0, lease_s=10, limit=5)
        leases.take(row, "a", t0, 10)
    with session_scope(h.factory) as session:
        assert leases.claim(session, keys, "b", t0 + timedelta(seconds=9), lease_s=10, limit=5) == []
    with caplog.at_level(logging.WARNING, logger="monitor.leases"), session_scope(h.factory) as session:
        (row,) = leases.claim(session, keys, "b", t0 + timedelta(seconds=11), lease_s=10, limit=5)
        leases.take(row, "b", t0 + timedelta(seconds=11), 10)
    taken = [r for r in caplog.records if r.getMessage() == "lease taken over"]
    assert [(r.__dict__["previous_holder"], r.__dict__["worker"]) for r in taken] == [("a", "b")]
    with session_scope(h.factory) as session:
        assert not leases.finish(
            session, "check:neg", "a", t0 + timedelta(seconds=12), next_due_at=None, status="pass"
        )
        assert leases.finish(
            session, "check:neg", "b", t0 + timedelta(seconds=12), next_due_at=t0, status="pass"
        )


# --- a source that is down -------------------------------------------------------------------------------


def test_a_down_source_is_one_event_backs_off_and_resolves_when_it_answers(
    harness: Callable[..., Harness], tmp_path: Path
) -> None:
    missing = tmp_path / "erp.db"
    h = harness(
        {"erp": f"sqlite:///{missing}"},
        checks_yaml(check("neg"), check("neg.b"), check("neg.c")),
        backoff_base_s=60,
        backoff_max_s=100,
    )
    outage = fingerprint("source-down", "erp")

    first = h.once()
    assert first.statuses["error"] >= 1
    with h.factory() as session:
        tickets = list(session.scalars(select(Ticket)))
    assert [(t.fingerprint, t.status, t.category) for t in tickets] == [(outage, "new", "technical")]
    source = h.leases()["source:erp"]
    assert source.consecutive_failures == 1
    assert source.backoff_until == h.now + timedelta(seconds=60)

    # While backing off, nothing of the source is leased: neither its checks nor a ping.
    with session_scope(h.factory) as session:
        keys = [u.key for u in h.units]
        assert leases.claim(session, keys, "w2", h.now + timedelta(seconds=59), lease_s=30, limit=10) == []
    # After the pause one ping fails again: the pause doubles (capped), still the one ticket.
    h.now += timedelta(seconds=61)
    with session_scope(h.factory) as session:
        due = leases.claim(session, keys, "w2", h.now, lease_s=30, limit=10)
        assert [r.key for r in due] == ["source:erp"]
    h.once()
    source = h.leases()["source:erp"]
    assert source.consecutive_failures == 2
    assert source.backoff_until == h.now + timedelta(seconds=100)
    with h.factory() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 1

    make_erp(missing, [1, 2])  # the database is back, and clean
    h.now += timedelta(seconds=101)
    back = h.once()
    assert back.statuses == {"pass": 3}
    with h.factory() as session:
        (ticket,) = session.scalars(select(Ticket))
    assert ticket.fingerprint == outage and ticket.status == "resolved"
    assert h.leases()["source:erp"].consecutive_failures == 0
