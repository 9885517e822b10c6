"""Shared fixtures: a real store on SQLite and on PostgreSQL, schema built by the migrations.

Two shapes of store:

* ``session`` — one transaction per test, rolled back at the end (SAVEPOINT mode): code under test may
  commit. Fast; use it for services.
* ``store_url`` — a store of the test's own (a temporary SQLite file, or a PostgreSQL database cloned from
  a migrated template), for tests whose code opens its own connections: the API, the pipeline, the CLI.

Both are parametrised over ``sqlite`` and ``postgres``. PostgreSQL is the server named by
``HYPERCARE_TEST_DATABASE_URL`` (default ``postgresql+psycopg://root@127.0.0.1:5432/test``); each test run
works in throwaway databases of its own. Without a server the PostgreSQL cases skip with the reason, except
under ``CI=true``, where they fail.

Also here, for every part's tests: the ticket app (``ticket_app``, and ``client`` over TestClient), Debian's
chromium (``chromium_executable``, ``browser_page``) and the throwaway demo ERP (``demo_erp``). Helpers that
are not fixtures are modules imported by name: ``tests.servers``, ``tests.demo_erp``, ``tests.x.factories``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from core.session import make_engine
from hypercare.store import upgrade
from tests.servers import CHROMIUM, CHROMIUM_ARGS, IN_CI, PG_URL
from tickets.audit_chain import use_keyring
from tickets.audit_keys import Keyring, parse_keyring

if TYPE_CHECKING:
    from starlette.testclient import TestClient

    from hypercare.demo.builder import DemoErp
    from tests.demo_erp import DemoErpFactory
    from tests.tickets.factories import TicketApp

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


TEST_AUDIT_KEYRING = "t1:" + "dGVzdC1hdWRpdC1rZXktb2YtdGhlLXN1aXRlLTMyYnl0ZXM=" + "\n"
"""The audit keyring every test chains with (``kid:base64key``); a CLI test writes it as its key file."""


@pytest.fixture(autouse=True)
def audit_keyring() -> Keyring:
    """Audit rows are chained with a key (tickets/audit_chain.py): the suite's own, fresh for each test."""
    keyring = parse_keyring(TEST_AUDIT_KEYRING, "the test keyring")
    use_keyring(keyring)
    return keyring


@pytest.fixture
def audit_key_file(tmp_path: Path) -> Path:
    """The test keyring as ``<tmp_path>/audit_key``: the key file of a CLI run with ``data_dir: tmp_path``."""
    path = tmp_path / "audit_key"
    path.write_text(TEST_AUDIT_KEYRING, encoding="ascii")
    path.chmod(0o600)
    return path


class _PostgresServer:
    """Creates a migrated template database once, then clones it per test."""

    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        self.prefix = f"hc_test_{os.getpid()}"
        self.template = f"{self.prefix}_tmpl"
        self.admin = create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
        self.created: list[str] = []
        self.error: str | None = None
        try:
            with self.admin.connect() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError as exc:
            self.error = str(exc.orig).strip().splitlines()[0]
            return
        self._create(self.template)
        engine = make_engine(self.url_for(self.template), poolclass=_null_pool())
        upgrade(engine)
        engine.dispose()

    def url_for(self, name: str) -> str:
        return self.url.set(database=name).render_as_string(hide_password=False)

    def _create(self, name: str, template: str | None = None) -> None:
        tmpl = f" TEMPLATE {template}" if template else ""
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"{tmpl}'))
        self.created.append(name)

    def clone(self) -> str:
        name = f"{self.prefix}_{uuid.uuid4().hex[:10]}"
        self._create(name, self.template)
        return name

    def drop(self, name: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if name in self.created:
            self.created.remove(name)

    def close(self) -> None:
        if self.error is None:
            for name in list(self.created):
                self.drop(name)
        self.admin.dispose()


def _null_pool() -> type:
    from sqlalchemy.pool import NullPool

    return NullPool


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[_PostgresServer]:
    server = _PostgresServer(PG_URL)
    yield server
    server.close()


def _require(server: _PostgresServer) -> None:
    if server.error is not None:
        reason = f"PostgreSQL at {make_url(PG_URL).render_as_string()} is not reachable: {server.error}"
        if IN_CI:
            pytest.fail(reason + " (CI=true: PostgreSQL tests must run)")
        pytest.skip(reason)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A migrated store of this test's own."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'hypercare.db'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
        return
    server: _PostgresServer = request.getfixturevalue("postgres_server")
    _require(server)
    name = server.clone()
    yield server.url_for(name)
    server.drop(name)


@pytest.fixture
def store_engine(store_url: str) -> Iterator[Engine]:
    engine = make_engine(store_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def _shared_sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path_factory.mktemp('store') / 'shared.db'}"
    engine = make_engine(url)
    upgrade(engine)
    # pysqlite's own transaction handling would make the inner commit() real; take it over so the
    # per-test SAVEPOINT rollback works (SQLAlchemy docs, "Serializable isolation / Savepoints").

    @event.listens_for(engine, "connect")
    def _no_autobegin(dbapi_conn, _rec):  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn):  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN")

    engine.dispose()
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def _shared_pg_engine(postgres_server: _PostgresServer) -> Iterator[Engine]:
    _require(postgres_server)
    engine = make_engine(postgres_server.url_for(postgres_server.clone()))
    yield engine
    engine.dispose()


@pytest.fixture
def session(backend: str, request: pytest.FixtureRequest) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test, whatever it committed."""
    engine: Engine = request.getfixturevalue(
        "_shared_sqlite_engine" if backend == "sqlite" else "_shared_pg_engine"
    )
    with engine.connect() as conn:
        outer = conn.begin()
        with Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False) as s:
            yield s
        outer.rollback()


# --- the ticket app and a browser (tickets/ and runbooks/ tests), imported inside: only their users pay


@pytest.fixture
def ticket_app(store_url: str, tmp_path: Path) -> Iterator[TicketApp]:
    """The ticket app on a store of the test's own, with a user and API token per role."""
    from tests.tickets.factories import ticket_app_on

    with ticket_app_on(store_url, tmp_path) as app:
        yield app


@pytest.fixture
def client(ticket_app: TicketApp) -> Iterator[TestClient]:
    from starlette.testclient import TestClient

    with TestClient(ticket_app.app, base_url="http://testserver") as test_client:
        yield test_client


@pytest.fixture(scope="session")
def chromium_executable() -> Path:
    """Debian's chromium, which Playwright drives (no ``playwright install``)."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if IN_CI:
            pytest.fail(reason + " (CI=true: browser tests must run)")
        pytest.skip(reason)
    return CHROMIUM


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


# --- the demo ERP ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def demo_erp(tmp_path_factory: pytest.TempPathFactory) -> DemoErpFactory:
    """Builds a throwaway demo ERP in a temporary folder of its own, anew on each call:
    ``demo_erp(scale=0.05, faults=[])`` takes ``build_demo_erp``'s options. Session-scoped only so that
    module-scoped fixtures can call it; the ERPs themselves are never shared between modules."""
    from hypercare.demo.builder import build_demo_erp

    def build(name: str = "erp", /, **options: Any) -> DemoErp:
        return build_demo_erp(tmp_path_factory.mktemp(name), **options)

    return build
