"""Prometheus Alertmanager webhooks (payload version 4) into the ticket queue.

Each alert of a group counts by its own ``status``, not the group's. An alert's identity is Alertmanager's
``fingerprint`` (a hash of its label set, the same on every receiver and every repeat); the receiver and
group key are kept as evidence but are not part of it, so one alert routed to two receivers is one ticket.
A firing *episode* is (fingerprint, ``startsAt``): Alertmanager re-sends a group on ``repeat_interval`` and
retries a delivery on 5xx, and :class:`~tickets.models.AlertmanagerAlert` makes those repeats no-ops — a
repeat never opens, reopens or adds to a ticket. A new episode of the same alert is a new sighting: an
occurrence on its open ticket, or a reopen of a recently resolved one.

Labels map to priority, category and queue through ``settings.alertmanager``; a resolved alert resolves
its ticket only where ``resolve_on_resolved`` says so (else the ticket gets a comment).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from anomaly.events import Category, Event, Priority, fingerprint
from hypercare.config import AlertmanagerSettings
from tickets.models import AlertmanagerAlert, Ticket
from tickets.service import TicketService

log = logging.getLogger(__name__)

PRODUCER = "alertmanager"
ACTOR = "alertmanager"
CATEGORIES: tuple[Category, ...] = ("data", "process", "technical", "user")
_HEX = re.compile(r"^[0-9a-f]{1,64}$")
AlertOutcome = Literal[
    "opened", "deduplicated", "reopened", "resolved", "acknowledged", "ignored", "repeat", "recorded"
]
"""``repeat``: an episode already received (no change); ``recorded``: resolved, but the ticket stays open."""


# --- the payload -------------------------------------------------------------------------------------


class AlertmanagerAlertIn(BaseModel):
    """One alert of the group (``template.Alert``)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(None, alias="endsAt", description="0001-01-01T00:00:00Z while firing.")
    generator_url: str = Field("", alias="generatorURL", max_length=4096)
    fingerprint: str = Field("", max_length=64)

    @field_validator("starts_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must carry a time zone (Alertmanager sends RFC 3339 with Z)")
        return value

    @field_validator("ends_at")
    @classmethod
    def _zero_is_none(cls, value: datetime | None) -> datetime | None:
        # Alertmanager zeroes the end of an alert still firing (Go's zero time, year 1).
        if value is None or value.year <= 1:
            return None
        if value.tzinfo is None:
            raise ValueError("must carry a time zone (Alertmanager sends RFC 3339 with Z)")
        return value


class AlertmanagerWebhook(BaseModel):
    """The body Alertmanager's ``webhook_config`` POSTs (``notify/webhook.Message``), version 4.

    Unknown fields are ignored; ``notification_reason`` (v0.32+) and ``routeLabels`` (v0.34+) are optional.
    """

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    version: Literal["4"] = Field(description="Only payload version 4 is understood.")
    receiver: str = Field("", max_length=200)
    status: Literal["firing", "resolved"]
    alerts: list[AlertmanagerAlertIn] = Field(min_length=1)
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field("", alias="externalURL", max_length=4096)
    group_key: str = Field("", alias="groupKey", max_length=4096)
    truncated_alerts: int = Field(0, alias="truncatedAlerts", ge=0)
    notification_reason: str | None = Field(None, max_length=64)
    route_labels: dict[str, str] | None = Field(None, alias="routeLabels")


# --- mapping -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertTriage:
    priority: Priority
    category: Category
    queue: str | None
    resolve_on_resolved: bool


def map_labels(labels: dict[str, str], settings: AlertmanagerSettings) -> AlertTriage:
    """Priority, category, queue and the resolve policy of an alert with these labels.

    Rules are tried in order; each matching rule sets the fields it names that no earlier rule set. What
    is left comes from the severity label, the category label and the defaults."""
    priority: Priority | None = None
    category: Category | None = None
    queue: str | None = None
    resolve: bool | None = None
    for rule in settings.rules:
        if all(labels.get(key) == value for key, value in rule.match.items()):
            priority = priority or rule.priority
            category = category or rule.category
            queue = queue or rule.queue
            resolve = rule.resolve_on_resolved if resolve is None else resolve
    if priority is None:
        severity = labels.get(settings.severity_label, "").lower()
        priority = settings.severity_priority.get(severity, settings.default_priority)
    named = labels.get(settings.category_label, "").lower()
    labelled = [c for c in CATEGORIES if c == named]
    return AlertTriage(
        priority=priority,
        category=category or (labelled[0] if labelled else settings.default_category),
        queue=queue,
        resolve_on_resolved=settings.resolve_on_resolved if resolve is None else resolve,
    )


def alert_fingerprint(alert: AlertmanagerAlertIn) -> str:
    """Alertmanager's own fingerprint; for a sender that omits it, a hash of the label set."""
    raw = alert.fingerprint.lower()
    if not _HEX.fullmatch(raw):
        raw = fingerprint("alertmanager", entity=alert.labels)[:16]
    return raw


