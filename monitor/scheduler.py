"""The scheduler behind `hypercare collect`: checks, probes and collectors on their own schedules.

Each check, HTTP probe and collector is a *unit* with an interval (the check's ``schedule``, else
``scheduler.default_interval``). Every tick a worker leases due units from the store (monitor/leases.py),
runs them on a thread pool (at most ``per_source_concurrency`` per source, each within
``unit_timeout_s``) and hands each unit's results to the pipeline in one transaction that also releases
the lease and schedules the next run at interval x (1 +/- jitter).

A check that errors makes the scheduler ping its source. A source that does not answer is *down*: its
units stop being leased, one technical event reports the outage, and one worker retries the source with
exponential back-off; the first success resolves the event and the units resume. monitor/ knows no
tickets: the pipeline is injected as ``processor`` (hypercare.pipeline.scheduler_processor).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from core.session import session_scope
from monitor import leases
from monitor.collect import Collection
from monitor.intervals import MIN_INTERVAL, ScheduleError, parse_interval
from monitor.leases import SourceChange, UnitRow
from monitor.results import CheckResult, MetricSample
from monitor.settings import MonitorConfig
from monitor.units import (
    READS_SOURCE,
    UnitOutcome,
    build_units,
    next_due,
    ping_source,
)
from monitor.work import WorkUnit

__all__ = [
    "MIN_INTERVAL",
    "RunSummary",
    "ScheduleError",
    "Scheduler",
    "UnitOutcome",
    "WorkUnit",
    "build_units",
    "next_due",
    "parse_interval",
]

log = logging.getLogger(__name__)

Finish = Callable[[Session], Sequence[SourceChange]]
Processor = Callable[[UnitOutcome, Finish], None]
_SEVERITY_ORDER = {"pass": 0, "warn": 1, "fail": 2, "error": 3}


@dataclass
class _Flight:
    unit: WorkUnit
    started: datetime
    deadline: float
    future: Future[None] | None = None
    state: Literal["running", "processing", "abandoned"] = "running"
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class RunSummary:
    statuses: Counter[str] = field(default_factory=Counter)
    results: list[CheckResult] = field(default_factory=list)
    units_run: int = 0
    timed_out: int = 0


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Scheduler:
    """Leases and runs units until stopped (or, ``once``, until every unit ran once in this process)."""

    def __init__(
        self,
        settings: MonitorConfig,
        factory: sessionmaker[Session],
        units: Sequence[WorkUnit],
        processor: Processor,
        *,
        worker_id: str | None = None,
        seed: int | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        after_tick: Callable[[int], None] | None = None,
    ) -> None:
        self.settings = settings
        self.conf = settings.scheduler
        self.factory = factory
        self.units = {u.key: u for u in units}
        self.processor = processor
        self.worker_id = worker_id or default_worker_id()
        self.rng = random.Random(seed)  # noqa: S311 - jitter, not cryptography; seeded in tests
        self.clock = clock
        self.after_tick = after_tick
        self.lease_s = max(self.conf.lease_s, 3 * self.conf.tick_s)
        self._flights: dict[str, _Flight] = {}
        self._done: set[str] = set()
        self._down: set[str] = set()
        self._guard = threading.Lock()
        self._wake = threading.Event()
        self.hurry = threading.Event()
        """Set (a second SIGTERM/Ctrl-C) to stop waiting for running units and release their leases now."""
        self.summary = RunSummary()
        self.keep_results = False
        """Keep every result in :attr:`summary` (``--once`` prints them; a long run would grow forever)."""

    # --- the loop ----------------------------------------------------------------------------------

    def run(self, stop: threading.Event, *, once: bool = False) -> RunSummary:
        self.keep_results = self.keep_results or once
        self._seed()
        log.info(
            "scheduler started",
            extra={"worker": self.worker_id, "units": len(self.units), "workers": self.conf.workers},
        )
        pool = ThreadPoolExecutor(max_workers=self.conf.workers, thread_name_prefix="hypercare-unit")
        try:
            while not stop.is_set():
                try:
                    finished = self._reap()
                    self._renew()
                    started = self._claim(pool, once=once)
                    if self.after_tick is not None:
                        self.after_tick(finished)
                except SQLAlchemyError as exc:  # the store is briefly unavailable or busy: retry next tick
                    log.error("store error in the scheduler loop; retrying", extra={"error": str(exc)[:300]})
                    started = -1
                if once and started == 0 and not self._flights:
                    break
                # Sleep a tick, or less: a unit that ends wakes the loop to lease the next one at once.
                self._wake.wait(self.conf.tick_s)
                self._wake.clear()
            self._drain()
        finally:
            with session_scope(self.factory) as session:
                released = leases.release_all(session, self.worker_id)
            pool.shutdown(wait=False, cancel_futures=True)
            log.info("scheduler stopped", extra={"worker": self.worker_id, "leases_released": released})
        return self.summary

    def _seed(self) -> None:
        now = self.clock()
        rows = [
            UnitRow(
                u.key,
                u.kind,
                u.source,
                None
                if u.kind == "source"
                else now + u.interval * self.rng.uniform(0, self.conf.jitter_ratio),
            )
            for u in self.units.values()
        ]
        with session_scope(self.factory) as session:
            leases.seed(session, rows)

    def _claim(self, pool: ThreadPoolExecutor, *, once: bool) -> int:
        free = self.conf.workers - len(self._flights)
        if free <= 0:
            return 0
        now = self.clock()
        busy = Counter(f.unit.source for f in self._flights.values())
        chosen: list[WorkUnit] = []
        with session_scope(self.factory) as session:
            self._down = leases.down_sources(session)
            candidates = leases.claim(
                session,
                self.units.keys(),
                self.worker_id,
                now,
                lease_s=self.lease_s,
                limit=free * 4,
                ignore_due=once,
                exclude=self._done | set(self._flights) if once else set(self._flights),
            )
            for row in candidates:
                unit = self.units[row.key]
                if len(chosen) >= free or busy[unit.source] >= self.conf.per_source_concurrency:
                    continue
                leases.take(row, self.worker_id, now, self.lease_s)
                busy[unit.source] += 1
                chosen.append(unit)
        for unit in chosen:
            flight = _Flight(unit, now, time.monotonic() + unit.timeout_s)
            self._flights[unit.key] = flight
            log.info(
                "unit started",
                extra={
                    "unit": unit.key,
                    "source": unit.source,
                    "worker": self.worker_id,
                    "at": now.isoformat(),
                },
            )
            flight.future = pool.submit(self._execute, flight)
        return len(chosen)

    def _renew(self) -> None:
        if not self._flights:
            return
        with session_scope(self.factory) as session:
            lost = leases.renew(session, list(self._flights), self.worker_id, self.clock(), self.lease_s)
        for key in lost:
            flight = self._flights.get(key)
            if flight is not None and flight.state == "running":  # not one releasing its lease just now
                log.warning("lease lost while running", extra={"unit": key, "worker": self.worker_id})

    def _reap(self) -> int:
        """Forget finished units (logging any that could not be processed), time out late ones."""
        finished = 0
        for key, flight in list(self._flights.items()):
            if flight.future is not None and flight.future.done():
                del self._flights[key]
                finished += 1
                if error := flight.future.exception():
                    log.error(
                        "unit could not be processed; its lease will expire and it will be retried",
                        exc_info=error,
                        extra={"unit": key, "worker": self.worker_id},
                    )
            elif time.monotonic() > flight.deadline:
                self._time_out(flight)
        return finished

    def _time_out(self, flight: _Flight) -> None:
        with flight.lock:
            if flight.state != "running":
                return
            flight.state = "abandoned"
        unit = flight.unit
        reason = f"timed out after {unit.timeout_s:g}s (scheduler.unit_timeout_s)"
        log.warning(
            "unit timed out", extra={"unit": unit.key, "source": unit.source, "worker": self.worker_id}
        )
        result = unit.error_result(flight.started, reason)
        self.summary.timed_out += 1
        self._count([result])
        # The lease stays held (and renewed) until the thread really ends: no second run meanwhile.
        self.processor(UnitOutcome(unit, Collection([result], [])), lambda _session: [])

    def _drain(self) -> None:
        """Let running units finish within their deadlines (or until :attr:`hurry` is set); run() then
        releases whatever this worker still holds."""
        while self._flights and not self.hurry.is_set():
            self._reap()
            live = [f for f in self._flights.values() if f.state != "abandoned"]
            if not live:
                break
            self._renew()
            time.sleep(0.05)

    # --- one unit, on a pool thread ----------------------------------------------------------------

    def _execute(self, flight: _Flight) -> None:
        unit = flight.unit
        now = self.clock()
        down: str | None = None
        if unit.kind == "source":
            reason = ping_source(self.settings, unit.source)
            collection = Collection(
                samples=[
                    MetricSample("hypercare_source_up", 0.0 if reason else 1.0, {"source": unit.source}, now)
                ]
            )
            down = reason
        else:
            try:
                collection = unit.run(now)
            except Exception as exc:  # a collector's bug must not stop the scheduler: it is an error result
                log.exception("unit crashed", extra={"unit": unit.key, "worker": self.worker_id})
                collection = Collection([unit.error_result(now, f"{type(exc).__name__}: {exc}")], [])
            pingable = unit.kind in READS_SOURCE and unit.source in self.settings.sources
            if pingable and collection.count("error"):
                down = ping_source(self.settings, unit.source)
        with flight.lock:
            late = flight.state == "abandoned" or self.hurry.is_set()
            flight.state = "processing"
        if late:
            self._release_late(unit)
            return
        outcome = UnitOutcome(unit, collection, down)
        self._count(collection.results)
        ended: list[datetime] = []  # when the unit's work ended: before the lease is released
        try:
            self.processor(outcome, lambda session: self._finish(session, outcome, flight.started, ended))
        finally:
            self._wake.set()
        log.info(
            "unit finished",
            extra={"unit": unit.key, "worker": self.worker_id, "at": ended[0].isoformat(), "down": down},
        )

    def _finish(
        self, session: Session, outcome: UnitOutcome, started: datetime, ended: list[datetime]
    ) -> list[SourceChange]:
        unit = outcome.unit
        now = self.clock()
        ended.append(now)
        changes: list[SourceChange] = []
        ok = outcome.source_down is None
        if unit.kind == "source" or not ok or unit.source in self._down:
            change = leases.mark_source(
                session,
                unit.source,
                now,
                ok=ok,
                reason=outcome.source_down,
                backoff_base_s=self.conf.backoff_base_s,
                backoff_max_s=self.conf.backoff_max_s,
                retry=unit.kind == "source",
            )
            if change is not None:
                log.warning(
                    f"source {change.state}",
                    extra={"source": unit.source, "worker": self.worker_id, "reason": change.reason},
                )
                changes.append(change)
        statuses = [r.status for r in outcome.collection.results] or ["pass" if ok else "error"]
        leases.finish(
            session,
            unit.key,
            self.worker_id,
            now,
            next_due_at=max(now, next_due(started, unit.interval, self.conf.jitter_ratio, self.rng)),
            status=max(statuses, key=_SEVERITY_ORDER.__getitem__),
            error=outcome.source_down,
            keep_due=unit.kind == "source",
        )
        with self._guard:
            self._done.add(unit.key)
            self.summary.units_run += 1
        return changes

    def _release_late(self, unit: WorkUnit) -> None:
        now = self.clock()
        with session_scope(self.factory) as session:
            leases.finish(
                session,
                unit.key,
                self.worker_id,
                now,
                status="error",
                error="timed out",
                next_due_at=now + unit.interval,
                keep_due=unit.kind == "source",
            )
        with self._guard:
            self._done.add(unit.key)

    def _count(self, results: Sequence[CheckResult]) -> None:
        with self._guard:
            self.summary.statuses.update(r.status for r in results)
            if self.keep_results:
                self.summary.results.extend(results)
