"""Dual-run comparisons through the pipeline: tickets that dedup on later runs and resolve when a run matches
again, and the configured comparisons run by the scheduler (`hypercare collect`)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import func, select

from anomaly.dualrun import RUNBOOK
from core.session import make_engine, session_factory
from hypercare.config import Settings
from hypercare.pipeline import process_dualrun
from monitor.dualrun.store import DualRunEntityResult, DualRunRun
from tests.monitor.dualrun_factory import comparison, day, diff, entity
from tickets.models import Occurrence, Ticket
from tickets.notify import RecordingNotifier


def test_pipeline_opens_a_ticket_dedups_the_next_run_and_resolves_when_it_matches(
    store_url: str, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, database_url=store_url)
    engine = make_engine(store_url)
    factory = session_factory(engine)
    notifier = RecordingNotifier()
    try:
        differing = entity("invoices", samples=[diff("XS-1", money="150.00")], period="2026-11")
        first = process_dualrun(
            settings,
            factory,
            comparison(differing, entity("customers"), as_of=date(2026, 11, 2)),
            notifier=notifier,
        )
        assert dict(first.outcomes) == {"opened": 1} and len(first.opened) == 1
        second = process_dualrun(settings, factory, comparison(differing, at=day(1)), notifier=notifier)
        assert dict(second.outcomes) == {"deduplicated": 1}
        fixed = entity("invoices", matched=99, period="2026-11")
        third = process_dualrun(settings, factory, comparison(fixed, at=day(2)), notifier=notifier)
        assert dict(third.outcomes) == {"resolved": 1}
        fourth = process_dualrun(settings, factory, comparison(fixed, at=day(3)), notifier=notifier)
        assert fourth.events == 0

        with factory() as session:
            (ticket,) = session.scalars(select(Ticket))
            assert ticket.id == first.opened[0]
            assert (ticket.status, ticket.priority, ticket.occurrence_count) == ("resolved", "P2", 2)
            assert ticket.runbook_id == RUNBOOK and ticket.check_id == "dualrun.cutover.invoices"
            assert ticket.entity == {"period": "2026-11"}
            occurrence = session.scalars(select(Occurrence).order_by(Occurrence.id)).first()
            assert occurrence is not None
            assert occurrence.evidence["differences"][0]["key"] == "document=XS-1"
            runs = session.scalar(select(func.count()).select_from(DualRunRun))
            results = session.scalar(select(func.count()).select_from(DualRunEntityResult))
            assert (runs, results) == (4, 5)
    finally:
        engine.dispose()


# --- scheduled: `hypercare collect` runs the configured comparisons -----------------------------------------

COMPARISON_FILE = """
name: nightly
legacy: legacy
new: erp
materiality: "1.00"
entities:
  - name: invoices
    legacy: {table: doc}
    new: {table: invoice}
    key: [{name: number, legacy: doc_no}]
    columns: [{name: total, legacy: gross, type: decimal, money: true}]
"""


def _sqlite(path: Path, ddl: str, rows: str) -> str:
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.execute(ddl)
        conn.execute(rows)
    return f"sqlite:///{path}"


def test_the_scheduler_runs_configured_comparisons_into_tickets(store_url: str, tmp_path: Path) -> None:
    import threading

    import httpx

    from hypercare.pipeline import scheduler_processor
    from monitor.scheduler import Scheduler, build_units

    legacy = _sqlite(
        tmp_path / "legacy.db",
        "CREATE TABLE doc (doc_no TEXT PRIMARY KEY, gross NUMERIC)",
        "INSERT INTO doc VALUES ('A', 10.00), ('B', 20.50), ('C', 7)",
    )
    new = _sqlite(
        tmp_path / "new.db",
        "CREATE TABLE invoice (number TEXT PRIMARY KEY, total NUMERIC)",
        "INSERT INTO invoice VALUES ('A', 10.0), ('B', 25.5)",
    )
    (tmp_path / "nightly.yaml").write_text(COMPARISON_FILE, encoding="utf-8")
    settings = Settings(
        data_dir=tmp_path,
        database_url=store_url,
        sources={"legacy": {"url": legacy}, "erp": {"url": new}},
        checks={"packs": []},
        dualrun={"comparisons": [str(tmp_path / "nightly.yaml")], "schedule": "every 1d"},
    )
    engine = make_engine(store_url)
    factory = session_factory(engine)
    try:
        with httpx.Client() as client:
            units = build_units(settings, [], http_client=client)
            (unit,) = [u for u in units if u.kind == "dualrun"]
            assert (unit.key, unit.source, unit.interval.days) == ("dualrun:nightly", "erp", 1)
            scheduler = Scheduler(settings, factory, units, scheduler_processor(settings, factory), seed=1)
            summary = scheduler.run(threading.Event(), once=True)
        assert summary.units_run >= 1
        with factory() as session:
            (ticket,) = session.scalars(select(Ticket))
            assert ticket.check_id == "dualrun.nightly.invoices" and ticket.priority == "P2"
            assert "1 changed, 1 missing in new" in ticket.title
            (stored,) = session.scalars(select(DualRunEntityResult))
            assert (stored.matched, stored.changed, stored.missing_in_new) == (1, 1, 1)
            assert session.scalar(select(DualRunRun.trigger)) == "scheduler"
    finally:
        engine.dispose()
