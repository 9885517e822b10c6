"""A metric fault end to end: the demo ERP's slow endpoint, probed over real HTTP on loopback, goes through
the real pipeline (store, streaming detectors with state in the store, alarms, tickets, API) and becomes one
event when it starts and one resolve when it ends.

The fault is the demo's own mechanism (a ``demo_fault_config`` delay row for ``/api/trial-balance``, read
when the ERP API starts, as after a redeployment), with a short delay so the test takes seconds: slower
than normal by far, yet under the probe's own latency limits, so only the detectors can see it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from rich.console import Console
from sqlalchemy import create_engine, delete, insert, select
from starlette.testclient import TestClient

from anomaly.state import SeriesState
from core.session import make_engine, session_factory, session_scope
from hypercare.app import ports
from hypercare.config import Settings
from hypercare.demo import erp_schema as s
from hypercare.demo.builder import DemoErp
from hypercare.demo.erp_api import DELAY_PREFIX, create_erp_api
from hypercare.demo.faults_ops import SLOW_PATH
from hypercare.demo.run import demo_environment
from hypercare.pipeline import PipelineReport, run_pipeline
from hypercare.serving import BackgroundServer, free_port
from hypercare.store import upgrade
from tests.demo_erp import DemoErpFactory
from tickets.app import create_app
from tickets.auth import create_token, create_user
from tickets.models import EventRecord, Ticket

pytestmark = pytest.mark.slow

WARMUP, NORMAL, SLOW, AFTER = 40, 20, 5, 12
DELAY_S = 0.5
"""Normal answers take 5-100 ms on a busy loopback: 0.5 s is far from normal, below latency_warn_s."""


@pytest.fixture(scope="module")
def erp(demo_erp: DemoErpFactory) -> DemoErp:
    return demo_erp("anomaly-demo", seed=42, faults=[], scale=0.05)


def set_slow(erp: DemoErp, delay_s: float | None) -> None:
    """Switch the slow_erp_endpoint fault on (a delay row) or off (no row), as the demo injects it."""
    engine = create_engine(erp.erp_url)
    cfg = s.demo_fault_config
    with engine.begin() as conn:
        conn.execute(delete(cfg).where(cfg.c.key == f"{DELAY_PREFIX}{SLOW_PATH}"))
        if delay_s is not None:
            conn.execute(
                insert(cfg).values(key=f"{DELAY_PREFIX}{SLOW_PATH}", value=str(delay_s), description="test")
            )
    engine.dispose()


def settings_for(store_url: str, tmp_path: Path, api_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=store_url,
        probes=[
            {
                "name": "erp-trial-balance",
                "url": f"{api_url}{SLOW_PATH}",
                "source": "erp",
                "latency_warn_s": 1.5,
                "latency_fail_s": 3.0,
                "severity": "P2",
                "runbook": "erp-slow-transaction",
            }
        ],
        # Settings for a noisy series (a test machine shared with other jobs): 3 points well outside normal
        # are needed, so neither a lone hiccup nor a short burst of load pages anybody.
        anomaly={"warmup_points": WARMUP, "alarm_on": 0.8, "min_duration_points": 3, "alarm_instant": 1.0},
    )


def probe_phase(
    settings: Settings, store_url: str, erp: DemoErp, *, port: int, passes: int, delay_s: float | None
) -> Iterator[PipelineReport]:
    """(Re)start the ERP API with or without the fault, then run the real pipeline ``passes`` times."""
    set_slow(erp, delay_s)
    engine = make_engine(store_url)
    factory = session_factory(engine)
    try:
        with BackgroundServer(create_erp_api(erp.erp_url), port=port), httpx.Client() as client:
            for _ in range(passes):
                yield run_pipeline(settings, factory, [], http_client=client, trigger="test")
    finally:
        engine.dispose()


def test_the_slow_endpoint_is_one_event_when_it_starts_and_one_resolve_when_it_ends(
    store_url: str, tmp_path: Path, erp: DemoErp
) -> None:
    port = free_port()
    settings = settings_for(store_url, tmp_path, f"http://127.0.0.1:{port}")
    engine = make_engine(store_url)
    upgrade(engine)
    factory = session_factory(engine)

    phases = {
        "normal": list(
            probe_phase(settings, store_url, erp, port=port, passes=WARMUP + NORMAL, delay_s=None)
        ),
        "slow": list(probe_phase(settings, store_url, erp, port=port, passes=SLOW, delay_s=DELAY_S)),
        "after": list(probe_phase(settings, store_url, erp, port=port, passes=AFTER, delay_s=None)),
    }
    latency = {
        name: [r.results[0].measured_value or 0.0 for r in reports] for name, reports in phases.items()
    }
    assert min(latency["slow"]) >= DELAY_S
    # the probe's own check never fails: only the detectors can tell
    assert {r.results[0].status for reports in phases.values() for r in reports} == {"pass"}
    assert [sum(r.outcomes.values()) for r in phases["normal"]] == [0] * (WARMUP + NORMAL)

    with factory() as session:
        events = list(session.scalars(select(EventRecord).order_by(EventRecord.id)))
        tickets = list(session.scalars(select(Ticket)))
    assert [(e.producer, e.action) for e in events] == [("anomaly", "trigger"), ("anomaly", "resolve")]
    trigger, resolve = events
    slow_started = phases["slow"][0].results[0].started_at
    slow_ended = phases["slow"][-1].results[0].finished_at
    assert slow_started <= trigger.occurred_at <= slow_ended
    assert resolve.occurred_at > slow_ended
    assert trigger.fingerprint == resolve.fingerprint
    assert trigger.evidence["labels"] == {"probe": "erp-trial-balance", "source": "erp"}
    assert f"value {trigger.evidence['value']:.4g} vs expected" in trigger.evidence["explanation"]
    assert trigger.evidence["value"] >= DELAY_S > 3 * trigger.evidence["expected"]

    (ticket,) = tickets
    assert (ticket.fingerprint, ticket.status, ticket.category) == (
        trigger.fingerprint,
        "resolved",
        "technical",
    )
    assert ticket.title.startswith("Anomaly on erp: probe_duration_seconds{probe=erp-trial-balance}: ")
    assert ticket.runbook_id == "erp-slow-transaction"
    assert ticket.description == "P3 as configured for metric alarms (anomaly.alarm_severity)"

    # what a person sees through the API: the ticket, why its priority, and the alarm's explanation
    with session_scope(factory) as session:
        token = create_token(session, create_user(session, "viewer", "pw-" + "x" * 12, "viewer"), "test")
    app = create_app(settings, engine=engine, registry=CollectorRegistry(), ports=ports(settings))
    with TestClient(app, base_url="http://testserver") as client:
        shown = client.get(f"/api/v1/tickets/{ticket.id}", headers={"Authorization": f"Bearer {token}"})
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["status"] == "resolved" and body["description"] == ticket.description
    assert "robust sigmas above normal" in body["occurrences"][0]["evidence"]["explanation"]
    engine.dispose()


def test_a_clean_demo_feeds_the_detectors_and_raises_no_anomaly_event(tmp_path: Path) -> None:
    quiet = Console(quiet=True)
    with demo_environment(tmp_path / "demo", faults=[], console=quiet) as demo, demo.factory() as session:
        rows = list(session.scalars(select(SeriesState)))
        anomalies = session.scalars(select(EventRecord).where(EventRecord.producer == "anomaly")).all()
    watched = {row.series: row.points for row in rows if not row.metric.startswith("volume:")}
    volumes = {row.series: row.points for row in rows if row.metric.startswith("volume:")}
    assert watched == {
        "probe_duration_seconds{probe=erp-invoice-list}": 1,
        "probe_duration_seconds{probe=erp-trial-balance}": 1,
    }
    # every business-volume series learnt each complete day it has (outbox messages since go-live only)
    assert volumes["sales.volume.invoices{kind=out,measure=count}"] >= 100
    assert min(volumes.values()) >= 10
    assert anomalies == []
