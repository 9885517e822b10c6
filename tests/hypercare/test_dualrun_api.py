"""The dual-run API the wiring mounts (hypercare/dualrun_api.py): cutover readiness and the stored runs, with
the usual roles."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient

from core.session import make_engine, session_factory, session_scope
from hypercare import dualrun_api
from hypercare.app import ports
from hypercare.config import Settings
from tests.monitor.dualrun_factory import CRITERIA, day, store_two_days
from tickets.app import create_app
from tickets.auth import create_token, create_user


def test_api_serves_readiness_and_runs_to_viewers_and_refuses_reporters(
    store_url: str, tmp_path: Path
) -> None:
    stored = store_two_days(store_url)
    settings = Settings(data_dir=tmp_path, database_url=stored, dualrun={"exit_criteria": CRITERIA})
    engine = make_engine(stored)
    factory = session_factory(engine)
    with session_scope(factory) as session:
        tokens = {}
        for role in ("viewer", "reporter", "manager"):
            user = create_user(session, f"u-{role}", "a-long-password-123", role)
            tokens[role] = create_token(session, user, name="t")
    app = create_app(
        settings,
        engine=engine,
        registry=CollectorRegistry(),
        routers=[dualrun_api.router],
        ports=ports(settings),
    )
    try:
        with TestClient(app) as client:

            def get(path: str, role: str | None) -> Any:
                headers = {"Authorization": f"Bearer {tokens[role]}"} if role else {}
                return client.get(path, headers=headers)

            assert get("/api/v1/dualrun/readiness", None).status_code == 401
            assert get("/api/v1/dualrun/readiness", "reporter").status_code == 403
            body = get("/api/v1/dualrun/readiness", "viewer").json()
            assert body["status"] == "no-go"
            crit = {c["name"]: c for c in body["criteria"]}
            assert crit["open-ar"]["passed"] is False and crit["open-ar"]["value"] == 250.0
            assert crit["tb-3-days"]["detail"].startswith("1 of 3")
            ar = {e["entity"]: e for e in body["entities"]}["open_ar"]
            assert [p["match_rate"] for p in ar["history"]] == [1.0, 3000 / 3001]
            assert Decimal(ar["money_affected"]) == Decimal("250.00")

            runs = get("/api/v1/dualrun/runs?limit=1", "manager").json()
            assert runs["total"] == 2
            (latest,) = runs["items"]
            assert latest["started_at"].startswith(day(1).date().isoformat())
            assert latest["status"] == "differ"
            assert {e["entity"]: e["status"] for e in latest["entities"]} == {
                "trial_balance": "match",
                "open_ar": "differ",
            }
            assert get("/api/v1/dualrun/runs?limit=0", "viewer").status_code == 422
    finally:
        engine.dispose()
