"""The housekeeping pass (auto-close, SLA flags and escalation over every open ticket, digests) in a process
of its own beside a serving worker, on a server store (PostgreSQL, MariaDB).

A pass walks every open ticket: at 10,000 open tickets about 0.7 s of CPU every ``dispatch_interval_s``,
changing nothing most of the time. Run in a thread of a serving worker, it held that worker's GIL for
those 0.7 s: every request the worker was answering meanwhile waited, and the queue's p99 latency under
load was set by these stalls (docs/benchmarks.md, issue 20). In a process of its own it competes for the
CPU under the operating system's scheduler instead, like PostgreSQL does.

The process is started once per serving worker (``spawn``: a fresh interpreter, nothing inherited but the
settings), keeps its own engine, and runs one pass per call; the store's advisory lock still lets only
one process of the store do a pass at a time (tickets/escalation.py). If the process cannot be started or
dies, the pass runs in a thread as before, and the failure is logged: housekeeping never stops.

The embedded SQLite store keeps the thread: one process serves it, and its file would see a second writer.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from sqlalchemy.orm import Session, sessionmaker

from core.session import make_engine, session_factory
from hypercare.config import Settings
from tickets.audit_chain import use_keyring
from tickets.audit_keys import keyring_for
from tickets.escalation import HousekeepingReport, housekeeping

log = logging.getLogger(__name__)

_factory: sessionmaker[Session] | None = None
_settings: Settings | None = None


def _start(settings: Settings) -> None:
    """In the housekeeping process: its engine and the audit key (auto-close and escalation audit)."""
    global _factory, _settings  # noqa: PLW0603  (this process's one store)
    _settings = settings
    use_keyring(keyring_for(settings))
    _factory = session_factory(make_engine(settings.store_url, pool_size=1, max_overflow=1))


def _pass() -> HousekeepingReport:
    """In the housekeeping process: one pass."""
    if _factory is None or _settings is None:  # pragma: no cover - the initializer always ran first
        raise RuntimeError("housekeeping process not started")
    return housekeeping(_factory, _settings)


class Housekeeper:
    """Runs :func:`~tickets.escalation.housekeeping` for one serving worker: in a process of its own on a
    server store, else (or when that process fails) in a thread."""

    def __init__(self, factory: sessionmaker[Session], settings: Settings) -> None:
        self.factory = factory
        self.settings = settings
        self._pool: ProcessPoolExecutor | None = None
        self.separate = factory.kw["bind"].dialect.name != "sqlite"
        """Whether passes run in a process of their own (a server store)."""

    async def run(self) -> HousekeepingReport:
        if self.separate:
            try:
                if self._pool is None:
                    self._pool = ProcessPoolExecutor(
                        max_workers=1,
                        mp_context=multiprocessing.get_context("spawn"),
                        initializer=_start,
                        initargs=(self.settings,),
                    )
                return await asyncio.get_running_loop().run_in_executor(self._pool, _pass)
            except (BrokenProcessPool, OSError, RuntimeError) as exc:
                log.warning(
                    "housekeeping process failed; this pass runs in a thread",
                    extra={"error": f"{type(exc).__name__}: {exc}"},
                )
                self.close()
        return await asyncio.to_thread(housekeeping, self.factory, self.settings)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
