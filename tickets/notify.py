"""Delivery of the notification outbox through apprise: at least once, retried with back-off, never lost.

:func:`dispatch_pending` takes due rows one at a time, each in its own short transaction (on PostgreSQL
``FOR UPDATE SKIP LOCKED``, so several dispatchers never send one row twice), sends it through a
:class:`Notifier` and records the outcome: ``sent``, a retry at ``retry_base_s * 2**(attempts-1)`` (at most
an hour), or ``dead`` after ``max_attempts`` with an ERROR log. Rows are never deleted: the outbox is also
the record of what was sent.

Crash safety: a row is claimed, sent and marked ``sent`` inside ONE transaction. A process killed after
the claim but before the send leaves nothing behind (the transaction rolls back; PostgreSQL releases the
row lock with the dead connection) and the row is sent by the next dispatch. A process killed after the
send but before the commit leaves the row ``pending``: it is sent again - the one possible duplicate. No
state is ever "claimed" without a live transaction holding it, so nothing can be lost or stuck.

Every send goes through apprise with the target's own tag (:func:`tickets.outbox.apprise_tag`): the URL is
added with that tag and ``notify`` is called with it, never untagged (which would reach every service).

Apprise URLs are secrets (tokens, passwords): they are never logged, and apprise's messages are passed
through :func:`hypercare.config.redact_url` before they are stored as ``last_error``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, cast

import apprise
from prometheus_client.core import CounterMetricFamily, Metric
from sqlalchemy import CursorResult, event, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.db import utcnow
from core.settings import redact_url
from core.vocabulary import OutboxStatus
from tickets import action_links, events_api
from tickets.models import NotificationOutbox
from tickets.outbox import apprise_tag
from tickets.settings import NotificationTarget, TicketsConfig

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 3600.0
MAX_ERROR_CHARS = 2000
NOTIFY_TYPES = ("info", "success", "warning", "failure")
_METRIC_ORDER = (
    OutboxStatus.PENDING,
    OutboxStatus.HELD,
    OutboxStatus.SENT,
    OutboxStatus.DEAD,
    OutboxStatus.MUTED,
    OutboxStatus.DIGESTED,
)
"""The order the outbox collector has always listed its series in (every status, once)."""


class Notifier(Protocol):
    def send(self, target_index: int, title: str, body: str, notify_type: str) -> tuple[bool, str | None]:
        """Deliver one notification to the target at ``target_index``: (delivered, error text or None)."""
        ...


class AppriseNotifier:
    """Sends through apprise, one :class:`apprise.Apprise` per configured target."""

    def __init__(self, targets: Sequence[NotificationTarget], *, timeout_s: float = 30.0) -> None:
        self._timeout_s = timeout_s
        self._secrets: list[tuple[str, str]] = []
        """(secret, how errors name it instead)."""
        self._targets: list[apprise.Apprise | None] = []
        self._events_api: dict[int, tuple[str, str]] = {}
        """Events API v2 targets (tickets/events_api.py): index -> (endpoint, routing key)."""
        for index, target in enumerate(targets):
            url = target.url.get_secret_value()
            self._secrets.append((url, f"<notifications.targets[{index}].url>"))
            if target.kind == "events_api_v2" and target.routing_key is not None:
                key = target.routing_key.get_secret_value()
                self._secrets.append((key, f"<notifications.targets[{index}].routing_key>"))
                self._events_api[index] = (url, key)
                self._targets.append(None)
                continue
            ap = apprise.Apprise()
            if _add(ap, url, apprise_tag(index)):
                self._targets.append(ap)
            else:
                log.error(
                    "apprise does not understand notifications.targets[%d].url; its notifications will fail",
                    index,
                    extra={"target": index},
                )
                self._targets.append(None)

    def send(self, target_index: int, title: str, body: str, notify_type: str) -> tuple[bool, str | None]:
        if not 0 <= target_index < len(self._targets):
            return False, f"target {target_index} is no longer configured (notifications.targets)"
        if target_index in self._events_api:
            url, key = self._events_api[target_index]
            ok, error = events_api.send(url, key, body, timeout_s=self._timeout_s)
            return ok, None if error is None else self._redact(error)
        ap = self._targets[target_index]
        if ap is None:
            return False, f"notifications.targets[{target_index}].url is not a URL apprise understands"
        kind = notify_type if notify_type in NOTIFY_TYPES else "info"
        with ap.notify(
            body=body,
            title=title,
            notify_type=kind,
            tag=apprise_tag(target_index),
            match_always=False,
            timeout=self._timeout_s,
            log_level=logging.WARNING,
        ) as result:
            if result:
                return True, None
            lines = [entry.message for entry in result.logs()]
            error = "; ".join(lines) or f"apprise: {result.status.name}"
        return False, self._redact(error)

    def _redact(self, text: str) -> str:
        # A URL may hold its secret anywhere (user info, path, query): name it instead of showing it.
        for secret, name in sorted(self._secrets, key=lambda pair: -len(pair[0])):
            text = text.replace(secret, name)
        return redact_url(text)[:MAX_ERROR_CHARS]


def _add(ap: apprise.Apprise, url: str, tag: str) -> bool:
    with warnings.catch_warnings():
        # apprise 2.2 loads its plugins on the first add(); its e-mail plugin imports the stdlib ``imghdr``,
        # deprecated since Python 3.11. Not ours to fix, and harmless until Python 3.13 (apprise shims it).
        warnings.filterwarnings("ignore", message="'imghdr' is deprecated", category=DeprecationWarning)
        return bool(ap.add(url, tag=tag))


def on_new_notifications(factory: sessionmaker[Session], callback: Callable[[], object]) -> None:
    """Call ``callback`` after each commit of a ``factory`` session that wrote a pending notification (the
    server's delivery loop wakes at once instead of at its next tick: a resolve pages in well under a
    second, not ``dispatch_interval_s`` later). Held and muted rows do not wake it."""

    def flushed(session: Session, _context: object, _instances: object) -> None:
        if any(
            isinstance(row, NotificationOutbox) and row.status == OutboxStatus.PENDING for row in session.new
        ):
            session.info["hypercare_new_notifications"] = True

    def committed(session: Session) -> None:
        if session.info.pop("hypercare_new_notifications", False):
            callback()

    def rolled_back(session: Session) -> None:
        session.info.pop("hypercare_new_notifications", None)

    event.listen(factory, "before_flush", flushed)
    event.listen(factory, "after_commit", committed)
    event.listen(factory, "after_rollback", rolled_back)


@dataclass(frozen=True, slots=True)
class SentNotification:
    target_index: int
    title: str
    body: str
    notify_type: str


@dataclass
class RecordingNotifier:
    """A notifier for tests: records every send; ``failures`` queued up make the next sends fail."""

    sent: list[SentNotification] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def send(self, target_index: int, title: str, body: str, notify_type: str) -> tuple[bool, str | None]:
        if self.failures:
            return False, self.failures.pop(0)
        self.sent.append(SentNotification(target_index, title, body, notify_type))
        return True, None


def build_notifier(settings: TicketsConfig) -> Notifier:
    """The notifier the settings call for (apprise over the configured targets)."""
    return AppriseNotifier(settings.notifications.targets)


def _wants_links(settings: TicketsConfig, row: NotificationOutbox) -> bool:
    """One-click links go into text messages that can be acted on (an Events API message is JSON)."""
    targets = settings.notifications.targets
    text = not 0 <= row.target < len(targets) or targets[row.target].kind == "apprise"
    return text and row.kind in action_links.ACTIONABLE_KINDS


@dataclass(frozen=True, slots=True)
class DispatchReport:
    sent: int = 0
    retried: int = 0
    dead: int = 0


def backoff(settings: TicketsConfig, attempts: int) -> timedelta:
    """The wait before the next try after ``attempts`` failed ones."""
    seconds = settings.notifications.retry_base_s * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, MAX_BACKOFF_S))


CLAIM_LEASE = timedelta(minutes=2)
"""How long a claimed notification is this sender's: another sender takes it only after that (a sender that
died mid-send), so every due notification is sent, and by one sender at a time."""


def _claim(session_factory: sessionmaker[Session], now: datetime) -> int | Literal[False] | None:
    """Take the next due notification for this sender, in a short transaction of its own: its
    ``next_attempt_at`` moves a lease ahead, so no other sender (the server and the collectors both send;
    SQLite has no row locks) picks it up while this one sends. The row's id; None when nothing is due;
    False when another sender took it first."""
    with session_factory() as session, session.begin():
        query = (
            select(NotificationOutbox.id)
            .where(
                NotificationOutbox.status == OutboxStatus.PENDING, NotificationOutbox.next_attempt_at <= now
            )
            .order_by(NotificationOutbox.next_attempt_at, NotificationOutbox.id)
            .limit(1)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        row_id = session.scalars(query).first()
        if row_id is None:
            return None
        taken = session.execute(
            update(NotificationOutbox)
            .where(
                NotificationOutbox.id == row_id,
                NotificationOutbox.status == OutboxStatus.PENDING,
                NotificationOutbox.next_attempt_at <= now,
            )
            .values(next_attempt_at=now + CLAIM_LEASE)
            .execution_options(synchronize_session=False)
        )
        return row_id if cast("CursorResult[Any]", taken).rowcount == 1 else False


def dispatch_pending(
    session_factory: sessionmaker[Session],
    notifier: Notifier,
    settings: TicketsConfig,
    *,
    now: Callable[[], datetime] = utcnow,
    limit: int = 100,
) -> DispatchReport:
    """Send up to ``limit`` due notifications, one short transaction each; commits its own work. Each is
    claimed first (:func:`_claim`), so two senders never send the same notification."""
    sent = retried = dead = 0
    links = settings.notifications.action_links and action_links.link_key_available(settings)
    key = action_links.link_key(settings) if links else b""
    for _ in range(limit):
        claimed = _claim(session_factory, now())
        if claimed is None:
            break
        if claimed is False:
            continue
        with session_factory() as session, session.begin():
            row = session.get(NotificationOutbox, claimed)
            if row is None or row.status != OutboxStatus.PENDING:
                continue
            body = row.body
            if links and row.ticket_id is not None and _wants_links(settings, row):
                # signed now, never stored: the outbox holds no usable link
                body += "\n" + action_links.footer(settings, key, row.ticket_id, row.target, now())
            try:
                ok, error = notifier.send(row.target, row.title, body, row.notify_type)
            except Exception as exc:  # one broken send must not wedge the whole outbox
                # No traceback in the log: the exception text may hold the target's URL; redact it.
                ok, error = False, redact_url(f"{type(exc).__name__}: {exc}")[:MAX_ERROR_CHARS]
                log.error("notifier raised: %s", error, extra={"outbox_id": row.id, "target": row.target})
            at = now()
            row.attempts += 1
            context = {
                "outbox_id": row.id,
                "ticket_id": row.ticket_id,
                "target": row.target,
                "kind": row.kind,
                "attempts": row.attempts,
            }
            if ok:
                row.status, row.sent_at, row.last_error = OutboxStatus.SENT, at, None
                sent += 1
                log.info("notification sent", extra=context)
            elif row.attempts >= settings.notifications.max_attempts:
                row.status, row.last_error = OutboxStatus.DEAD, error
                dead += 1
                log.error(
                    "notification undeliverable after %d attempts, given up: %s",
                    row.attempts,
                    error,
                    extra=context,
                )
            else:
                row.last_error = error
                row.next_attempt_at = at + backoff(settings, row.attempts)
                retried += 1
                log.warning(
                    "notification failed, retry at %s: %s",
                    row.next_attempt_at.isoformat(),
                    error,
                    extra=context,
                )
    return DispatchReport(sent=sent, retried=retried, dead=dead)


class OutboxCollector:
    """``hypercare_notifications_total{status}`` (rows ever written, by their status now: sent, dead,
    muted, digested, pending, held), computed from the outbox at scrape time."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "hypercare_notifications",
            "Notifications written to the outbox, by delivery status.",
            labels=["status"],
        )
        with self._factory() as session:
            counts = dict(
                session.execute(
                    select(NotificationOutbox.status, func.count()).group_by(NotificationOutbox.status)
                ).all()
            )
        for status in _METRIC_ORDER:
            family.add_metric([status.value], float(counts.get(status, 0)))
        yield family
