"""Test data for the ticket queue: events, Alertmanager webhooks, settings, a controllable clock, the app
with a user per role, and tickets opened through the service."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from anomaly.events import Event
from core.session import make_engine, session_factory, session_scope
from hypercare.app import ports
from hypercare.config import Settings
from tickets.alertmanager import AlertmanagerWebhook
from tickets.app import create_app
from tickets.auth import create_token, create_user
from tickets.service import TicketService
from tickets.settings import NotificationSettings, NotificationTarget

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
ROLES = ("admin", "agent", "manager", "viewer", "reporter", "oncall")
PASSWORD = "correct-horse-42"


def make_event(**overrides: Any) -> Event:
    """An unbalanced journal entry on the ERP (P2 by default); ``p1=True`` makes it critical."""
    if overrides.pop("p1", False):
        overrides.setdefault("severity", "P1")
    fields: dict[str, Any] = {
        "fingerprint": "fp-gl-unbalanced-je1001",
        "severity": "P2",
        "category": "data",
        "summary": "Journal entry JE-1001 does not balance",
        "source": "erp",
        "check_id": "gl.unbalanced_entries",
        "entity": {"journal_id": "JE-1001", "company": "ACME-DE"},
        "evidence": {
            "violations": 1,
            "sample": [{"journal_id": "JE-1001", "debit": "1250.00", "credit": "0.00"}],
        },
        "labels": {"module": "gl"},
        "amount_at_risk": Decimal("1250.00"),
        "runbook": "gl-unbalanced-entry",
        "occurred_at": T0,
    }
    if "fingerprint" in overrides and "entity" not in overrides:  # another exception, another entry
        fields["entity"] = {"journal_id": f"JE-{overrides['fingerprint']}", "company": "ACME-DE"}
    fields.update(overrides)
    return Event(**fields)


def target(
    url: str = "json://127.0.0.1:9/hook", min_priority: str = "P2", tags: tuple[str, ...] = ()
) -> NotificationTarget:
    return NotificationTarget(url=url, min_priority=min_priority, tags=tags)  # type: ignore[arg-type]


def make_settings(
    *,
    tmp_path: Path | None = None,
    database_url: str | None = None,
    targets: tuple[NotificationTarget, ...] = (),
    reopen_window_h: float = 72.0,
    max_attempts: int = 3,
    retry_base_s: float = 30.0,
    public_url: str = "https://hypercare.example",
    notification_options: dict[str, Any] | None = None,
    **extra: Any,
) -> Settings:
    return Settings(
        data_dir=tmp_path or Path(".hypercare-test"),
        database_url=database_url,
        notifications=NotificationSettings.model_validate(
            {"targets": targets, "max_attempts": max_attempts, "retry_base_s": retry_base_s}
            | (notification_options or {})
        ),
        tickets={"reopen_window_h": reopen_window_h},  # type: ignore[arg-type]
        server={"public_url": public_url},  # type: ignore[arg-type]
        **extra,
    )


@dataclass
class Clock:
    """A clock tests move by hand."""

    at: datetime = T0

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> datetime:
        self.at += timedelta(**delta)
        return self.at


@dataclass
class TicketApp:
    app: FastAPI
    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]
    registry: CollectorRegistry
    tokens: dict[str, str] = field(default_factory=dict)
    """An API token per role; the user of each role is named after it (``agent``, ``viewer``...)."""

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def seed_users(factory: sessionmaker[Session]) -> dict[str, str]:
    tokens: dict[str, str] = {}
    with session_scope(factory) as session:
        for role in ROLES:
            user = create_user(session, role, PASSWORD, role, display_name=f"{role.title()} User")
            tokens[role] = create_token(session, user, "tests")
    return tokens


@contextmanager
def ticket_app_on(store_url: str, tmp_path: Path, **settings: Any) -> Iterator[TicketApp]:
    """The ticket app on the (migrated) store at ``store_url`` with a user and token per role; ``settings``
    go to ``make_settings``. The public URL is plain http like TestClient's: with https the session cookie
    would be Secure-only."""
    settings.setdefault("public_url", "http://testserver")
    config = make_settings(tmp_path=tmp_path, database_url=store_url, **settings)
    engine = make_engine(store_url)
    registry = CollectorRegistry()
    app = create_app(config, engine=engine, registry=registry, ports=ports(config))
    factory = session_factory(engine)
    try:
        yield TicketApp(app, config, engine, factory, registry, seed_users(factory))
    finally:
        engine.dispose()


def open_ticket(ticket_app: TicketApp, **event: object) -> int:
    """A ticket opened through the service from ``make_event(**event)``; its id."""
    with session_scope(ticket_app.factory) as session:
        ticket = TicketService(session, ticket_app.settings).ingest(make_event(**event)).ticket
        assert ticket is not None
        return ticket.id


def alert(key: int, start: int, status: str = "firing") -> dict[str, Any]:
    """One Alertmanager alert, ``start`` minutes after T0 (resolved five minutes later if so)."""
    starts = (T0 + timedelta(minutes=start)).isoformat().replace("+00:00", "Z")
    ends = (T0 + timedelta(minutes=start + 5)).isoformat().replace("+00:00", "Z")
    return {
        "status": status,
        "labels": {"alertname": f"ErpCheck{key}", "instance": f"erp-{key}", "severity": "warning"},
        "annotations": {"summary": f"check {key} failing"},
        "startsAt": starts,
        "endsAt": ends if status == "resolved" else "0001-01-01T00:00:00Z",
        "fingerprint": f"{key:016x}",
    }


def webhook(*alerts: dict[str, Any]) -> AlertmanagerWebhook:
    return AlertmanagerWebhook.model_validate(
        {"version": "4", "status": "firing", "receiver": "oncall", "groupKey": "{}", "alerts": list(alerts)}
    )
