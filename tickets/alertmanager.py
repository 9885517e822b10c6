"""Prometheus Alertmanager webhooks (payload version 4) into the ticket queue.

Each alert of a group counts by its own ``status``, not the group's. An alert's identity is Alertmanager's
``fingerprint`` (a hash of its label set, the same on every receiver and every repeat); the receiver and
group key are kept as evidence but are not part of it, so one alert routed to two receivers is one ticket.
A firing *episode* is (fingerprint, ``startsAt``): Alertmanager re-sends a group on ``repeat_interval`` and
retries a delivery on 5xx, and :class:`~tickets.models.AlertmanagerAlert` makes those repeats no-ops — a
repeat never opens, reopens or adds to a ticket. A new episode of the same alert is a new sighting: an
occurrence on its open ticket, or a reopen of a recently resolved one.

Labels map to priority (``P1``..``P4`` or the usual words, with the reason kept as the ticket's "why this
priority"), category, queue, source (the ``source`` label, else ``source_label``) and check (``check_label``)
through ``settings.alertmanager``; a resolved alert resolves its ticket only where ``resolve_on_resolved``
says so (else the ticket gets a comment). An alert naming one of Hypercare's own checks whose open ticket
exists is *folded* into that ticket (:func:`fold`); with ``group_alerts`` (or a rule's ``group``) a group is
one ticket; :func:`expire_alerts` (the server's loop) expires alerts past ``endsAt`` or not re-sent for
``expire_after_h``, for senders that never resolve them.
"""
# size: the Alertmanager intake (payload, mapping rules, bulk paths per dialect) is read as one

from __future__ import annotations

import functools
import json
import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import TextClause, and_, bindparam, func, insert, or_, select, text, tuple_, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from anomaly.events import Event, fingerprint
from core.db import utcnow
from core.vocabulary import OPEN_STATUSES, Category, Priority, parse
from tickets import correlation, dedup
from tickets.alert_rejects import (
    INTAKE_ERROR_CHECK,
    Rejected,
    clean_text,
    intake_error_event,
    intake_error_fingerprint,
    storable,
    unstorable_text,
)
from tickets.cache import bump_version, pages_named_by_caller
from tickets.models import AlertmanagerAlert, EventRecord, Occurrence, Ticket, TicketAudit
from tickets.service import TicketService
from tickets.settings import AlertmanagerSettings, TicketsConfig

log = logging.getLogger(__name__)

