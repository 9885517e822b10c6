"""Cutover readiness from the stored runs: each exit criterion's current value, the match rate over time and
go/no-go — as a service, on /metrics (fresh registry) and over the API with the usual roles."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from dualrun_factory import comparison, day, diff, entity
from prometheus_client import CollectorRegistry
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from core.session import make_engine, session_factory, session_scope
from hypercare import dualrun_api
from hypercare.app import ports
from hypercare.config import Settings
from monitor.dualrun.model import ComparisonResult
from monitor.dualrun.readiness import ReadinessCollector, evaluate
from monitor.dualrun.store import store_failure, store_result
from tickets.app import create_app
from tickets.auth import create_token, create_user

CRITERIA: list[dict[str, Any]] = [
    {
        "name": "tb-3-days",
        "kind": "consecutive_matches",
        "entity": "trial_balance",
        "runs": 3,
        "description": "Trial balance equal for 3 consecutive daily runs",
    },
    {"name": "open-ar", "kind": "within_tolerance", "entity": "open_ar", "max_money": "10.00"},
    {"name": "unexplained", "kind": "unexplained"},
    {"name": "rates", "kind": "match_rate", "min_match_rate": 0.99},
]
SETTINGS = Settings(dualrun={"exit_criteria": CRITERIA})


def run(
    session: Session, n: int, *, tb: bool = True, ar_money: str | None = None, at_hour: int = 0
) -> ComparisonResult:
    """Day n's run: the trial balance matches (or not), open AR differs by ar_money (or matches)."""
    tb_samples = [] if tb else [diff("1122", entity="trial_balance", money="500.00")]
    ar_samples = [diff("XS-1", money=ar_money)] if ar_money else []
    result = comparison(
        entity("trial_balance", kind="aggregate", matched=58, samples=tb_samples),
        entity("open_ar", matched=3000, samples=ar_samples),
        at=day(n).replace(hour=at_hour),
    )
    store_result(session, result)
    session.flush()
    return result


def by_name(session: Session, settings: Settings = SETTINGS) -> dict[str, Any]:
    return {c.name: c for c in evaluate(session, settings).criteria}


def test_no_run_yet_is_no_go_with_every_criterion_unmet(session: Session) -> None:
    readiness = evaluate(session, SETTINGS)
    assert readiness.status == "no-go"
    assert all(not c.passed and c.detail == "no run yet" for c in readiness.criteria)
    assert "no dual-run comparison has run yet" in readiness.reasons


def test_three_consecutive_matching_days_make_it_go(session: Session) -> None:
    run(session, 0, tb=False)
    run(session, 1)
    run(session, 2)
    assert by_name(session)["tb-3-days"].detail.startswith("2 of 3 consecutive daily matching runs")
    assert evaluate(session, SETTINGS).status == "no-go"
    run(session, 3)
    readiness = evaluate(session, SETTINGS)
    assert readiness.status == "go", readiness.reasons
    tb = {c.name: c for c in readiness.criteria}["tb-3-days"]
    assert (tb.passed, tb.value) == (True, 3.0)
    series = {e.entity: e for e in readiness.entities}["trial_balance"]
    assert [p.status for p in series.history] == ["differ", "match", "match", "match"]
    assert series.history[0].match_rate == 58 / 59 and series.latest_match_rate == 1.0


def test_the_latest_run_of_a_day_counts_and_a_difference_breaks_the_streak(session: Session) -> None:
    run(session, 0)
    run(session, 1, tb=False, at_hour=1)
    run(session, 1, at_hour=9)  # fixed and re-run the same day
    run(session, 2)
    assert by_name(session)["tb-3-days"].value == 3.0
    run(session, 3, tb=False)
    assert by_name(session)["tb-3-days"].value == 0.0


def test_open_items_within_tolerance_and_unexplained_above_materiality(session: Session) -> None:
    run(session, 0, ar_money="10.00")  # below the comparison's materiality (100.00), within 10.00
    crit = by_name(session)
    assert crit["open-ar"].passed and crit["open-ar"].value == 10.0
    assert crit["unexplained"].passed  # one unexplained difference, but 10.00 is below materiality
    run(session, 1, ar_money="250.00")
    crit = by_name(session)
    assert not crit["open-ar"].passed
    assert crit["open-ar"].detail == "1 difference(s), money affected 250.00"
    assert not crit["unexplained"].passed and crit["unexplained"].value == 1.0
    assert "open_ar" in crit["unexplained"].detail
    # timing and mapping differences explain themselves
    store_result(
        session,
        comparison(
            entity("trial_balance", kind="aggregate"),
            entity("open_ar", samples=[diff(classification="timing", money="900.00")]),
            at=day(2),
        ),
    )
    session.flush()
    assert by_name(session)["unexplained"].passed


def test_a_comparison_whose_latest_run_failed_is_no_go(session: Session) -> None:
    for n in range(3):
        run(session, n)
    assert evaluate(session, SETTINGS).status == "go"
    store_failure(session, "cutover", "legacy is unreachable", started_at=day(3), finished_at=day(3))
    session.flush()
    readiness = evaluate(session, SETTINGS)
    assert readiness.status == "no-go"
    assert readiness.reasons == ("comparison cutover: latest run incomplete (legacy is unreachable)",)


def test_match_rate_criterion_names_the_worst_entity(session: Session) -> None:
    store_result(
        session,
        comparison(
            entity("open_ar", matched=98, samples=[diff(), diff("b")]), entity("customers", matched=10)
        ),
    )
    session.flush()
    rate = by_name(session)["rates"]
    assert not rate.passed and rate.value == pytest.approx(0.98)
    assert rate.detail == "lowest 98.00% (cutover/open_ar)"


# --- /metrics and the API (a store of the test's own) -----------------------------------------------------


@pytest.fixture
def stored(store_url: str) -> str:
    engine = make_engine(store_url)
    factory = session_factory(engine)
    with session_scope(factory) as session:
        run(session, 0, tb=False)
        run(session, 1, ar_money="250.00")
    engine.dispose()
    return store_url


def test_metrics_expose_match_rate_differences_criteria_and_go(stored: str) -> None:
    engine = make_engine(stored)
    registry = CollectorRegistry()
    ReadinessCollector(session_factory(engine), SETTINGS, registry=registry)
    try:
        value = registry.get_sample_value
        ar = {"comparison": "cutover", "entity": "open_ar"}
        assert value("hypercare_dualrun_match_ratio", ar) == 3000 / 3001
        assert value("hypercare_dualrun_match_ratio", {**ar, "entity": "trial_balance"}) == 1.0
        assert value("hypercare_dualrun_differences", {**ar, "kind": "changed"}) == 1.0
        assert value("hypercare_dualrun_differences", {**ar, "kind": "missing_in_new"}) == 0.0
        assert value("hypercare_dualrun_money_affected", ar) == 250.0
        assert value("hypercare_dualrun_unexplained_differences", ar) == 1.0
        assert value("hypercare_dualrun_last_run_timestamp_seconds", {"comparison": "cutover"}) == (
            day(1).replace(hour=0).timestamp()
        )
        assert value("hypercare_dualrun_exit_criterion_passed", {"criterion": "tb-3-days"}) == 0.0
        assert value("hypercare_dualrun_exit_criterion_passed", {"criterion": "rates"}) == 1.0
        assert value("hypercare_dualrun_ready") == 0.0
    finally:
        engine.dispose()


def test_api_serves_readiness_and_runs_to_viewers_and_refuses_reporters(stored: str, tmp_path: Path) -> None:
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