def to_event(
    alert: AlertmanagerAlertIn,
    message: AlertmanagerWebhook,
    tri: AlertTriage,
    settings: AlertmanagerSettings,
    *,
    now: datetime,
) -> Event:
    """The event an alert stands for: a trigger while firing, a resolve once resolved."""
    labels = alert.labels
    alertname = labels.get("alertname", "")
    summary = (
        alert.annotations.get("summary")
        or alert.annotations.get("description")
        or alertname
        or "Alertmanager alert"
    )
    source = labels.get(settings.source_label) or PRODUCER
    resolved = alert.status == "resolved"
    return Event(
        fingerprint=f"am-{alert_fingerprint(alert)}",
        action="resolve" if resolved else "trigger",
        severity=tri.priority,
        category=tri.category,
        summary=summary.strip()[:300] or "Alertmanager alert",
        source=source[:64],
        check_id=f"alertmanager.{alertname}"[:128] if alertname else None,
        producer=PRODUCER,
        labels=dict(labels),
        entity={k: v for k, v in labels.items() if k not in {"alertname", "severity"}},
        evidence={
            "status": alert.status,
            "annotations": dict(alert.annotations),
            "starts_at": alert.starts_at.isoformat(),
            "ends_at": alert.ends_at.isoformat() if alert.ends_at else None,
            "generator_url": alert.generator_url,
            "alertmanager_fingerprint": alert.fingerprint,
            "receiver": message.receiver,
            "group_key": message.group_key,
            "external_url": message.external_url,
            "notification_reason": message.notification_reason,
        },
        occurred_at=(alert.ends_at or now) if resolved else alert.starts_at,
    )


# --- intake ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertResult:
    fingerprint: str
    status: str
    outcome: AlertOutcome
    ticket_id: int | None


def ingest_webhook(
    service: TicketService, message: AlertmanagerWebhook, settings: AlertmanagerSettings
) -> list[AlertResult]:
    """Apply every alert of the message to the queue. Flushes; the caller commits (all or nothing, so a
    failed delivery retried by Alertmanager is applied once)."""
    if len(message.alerts) > settings.max_alerts:
        raise ValueError(f"{len(message.alerts)} alerts in one message; at most {settings.max_alerts}")
    results = [_ingest_alert(service, alert, message, settings) for alert in message.alerts]
    log.info(
        "alertmanager webhook",
        extra={
            "receiver": message.receiver,
            "alerts": len(message.alerts),
            "truncated_alerts": message.truncated_alerts,
            "outcomes": sorted({r.outcome for r in results}),
        },
    )
    return results


def _episode(service: TicketService, fp: str, starts_at: datetime) -> AlertmanagerAlert | None:
    return service.session.scalars(
        select(AlertmanagerAlert)
        .where(AlertmanagerAlert.fingerprint == fp, AlertmanagerAlert.starts_at == starts_at)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


def _record_episode(
    service: TicketService, alert: AlertmanagerAlertIn, message: AlertmanagerWebhook, fp: str
) -> AlertmanagerAlert | None:
    """A new episode row, or None when it exists already (maybe inserted concurrently)."""
    now = service.now()
    row = AlertmanagerAlert(
        fingerprint=fp,
        starts_at=alert.starts_at,
        ends_at=alert.ends_at,
        status=alert.status,
        alertname=alert.labels.get("alertname", "")[:200],
        group_key=message.group_key,
        receiver=message.receiver[:200],
        notifications=1,
        first_received_at=now,
        last_received_at=now,
    )
    try:
        with service.session.begin_nested():
            service.session.add(row)
    except IntegrityError:
        return None
    return row


def _ingest_alert(
    service: TicketService,
    alert: AlertmanagerAlertIn,
    message: AlertmanagerWebhook,
    settings: AlertmanagerSettings,
) -> AlertResult:
    fp = alert_fingerprint(alert)
    tri = map_labels(alert.labels, settings)
    event = to_event(alert, message, tri, settings, now=service.now())
    row = _episode(service, fp, alert.starts_at)
    if row is None:
        row = _record_episode(service, alert, message, fp)
        fresh = row is not None
        row = row or _episode(service, fp, alert.starts_at)
        if row is None:  # pragma: no cover - inserted and gone again within our transaction
            raise RuntimeError(f"alert episode {fp} vanished")
    else:
        fresh = False
    if not fresh:
        row.notifications = AlertmanagerAlert.notifications + 1  # in SQL: no lost update between writers
        row.last_received_at = service.now()
        if alert.status == "firing" or row.status == "resolved":
            return AlertResult(fp, alert.status, "repeat", row.ticket_id)
    if alert.status == "firing":
        result = service.ingest(event)
        ticket = result.ticket
        row.ticket_id = ticket.id if ticket else None
        if result.outcome == "opened" and ticket is not None and tri.queue:
            ticket.queue = tri.queue  # the Alertmanager mapping names the team of its alerts
        service.session.flush()
        return AlertResult(fp, alert.status, result.outcome, row.ticket_id)
    row.status, row.ends_at = "resolved", alert.ends_at
    if tri.resolve_on_resolved:
        result = service.ingest(event)
        row.ticket_id = row.ticket_id or (result.ticket.id if result.ticket else None)
        service.session.flush()
        return AlertResult(fp, alert.status, result.outcome, row.ticket_id)
    ticket = service.session.scalars(
        select(Ticket).where(Ticket.open_fingerprint == event.fingerprint)
    ).first()
    if ticket is None:
        service.session.flush()
        return AlertResult(fp, alert.status, "ignored", row.ticket_id)
    ended = alert.ends_at.isoformat() if alert.ends_at else "an unknown time"
    service.comment(
        ticket.id,
        ACTOR,
        f"Alertmanager reports the alert resolved (ended {ended}); it is configured not to resolve "
        "its ticket, so the ticket stays open.",
    )
    row.ticket_id = row.ticket_id or ticket.id
    service.session.flush()
    return AlertResult(fp, alert.status, "recorded", row.ticket_id)
