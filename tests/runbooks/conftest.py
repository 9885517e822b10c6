"""Fixtures of the runbook tests (the ticket app, ``client`` and ``browser_page`` are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from core.session import make_engine, session_factory
from hypercare.app import ports
from hypercare.pipeline import run_pipeline
from monitor.checks import load_checks
from tests.runbooks.factories import Shop, build_shop
from tests.tickets.factories import seed_users
from tickets.app import create_app
from tickets.models import Ticket


@pytest.fixture
def shop(store_url: str, tmp_path: Path) -> Iterator[Shop]:
    erp = build_shop(tmp_path, database_url=store_url)
    engine = make_engine(store_url)
    factory = session_factory(engine)
    seed_users(factory)
    run_pipeline(erp.settings, factory, load_checks((), erp.settings.checks.paths))
    with factory() as session:
        ticket_id = session.scalars(select(Ticket.id)).one()
    app = create_app(erp.settings, engine=engine, ports=ports(erp.settings))
    with TestClient(app, base_url="http://testserver") as client:
        yield Shop(erp, engine, factory, client, ticket_id)
    engine.dispose()
