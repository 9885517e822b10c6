"""The served application: tickets' API and UI, monitor's metrics on the same /metrics, and the outbox
delivery loop that retries notifications while the server runs.

tickets/ knows nothing of collectors; this is where the parts meet.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from core.session import make_engine, session_factory
from hypercare import dualrun_api
from hypercare.config import Settings, load_settings
from hypercare.daily_report import report_forever
from hypercare.housekeeper import Housekeeper
from hypercare.logging import configure_logging
from monitor.checks import CheckDefinitionError, configured_checks
from monitor.dualrun.readiness import ReadinessCollector
from monitor.metrics import CheckResultsCollector, settings_catalog
from monitor.startup import guard_sources
from runbooks.diagnostics import attach_runbooks_quietly
from runbooks.verification import verify_ticket
from tickets.alertmanager import expire_stale_alerts
from tickets.app import create_app
from tickets.audit_chain import current_keyring, use_keyring
from tickets.audit_checkpoints import write
from tickets.audit_keys import checkpoint_path, keyring_for
from tickets.escalation import housekeeping
from tickets.notify import build_notifier, dispatch_pending, on_new_notifications
from tickets.ports import Ports, Verdict

log = logging.getLogger(__name__)


async def deliver_forever(
    factory: sessionmaker[Session],
    settings: Settings,
    wake: asyncio.Event | None = None,
    housekeeper: Housekeeper | None = None,
) -> None:
    """Deliver due notifications every ``dispatch_interval_s``, and at once when ``wake`` is set (a request
    of this process wrote a pending notification), until cancelled; the housekeeping (auto-close,
    escalation, digests, expired alerts) runs on the tick only. A store hiccup is logged and retried on the
    next tick; nothing is lost because the outbox row stays pending."""
    notifier = build_notifier(settings)
    every_s = settings.tickets.audit_checkpoint_interval_min * 60
    next_checkpoint = time.monotonic() + every_s
    tick_s = settings.notifications.dispatch_interval_s
    next_housekeeping = time.monotonic()
    while True:
        try:
            if time.monotonic() >= next_housekeeping:  # on the tick, not on every wake-up (a paging write)
                next_housekeeping = time.monotonic() + tick_s
                if housekeeper is None:  # auto-close, escalation, digests
                    await asyncio.to_thread(housekeeping, factory, settings)
                else:  # in a process of its own on a server store (hypercare/housekeeper.py)
                    await housekeeper.run()
                await asyncio.to_thread(expire_stale_alerts, factory, settings)  # alerts past endsAt
            if every_s and time.monotonic() >= next_checkpoint:
                next_checkpoint = time.monotonic() + every_s
                await asyncio.to_thread(audit_checkpoint, factory, settings)
            report = await asyncio.to_thread(dispatch_pending, factory, notifier, settings)
            if report.sent or report.retried or report.dead:
                log.info(
                    "outbox delivered",
                    extra={"sent": report.sent, "retried": report.retried, "dead": report.dead},
                )
        except SQLAlchemyError as exc:
            reason = str(exc).splitlines()[0]
            log.warning("outbox delivery failed; retrying next tick", extra={"error": reason})
        if wake is None:
            await asyncio.sleep(tick_s)
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), max(next_housekeeping - time.monotonic(), 0))
        wake.clear()


def audit_checkpoint(factory: sessionmaker[Session], settings: Settings) -> None:
    """Append a signed checkpoint of the audit trail (tickets/audit_checkpoints.py); a file that cannot be
    written is logged, and tried again at the next interval."""
    path = checkpoint_path(settings)
    try:
        write(factory, current_keyring(), path)
    except OSError as exc:
        log.warning("audit checkpoint not written: %s", exc.strerror, extra={"path": str(path)})


def ports(settings: Settings) -> Ports:
    """The runbook engine as the queue's diagnostics and verification ports (tickets/ports.py)."""

    def diagnostics(factory: sessionmaker[Session], ticket_ids: list[int]) -> None:
        attach_runbooks_quietly(settings, factory, ticket_ids)

    def verify(factory: sessionmaker[Session], ticket_id: int, actor: str) -> Verdict:
        return verify_ticket(settings, factory, ticket_id, actor)

    titles: list[Mapping[str, Mapping[str, str]]] = []

    def check_titles() -> Mapping[str, Mapping[str, str]]:
        if not titles:  # read once, on the first page that shows a check (the checks load at start anyway)
            titles.append(_check_titles(settings))
        return titles[0]

    return Ports(diagnostics=diagnostics, verify=verify, check_titles=check_titles)


