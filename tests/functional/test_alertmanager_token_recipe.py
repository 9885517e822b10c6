"""The README's recipe for Alertmanager, followed as an operator would: an integration user whose role may
post alerts, a token the CLI makes for it scoped to the intake, and Alertmanager's webhook accepted with that
token by the app `hypercare serve` runs. A token of an `agent` (the role of the people working tickets) is
refused with a 403 naming the roles that would do."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from core.session import make_engine, session_factory
from hypercare.app import build_app
from hypercare.config import Settings
from tickets.models import Ticket

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK: dict[str, Any] = {
    "version": "4",
    "groupKey": '{}:{alertname="ErpPostingQueueStuck"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "hypercare",
    "groupLabels": {"alertname": "ErpPostingQueueStuck"},
    "commonLabels": {"alertname": "ErpPostingQueueStuck", "severity": "critical", "job": "erp-backend"},
    "commonAnnotations": {"summary": "Posting queue finance is stuck"},
    "externalURL": "http://alertmanager.example:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "ErpPostingQueueStuck",
                "severity": "critical",
                "job": "erp-backend",
                "queue": "finance",
            },
            "annotations": {"summary": "Posting queue finance is stuck"},
            "startsAt": "2026-11-23T09:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example:9090/graph",
            "fingerprint": "7c1d3a0f5e9b2d41",
        }
    ],
}


class Cli:
    """`hypercare ...` in a process of its own on the test's store, like the operator's shell."""

    def __init__(self, store_url: str, tmp_path: Path) -> None:
        self.cwd = tmp_path
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERCARE_")}
        self.env.update(
            {
                "PYTHONPATH": str(ROOT),
                "NO_COLOR": "1",
                "HYPERCARE_DATABASE_URL": store_url,
                "HYPERCARE_DATA_DIR": str(tmp_path / "data"),
            }
        )

    def __call__(self, *args: str, stdin: str = "") -> str:
        done = subprocess.run(
            [sys.executable, "-m", "hypercare", *args],
            cwd=self.cwd,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def token(self, *args: str) -> str:
        """`tokens create ...`: the token is alone on the last line."""
        return self("tokens", "create", *args).rstrip("\n").splitlines()[-1]


@pytest.fixture
def served(store_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(database_url=store_url, data_dir=tmp_path / "data")
    engine = make_engine(store_url)
    with TestClient(build_app(settings, engine), base_url="http://testserver") as client:
        yield client
    engine.dispose()


def test_the_documented_integration_token_is_accepted_by_the_alertmanager_intake(
    store_url: str, tmp_path: Path, served: TestClient
) -> None:
    cli = Cli(store_url, tmp_path)
    cli("db", "upgrade")
    # README "Using it on your ERP" / docs/operator-guide.md "Alertmanager intake", step by step:
    cli(
        "users", "add", "alertmanager", "--role", "oncall", "--password-stdin",
        "--display-name", "Alertmanager (integration)",
        stdin="a-long-random-password-nobody-types\n",
    )  # fmt: skip
    token = cli.token("--user", "alertmanager", "--name", "alertmanager", "--scope", "alerts:write")

    accepted = served.post("/api/v1/alertmanager", json=WEBHOOK, headers={"Authorization": f"Bearer {token}"})
    assert accepted.status_code == 200, accepted.text
    assert [a["outcome"] for a in accepted.json()["alerts"]] == ["opened"]
    engine = make_engine(store_url)
    with session_factory(engine)() as session:
        (ticket,) = session.scalars(select(Ticket))
        assert ticket.fingerprint == "am-7c1d3a0f5e9b2d41" and ticket.priority == "P1"
    engine.dispose()

    # the token can post alerts and nothing else: not even read the queue
    assert served.get("/api/v1/tickets", headers={"Authorization": f"Bearer {token}"}).status_code == 403

    # the recipe the README used to give: a person's agent token is refused, naming the roles that may
    cli("users", "add", "alice", "--role", "agent", "--password-stdin", stdin="alice-password-1\n")
    agent = cli.token("--user", "alice", "--name", "alertmanager")
    refused = served.post("/api/v1/alertmanager", json=WEBHOOK, headers={"Authorization": f"Bearer {agent}"})
    assert refused.status_code == 403
    assert "this needs scope 'alerts:write' (roles: oncall, admin)" in refused.text
