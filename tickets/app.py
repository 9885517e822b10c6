"""The app factory: API, web UI, health and metrics on one FastAPI app. Nothing happens at import time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib.metadata import version

import anyio.to_thread
from fastapi import APIRouter, FastAPI
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from starlette.middleware.sessions import SessionMiddleware
from starlette.staticfiles import StaticFiles

from core.errors import StoreError
from core.schema import require_current_schema
from core.session import make_engine, ping, session_factory
from tickets.api import agent as agent_api
from tickets.api import alertmanager as alertmanager_api
from tickets.api import diagnostics as diagnostics_api
from tickets.api import docs as api_docs
from tickets.api import events, health, lifecycle, oncall, pagerduty, tickets
from tickets.api import reports as reports_api
from tickets.api import users as users_api
from tickets.api.guards import PROBE_DEADLINE_S, StoreBreaker, StoreProbe, install_guards
from tickets.api.headers import SecurityHeadersMiddleware
from tickets.api.metrics import (
    BuildInfoCollector,
    HttpMetrics,
    MetricsMiddleware,
    QueueCollector,
    TicketsOpenCollector,
)
from tickets.api.problems import install_error_handlers
from tickets.api.state import AppState
from tickets.hot_reads import HotReads
from tickets.ports import Ports
from tickets.response_cache import ResponseCaches
from tickets.secret_file import session_secret
from tickets.settings import TicketsConfig
from tickets.ui import routes as ui_routes
from tickets.ui.web import STATIC_DIR, LoginRequired, login_redirect, render_error

log = logging.getLogger(__name__)

SESSION_COOKIE = "hypercare_session"


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
    registry.register(QueueCollector(factory))  # tickets, flow, SLA, intake, hypercare_notifications{status}
    registry.register(BuildInfoCollector())
    ProcessCollector(registry=registry)  # process_* of this serving process
    PlatformCollector(registry=registry)
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
        docs_url=None,  # served from this origin, not a CDN: tickets/api/docs.py
        redoc_url=None,
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
    for router in (
        health.router,
        tickets.router,
        ui_routes.router,
        events.router,
        alertmanager_api.router,
        reports_api.router,
        diagnostics_api.router,  # GET /api/v1/tickets/{ticket_id}/diagnostics
        lifecycle.router,  # status, priority, assignment, SLA, workarounds, silences
        users_api.router,  # DELETE /api/v1/users/{username}/sessions, GET/PATCH /api/v1/me
        oncall.router,  # /api/v1/oncall, /api/v1/oncall/overrides
        pagerduty.router,  # POST /api/v1/pagerduty/webhook
        agent_api.router,  # conversation, problem records, bulk actions
        *routers,
    ):
        app.include_router(router)
    app.include_router(api_docs.router)  # /docs, /redoc
    app.mount(api_docs.VENDOR_URL, StaticFiles(directory=api_docs.VENDOR_DIR), name="docs-vendor")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