def _check_titles(settings: Settings) -> Mapping[str, Mapping[str, str]]:
    """check id -> {language: title} of the configured checks with a translated title."""
    try:
        specs = configured_checks(settings)
    except CheckDefinitionError as exc:  # `hypercare check` names it; the UI shows the English titles
        log.warning("check titles unavailable: %s", exc)
        return {}
    found: dict[str, dict[str, str]] = {}
    for spec in specs:
        translated = {"zh_CN": spec.title_zh, "zh_TW": spec.title_zh_tw or spec.title_zh}
        kept = {language: title for language, title in translated.items() if title}
        if kept:
            found[spec.id] = kept
    return found


def build_app(settings: Settings, engine: Engine | None = None, *, notices: Sequence[str] = ()) -> FastAPI:
    """The served app. ``notices``: what start-up found about the sources (``monitor.startup.guard_sources``),
    shown by ``/readyz``."""
    engine = engine or serving_engine(settings)
    use_keyring(keyring_for(settings))  # audit rows are chained with it; a bad key file stops start-up
    factory = session_factory(engine)
    app = create_app(
        settings,
        engine=engine,
        extra_collectors=[
            CheckResultsCollector(
                factory,
                settings_catalog(settings),
                currencies={name: source.currency for name, source in settings.sources.items()},
            ),
            ReadinessCollector(factory, settings),  # hypercare_dualrun_*
        ],
        routers=[dualrun_api.router],  # cutover readiness, read-only
        ports=ports(settings),
        notices=notices,
    )
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[None]:
        async with inner(a):
            freeze_startup_heap()
            wake, loop = asyncio.Event(), asyncio.get_running_loop()
            # a request that pages (a resolve, an ack, an event) wakes the delivery loop at once
            on_new_notifications(
                a.state.hypercare.session_factory, lambda: loop.call_soon_threadsafe(wake.set)
            )
            housekeeper = Housekeeper(factory, settings)
            tasks = [
                asyncio.create_task(deliver_forever(factory, settings, wake, housekeeper), name="outbox")
            ]
            if settings.dashboard.daily_report.enabled:  # yesterday's report at send_at, site time
                tasks.append(asyncio.create_task(report_forever(settings, engine), name="daily-report"))
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                housekeeper.close()

    app.router.lifespan_context = lifespan
    return app


def freeze_startup_heap() -> None:
    """Keep what start-up built (modules, the app, its routes, templates: ~200k objects) out of the
    collector's full passes (``gc.freeze``). Each full pass over them stalled every request of the process
    for 90-140 ms, several times a second under load: the tail of the latency (docs/benchmarks.md)."""
    gc.collect()
    gc.freeze()


def serving_engine(settings: Settings) -> Engine:
    """The store engine of ``hypercare serve``: a pool sized by ``server.pool_size`` / ``max_overflow``."""
    server = settings.server
    return make_engine(
        settings.store_url,
        pool_size=server.pool_size,
        max_overflow=server.max_overflow,
        statement_timeout_s=server.store_statement_timeout_s,
    )


def worker_app() -> FastAPI:
    """One ``hypercare serve`` worker process (a uvicorn factory, with ``server.workers`` > 1): the settings
    from ``$HYPERCARE_CONFIG`` and the environment, as the parent read them."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    return build_app(settings, serving_engine(settings), notices=guard_sources(settings))
