"""The served application: tickets' API and UI, with monitor's metrics on the same /metrics.

tickets/ knows nothing of collectors; this is where the parts meet.
"""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import Engine

from hypercare.config import Settings
from hypercare.store import make_engine, session_factory
from monitor.metrics import CheckResultsCollector
from tickets.api.app import create_app


def build_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    engine = engine or make_engine(settings.store_url)
    return create_app(
        settings, engine=engine, extra_collectors=[CheckResultsCollector(session_factory(engine))]
    )
