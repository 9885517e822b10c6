"""Fixtures of the dashboard tests: a store of the test's own (SQLite and PostgreSQL) filled with known data,
the environment the dashboard reads its settings from, and an AppTest of the app signed in as a manager."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))


from core.session import make_engine, session_factory, session_scope
from tests.dashboards.known_store import Known, minute_now, seed

APP = Path(__file__).resolve().parents[2] / "dashboards" / "app.py"
GO_LIVE_DAYS_AGO = 9  # so today is go-live day 10


@pytest.fixture
def known(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Known:
    now = minute_now()
    engine = make_engine(store_url)
    with session_scope(session_factory(engine)) as session:
        tokens = seed(session, now)
    engine.dispose()
    monkeypatch.delenv("HYPERCARE_CONFIG", raising=False)
    monkeypatch.setenv("HYPERCARE_DATABASE_URL", store_url)
    monkeypatch.setenv("HYPERCARE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv(
        "HYPERCARE_DASHBOARD__GO_LIVE_DATE", (now.date() - timedelta(days=GO_LIVE_DAYS_AGO)).isoformat()
    )
    monkeypatch.chdir(tmp_path)  # no stray ./hypercare.yaml
    return Known(now, tokens)


@pytest.fixture
def app_test(known: Known) -> Any:
    """The dashboard app, signed in as the manager (the login form has its own tests)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state["hypercare_user"] = "manager (manager)"
    return at
