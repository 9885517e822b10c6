"""Related series of one source scored together in the pipeline (anomaly/groups.py via MetricWatch), with
the group's state in the store: a joint incident the univariate detectors miss is one event and one
recovery naming the series; a restart (new process, new MetricWatch, no cached model) continues exactly."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from anomaly import state as anomaly_state
from anomaly.events import Event, fingerprint
from anomaly.settings import AnomalySettings
from anomaly.state import GROUP_METRIC, MetricWatch, SeriesState
from core.session import make_engine, session_factory, session_scope
from hypercare.store import upgrade
from monitor.results import MetricSample

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in Shanghai
LATENCY, ERRORS, THROUGHPUT = (
    "hypercare_api_latency_seconds",
    "hypercare_api_error_ratio",
    "hypercare_api_requests_per_second",
)
SIGMA = {LATENCY: 0.01, ERRORS: 0.002, THROUGHPUT: 4.0}
MEAN = {LATENCY: 0.2, ERRORS: 0.01, THROUGHPUT: 100.0}
INCIDENT = {LATENCY: 2.6, ERRORS: 2.6, THROUGHPUT: -2.6}
"""Latency and errors up, throughput down, each by 2.6 sigmas: under every univariate threshold, but
normally the three move together with load (throughput up when latency is), so jointly far from normal."""
N, ONSET, LENGTH = 300, 240, 6
GROUP = "group:erp"


def samples(seed: int, incident: bool) -> list[MetricSample]:
    rng = random.Random(seed)  # noqa: S311 - seeded test data
    out = []
    for i in range(N):
        load = rng.gauss(0, 1)  # shared by the three series: they are correlated
        for metric in (LATENCY, ERRORS, THROUGHPUT):
            value = MEAN[metric] + SIGMA[metric] * (0.8 * load + 0.6 * rng.gauss(0, 1))
            if incident and ONSET <= i < ONSET + LENGTH:
                value += INCIDENT[metric] * SIGMA[metric]
            out.append(MetricSample(metric, value, {"source": "erp"}, T0 + timedelta(minutes=i)))
    return out


def settings(enabled: bool = True) -> AnomalySettings:
    return AnomalySettings.model_validate(
        {
            "warmup_points": 40,
            "metrics": [LATENCY, ERRORS, THROUGHPUT],
            "multivariate": {
                "enabled": enabled,
                "min_train": 64,
                "train_size": 160,
                "refit_every": 40,
            },
        }
    )


@pytest.fixture
def factory(store_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(store_url)
    yield session_factory(engine)
    engine.dispose()


def run(
    factory: sessionmaker[Session], data: list[MetricSample], cfg: AnomalySettings, *, restart: bool = False
) -> list[Event]:
    """Passes of 10 minutes, each in its own transaction with a new MetricWatch (as the pipeline does);
    ``restart``: also forget every model fitted in this process before each pass."""
    events: list[Event] = []
    for start in range(0, len(data), 30):
        if restart:
            anomaly_state._FITS.clear()
        with session_scope(factory) as session:
            events.extend(MetricWatch(cfg).observe(session, data[start : start + 30]))
    return events


def stored(factory: sessionmaker[Session]) -> dict[str, Any]:
    with session_scope(factory) as session:
        return {
            row.series: json.loads(
                json.dumps({"detector": row.detector, "alarm": row.alarm, "n": row.points})
            )
            for row in session.scalars(select(SeriesState))
        }


def test_a_joint_incident_the_univariate_detectors_miss_is_one_event_naming_the_series(
    factory: sessionmaker[Session],
) -> None:
    events = run(factory, samples(7, incident=True), settings())
    assert [(e.action, e.labels["series"]) for e in events] == [("trigger", GROUP), ("resolve", GROUP)]
    trigger, resolve = events
    assert trigger.fingerprint == resolve.fingerprint == fingerprint("metric", GROUP, "erp")
    assert T0 + timedelta(minutes=ONSET) <= trigger.occurred_at <= T0 + timedelta(minutes=ONSET + LENGTH)
    assert resolve.occurred_at > trigger.occurred_at
    assert (trigger.category, trigger.source, trigger.severity) == ("technical", "erp", "P3")
    explanation = trigger.evidence["explanation"]
    assert explanation.startswith(f"{GROUP}: jointly abnormal (")
    for name in ("api_error_ratio", "api_latency_seconds", "api_requests_per_second"):
        assert name in explanation
    top = trigger.evidence["contributions"]
    assert {c["series"] for c in top[:3]} == {
        "api_latency_seconds",
        "api_error_ratio",
        "api_requests_per_second",
    }
    latency = next(c for c in top if c["series"] == "api_latency_seconds")
    throughput = next(c for c in top if c["series"] == "api_requests_per_second")
    assert latency["deviation"] > 2 and throughput["deviation"] < -2  # how far, and which way
    assert trigger.evidence["members"] == [
        "api_error_ratio",
        "api_latency_seconds",
        "api_requests_per_second",
    ]
    assert trigger.summary.startswith(f"Anomaly on erp: {GROUP}: jointly abnormal")


def test_the_same_incident_without_the_multivariate_model_raises_nothing(
    factory: sessionmaker[Session],
) -> None:
    assert run(factory, samples(7, incident=True), settings(enabled=False)) == []


def test_a_clean_history_of_related_series_raises_nothing(factory: sessionmaker[Session]) -> None:
    assert run(factory, samples(9, incident=False), settings()) == []
    rows = stored(factory)
    # one aligned vector per minute from the first pass that began with every member warm (points 50..)
    assert rows[GROUP]["n"] == N - 50
    assert rows[GROUP]["detector"]["forest"]["fitted_at"] is not None


def test_a_restart_continues_with_identical_scores(store_url: str, tmp_path: Path) -> None:
    data = samples(7, incident=True)
    urls = [store_url, f"sqlite:///{tmp_path / 'again.db'}"]
    engines = [make_engine(url) for url in urls]
    upgrade(engines[1])
    try:
        kept = run(session_factory(engines[0]), data, settings())
        restarted = run(session_factory(engines[1]), data, settings(), restart=True)
        assert [e.model_dump(exclude={"occurred_at"}) for e in restarted] == [
            e.model_dump(exclude={"occurred_at"}) for e in kept
        ]
        assert stored(session_factory(engines[1])) == stored(session_factory(engines[0]))
    finally:
        for engine in engines:
            engine.dispose()
    assert kept and kept[0].evidence["metric"] == GROUP_METRIC
