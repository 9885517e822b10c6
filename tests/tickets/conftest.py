"""Fixtures of the ticket queue's HTTP tests: an app on a store of the test's own with a user per role, and
for browser tests a live server and Debian's chromium driven by Playwright."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient
from ticket_factories import TicketApp, make_settings, seed_users

from core.session import make_engine, session_factory
from hypercare.app import ports
from hypercare.config import Settings
from hypercare.store import upgrade
from tickets.app import create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture
def ticket_app(store_url: str, tmp_path: Path) -> Iterator[TicketApp]:
    # plain http, like TestClient: with an https public_url the session cookie is Secure-only
    settings = make_settings(tmp_path=tmp_path, database_url=store_url, public_url="http://testserver")
    engine = make_engine(store_url)
    registry = CollectorRegistry()
    app = create_app(settings, engine=engine, registry=registry, ports=ports(settings))
    factory = session_factory(engine)
    yield TicketApp(app, settings, engine, factory, registry, seed_users(factory))
    engine.dispose()


@pytest.fixture
def client(ticket_app: TicketApp) -> Iterator[TestClient]:
    with TestClient(ticket_app.app, base_url="http://testserver") as test_client:
        yield test_client


# --- browser -----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_executable() -> Path:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if IN_CI:
            pytest.fail(reason + " (CI=true: browser tests must run)")
        pytest.skip(reason)
    return CHROMIUM


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    url: str
    settings: Settings
    factory: sessionmaker[Session]


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """The app served by uvicorn on a free loopback port, in a daemon thread, on a migrated SQLite store."""
    import uvicorn

    url = f"sqlite:///{tmp_path / 'live.db'}"
    engine = make_engine(url)
    upgrade(engine)
    factory = session_factory(engine)
    seed_users(factory)
    port = _free_port()
    settings = make_settings(tmp_path=tmp_path, database_url=url, public_url=f"http://127.0.0.1:{port}")
    app = create_app(settings, ports=ports(settings))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the live server did not start")
        time.sleep(0.05)
    yield LiveServer(f"http://127.0.0.1:{port}", settings, factory)
    server.should_exit = True
    thread.join(10)
    engine.dispose()


@pytest.fixture
def browser_page(chromium_executable: Path) -> Iterator[Any]:
    """A Playwright page in headless Debian chromium (no ``playwright install``). A test fails if the page
    broke the Content-Security-Policy (chromium reports each blocked style, script or frame)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium_executable), headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        page = context.new_page()
        violations: list[str] = []
        page.on(
            "console",
            lambda message: (
                violations.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )
        yield page
        context.close()
        browser.close()
        assert violations == [], "the UI broke its Content-Security-Policy"