PRODUCER = "alertmanager"
GROUP_PREFIX = "am-group-"
ACTOR = "alertmanager"
_HEX = re.compile(r"^[0-9a-f]{1,64}$")
BULK_DIALECTS = ("postgresql", "sqlite")
"""Stores where a webhook's firing alerts are applied set-wise (``INSERT ... ON CONFLICT DO NOTHING
RETURNING``); elsewhere alert by alert, with the same outcomes (both apply ``tickets/dedup.py``)."""
AlertOutcome = Literal[
    "opened",
    "deduplicated",
    "correlated",
    "reopened",
    "resolved",
    "acknowledged",
    "ignored",
    "repeat",
    "recorded",
    "rejected",
    "folded",
]
"""``repeat``: an episode already received (no change); ``recorded``: resolved, but the ticket stays open;
``rejected``: the alert does not validate as sent; it is evidence on the receiver's intake-error ticket;
``folded``: the alert is about one of Hypercare's own checks whose open ticket it joined."""
MAX_OFFSET = timedelta(hours=14)


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

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        """Text the store can keep: PostgreSQL refuses a NUL or an unpaired surrogate anywhere in it."""
        problem = None if _storable_fast(data) else _unstorable(data, "")
        if problem:
            raise ValueError(problem)
        return data

    @field_validator("starts_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return real_time(value)

    @field_validator("ends_at")
    @classmethod
    def _zero_is_none(cls, value: datetime | None) -> datetime | None:
        # Alertmanager zeroes the end of an alert still firing (Go's zero time, year 1).
        if value is None or value.year <= 1:
            return None
        return real_time(value)


def real_time(value: datetime) -> datetime:
    """An alert's time as RFC 3339 has it: with a time zone whose offset is whole minutes within +-14:00,
    from 1970 on (an offset beyond what PostgreSQL keeps, or a year the UTC conversion overflows, would
    fail the whole delivery in the store)."""
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("must carry a time zone (Alertmanager sends RFC 3339 with Z)")
    if offset % timedelta(minutes=1) or abs(offset) > MAX_OFFSET:
        raise ValueError(
            f"has an impossible time zone offset ({_offset(offset)}): RFC 3339 offsets are whole minutes "
            "within +-14:00"
        )
    if not 1970 <= value.year <= 9998:
        raise ValueError(f"is not a real alert time (year {value.year})")
    return value


def _offset(offset: timedelta) -> str:
    seconds = int(offset.total_seconds())
    sign, seconds = ("-" if seconds < 0 else "+"), abs(seconds)
    shown = f"{sign}{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"
    return shown + (f":{seconds % 60:02d}" if seconds % 60 else "")


def _storable_fast(data: Any) -> bool:
    """True when ``data`` certainly holds no NUL and no unpaired surrogate: one C-speed dump instead of a
    walk per string (JSON escapes a NUL as ``\\u0000``; a text merely showing that escape takes the walk)."""
    try:
        text_ = json.dumps(data, ensure_ascii=False)
        text_.encode("utf-8")
    except (TypeError, ValueError):  # not JSON-like (the walk and the model say what), or a surrogate
        return False
    return "\\u0000" not in text_


def _unstorable(data: Any, where: str) -> str | None:
    if isinstance(data, str):
        problem = unstorable_text(data)
        return f"{where or 'value'}: {problem}" if problem else None
    if isinstance(data, dict):
        for key, value in data.items():
            name = f"{where}.{key}" if where else str(key)
            problem = _unstorable(key, f"{name} (the key)") if isinstance(key, str) else None
            problem = problem or _unstorable(value, name)
            if problem:
                return problem
    if isinstance(data, list):
        for n, value in enumerate(data):
            problem = _unstorable(value, f"{where}[{n}]")
            if problem:
                return problem
    return None


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    version: Literal["4"] = Field(description="Only payload version 4 is understood.")
    receiver: str = Field("", max_length=200)
    status: Literal["firing", "resolved"]
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field("", alias="externalURL", max_length=4096)
    group_key: str = Field("", alias="groupKey", max_length=4096)
    truncated_alerts: int = Field(0, alias="truncatedAlerts", ge=0)
    notification_reason: str | None = Field(None, max_length=64)
    route_labels: dict[str, str] | None = Field(None, alias="routeLabels")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        """The group's own fields made storable rather than refused (a NUL in an annotation common to the
        group is in ``commonAnnotations`` too): refusing them would cost the whole group."""
        if isinstance(data, dict):
            return {k: v if k == "alerts" else storable(v) for k, v in data.items()}
        return data


class AlertmanagerWebhook(_Envelope):
    """The body Alertmanager's ``webhook_config`` POSTs (``notify/webhook.Message``), version 4, every alert
    valid.

    Unknown fields are ignored; ``notification_reason`` (v0.32+) and ``routeLabels`` (v0.34+) are optional.
    """

    alerts: list[AlertmanagerAlertIn] = Field(min_length=1)


class AlertmanagerDelivery(_Envelope):
    """A webhook as ``POST /api/v1/alertmanager`` takes it: the envelope validated, each alert on its own
    (:func:`ingest_delivery`), so one bad alert costs only itself."""

    alerts: list[Any] = Field(
        min_length=1,
        description="The group's alerts (Alertmanager's `template.Alert`: status, labels, annotations, "
        "startsAt, endsAt, generatorURL, fingerprint). One that does not validate is answered `rejected` "
        "and kept on the receiver's intake-error ticket; the others are taken in.",
    )


# --- mapping -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertTriage:
    priority: Priority
    category: Category
    queue: str | None
    resolve_on_resolved: bool
    reason: str = ""
    """Why this priority, in words (the ticket's "Why this priority")."""


def severity_priority(value: str, settings: AlertmanagerSettings) -> Priority | None:
    """The priority a severity label's value names: a configured word (any case) or P1..P4 (any case)."""
    key = value.strip().lower()
    return settings.severity_priority.get(key) or parse(Priority, key.upper())


def map_labels(labels: dict[str, str], settings: AlertmanagerSettings) -> AlertTriage:
    """Priority, category, queue and the resolve policy of an alert with these labels, and why.

    Rules are tried in order; each matching rule sets the fields it names that no earlier rule set. What
    is left comes from the severity label, the category label and the defaults."""
    priority: Priority | None = None
    category: Category | None = None
    queue: str | None = None
    resolve: bool | None = None
    reason = ""
    for n, rule in enumerate(settings.rules, start=1):
        if all(labels.get(key) == value for key, value in rule.match.items()):
            if priority is None and rule.priority is not None:
                shown = ", ".join(f'{k}="{v}"' for k, v in sorted(rule.match.items())) or "every alert"
                reason = f"Alertmanager rule {n} (matching {shown}) sets {rule.priority}."
            priority = priority or rule.priority
            category = category or rule.category
            queue = queue or rule.queue
            resolve = rule.resolve_on_resolved if resolve is None else resolve
    if priority is None:
        label = settings.severity_label
        value = labels.get(label)
        priority = severity_priority(value, settings) if value is not None else None
        if priority is not None:
            reason = f'Alertmanager label {label}="{value}" maps to {priority}.'
        elif value is None:
            priority = settings.default_priority
            reason = f"The alert has no {label} label: the default priority {priority}."
        else:
            priority = settings.default_priority
            reason = (
                f'Alertmanager label {label}="{value[:64]}" is not a known severity (P1..P4 or one of '
                f"alertmanager.severity_priority): the default priority {priority}."
            )
    named = labels.get(settings.category_label, "").lower()
    return AlertTriage(
        priority=priority,
        category=category or parse(Category, named) or settings.default_category,
        queue=queue,
        resolve_on_resolved=settings.resolve_on_resolved if resolve is None else resolve,
        reason=reason,
    )


def grouped(message: _Envelope, settings: AlertmanagerSettings) -> bool:
    """Whether the message's alerts make one ticket: the first rule with ``group`` whose match holds for
    the group's common labels decides, else ``group_alerts``."""
    for rule in settings.rules:
        if rule.group is not None and all(
            message.common_labels.get(key) == value for key, value in rule.match.items()
        ):
            return rule.group
    return settings.group_alerts


def group_fingerprint(message: _Envelope) -> str:
    """The identity of an Alertmanager group: its receiver and group labels (stable over repeats)."""
    labels = {"receiver": message.receiver, **message.group_labels}
    return GROUP_PREFIX + fingerprint("alertmanager-group", entity=labels)[:16]


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
    source = labels.get("source") or labels.get(settings.source_label) or PRODUCER
    resolved = alert.status == "resolved"
    check = labels.get(settings.check_label, "").strip()
    event_fp = f"am-{alert_fingerprint(alert)}"
    entity = {k: v for k, v in labels.items() if k not in {"alertname", "severity"}}
    if grouped(message, settings):
        event_fp = group_fingerprint(message)
        entity = dict(message.group_labels)
        shown = ", ".join(f"{k}={v}" for k, v in sorted(message.group_labels.items()))
        common = message.common_annotations.get("summary") or message.common_labels.get("alertname")
        summary = f"{common or summary} ({len(message.alerts)} alerts" + (f"; {shown})" if shown else ")")
    return Event(
        fingerprint=event_fp,
        action="resolve" if resolved else "trigger",
        severity=tri.priority,
        category=tri.category,
        summary=summary.strip()[:300] or "Alertmanager alert",
        source=source[:64],
        check_id=(check or (f"alertmanager.{alertname}" if alertname else ""))[:128] or None,
        producer=PRODUCER,
        labels=dict(labels),
        entity=entity,
        severity_reasons=(tri.reason,) if tri.reason else (),
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


def native_ticket(service: TicketService, event: Event, settings: AlertmanagerSettings) -> Ticket | None:
    """The open ticket Hypercare's own checks keep for the check an alert names (its ``check_label``),
    of the alert's source when it names one; the oldest first; locked. None for an alert naming no check."""
    check = event.labels.get(settings.check_label, "").strip()
    if not check or event.fingerprint.startswith(GROUP_PREFIX):  # a group's ticket stays the group's
        return None
    stmt = select(Ticket).where(
        Ticket.check_id == check,
        Ticket.status.in_(OPEN_STATUSES),
        Ticket.fingerprint.not_like("am-%"),
    )
    if event.labels.get("source") or event.labels.get(settings.source_label):
        stmt = stmt.where(Ticket.source == event.source)
    return service.session.scalars(stmt.order_by(Ticket.id).limit(1).with_for_update()).first()


def first_sighting(
    service: TicketService, event: Event, tri: AlertTriage, settings: AlertmanagerSettings | None = None
) -> tuple[AlertOutcome, Ticket | None]:
    """A firing alert whose fingerprint has no open ticket: folded into its check's native ticket when
    there is one, else taken in as an event (opens or reopens a ticket: triage, routing, SLA, audit)."""
    native = native_ticket(service, event, settings) if settings is not None else None
    if native is not None:
        fold(service, native, event)
        return "folded", native
    result = service.ingest(event)
    ticket = result.ticket
    if result.outcome == "opened" and ticket is not None and tri.queue:
        ticket.queue = tri.queue  # the Alertmanager mapping names the team of its alerts
    return result.outcome, ticket


def fold(service: TicketService, ticket: Ticket, event: Event) -> None:
    """Join the alert to the check's ticket: its fingerprint is remembered there (tickets/correlation.py,
    so its later episodes land there too and the ticket's resolution releases it), the alert is an
    occurrence with its evidence, and the audit trail says which alert was folded in."""
    session = service.session
    correlation.join(session, ticket, event.fingerprint, event.check_id, f"check_id={event.check_id}")
    session.flush()
    result = service.ingest(event)  # the joined fingerprint: an occurrence on the check's ticket
    session.add(
        TicketAudit(
            ticket_id=ticket.id,
            at=service.now(),
            actor=ACTOR,
            action="folded",
            detail={
                "fingerprint": event.fingerprint,
                "alertname": event.labels.get("alertname", ""),
                "check_id": event.check_id,
                "event_id": result.event.id,
                "generator_url": event.evidence.get("generator_url", ""),
            },
        )
    )
    log.info(
        "alertmanager alert folded into its check's ticket",
        extra={"ticket_id": ticket.id, "fingerprint": event.fingerprint, "check_id": event.check_id},
    )


@dataclass(frozen=True, slots=True)
class AlertResult:
    fingerprint: str
    status: str
    outcome: AlertOutcome
    ticket_id: int | None
    error: str | None = None
    """Why the alert was rejected (outcome ``rejected``)."""


class AlertPayloadError(ValueError):
    """A webhook the intake refuses as it stands: no retry of the same delivery would be accepted.

    The only error :func:`ingest_webhook` raises on purpose; anything else raised is a fault of ours
    (a 5xx, which Alertmanager retries), never a reason to drop the alerts."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


def too_many_alerts(count: int, settings: AlertmanagerSettings) -> AlertPayloadError | None:
    """The refusal of a group over ``max_alerts``, naming the settings that keep groups under it."""
    if count <= settings.max_alerts:
        return None
    return AlertPayloadError(
        "alerts",
        f"{count} alerts in one message; at most {settings.max_alerts}. Set `max_alerts: "
        f"{settings.max_alerts}` in this receiver's webhook_config in Alertmanager (it then sends the first "
        f"{settings.max_alerts} and counts the rest in truncatedAlerts) or group by more labels (`group_by`) "
        "in its route; or raise `alertmanager.max_alerts` in Hypercare's settings",
    )


def ingest_delivery(
    service: TicketService, delivery: AlertmanagerDelivery, settings: AlertmanagerSettings
) -> list[AlertResult]:
    """Apply a delivery alert by alert: the valid alerts as :func:`ingest_webhook` does, each invalid one
    answered ``rejected`` and kept on the receiver's intake-error ticket (``tickets/alert_rejects.py``).
    One result per alert, in payload order. Flushes; the caller commits. Raises
    :class:`AlertPayloadError` for a delivery over ``settings.max_alerts``."""
    refused = too_many_alerts(len(delivery.alerts), settings)
    if refused is not None:
        raise refused
    valid: list[tuple[int, AlertmanagerAlertIn]] = []
    rejected: list[Rejected] = []
    for index, raw in enumerate(delivery.alerts):
        try:
            valid.append((index, AlertmanagerAlertIn.model_validate(raw)))
        except ValidationError as exc:
            rejected.append(Rejected(index, clean_text(_problem(exc)), raw))  # names payload keys
    results: list[AlertResult | None] = [None] * len(delivery.alerts)
    if valid:
        envelope = delivery.model_dump(exclude={"alerts"})
        message = AlertmanagerWebhook.model_validate({**envelope, "alerts": [alert for _, alert in valid]})
        for (index, _), result in zip(valid, ingest_webhook(service, message, settings), strict=True):
            results[index] = result
    if delivery.truncated_alerts:
        _record_truncation(service, delivery, settings)
    if rejected:
        event = intake_error_event(
            rejected,
            receiver=delivery.receiver,
            group_key=delivery.group_key,
            external_url=delivery.external_url,
            alerts_in_delivery=len(delivery.alerts),
            severity=settings.intake_error_priority,
            now=service.now(),
        )
        outcome = service.ingest(event)  # a repeat of it is an occurrence (tickets/dedup.py)
        ticket = outcome.ticket
        if outcome.outcome == "opened" and ticket is not None and settings.intake_error_queue:
            ticket.queue = settings.intake_error_queue
        service.session.flush()
        for bad in rejected:
            results[bad.index] = AlertResult(
                bad.fingerprint, bad.status, "rejected", ticket.id if ticket else None, bad.problem
            )
        log.warning(
            "alertmanager alerts rejected",
            extra={
                "receiver": delivery.receiver,
                "rejected": len(rejected),
                "alerts": len(delivery.alerts),
                "ticket_id": ticket.id if ticket else None,
                "problems": dict(Counter(bad.problem.split(":", 1)[0] for bad in rejected)),
            },
        )
    return [r for r in results if r is not None]


TRUNCATED = "truncated_alerts"


def _record_truncation(
    service: TicketService, delivery: AlertmanagerDelivery, settings: AlertmanagerSettings
) -> None:
    """Alerts Alertmanager left out of the delivery (its ``max_alerts``, counted in ``truncatedAlerts``) never
    arrive: logged, and an occurrence on the receiver's intake-error ticket for truncation."""
    name = clean_text(delivery.receiver)[:64] or "(unnamed)"
    sent, left_out = len(delivery.alerts), delivery.truncated_alerts
    log.warning(
        "alertmanager left alerts out of a delivery",
        extra={"receiver": name, "alerts": sent, "truncated_alerts": left_out},
    )
    event = Event(
        fingerprint=intake_error_fingerprint(delivery.receiver, TRUNCATED),
        severity=settings.intake_error_priority,
        category=Category.TECHNICAL,
        summary=f"Alertmanager receiver {name}: {left_out} alerts left out of a delivery of {sent}"[:300],
        source=PRODUCER,
        check_id=INTAKE_ERROR_CHECK,
        producer=PRODUCER,
        labels={"receiver": name, "reason": TRUNCATED},
        entity={"receiver": name},
        evidence={
            "reason": TRUNCATED,
            "receiver": name,
            "group_key": clean_text(delivery.group_key),
            "alerts_in_delivery": sent,
            "truncated_alerts": left_out,
            "fix": "Alertmanager's webhook_config max_alerts left these alerts out: they never reach "
            "Hypercare. Group by more labels (group_by) so that groups are smaller, or raise "
            "max_alerts (at most Hypercare's alertmanager.max_alerts).",
        },
        occurred_at=service.now(),
    )
    outcome = service.ingest(event)
    if outcome.outcome == "opened" and outcome.ticket is not None and settings.intake_error_queue:
        outcome.ticket.queue = settings.intake_error_queue


def _problem(exc: ValidationError) -> str:
    """One line per alert: where and what (the first error; how many more)."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    where = ".".join(str(_ALIASES.get(str(part), part)) for part in first.get("loc", ()))
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    text_ = f"{where}: {message}" if where else message
    return text_ + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")


_ALIASES = {"starts_at": "startsAt", "ends_at": "endsAt", "generator_url": "generatorURL"}


def ingest_webhook(
    service: TicketService, message: AlertmanagerWebhook, settings: AlertmanagerSettings
) -> list[AlertResult]:
    """Apply every alert of the message to the queue. Flushes; the caller commits (all or nothing, so a
    failed delivery retried by Alertmanager is applied once). Raises :class:`AlertPayloadError` for a
    message over ``settings.max_alerts``."""
    refused = too_many_alerts(len(message.alerts), settings)
    if refused is not None:
        raise refused
    if service.session.get_bind().dialect.name in BULK_DIALECTS:
        results = _ingest_bulk(service, message, settings)
    else:
        results = [_ingest_alert(service, alert, message, settings) for alert in message.alerts]
    log.info(
        "alertmanager webhook",
        extra={
            "receiver": message.receiver,
            "alerts": len(message.alerts),
            "truncated_alerts": message.truncated_alerts,
            "outcomes": dict(Counter(r.outcome for r in results)),
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
        if alert.status == "firing" and row.status == "expired":
            row.status = "firing"  # expired too early (re-sent after expire_after_h): firing again
        elif alert.status == "firing" or row.status == "resolved":
            return AlertResult(fp, alert.status, "repeat", row.ticket_id)
    if alert.status == "firing":
        own = service.session.scalar(select(Ticket.id).where(Ticket.open_fingerprint == event.fingerprint))
        outcome, ticket = first_sighting(service, event, tri, settings) if own is None else (None, None)
        if outcome is None:
            result = service.ingest(event)
            outcome, ticket = result.outcome, result.ticket
        row.ticket_id = ticket.id if ticket else None
        service.session.flush()
        return AlertResult(fp, alert.status, outcome, row.ticket_id)
    row.status, row.ends_at = "resolved", alert.ends_at
    if event.fingerprint.startswith(GROUP_PREFIX) and message.status != "resolved":
        service.session.flush()  # one alert of a group resolved: its ticket waits for the whole group
        return AlertResult(fp, alert.status, "recorded", row.ticket_id)
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


# --- expiry ------------------------------------------------------------------------------------------


def expire_alerts(service: TicketService, settings: AlertmanagerSettings, *, limit: int = 1000) -> int:
    """Expire firing episodes past their ``endsAt``, or not re-sent for ``expire_after_h`` (Alertmanager
    re-sends a firing group every ``repeat_interval``; with ``send_resolved: false`` no resolve ever comes).

    A ticket of the intake's own none of whose episodes is still firing is then resolved (or, where
    ``resolve_on_resolved`` is off, commented on); a check's ticket an alert was folded into follows its
    check instead. Returns the episodes expired (at most ``limit``). Flushes; the caller commits."""
    session = service.session
    now = service.now()
    unseen = now - timedelta(hours=settings.expire_after_h)
    episode = AlertmanagerAlert
    rows = session.scalars(
        select(episode)
        .where(
            episode.status == "firing",
            or_(
                and_(episode.ends_at.is_not(None), episode.ends_at <= now), episode.last_received_at <= unseen
            ),
        )
        .order_by(episode.id)
        .limit(limit)
        .with_for_update()
    ).all()
    if not rows:
        return 0
    for row in rows:
        row.status = "expired"
    session.flush()
    ticket_ids = sorted({row.ticket_id for row in rows if row.ticket_id is not None})
    still_firing = set(
        session.scalars(
            select(episode.ticket_id).where(episode.ticket_id.in_(ticket_ids), episode.status == "firing")
        )
    )
    for ticket_id in ticket_ids:
        ticket = session.get(Ticket, ticket_id)
        if ticket_id in still_firing or ticket is None or not ticket.is_open:
            continue
        if not ticket.fingerprint.startswith("am-"):
            continue  # folded into a check's ticket: the check says when it recovered
        names = sorted({row.alertname or row.fingerprint for row in rows if row.ticket_id == ticket_id})
        why = (
            f"Alertmanager alert {', '.join(names)[:200]} expired: past its endsAt or not re-sent for "
            f"{settings.expire_after_h:g} h, and no resolve arrived (alertmanager.expire_after_h)."
        )
        if settings.resolve_on_resolved:
            service.resolve(ticket_id, ACTOR, why)
        else:
            service.comment(ticket_id, ACTOR, why + " It is configured not to resolve its ticket.")
    session.flush()
    log.info("alertmanager alerts expired", extra={"expired": len(rows), "tickets": len(ticket_ids)})
    return len(rows)


def expire_stale_alerts(
    factory: sessionmaker[Session], config: TicketsConfig, *, now: Callable[[], datetime] = utcnow
) -> int:
    """The server's periodic sweep (``hypercare.app.deliver_forever``): :func:`expire_alerts` in batches,
    each in its own short transaction."""
    total = 0
    while True:
        with factory() as session, session.begin():
            expired = expire_alerts(TicketService(session, config, now=now), config.alertmanager)
        total += expired
        if expired < 1000:
            return total


# --- set-wise intake (PostgreSQL, SQLite) -------------------------------------------------------------
#
# The same outcomes as :func:`_ingest_alert`, in a fixed number of statements per run of firing alerts
# instead of a dozen per alert: the episodes in one INSERT ... ON CONFLICT DO NOTHING RETURNING (what it
# does not return is a repeat, counted by one UPDATE), the open tickets of all the run's fingerprints in
# one SELECT ... FOR UPDATE (in id order, so two webhooks never deadlock) with the counters a repeat reads,
# then for the sightings of an open ticket one INSERT of the events, one of the occurrences and one UPDATE
# per ticket, with what tickets/dedup.py decides over the locked rows (the same rule TicketService applies
# to one event). A fingerprint with no open ticket goes through TicketService.ingest (open or reopen:
# triage, routing, SLA, audit, outbox), like any other event. Resolved alerts keep the alert-by-alert path,
# in payload order. MariaDB takes the alert-by-alert path throughout (no UPDATE ... RETURNING), which
# applies the same rule through the service.


@dataclass(frozen=True, slots=True)
class _Firing:
    index: int
    alert: AlertmanagerAlertIn
    fp: str
    tri: AlertTriage
    event: Event
    episode: tuple[str, datetime]
    """(fingerprint, start in UTC): the episode's identity, computed once (it is looked up many times)."""


def _ingest_bulk(
    service: TicketService, message: AlertmanagerWebhook, settings: AlertmanagerSettings
) -> list[AlertResult]:
    results: list[AlertResult | None] = [None] * len(message.alerts)
    run: list[_Firing] = []
    now = service.now()
    for index, alert in enumerate(message.alerts):
        if alert.status == "firing":
            fp = alert_fingerprint(alert)
            tri = map_labels(alert.labels, settings)
            event = to_event(alert, message, tri, settings, now=now)
            run.append(_Firing(index, alert, fp, tri, event, (fp, alert.starts_at.astimezone(UTC))))
            continue
        if run:
            _ingest_firing(service, message, run, results, settings)
            run = []
        results[index] = _ingest_alert(service, alert, message, settings)
    if run:
        _ingest_firing(service, message, run, results, settings)
    return [r for r in results if r is not None]


def _insert_episodes(
    service: TicketService, message: AlertmanagerWebhook, items: list[_Firing], open_ids: dict[str, int]
) -> dict[tuple[str, datetime], int]:
    """Insert the episodes not yet known; returns the new ones' ids by (fingerprint, start)."""
    session = service.session
    now = service.now()
    values = [
        {
            "fingerprint": item.fp,
            "starts_at": item.alert.starts_at,
            "ends_at": item.alert.ends_at,
            "status": "firing",
            "alertname": item.alert.labels.get("alertname", "")[:200],
            "group_key": message.group_key,
            "receiver": message.receiver[:200],
            "ticket_id": open_ids.get(item.event.fingerprint),
            "notifications": 1,
            "first_received_at": now,
            "last_received_at": now,
        }
        for item in items
    ]
    if session.get_bind().dialect.name == "postgresql":
        return _insert_episodes_pg(session, values)
    table = AlertmanagerAlert.metadata.tables["alertmanager_alert"]
    stmt = (
        sqlite.insert(table)
        .on_conflict_do_nothing(index_elements=["fingerprint", "starts_at"])
        .returning(table.c.id, table.c.fingerprint, table.c.starts_at)
    )
    # executemany: one cached statement, sent as batched multi-row INSERTs ("insertmanyvalues")
    rows = session.execute(stmt, values)
    return {(fp, starts_at.astimezone(UTC)): int(row_id) for row_id, fp, starts_at in rows}


# On PostgreSQL each statement takes all its rows as one JSON document (``jsonb_to_recordset``): one short
# SQL text whatever the number of alerts (prepared once by the driver), and one json.dumps instead of the
# driver escaping every element of a dozen arrays.
_EPISODES_PG = text(
    """
    INSERT INTO alertmanager_alert (fingerprint, starts_at, ends_at, status, alertname, group_key, receiver,
                                    ticket_id, notifications, first_received_at, last_received_at)
    SELECT fp, starts_at, ends_at, 'firing', alertname, :group_key, :receiver, ticket_id, 1, :now, :now
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
         AS a(fp varchar, starts_at timestamptz, ends_at timestamptz, alertname varchar, ticket_id integer)
    ON CONFLICT (fingerprint, starts_at) DO NOTHING
    RETURNING id, fingerprint, starts_at
    """
)


def _json_rows(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, separators=(",", ":"), default=_json_default)


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _insert_episodes_pg(session: Session, values: list[dict[str, Any]]) -> dict[tuple[str, datetime], int]:
    first = values[0]
    rows = [
        {
            "fp": v["fingerprint"],
            "starts_at": v["starts_at"].isoformat(),  # here rather than in json.dumps's default hook
            "ends_at": v["ends_at"].isoformat() if v["ends_at"] is not None else None,
            "alertname": v["alertname"],
            "ticket_id": v["ticket_id"],
        }
        for v in values
    ]
    result = session.execute(
        _EPISODES_PG,
        {
            "group_key": first["group_key"],
            "receiver": first["receiver"],
            "now": first["first_received_at"],
            "rows": _json_rows(rows),
        },
    )
    return {(fp, starts_at.astimezone(UTC)): int(row_id) for row_id, fp, starts_at in result}


def _revive(service: TicketService, keys: list[tuple[str, datetime]]) -> dict[tuple[str, datetime], int]:
    """Episodes the expiry sweep expired that Alertmanager still sends as firing (``repeat_interval``
    longer than ``expire_after_h``): firing again, and taken in as a new sighting by the caller."""
    if not keys:
        return {}
    table = AlertmanagerAlert.metadata.tables["alertmanager_alert"]
    rows = service.session.execute(
        update(table)
        .where(tuple_(table.c.fingerprint, table.c.starts_at).in_(keys), table.c.status == "expired")
        .values(status="firing", last_received_at=service.now())
        .returning(table.c.id, table.c.fingerprint, table.c.starts_at)
    )
    return {(fp, starts.astimezone(UTC)): int(row_id) for row_id, fp, starts in rows}


def _count_repeats(service: TicketService, repeats: list[_Firing]) -> dict[tuple[str, datetime], int | None]:
    """One more notification on each repeated episode (in SQL: no lost update); their tickets."""
    table = AlertmanagerAlert.metadata.tables["alertmanager_alert"]
    counts = Counter(item.episode for item in repeats)
    tickets: dict[tuple[str, datetime], int | None] = {}
    for times in sorted(set(counts.values())):
        keys = [key for key, n in counts.items() if n == times]
        rows = service.session.execute(
            update(table)
            .where(tuple_(table.c.fingerprint, table.c.starts_at).in_(keys))
            .values(notifications=table.c.notifications + times, last_received_at=service.now())
            .returning(table.c.fingerprint, table.c.starts_at, table.c.ticket_id)
        )
        tickets.update({(fp, starts.astimezone(UTC)): ticket_id for fp, starts, ticket_id in rows})
    return tickets


def _ingest_firing(
    service: TicketService,
    message: AlertmanagerWebhook,
    run: list[_Firing],
    results: list[AlertResult | None],
    settings: AlertmanagerSettings,
) -> None:
    with pages_named_by_caller(service.session) as pages:  # the set-wise writes name their tickets
        _ingest_firing_run(service, message, run, results, settings, pages)


def _ingest_firing_run(  # noqa: PLR0917  (the run's parts)
    service: TicketService,
    message: AlertmanagerWebhook,
    run: list[_Firing],
    results: list[AlertResult | None],
    settings: AlertmanagerSettings,
    pages: set[int],
) -> None:
    session = service.session
    session.flush()
    fingerprints = sorted({item.event.fingerprint for item in run})
    open_ids: dict[str, int] = {}
    counters: dict[int, dedup.Counters] = {}  # what tickets/dedup.py decides the sightings on
    for row_id, open_fp, count, seen, amount in session.execute(
        select(
            Ticket.id,
            Ticket.open_fingerprint,
            Ticket.occurrence_count,
            Ticket.last_seen_at,
            Ticket.amount_at_risk,
        )
        .where(Ticket.open_fingerprint.in_(fingerprints))
        .order_by(Ticket.id)
        .with_for_update()
    ):
        open_ids[str(open_fp)] = int(row_id)
        counters[int(row_id)] = dedup.Counters(int(count), seen, amount)
    firsts: dict[tuple[str, datetime], _Firing] = {}
    for item in run:
        firsts.setdefault(item.episode, item)
    inserted = _insert_episodes(service, message, list(firsts.values()), open_ids)
    inserted.update(_revive(service, [key for key in firsts if key not in inserted]))
    fresh = [item for item in run if firsts[item.episode] is item and item.episode in inserted]
    repeats = [item for item in run if not (firsts[item.episode] is item and item.episode in inserted)]
    repeat_tickets = _count_repeats(service, repeats) if repeats else {}

    linked_at_insert = dict(open_ids)
    sightings: list[tuple[_Firing, int]] = []
    for item in fresh:
        open_id = open_ids.get(item.event.fingerprint)
        if open_id is not None:
            sightings.append((item, open_id))
            results[item.index] = AlertResult(item.fp, "firing", "deduplicated", open_id)
            continue
        # first sighting: folded into its check's ticket, or opens (or reopens) one
        outcome, ticket = first_sighting(service, item.event, item.tri, settings)
        if ticket is not None:
            open_ids[item.event.fingerprint] = ticket.id
            counters[ticket.id] = dedup.counters_of(ticket)
        results[item.index] = AlertResult(
            item.fp, "firing", outcome, ticket.id if ticket is not None else None
        )
    # episodes whose ticket was opened (or reopened) by this run: link them now
    links = [
        {"episode_id": inserted[item.episode], "ticket": open_ids[item.event.fingerprint]}
        for item in fresh
        if item.event.fingerprint not in linked_at_insert and item.event.fingerprint in open_ids
    ]
    if links:
        episodes = AlertmanagerAlert.metadata.tables["alertmanager_alert"]
        session.execute(
            update(episodes)
            .where(episodes.c.id == bindparam("episode_id"))
            .values(ticket_id=bindparam("ticket")),
            links,
        )
    for item in repeats:
        ticket_id = repeat_tickets.get(item.episode)
        if item.episode in inserted:  # a copy of an episode new in this run: on its first copy's ticket
            first = results[firsts[item.episode].index]
            ticket_id = first.ticket_id if first is not None else None
        results[item.index] = AlertResult(item.fp, "firing", "repeat", ticket_id)
    if sightings:
        _add_sightings(service, sightings, counters)
    pages.update(open_ids.values())
    pages.update(ticket_id for ticket_id in repeat_tickets.values() if ticket_id is not None)
    session.flush()


def _add_sightings(
    service: TicketService, sightings: list[tuple[_Firing, int]], counters: dict[int, dedup.Counters]
) -> None:
    """A run's sightings of open tickets (outcome ``deduplicated``), set-wise: the events, their
    occurrences and each ticket's :data:`~tickets.dedup.REPEAT_FIELDS` as :func:`tickets.dedup.after`
    decides them over the ticket rows locked by this transaction (``counters``), written once per ticket."""
    session = service.session
    now = service.now()
    by_ticket: dict[int, list[Event]] = {}
    for item, ticket_id in sightings:
        by_ticket.setdefault(ticket_id, []).append(item.event)
    changes = {
        ticket_id: dedup.after(counters[ticket_id], events, now)
        for ticket_id, events in sorted(by_ticket.items())
    }
    if session.get_bind().dialect.name == "postgresql":
        _add_sightings_pg(service, sightings, changes)
    else:
        _add_sightings_sqlite(service, sightings, changes)
    # on PostgreSQL the writes are text SQL, which the session's hook cannot see; they touch these tickets
    bump_version(session, tickets=changes)
    _expire_counters(session, sorted(changes))


def _event_row(event: Event, ticket_id: int, now: datetime) -> dict[str, Any]:
    return {
        "fingerprint": event.fingerprint,
        "action": event.action,
        "severity": event.severity,
        "category": event.category,
        "summary": event.summary,
        "source": event.source,
        "check_id": event.check_id,
        "producer": event.producer,
        "labels": dict(event.labels),
        "entity": dict(event.entity),
        "evidence": dict(event.evidence),
        "amount_at_risk": event.amount_at_risk,
        "occurred_at": event.occurred_at,
        "received_at": now,
        "ticket_id": ticket_id,
    }


@functools.cache
def _sightings_pg(dialect: Dialect) -> TextClause:
    """A run's sightings in one statement: the events, their occurrences (``dedup.occurrence``'s columns,
    copied from the event rows) and each ticket's ``dedup.REPEAT_FIELDS`` as decided. Built from those
    definitions on first use."""
    ticket = Ticket.metadata.tables["ticket"]
    decided = ", ".join(
        f"{name} {ticket.c[name].type.compile(dialect=dialect)}" for name in dedup.REPEAT_FIELDS
    )
    assigned = ",\n        ".join(f"{name} = u.{name}" for name in dedup.REPEAT_FIELDS)
    copied = ", ".join(dedup.OCCURRENCE_OF_EVENT.values())
    return text(
        f"""
    WITH ev AS (
        INSERT INTO event (fingerprint, action, severity, category, summary, source, check_id, producer,
                           labels, entity, evidence, amount_at_risk, occurred_at, received_at, ticket_id)
        SELECT fingerprint, 'trigger', severity, category, summary, source, check_id, :producer,
               labels, entity, evidence, amount, occurred_at, :now, ticket_id
        FROM jsonb_to_recordset(CAST(:events AS jsonb))
             AS e(fingerprint varchar, severity varchar, category varchar, summary text, source varchar,
                  check_id varchar, labels jsonb, entity jsonb, evidence jsonb, amount numeric,
                  occurred_at timestamptz, ticket_id integer, n integer)
        ORDER BY n
        RETURNING id, ticket_id, {copied}
    ),
    occ AS (
        INSERT INTO occurrence (ticket_id, event_id, {", ".join(dedup.OCCURRENCE_OF_EVENT)})
        SELECT ticket_id, id, {copied} FROM ev ORDER BY id
    )
    UPDATE ticket AS t
    SET {assigned}
    FROM jsonb_to_recordset(CAST(:tickets AS jsonb)) AS u(id integer, {decided})
    WHERE t.id = u.id
    """
    )


def _add_sightings_pg(
    service: TicketService, sightings: list[tuple[_Firing, int]], changes: dict[int, dict[str, Any]]
) -> None:
    events = [item.event for item, _ in sightings]
    service.session.execute(
        _sightings_pg(service.session.get_bind().dialect),
        {
            "producer": PRODUCER,
            "now": service.now(),
            "events": _json_rows(
                [
                    {
                        "n": n,
                        "fingerprint": e.fingerprint,
                        "severity": e.severity,
                        "category": e.category,
                        "summary": e.summary,
                        "source": e.source,
                        "check_id": e.check_id,
                        "labels": e.labels,
                        "entity": e.entity,
                        "evidence": e.evidence,
                        "amount": e.amount_at_risk,
                        "occurred_at": e.occurred_at.isoformat(),
                        "ticket_id": ticket_id,
                    }
                    for n, (e, (_, ticket_id)) in enumerate(zip(events, sightings, strict=True))
                ]
            ),
            "tickets": _json_rows([{"id": ticket_id, **values} for ticket_id, values in changes.items()]),
        },
    )


def _add_sightings_sqlite(
    service: TicketService, sightings: list[tuple[_Firing, int]], changes: dict[int, dict[str, Any]]
) -> None:
    session = service.session
    now = service.now()
    events = [item.event for item, _ in sightings]
    events_table, occurrences_table = (
        EventRecord.metadata.tables["event"],
        Occurrence.metadata.tables["occurrence"],
    )
    # SQLite has one writer at a time (this transaction holds the write lock): the rows take the next ids
    # in the order given, so they are read back by id instead of one INSERT ... RETURNING per row.
    before = session.scalar(select(func.max(events_table.c.id))) or 0
    session.execute(
        insert(events_table),
        [_event_row(event, ticket_id, now) for event, (_, ticket_id) in zip(events, sightings, strict=True)],
    )
    event_ids = session.scalars(
        select(events_table.c.id).where(events_table.c.id > before).order_by(events_table.c.id)
    ).all()
    if len(event_ids) != len(events):  # pragma: no cover - only if another writer got in between
        raise RuntimeError("events inserted concurrently; retry the webhook")
    session.execute(
        insert(occurrences_table),
        [
            dedup.occurrence(ticket_id, event_id, event)
            for event_id, event, (_, ticket_id) in zip(event_ids, events, sightings, strict=True)
        ],
    )
    table = Ticket.metadata.tables["ticket"]
    session.execute(
        update(table)
        .where(table.c.id == bindparam("ticket"))
        .values({name: bindparam(f"new_{name}", type_=table.c[name].type) for name in dedup.REPEAT_FIELDS}),
        [
            {"ticket": ticket_id, **{f"new_{name}": value for name, value in values.items()}}
            for ticket_id, values in changes.items()
        ],
    )


def _expire_counters(session: Session, ticket_ids: list[int]) -> None:
    """Loaded tickets read their new counters from the store when next used (the identity map holds few
    objects during an intake; one pass over it is cheaper than an identity key per changed ticket)."""
    changed = set(ticket_ids)
    keys = [key for key in list(session.identity_map.keys()) if key[0] is Ticket and key[1][0] in changed]
    for key in keys:
        loaded = session.identity_map.get(key)
        if loaded is not None:
            session.expire(loaded, list(dedup.REPEAT_FIELDS))
