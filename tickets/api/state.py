"""What the app factory builds once and every request shares."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import HTTPConnection

from tickets.api.guards import StoreBreaker
from tickets.hot_reads import HotReads
from tickets.ports import Ports
from tickets.response_cache import ResponseCaches
from tickets.settings import TicketsConfig


@dataclass(frozen=True, slots=True)
class AppState:
    settings: TicketsConfig
    engine: Engine
    session_factory: sessionmaker[Session]
    registry: CollectorRegistry
    hot: HotReads
    """Cache hits' one-statement lookups (tickets/hot_reads.py); open while the app's lifespan runs."""
    ports: Ports
    breaker: StoreBreaker
    """Open while the store does not answer (tickets/api/guards.py); /readyz closes it."""
    """Diagnostics and verification, as the wiring provides them (tickets/ports.py)."""
    caches: ResponseCaches
    """The queue page's and the list API's response caches (tickets/cache.py)."""
    notices: tuple[str, ...] = ()
    """What the wiring found at start-up for ``/readyz`` to show (a source running with a privileged user)."""


def app_state(conn: HTTPConnection) -> AppState:
    state: AppState = conn.app.state.hypercare
    return state
