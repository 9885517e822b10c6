"""The app factory: API, web UI, health and metrics on one FastAPI app. Nothing happens at import time."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import stat
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib.metadata import version
from pathlib import Path

import anyio.to_thread
from fastapi import APIRouter, FastAPI
from prometheus_client import CollectorRegistry
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from starlette.middleware.sessions import SessionMiddleware
from starlette.staticfiles import StaticFiles

from core.errors import ConfigError, StoreError
from core.schema import require_current_schema
from core.session import make_engine, ping, session_factory
from tickets.api import agent as agent_api
from tickets.api import alertmanager as alertmanager_api
from tickets.api import diagnostics as diagnostics_api
from tickets.api import events, health, lifecycle, tickets
from tickets.api import reports as reports_api
from tickets.api import users as users_api
from tickets.api.guards import PROBE_DEADLINE_S, StoreBreaker, StoreProbe, install_guards
from tickets.api.headers import SecurityHeadersMiddleware
from tickets.api.metrics import HttpMetrics, MetricsMiddleware, TicketsOpenCollector
from tickets.api.problems import install_error_handlers
from tickets.api.state import AppState
from tickets.cache import ResponseCaches
from tickets.hot_reads import HotReads
from tickets.notify import OutboxCollector
from tickets.ports import Ports
from tickets.settings import TicketsConfig
from tickets.ui import routes as ui_routes
from tickets.ui.web import STATIC_DIR, LoginRequired, login_redirect, render_error

log = logging.getLogger(__name__)

SESSION_COOKIE = "hypercare_session"


def session_secret(settings: TicketsConfig) -> str:
    """``secret_key`` from the settings, else one generated once and kept in ``<data_dir>/secret_key``."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    path = Path(settings.data_dir) / "secret_key"
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process generated it first: use theirs
        return _read_secret(path)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    log.info("generated a session secret", extra={"path": str(path)})
    return key


def _read_secret(path: Path) -> str:
    key = path.read_text(encoding="ascii").strip()
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        log.warning("%s is readable by others; chmod 600 it", path, extra={"path": str(path)})
    if len(key) < 32:
        raise ConfigError(f"{path} holds no usable secret (too short); delete it to have a new one generated")
    return key


def store_probe(engine: Engine) -> StoreProbe:
    """Whether the store answers ``SELECT 1`` within 2 s (the deadline middleware's second opinion)."""

    async def answers() -> bool:
        try:
            await asyncio.wait_for(
                anyio.to_thread.run_sync(ping, engine, abandon_on_cancel=True), timeout=PROBE_DEADLINE_S
            )
        except (TimeoutError, StoreError):
            return False
        return True

    return answers


def create_app(
    settings: TicketsConfig,
    *,
    engine: Engine | None = None,
    registry: CollectorRegistry | None = None,
    extra_collectors: Sequence[Collector] = (),
    routers: Sequence[APIRouter] = (),
    ports: Ports | None = None,
    notices: Sequence[str] = (),
) -> FastAPI:
    """Build the Hypercare web app: API, UI, /healthz, /readyz, /metrics.

    Without ``engine`` one is built from ``settings.store_url`` and disposed of at shutdown (a given engine
    stays the caller's). Each app has its own metrics registry unless one is given; ``routers`` are other
    parts' routes the wiring mounts after the queue's own (the dual-run readiness API); ``ports`` the
    runbook diagnostics and verification it plugs in (``hypercare.app.ports``); ``notices`` what the wiring
    found at start-up that ``/readyz`` shows as its ``detail`` (sources running with a privileged user).
    Start-up refuses a store whose schema is not current, with the command to run.
    """
    owns_engine = engine is None
    if engine is None:
        engine = make_engine(settings.store_url)
    registry = registry if registry is not None else CollectorRegistry()
    factory = session_factory(engine)
    registry.register(TicketsOpenCollector(factory))
    registry.register(OutboxCollector(factory))  # hypercare_notifications_total{status}
    for collector in extra_collectors:
        registry.register(collector)
    state = AppState(
        settings=settings,
        engine=engine,
        session_factory=factory,
        registry=registry,
        hot=HotReads(engine),
        ports=ports or Ports(),
        breaker=StoreBreaker(),
        caches=ResponseCaches(enabled=settings.server.response_cache),
        notices=tuple(notices),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            await anyio.to_thread.run_sync(require_current_schema, state.engine)
        except StoreError as exc:
            log.error("refusing to start: %s", exc)
            raise
        await state.hot.open()
        try:
            yield
        finally:
            await state.hot.close()
            if owns_engine:
                state.engine.dispose()

    app = FastAPI(
        title="Hypercare",
        version=version("hypercare"),
        description="Ticket queue of the Hypercare ERP post-go-live support service.",
        lifespan=lifespan,
    )
    app.state.hypercare = state
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(settings),
        session_cookie=SESSION_COOKIE,
        max_age=int(settings.security.session_max_age_s),
        same_site="lax",
        https_only=settings.server.base_url().startswith("https://"),
    )
    app.add_middleware(MetricsMiddleware, metrics=HttpMetrics(registry))
    # One error body for the API ({"error": {code, message, details}}); a browser gets the UI's error page.
    install_error_handlers(app, html=render_error)
    # 413 over the body limit; 503 while the store is unreachable or does not answer in time.
    install_guards(app, settings, state.breaker, probe=store_probe(engine))
    # CSP, framing, sniffing and referrer headers on every answer, the guards' refusals included.
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_exception_handler(LoginRequired, login_redirect)
    # Requests are matched against the routes in this order (no two paths overlap): the busiest first.
    app.include_router(health.router)
    app.include_router(tickets.router)
    app.include_router(ui_routes.router)
    app.include_router(events.router)
    app.include_router(alertmanager_api.router)
    app.include_router(reports_api.router)
    app.include_router(diagnostics_api.router)  # GET /api/v1/tickets/{ticket_id}/diagnostics
    app.include_router(lifecycle.router)  # status, priority, assignment, SLA, workarounds, silences
    app.include_router(users_api.router)  # DELETE /api/v1/users/{username}/sessions
    app.include_router(agent_api.router)  # conversation, problem records, bulk actions
    for router in routers:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
