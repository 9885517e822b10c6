"""Fixtures of the ticket queue's tests: a clock and a service on the rolled-back session, a session factory
on a store of the test's own, a webhook receiver, and for browser tests the app served by uvicorn on a
loopback port (the app under TestClient, ``ticket_app`` and ``client``, and ``browser_page`` are in
``tests/conftest.py``, for the runbook tests too)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from core.session import make_engine, session_factory
from hypercare.app import ports
from hypercare.config import Settings
from hypercare.serving import free_port
from hypercare.store import upgrade
from tests.tickets.factories import Clock, TicketApp, make_settings, seed_users
from tests.tickets.receiver import Receiver
from tickets.app import create_app
from tickets.service import TicketService


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(session: Session, clock: Clock) -> TicketService:
    """A ticket service with the default settings on the rolled-back session, on the test's clock."""
    return TicketService(session, make_settings(), now=clock)


@pytest.fixture
def factory(store_engine: Engine) -> sessionmaker[Session]:
    return session_factory(store_engine)


@pytest.fixture
def other_app(ticket_app: TicketApp) -> Iterator[TestClient]:
    """A second Hypercare on the same store (its own engine, pool and caches)."""
    engine = make_engine(str(ticket_app.engine.url.render_as_string(hide_password=False)))
    app = create_app(
        ticket_app.settings, engine=engine, registry=CollectorRegistry(), ports=ports(ticket_app.settings)
    )
    with TestClient(app, base_url="http://testserver") as other:
        yield other
    engine.dispose()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    sink = Receiver()
    sink.thread.start()
    yield sink
    sink.server.shutdown()
    sink.server.server_close()
    sink.thread.join(5)


# --- browser -----------------------------------------------------------------------------------------


@dataclass
class LiveServer:
    url: str
    settings: Settings
    factory: sessionmaker[Session]


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """The app served by uvicorn on a free loopback port, in a daemon thread, on a migrated SQLite store."""
    with serving(tmp_path) as server:
        yield server


@contextmanager
def serving(tmp_path: Path, **settings: Any) -> Iterator[LiveServer]:
    """:func:`live_server` with settings of its own (``site={"timezone": ...}``...)."""
    import uvicorn

    url = f"sqlite:///{tmp_path / 'live.db'}"
    engine = make_engine(url)
    upgrade(engine)
    factory = session_factory(engine)
    seed_users(factory)
    port = free_port()
    config = make_settings(
        tmp_path=tmp_path, database_url=url, public_url=f"http://127.0.0.1:{port}", **settings
    )
    app = create_app(config, ports=ports(config))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the live server did not start")
        time.sleep(0.05)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", config, factory)
    finally:
        server.should_exit = True
        thread.join(10)
        engine.dispose()
