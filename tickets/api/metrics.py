"""Prometheus metrics of the API: request counts and latency by route template; the queue, SLA, intake and
notifications counted from the store at scrape time (every serving process and worker agrees).

Every app gets its own :class:`CollectorRegistry` (tests start clean; nothing is registered at import).
Labels are bounded sets: the route *template* (``/api/v1/tickets/{ticket_id}``, ``unmatched`` for unknown
paths), a known HTTP method or ``other``, the status code, the priority, the ticket state, queue (the
configured teams) and category, the intake outcome, the notification status.

:class:`QueueCollector` exposes

* ``hypercare_tickets{state,queue,category,priority}``: tickets by their current state (a gauge);
* ``hypercare_tickets_sla_breached{queue,priority}``: open tickets whose SLA is breached now;
* ``hypercare_tickets_created_total`` and ``hypercare_tickets_resolved_total`` (resolutions, a reopened
  ticket resolved again counts twice): counters computed from the store, so ``rate()`` is the ticket flow;
* ``hypercare_alertmanager_alerts_total{outcome}``: Alertmanager alert episodes ``accepted`` (taken in,
  folded ones included), ``folded`` (into the ticket of one of Hypercare's own checks), ``expired`` (past
  ``endsAt`` or not re-sent, no resolve came) and alerts ``refused`` as sent (kept on an intake-error
  ticket); a delivery refused whole is a 4xx in ``hypercare_http_requests_total``;
* ``hypercare_notifications{status}``: outbox rows by their status now (a gauge: a pending row becomes sent).
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.vocabulary import OPEN_STATUSES, OutboxStatus, Priority
from tickets.alert_rejects import INTAKE_ERROR_CHECK
from tickets.models import AlertmanagerAlert, EventRecord, NotificationOutbox, Ticket, TicketAudit
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


INTAKE_OUTCOMES = ("accepted", "folded", "expired", "refused")


class QueueCollector(Collector):
    """The queue's flow, SLA, Alertmanager intake and notifications, read from the store at scrape time."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory

    @staticmethod
    def _families() -> dict[str, GaugeMetricFamily | CounterMetricFamily]:
        return {
            "tickets": GaugeMetricFamily(
                "hypercare_tickets",
                "Tickets by current state, queue, category and priority.",
                labels=["state", "queue", "category", "priority"],
            ),
            "breached": GaugeMetricFamily(
                "hypercare_tickets_sla_breached",
                "Open tickets whose response or resolution SLA is breached now.",
                labels=["queue", "priority"],
            ),
            "created": CounterMetricFamily("hypercare_tickets_created", "Tickets opened."),
            "resolved": CounterMetricFamily(
                "hypercare_tickets_resolved",
                "Ticket resolutions (a ticket reopened and resolved counts twice).",
            ),
            "intake": CounterMetricFamily(
                "hypercare_alertmanager_alerts",
                "Alertmanager alerts by intake outcome: accepted (episodes taken in), folded (into a check's "
                "ticket), expired (no resolve came), refused (invalid as sent).",
                labels=["outcome"],
            ),
            "notifications": GaugeMetricFamily(
                "hypercare_notifications",
                "Notifications in the outbox by their delivery status now.",
                labels=["status"],
            ),
        }

    def describe(self) -> Iterator[Metric]:
        yield from self._families().values()  # without touching the store

    def collect(self) -> Iterator[Metric]:
        try:
            with self._session_factory() as session:
                families = self._read(session)
        except SQLAlchemyError as exc:
            log.warning("cannot read the queue for /metrics: %s", type(exc).__name__)
            return
        yield from families.values()

    def _read(self, session: Session) -> dict[str, GaugeMetricFamily | CounterMetricFamily]:
        f = self._families()
        by = (Ticket.status, Ticket.queue, Ticket.category, Ticket.priority)
        for state, queue, category, priority, count in session.execute(
            select(*by, func.count(Ticket.id)).group_by(*by).order_by(*by)
        ):
            f["tickets"].add_metric([state, queue, category, priority], float(count))
        breached = session.execute(
            select(Ticket.queue, Ticket.priority, func.count(Ticket.id))
            .where(Ticket.status.in_(OPEN_STATUSES), Ticket.sla_state == "breached")
            .group_by(Ticket.queue, Ticket.priority)
            .order_by(Ticket.queue, Ticket.priority)
        )
        for queue, priority, count in breached:
            f["breached"].add_metric([queue, priority], float(count))
        f["created"].add_metric([], float(session.scalar(select(func.count(Ticket.id))) or 0))
        resolutions = select(func.count(TicketAudit.id)).where(TicketAudit.action == "resolved")
        f["resolved"].add_metric([], float(session.scalar(resolutions) or 0))
        for outcome, value in self._intake(session).items():
            f["intake"].add_metric([outcome], value)
        counts = dict(
            session.execute(
                select(NotificationOutbox.status, func.count()).group_by(NotificationOutbox.status)
            ).all()
        )
        for status in OutboxStatus:
            f["notifications"].add_metric([status.value], float(counts.get(status.value, 0)))
        return f

    @staticmethod
    def _intake(session: Session) -> dict[str, float]:
        episode = AlertmanagerAlert
        accepted = session.scalar(select(func.count(episode.id))) or 0
        folded = session.scalar(
            select(func.count(episode.id))
            .join(Ticket, Ticket.id == episode.ticket_id)
            .where(Ticket.fingerprint.not_like("am-%"))
        )
        expired = session.scalar(select(func.count(episode.id)).where(episode.status == "expired"))
        refused = sum(
            int((evidence or {}).get("rejected_count", 0))
            for evidence in session.scalars(
                select(EventRecord.evidence).where(EventRecord.check_id == INTAKE_ERROR_CHECK)
            )
        )
        return {
            "accepted": float(accepted),
            "folded": float(folded or 0),
            "expired": float(expired or 0),
            "refused": float(refused),
        }


class BuildInfoCollector(Collector):
    """``hypercare_build_info{version,python_version}`` 1: which Hypercare a series came from."""

    def __init__(self) -> None:
        try:
            self._version = version("hypercare")
        except PackageNotFoundError:  # pragma: no cover - a source tree not installed
            self._version = "unknown"

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "hypercare_build_info",
            "Hypercare's version and Python version (always 1).",
            labels=["version", "python_version"],
        )
        family.add_metric([self._version, platform.python_version()], 1.0)
        yield family
