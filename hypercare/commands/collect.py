"""`hypercare collect`: the scheduler (monitor/scheduler.py) wired to the pipeline, from the command line."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping
from types import FrameType
from typing import TYPE_CHECKING, Annotated
from wsgiref.simple_server import WSGIServer

import httpx
import typer
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from core.errors import HypercareError
from hypercare.commands.checks import EXIT_ERRORED, EXIT_FAILED, require_known_sources
from hypercare.commands.common import console, state
from hypercare.config import Settings
from monitor.checks import CheckDefinitionError, CheckSpec, configured_checks
from monitor.metrics import CheckLabels, check_catalog
from monitor.volumes import VolumeSpec, load_volumes

if TYPE_CHECKING:
    from monitor.scheduler import RunSummary

log = logging.getLogger(__name__)


def collect(
    once: Annotated[
        bool, typer.Option("--once", help="Run every check, probe and collector once, then exit.")
    ] = False,
    worker_id: Annotated[
        str | None, typer.Option("--worker-id", help="This worker's name in leases (default: host-pid).")
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option("--metrics-port", min=1, max=65535, help="Serve /metrics on 127.0.0.1:PORT."),
    ] = None,
) -> None:
    """Run checks, probes and collectors on their schedules until stopped (SIGTERM or Ctrl-C).

    Several workers may run against one PostgreSQL store: each unit is leased, so none runs twice at
    once. On SQLite run one worker. With --once, the exit status is that of `check run`: 0 every unit
    passed or warned, 1 some check failed, 4 some unit could not run.
    """
    from core.schema import require_current_schema
    from core.session import make_engine, session_factory
    from hypercare.pipeline import scheduler_processor
    from monitor.scheduler import ScheduleError, Scheduler, build_units
    from monitor.startup import guard_sources
    from tickets.notify import AppriseNotifier, dispatch_pending

    settings = state.settings()
    checks, volumes = _configured_work(settings)
    guard_sources(settings)  # a source whose user may do more than read is refused unless allowed
    engine = make_engine(settings.store_url)
    require_current_schema(engine)
    factory = session_factory(engine)
    notifier = AppriseNotifier(settings.notifications.targets)
    last_dispatch = [0.0]

    def dispatch(finished: int) -> None:
        due = time.monotonic() - last_dispatch[0] >= settings.notifications.dispatch_interval_s
        if finished or due:
            dispatch_pending(factory, notifier, settings)
            last_dispatch[0] = time.monotonic()

    stop, hurry = threading.Event(), threading.Event()
    on_signal = _signal_handler(stop, hurry)
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    catalog = check_catalog(settings, checks, volumes)
    server = _serve_metrics(factory, catalog, metrics_port) if metrics_port else None
    try:
        with httpx.Client(follow_redirects=False) as client:
            try:
                units = build_units(settings, checks, http_client=client, volumes=volumes, store=factory)
            except ScheduleError as exc:
                raise HypercareError(str(exc)) from None
            scheduler = Scheduler(
                settings,
                factory,
                units,
                scheduler_processor(settings, factory),
                worker_id=worker_id,
                after_tick=dispatch,
            )
            scheduler.hurry = hurry
            console.print(
                f"worker {scheduler.worker_id}: {len(units)} unit(s); "
                + ("one pass" if once else "until SIGTERM or Ctrl-C")
            )
            summary = scheduler.run(stop, once=once)
        dispatch_pending(factory, notifier, settings)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if server is not None:
            server.shutdown()
        engine.dispose()
    if once:
        _print_results(summary)
    console.print(
        f"units run: {summary.units_run}; results: {dict(summary.statuses)}; timed out: {summary.timed_out}"
    )
    if once:
        _exit_as_check_run(summary)


def _configured_work(settings: Settings) -> tuple[list[CheckSpec], list[VolumeSpec]]:
    """The checks and volume watches to schedule; a definition error or an unconfigured source refuses."""
    try:
        checks = configured_checks(settings)
        volumes = load_volumes(settings.checks.packs, settings.checks.paths, [c.id for c in checks])
    except CheckDefinitionError as exc:
        raise HypercareError(str(exc)) from None
    require_known_sources(settings, checks, volumes)
    return checks, volumes


def _exit_as_check_run(summary: RunSummary) -> None:
    """One pass ends as `check run` does: 1 when a check failed, 4 when a unit could not run."""
    if summary.statuses["error"] or summary.timed_out:
        raise typer.Exit(EXIT_ERRORED)
    if summary.statuses["fail"]:
        raise typer.Exit(EXIT_FAILED)


def _serve_metrics(
    factory: sessionmaker[Session], catalog: Mapping[str, CheckLabels], port: int
) -> WSGIServer:
    """/metrics of this standalone collector on 127.0.0.1 (check results from the store, at scrape time)."""
    from prometheus_client import CollectorRegistry, start_http_server

    from monitor.metrics import CheckResultsCollector

    registry = CollectorRegistry()
    registry.register(CheckResultsCollector(factory, catalog))
    try:
        server, _thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    except OSError as exc:
        raise HypercareError(
            f"--metrics-port {port}: cannot listen on 127.0.0.1:{port} ({exc.strerror})"
        ) from None
    console.print(f"metrics on http://127.0.0.1:{port}/metrics")
    return server


def _signal_handler(stop: threading.Event, hurry: threading.Event) -> Callable[[int, FrameType | None], None]:
    """First SIGTERM/Ctrl-C: finish running units, then stop. Second: release their leases and stop now."""

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            log.warning("stopping now: releasing the leases of running units", extra={"signal": name})
            hurry.set()
        else:
            log.info("stopping: finishing running units (signal again to stop now)", extra={"signal": name})
            stop.set()

    return on_signal


def _print_results(summary: RunSummary) -> None:
    table = Table("check", "source", "status", "violations", "amount at risk", "error", title="Results")
    for r in sorted(summary.results, key=lambda r: (r.source, r.check_id)):
        table.add_row(
            r.check_id, r.source, r.status, str(r.violations), str(r.amount_at_risk or ""), r.error or ""
        )
    console.print(table)
