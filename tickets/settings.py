"""Settings the ticket queue owns: the server, notifications, triage, SLAs and escalation, on-call
rotations, routing, the Alertmanager and report intake. ``hypercare/config.py`` composes them into the one
``Settings``."""

# size: one settings model per section of the queue, each small; splitting them would scatter the reference

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Literal, Protocol

from pydantic import Field, SecretStr, field_validator, model_validator

from core.holidays import known_country
from core.i18n import parse_language
from core.settings import StrictModel
from core.site import SiteSettings, known_zone
from core.vocabulary import Category, Level, Priority
from tickets.models import ROLES


class ServerSettings(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    public_url: str | None = None
    """Base URL used in notifications (links to tickets). Defaults to http://host:port."""
    workers: int = Field(1, ge=1, le=32)
    """``hypercare serve`` processes. More than one needs a PostgreSQL store (the outbox claims rows with
    SKIP LOCKED there) and makes /metrics per process; 2 on 2 cores roughly doubles the queue's throughput."""
    pool_size: int = Field(20, ge=1, le=200)
    """Store connections kept open per process: as many as the requests a process serves at once (40
    threads), less what waits on the CPU anyway; fewer makes requests open and close overflow connections."""
    max_overflow: int = Field(10, ge=0, le=200)
    """Extra connections a process may open beyond ``pool_size`` at a peak (closed again after use)."""
    store_statement_timeout_s: float = Field(30.0, gt=0, le=3600)
    """The store cancels a statement of the served processes that runs longer than this (PostgreSQL)."""
    store_deadline_s: float = Field(10.0, gt=0, le=300)
    """A request that has not begun to answer after this long, while the store does not answer a ping
    within 2 s either, is answered 503 with ``Retry-After``, and the next ones at once, until a request let
    through every 2 s finds the store answering again: a store that hangs costs callers seconds, not
    minutes (Alertmanager retries 5xx). A request that is merely slow (the store answers) keeps its time."""
    response_cache: bool = True
    """Serve repeated queue pages and list API answers from a cache filed under the store's tickets version
    (never stale: tickets/cache.py). ``false`` builds every answer anew (to measure without the caches:
    bench/queue_load.py ``--uncached``)."""

    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


NOTIFICATION_EVENTS = ("opened", "reopened", "escalated", "acknowledged", "resolved")
"""The ticket transitions a target may subscribe to (``notifications.targets[].events``)."""
DEFAULT_EVENTS = ("opened", "reopened", "escalated", "resolved")
"""What a target hears of unless it says otherwise: acknowledgements are opt-in (they are the on-call's
own action, and paging the team for each would be noise)."""


class NotificationTarget(StrictModel):
    """An apprise URL (or an Events API v2 endpoint) and the tickets it is told about."""

    url: SecretStr
    kind: Literal["apprise", "events_api_v2"] = "apprise"
    """``events_api_v2``: ``url`` is an Events API v2 endpoint (PagerDuty:
    ``https://events.pagerduty.com/v2/enqueue``) sent trigger / acknowledge / resolve messages with one
    dedup key per ticket (tickets/events_api.py); it subscribes to acknowledgements too unless ``events``
    says otherwise, and is paged at once (never digested)."""
    routing_key: SecretStr | None = None
    """The Events API integration's routing key (``events_api_v2`` only)."""
    name: str | None = Field(None, min_length=1, max_length=48, pattern=r"^[\w.@-]+$")
    """Who this target is (``ops-oncall``): the actor of its one-click links in the audit trail
    (``link:ops-oncall``; default ``link:target-N``)."""
    person: str | None = Field(None, min_length=1, max_length=64)
    """The username this target reaches (their phone, their chat): it is paged by an escalation level with
    ``oncall: true`` while that user is on call for the ticket's queue (tickets/oncall.py)."""
    events: tuple[str, ...] = DEFAULT_EVENTS
    """The transitions this target is told of: any of opened, reopened, escalated, acknowledged, resolved.
    An acknowledgement or resolution also reaches every subscribed target that was told of the ticket
    before, whatever its ``min_priority`` or ``tags``."""
    min_priority: Priority = Priority.P2
    """Notify for tickets of this priority or more urgent (P1 is the most urgent)."""
    tags: tuple[str, ...] = ()
    """Only tickets matching one of these: a category, source, queue, check id or ``key=value`` label.
    Empty: every ticket of the priority."""
    language: str | None = None
    """The language of its messages (``en``, ``zh_CN``, ``zh_TW``); default: the site's ``site.language``."""

    @field_validator("language")
    @classmethod
    def _shipped(cls, value: str | None) -> str | None:
        return None if value is None else parse_language(value)

    @field_validator("events")
    @classmethod
    def _known_events(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [event for event in value if event not in NOTIFICATION_EVENTS]
        if unknown:
            names = ", ".join(map(repr, unknown))
            raise ValueError(f"unknown event(s) {names}: events are {', '.join(NOTIFICATION_EVENTS)}")
        return tuple(dict.fromkeys(value))

    @model_validator(mode="before")
    @classmethod
    def _events_api_hears_acks(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("kind") == "events_api_v2" and "events" not in data:
            return {**data, "events": NOTIFICATION_EVENTS}  # the incident there follows the ticket
        return data

    @model_validator(mode="after")
    def _events_api(self) -> NotificationTarget:
        if self.kind == "events_api_v2":
            if self.routing_key is None:
                raise ValueError("an events_api_v2 target needs a routing_key (the integration's key)")
            if not self.url.get_secret_value().startswith(("https://", "http://")):
                raise ValueError("an events_api_v2 target's url is the endpoint: https://.../v2/enqueue")
        elif self.routing_key is not None:
            raise ValueError("routing_key belongs to an events_api_v2 target (kind: events_api_v2)")
        return self


class NotificationSettings(StrictModel):
    targets: tuple[NotificationTarget, ...] = ()
    dispatch_interval_s: float = Field(30.0, gt=0, le=3600)
    """How often the server delivers due notifications (new ones and retries) from the outbox."""
    max_attempts: int = Field(8, ge=1, le=100)
    retry_base_s: float = Field(30.0, gt=0)
    """Back-off before retry n is retry_base_s * 2**(n-1), capped at one hour."""
    page_priorities: tuple[Priority, ...] = (Priority.P1, Priority.P2)
    """Priorities paged at once; the others wait for the periodic digest."""
    digest_interval_s: float = Field(3600.0, gt=0)
    """How often held notifications go out as one digest per target."""
    action_links: bool = True
    """Opened, reopened and escalated notifications carry signed one-click links to acknowledge, resolve
    (with a reason) or silence the ticket (tickets/action_links.py)."""
    link_key: SecretStr | None = None
    """The HMAC key of the one-click links (``HYPERCARE_NOTIFICATIONS__LINK_KEY``, 32+ characters); when
    not set, one derived from the session secret. Changing it voids every link sent."""
    link_ttl_h: float = Field(24.0, gt=0, le=7 * 24)
    """A one-click link works this many hours after its notification was sent, once."""
    events_api_webhook_secret: SecretStr | None = None
    """The secret of the PagerDuty webhook subscription: when set, ``POST /api/v1/pagerduty/webhook`` also
    requires a valid ``X-PagerDuty-Signature`` (besides the API token)."""
    link_silence_h: float = Field(2.0, gt=0, le=24)
    """How long a "silence" link mutes the ticket's notifications (within the ``oncall`` role's limit)."""

    @field_validator("link_key")
    @classmethod
    def _long_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be a random secret of 32 characters or more")
        return value


def _itil_matrix() -> dict[Level, dict[Level, Priority]]:
    high, medium, low = Level
    p1, p2, p3, p4 = Priority
    return {
        high: {high: p1, medium: p2, low: p3},
        medium: {high: p2, medium: p3, low: p4},
        low: {high: p3, medium: p4, low: p4},
    }


class TriageSettings(StrictModel):
    matrix: dict[Level, dict[Level, Priority]] = Field(default_factory=_itil_matrix)
    """Priority = matrix[impact][urgency] (ITIL). Every cell must be filled."""

    @field_validator("matrix")
    @classmethod
    def _complete(cls, value: dict[Level, dict[Level, Priority]]) -> dict[Level, dict[Level, Priority]]:
        levels = set(Level)
        if set(value) != levels or any(set(row) != levels for row in value.values()):
            raise ValueError("needs a priority for every impact x urgency pair of high/medium/low")
        return value


class TicketSettings(StrictModel):
    reopen_window_h: float = Field(72.0, ge=0)
    """An event for a ticket resolved less than this many hours ago reopens it (no new ticket)."""
    group_threshold: int = Field(5, ge=1)
    """A failing check with more offending entities than this raises one grouped event, not one per entity."""
    auto_close_days: float = Field(7.0, gt=0)
    """Resolved tickets close by themselves after this many days (:func:`tickets.service.auto_close`)."""
    correlation_window_h: float = Field(24.0, ge=0, le=24 * 31)
    """An exception about the same business entity (``invoice_id=42``) as an open ticket of the same source
    first seen less than this many hours ago joins that ticket instead of opening another (one fault seen
    by several checks pages once; tickets/correlation.py). 0 switches it off."""
    audit_key_file: Path | None = None
    """The audit trail's keyring (lines ``kid:base64key``, the newest last). Default <data_dir>/audit_key,
    generated on first use; keep it, and a backup, outside the store (docs/security.md)."""
    audit_checkpoint_file: Path | None = None
    """Where ``hypercare audit checkpoint`` appends its signed lines.
    Default <data_dir>/audit-checkpoints.jsonl."""
    audit_checkpoint_interval_min: float = Field(60.0, ge=0, le=24 * 60)
    """``hypercare serve`` appends a checkpoint this often (each worker process; 0: never, use cron)."""


class BusinessCalendar(StrictModel):
    """When the SLA clock runs: weekdays (0 = Monday), ``start`` to ``end`` local time, except holidays;
    with ``country``, that country's public holidays off and its make-up working days (China's 调休) on."""

    timezone: str | None = None
    """The zone of the business hours; none: the site's (``site.timezone``)."""
    days: tuple[int, ...] = (0, 1, 2, 3, 4)
    start: str = Field("09:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field("18:00", pattern=r"^([01]\d|2[0-4]):[0-5]\d$")
    holidays: tuple[date, ...] = ()
    """Further days off (local dates); they win over ``workdays`` and the country's make-up days."""
    workdays: tuple[date, ...] = ()
    """Further working days that are not in ``days`` (a make-up Saturday the library does not know yet)."""
    country: str | None = None
    """ISO 3166 code (CN, TW...) whose public holidays and make-up working days come from the `holidays`
    library, year by year (tickets/calendar.py)."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return None if value is None else known_zone(value)

    @field_validator("country")
    @classmethod
    def _known_country(cls, value: str | None) -> str | None:
        return None if value is None else known_country(value)

    @field_validator("days")
    @classmethod
    def _weekdays(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(not 0 <= day <= 6 for day in value):
            raise ValueError("needs at least one weekday, each 0 (Monday) to 6 (Sunday)")
        return value

    @model_validator(mode="after")
    def _start_before_end(self) -> BusinessCalendar:
        if self.start >= self.end:
            raise ValueError(f"business hours start ({self.start}) must be before their end ({self.end})")
        return self


class SlaTarget(StrictModel):
    response_min: float = Field(gt=0)
    """Business minutes to the first acknowledgement."""
    resolution_min: float = Field(gt=0)
    """Business minutes to resolution, not counting time spent waiting."""


def _default_sla_targets() -> dict[Priority, SlaTarget]:
    return {
        Priority.P1: SlaTarget(response_min=30, resolution_min=24 * 60),
        Priority.P2: SlaTarget(response_min=60, resolution_min=3 * 9 * 60),
        Priority.P3: SlaTarget(response_min=8 * 60, resolution_min=10 * 9 * 60),
        Priority.P4: SlaTarget(response_min=2 * 9 * 60, resolution_min=20 * 9 * 60),
    }


class SlaSettings(StrictModel):
    targets: dict[Priority, SlaTarget] = Field(default_factory=_default_sla_targets)
    calendar: BusinessCalendar = BusinessCalendar()
    p1_24x7: bool = True
    """P1 clocks run around the clock (hypercare), ignoring the business calendar."""
    at_risk_ratio: float = Field(0.75, gt=0, lt=1)
    """A clock that has used this share of its target is at risk."""

    @field_validator("targets")
    @classmethod
    def _every_priority(cls, value: dict[Priority, SlaTarget]) -> dict[Priority, SlaTarget]:
        missing = [p for p in Priority if p not in value]
        if missing:
            raise ValueError(f"needs a target for every priority; missing {', '.join(missing)}")
        return value


class EscalationLevel(StrictModel):
    """One step up. It fires once per ticket, in order, when its condition holds."""

    unacknowledged_min: float | None = Field(None, gt=0)
    """Fires when the ticket is still unacknowledged this many minutes after it opened (ack timeout)."""
    at_risk: bool = False
    """Fires when the ticket's response or resolution SLA is at risk (or breached)."""
    notify_tags: tuple[str, ...] = ()
    """Notify the targets carrying one of these tags (``notifications.targets[].tags``)."""
    page: tuple[Literal["oncall", "secondary", "manager"], ...] = ()
    """Also notify the targets (``notifications.targets[].person``) of these people of the rotation of the
    ticket's queue (``oncall.rotations``): who is on call now, who is next, the rotation's manager."""
    raise_priority: bool = False

    @model_validator(mode="after")
    def _has_condition(self) -> EscalationLevel:
        if self.unacknowledged_min is None and not self.at_risk:
            raise ValueError("an escalation level needs unacknowledged_min or at_risk: true")
        return self


class EscalationSettings(StrictModel):
    levels: dict[Priority, tuple[EscalationLevel, ...]] = {}
    """Levels per priority; none by default (nothing changes a ticket's priority unless configured)."""


class Rotation(StrictModel):
    """Who is on call for some queues: ``members`` take turns of ``length_days``, handing off at
    ``handoff`` local time (``oncall.timezone``); ``members[0]`` from ``start``. Overrides (a person
    covering from..to) are kept in the store (``hypercare oncall override``)."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[\w.-]+$")
    queues: tuple[str, ...] = ()
    """The ticket queues it answers for; empty: every queue no other rotation names."""
    members: tuple[str, ...] = Field(min_length=1)
    """Usernames, in turn order."""
    start: date
    """The day of the first hand-off (``members[0]`` is on call from then)."""
    handoff: str = Field("09:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    length_days: int = Field(7, ge=1, le=366)
    manager: str | None = Field(None, min_length=1, max_length=64)
    """Who an escalation level with ``page: [manager]`` reaches."""


class OncallSettings(StrictModel):
    timezone: str | None = None
    """The zone of the hand-off times (an IANA name); default ``sla.calendar.timezone``, else the site's."""
    rotations: tuple[Rotation, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return value if value is None else BusinessCalendar._known_zone(value)

    @field_validator("rotations")
    @classmethod
    def _distinct(cls, value: tuple[Rotation, ...]) -> tuple[Rotation, ...]:
        names = [rotation.name for rotation in value]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"rotation name(s) used twice: {', '.join(twice)}")
        catch_all = [rotation.name for rotation in value if not rotation.queues]
        if len(catch_all) > 1:
            raise ValueError(f"only one rotation may leave queues empty (all queues): {', '.join(catch_all)}")
        queues = [queue for rotation in value for queue in rotation.queues]
        shared = sorted({queue for queue in queues if queues.count(queue) > 1})
        if shared:
            raise ValueError(f"queue(s) named by more than one rotation: {', '.join(shared)}")
        return value


class RoutingMatch(StrictModel):
    labels: dict[str, str] = {}
    category: str | None = None
    source: str | None = None
    check: str | None = None
    """Glob on the check id (``gl.*``)."""


class RoutingRule(StrictModel):
    match: RoutingMatch = RoutingMatch()
    queue: str | None = Field(None, min_length=1, max_length=64)
    assignee: str | None = None
    """Username of the default assignee."""
    continue_: bool = Field(False, alias="continue")
    """Keep evaluating later rules after this one matched (later matches win)."""


class RoutingSettings(StrictModel):
    rules_file: Path | None = None
    """A YAML file holding a list of rules; they come after the inline ``rules``."""
    rules: tuple[RoutingRule, ...] = ()


class AlertmanagerRule(StrictModel):
    """Labels (all must be equal) -> what the ticket of a matching alert gets; unset fields fall through."""

    match: dict[str, str] = {}
    priority: Priority | None = None
    category: Category | None = None
    queue: str | None = Field(None, min_length=1, max_length=64)
    resolve_on_resolved: bool | None = None
    group: bool | None = None
    """Matched against the group's common labels: one ticket for the whole group (``group_alerts``)."""


def _alert_severities() -> dict[str, Priority]:
    p1, p2, p3, p4 = Priority
    return {
        "critical": p1,
        "page": p1,
        "fatal": p1,
        "emergency": p1,
        "error": p2,
        "major": p2,
        "high": p2,
        "warning": p3,
        "warn": p3,
        "minor": p3,
        "medium": p3,
        "info": p4,
        "informational": p4,
        "low": p4,
        "none": p4,
    }


class AlertmanagerSettings(StrictModel):
    """``POST /api/v1/alertmanager``: how an Alertmanager alert's labels become a ticket's triage."""

    severity_label: str = "severity"
    severity_priority: dict[str, Priority] = Field(default_factory=_alert_severities)
    """Value of ``severity_label`` (any case) -> priority; ``P1``..``P4`` (any case) are taken as they are;
    other values get ``default_priority``."""
    default_priority: Priority = Priority.P3
    category_label: str = "category"
    """A label whose value, when it is a category (data/process/technical/user), sets the category."""
    default_category: Category = Category.TECHNICAL
    source_label: str = "source"
    """The label naming the monitored system (ticket ``source``) when the alert has no ``source`` label;
    ``alertmanager`` when it has neither (``job`` would name the scrape job, not the system)."""
    check_label: str = "check_id"
    """The label naming a Hypercare check: an alert with it whose check has an open ticket (from the
    checks themselves) is folded into that ticket instead of opening a second one."""
    rules: tuple[AlertmanagerRule, ...] = ()
    """Ordered; the first rule matching sets each field it names (a later rule fills the ones it left)."""
    resolve_on_resolved: bool = True
    """A resolved alert resolves its open ticket. Off: the ticket stays open and gets a comment."""
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024)
    """A larger webhook is refused with 413 (Alertmanager does not retry it): keep groups under it with
    ``max_alerts`` in Alertmanager's webhook_config (docs/operator-guide.md)."""
    max_alerts: int = Field(1000, ge=1, le=100_000)
    """A webhook with more alerts is refused with 422; set the same ``max_alerts`` on Alertmanager's side."""
    intake_error_priority: Priority = Priority.P2
    """Priority of the intake-error ticket recording alerts refused as sent (one per receiver)."""
    intake_error_queue: str | None = Field(None, min_length=1, max_length=64)
    """The queue of the on-call admin for intake-error tickets; none: routing decides (check id
    ``alertmanager.intake_error``, category technical)."""
    group_alerts: bool = False
    """One ticket per Alertmanager group (its ``groupLabels``) instead of one per alert; a rule's
    ``group`` decides for the groups whose common labels it matches. The ticket resolves when the whole
    group is resolved."""
    expire_after_h: float = Field(12.0, gt=0, le=24 * 365)
    """A firing alert not re-sent for this long (Alertmanager re-sends every ``repeat_interval``, 4 h by
    default) or past a given ``endsAt`` is expired by the server's periodic sweep, and its ticket resolved
    as ``resolve_on_resolved`` says: with ``send_resolved: false`` a ticket does not stay open forever."""

    @field_validator("severity_priority")
    @classmethod
    def _lower_case_words(cls, value: dict[str, Priority]) -> dict[str, Priority]:
        """Words are matched in any case: kept lower-cased, so a lookup is one dict access."""
        return {word.strip().lower(): priority for word, priority in value.items()}


def _attachment_types() -> tuple[str, ...]:
    return (
        "application/pdf",
        "image/png",
        "image/jpeg",
        "image/gif",
        "text/plain",
        "text/csv",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    )


class ReportSettings(StrictModel):
    """Employees' exception reports (``POST /api/v1/reports``) and their attachments."""

    storage_dir: Path | None = None
    """Where attachments are kept (random names). Default: <data_dir>/attachments."""
    max_attachments: int = Field(5, ge=0, le=50)
    max_attachment_bytes: int = Field(10 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    allowed_types: tuple[str, ...] = Field(default_factory=_attachment_types)
    """Content types accepted; each is also checked against the file's first bytes."""
    high_impact_amount: Decimal = Field(Decimal("10000"), ge=0)
    """An amount at risk from this much up makes the impact high, whoever is affected."""
    source: str = Field("erp", min_length=1, max_length=64)
    modules: tuple[str, ...] = ()
    """The ERP modules a reporter chooses from; empty: any name."""

    @field_validator("allowed_types")
    @classmethod
    def _never_active(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        active = {
            "text/html",
            "image/svg+xml",
            "application/javascript",
            "text/javascript",
            "application/xhtml+xml",
        }
        bad = sorted(set(value) & active)
        if bad:
            raise ValueError(f"{', '.join(bad)} can run script in a browser and cannot be allowed")
        return value


def _silence_limits() -> dict[str, dict[Priority, float]]:
    return {
        "agent": {Priority.P1: 4, Priority.P2: 24, Priority.P3: 7 * 24, Priority.P4: 30 * 24},
        "oncall": {Priority.P1: 24, Priority.P2: 72, Priority.P3: 30 * 24, Priority.P4: 90 * 24},
        "admin": {Priority.P1: 7 * 24, Priority.P2: 30 * 24, Priority.P3: 90 * 24, Priority.P4: 365 * 24},
    }


class SecuritySettings(StrictModel):
    """Login throttling, session and token lifetimes, and how long each role may silence what."""

    login_window_s: float = Field(900.0, gt=0, le=86_400)
    """Failed logins are counted over this window (15 min)."""
    login_max_failures_per_user: int = Field(5, ge=1, le=1000)
    """A user name is locked after this many failures in the window (unknown names alike)."""
    login_max_failures_per_address: int = Field(20, ge=1, le=10_000)
    """A client address is locked after this many failures in the window, whatever names it tries."""
    login_lockout_s: float = Field(30.0, gt=0, le=86_400)
    """The first lock's length; each further lock in a row doubles it ..."""
    login_lockout_max_s: float = Field(900.0, gt=0, le=7 * 86_400)
    """... up to this (15 min)."""
    session_max_age_s: float = Field(12 * 3600.0, ge=60, le=30 * 86_400)
    """A login session ends this long after the login, however active (12 h)."""
    token_default_days: float = Field(90.0, gt=0, le=3650)
    """An API token's lifetime when ``tokens create`` is not given ``--expires``."""
    silence_max_hours: dict[str, dict[Priority, float]] = Field(default_factory=_silence_limits)
    """The longest silence each role may create, by the most urgent priority it can mute (a silence without
    a ``priorities`` matcher can mute P1). A role or priority not listed may not silence it at all."""

    @field_validator("silence_max_hours")
    @classmethod
    def _known_roles(cls, value: dict[str, dict[Priority, float]]) -> dict[str, dict[Priority, float]]:
        unknown = sorted(set(value) - set(ROLES))
        if unknown:
            raise ValueError(f"unknown role(s) {', '.join(unknown)}: roles are {', '.join(ROLES)}")
        if any(hours <= 0 for limits in value.values() for hours in limits.values()):
            raise ValueError("a silence limit must be a positive number of hours")
        return value


class TicketsConfig(Protocol):
    """The slice of Hypercare's settings the ticket queue reads (``hypercare.config.Settings`` has it)."""

    @property
    def data_dir(self) -> Path: ...

    @property
    def store_url(self) -> str: ...

    @property
    def secret_key(self) -> SecretStr | None: ...

    @property
    def audit_key(self) -> SecretStr | None: ...

    @property
    def site(self) -> SiteSettings: ...

    @property
    def server(self) -> ServerSettings: ...

    @property
    def notifications(self) -> NotificationSettings: ...

    @property
    def triage(self) -> TriageSettings: ...

    @property
    def tickets(self) -> TicketSettings: ...

    @property
    def sla(self) -> SlaSettings: ...

    @property
    def escalation(self) -> EscalationSettings: ...

    @property
    def oncall(self) -> OncallSettings: ...

    @property
    def routing(self) -> RoutingSettings: ...

    @property
    def alertmanager(self) -> AlertmanagerSettings: ...

    @property
    def reports(self) -> ReportSettings: ...

    @property
    def runbooks_dir(self) -> Path | None: ...

    @property
    def security(self) -> SecuritySettings: ...
