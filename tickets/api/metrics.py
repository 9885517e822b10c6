"""Prometheus metrics of the API: request counts and latency by route template, open tickets at scrape time.

Every app gets its own :class:`CollectorRegistry` (tests start clean; nothing is registered at import).
Labels are bounded sets: the route *template* (``/api/v1/tickets/{ticket_id}``, ``unmatched`` for unknown
paths), a known HTTP method or ``other``, the status code, the priority.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.vocabulary import Priority
from tickets.queries import open_counts

log = logging.getLogger(__name__)

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class TicketsOpenCollector(Collector):
    """``hypercare_tickets_open{priority}``: open tickets per priority, counted at scrape time."""

    NAME = "hypercare_tickets_open"
    HELP = "Open tickets (new, acknowledged, in progress, waiting, reopened) by priority."

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory

    def describe(self) -> Iterator[Metric]:
        # Without touching the store, so registering never opens a connection.
        yield GaugeMetricFamily(self.NAME, self.HELP, labels=["priority"])

    def collect(self) -> Iterator[Metric]:
        try:
            with self._session_factory() as session:
                counts = open_counts(session)
        except SQLAlchemyError as exc:
            # The scrape still answers (other metrics stay visible); the missing series shows the gap.
            log.warning("cannot count open tickets for /metrics: %s", type(exc).__name__)
            return
        family = GaugeMetricFamily(self.NAME, self.HELP, labels=["priority"])
        for priority in Priority:
            family.add_metric([priority], counts.get(priority, 0))
        yield family


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "hypercare_http_requests",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "hypercare_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
            registry=registry,
        )


class MetricsMiddleware:
    """Pure ASGI middleware: times each HTTP request and labels it by the route that matched."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_code = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.metrics.duration.labels(method, template).observe(time.perf_counter() - started)
            self.metrics.requests.labels(method, template, str(status_code)).inc()
