"""Cutover readiness from the stored runs: each exit criterion's current value, the match rate over time and
go/no-go, as a service and on /metrics (fresh registry); over the API in hypercare/test_dualrun_api.py."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.orm import Session

from core.session import make_engine, session_factory
from hypercare.config import Settings
from monitor.dualrun.readiness import ReadinessCollector, evaluate
from monitor.dualrun.store import store_failure, store_result
from tests.monitor.dualrun_factory import CRITERIA, comparison, day, diff, entity, store_day, store_two_days

SETTINGS = Settings(dualrun={"exit_criteria": CRITERIA})


def by_name(session: Session, settings: Settings = SETTINGS) -> dict[str, Any]:
    return {c.name: c for c in evaluate(session, settings).criteria}


def test_no_run_yet_is_no_go_with_every_criterion_unmet(session: Session) -> None:
    readiness = evaluate(session, SETTINGS)
    assert readiness.status == "no-go"
    assert all(not c.passed and c.detail == "no run yet" for c in readiness.criteria)
    assert "no dual-run comparison has run yet" in readiness.reasons


def test_three_consecutive_matching_days_make_it_go(session: Session) -> None:
    store_day(session, 0, tb=False)
    store_day(session, 1)
    store_day(session, 2)
    assert by_name(session)["tb-3-days"].detail.startswith("2 of 3 consecutive daily matching runs")
    assert evaluate(session, SETTINGS).status == "no-go"
    store_day(session, 3)
    readiness = evaluate(session, SETTINGS)
    assert readiness.status == "go", readiness.reasons
    tb = {c.name: c for c in readiness.criteria}["tb-3-days"]
    assert (tb.passed, tb.value) == (True, 3.0)
    series = {e.entity: e for e in readiness.entities}["trial_balance"]
    assert [p.status for p in series.history] == ["differ", "match", "match", "match"]
    assert series.history[0].match_rate == 58 / 59 and series.latest_match_rate == 1.0


def test_the_latest_run_of_a_day_counts_and_a_difference_breaks_the_streak(session: Session) -> None:
    store_day(session, 0)
    store_day(session, 1, tb=False, at_hour=1)
    store_day(session, 1, at_hour=9)  # fixed and re-run the same day
    store_day(session, 2)
    assert by_name(session)["tb-3-days"].value == 3.0
    store_day(session, 3, tb=False)
    assert by_name(session)["tb-3-days"].value == 0.0


def test_open_items_within_tolerance_and_unexplained_above_materiality(session: Session) -> None:
    store_day(session, 0, ar_money="10.00")  # below the comparison's materiality (100.00), within 10.00
    crit = by_name(session)
    assert crit["open-ar"].passed and crit["open-ar"].value == 10.0
    assert crit["unexplained"].passed  # one unexplained difference, but 10.00 is below materiality
    store_day(session, 1, ar_money="250.00")
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
        store_day(session, n)
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
    return store_two_days(store_url)


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
