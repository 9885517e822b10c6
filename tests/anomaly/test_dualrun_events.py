"""Dual-run differences become events (one per comparison, entity and period, fingerprinted without time,
with the differing rows as evidence). Into tickets: hypercare/test_pipeline_dualrun.py."""

from __future__ import annotations

from decimal import Decimal

from anomaly.dualrun import (
    RUNBOOK,
    check_id,
    difference_fingerprint,
    error_fingerprint,
    events_for_comparison,
)
from anomaly.events import fingerprint
from hypercare.config import Settings
from monitor.dualrun.model import AggregateResult
from runbooks.library import load_runbooks
from tests.monitor.dualrun_factory import comparison, day, diff, entity

SETTINGS = Settings()


def test_one_event_per_entity_and_period_with_the_differing_rows_as_a_table() -> None:
    result = comparison(
        entity(
            "invoices",
            samples=[
                diff("XS-1", column="tax", legacy="318.25", new="220.33", money="97.92"),
                diff("XS-2", kind="missing_in_new", classification="data", money="50.00"),
            ],
        ),
        entity("customers"),  # matches: no event
    )
    (event,) = events_for_comparison(result, SETTINGS)
    assert event.action == "trigger" and event.category == "data" and event.producer == "dualrun"
    assert event.check_id == "dualrun.cutover.invoices" == check_id("cutover", "invoices")
    assert event.source == "erp" and event.entity == {} and event.runbook == RUNBOOK
    assert event.fingerprint == fingerprint("dualrun.cutover.invoices", "erp", entity={})
    assert event.amount_at_risk is not None and str(event.amount_at_risk) == "147.92"
    assert "1 changed, 1 missing in new, 0 extra in new" in event.summary
    assert event.labels == {
        "kind": "dualrun",
        "comparison": "cutover",
        "entity": "invoices",
        "classification": "defect",
    }
    rows = event.evidence["differences"]
    assert rows[0] == {
        "key": "document=XS-1",
        "difference": "changed",
        "classification": "defect",
        "column": "tax",
        "legacy": "318.25",
        "new": "220.33",
        "delta": "-97.92",
        "money": "97.92",
        "rule": "unexplained",
    }
    assert rows[1]["difference"] == "missing in new" and rows[1]["legacy"] == "document=XS-2; gross=100.00"
    assert event.evidence["classification"] == {"data": 1, "defect": 1}
    assert event.evidence["matched"] == 98 and event.evidence["period"] == "all"


def test_the_fingerprint_is_what_differs_never_when() -> None:
    today = events_for_comparison(
        comparison(entity("gl", samples=[diff()], period="2026-11"), at=day(0)), SETTINGS
    )
    tomorrow = events_for_comparison(
        comparison(entity("gl", samples=[diff(), diff("X")], period="2026-11"), at=day(1)), SETTINGS
    )
    december = events_for_comparison(
        comparison(entity("gl", samples=[diff()], period="2026-12"), at=day(30)), SETTINGS
    )
    other = events_for_comparison(
        comparison(entity("gl", samples=[diff()], period="2026-11"), name="b"), SETTINGS
    )
    assert today[0].fingerprint == tomorrow[0].fingerprint
    assert len({today[0].fingerprint, december[0].fingerprint, other[0].fingerprint}) == 3
    assert december[0].entity == {"period": "2026-12"}
    assert today[0].fingerprint == difference_fingerprint("cutover", "gl", "2026-11", "erp")


def test_severity_rises_with_money_at_materiality_and_drops_for_timing_only() -> None:
    material = events_for_comparison(
        comparison(entity("inv", samples=[diff(money="100.00")]), materiality="100.00"), SETTINGS
    )[0]
    below = events_for_comparison(
        comparison(entity("inv", samples=[diff(money="99.99")]), materiality="100.00"), SETTINGS
    )[0]
    timing = events_for_comparison(
        comparison(entity("ap", samples=[diff(column="doc_date", classification="timing", money="0")])),
        SETTINGS,
    )[0]
    mixed = events_for_comparison(
        comparison(
            entity(
                "ap",
                samples=[
                    diff(column="doc_date", classification="timing", money="0"),
                    diff(column="ctrl_acct", legacy="1133", new="1122", classification="mapping", money="0"),
                ],
            )
        ),
        SETTINGS,
    )[0]
    assert (material.severity, below.severity, timing.severity, mixed.severity) == ("P2", "P3", "P4", "P3")
    assert any("materiality 100" in r for r in material.severity_reasons)
    assert any("timing" in r and "lowered to P4" in r for r in timing.severity_reasons)
    # without a materiality of its own the comparison uses anomaly.materiality (500,000 by default)
    fallback = events_for_comparison(
        comparison(entity("inv", samples=[diff(money="100000.00")]), materiality="0"), SETTINGS
    )[0]
    assert fallback.severity == "P3"


def test_aggregate_groups_beyond_tolerance_are_the_totals_table() -> None:
    groups = (
        AggregateResult(
            {"account": "1122", "period": "2026-06"},
            "debit",
            Decimal("19712036.93"),
            Decimal("19711939.01"),
            Decimal("-97.92"),
            False,
        ),
        AggregateResult(
            {"account": "1002", "period": "2026-06"}, "debit", Decimal("5"), Decimal("5"), Decimal("0"), True
        ),
    )
    (event,) = events_for_comparison(
        comparison(entity("trial_balance", kind="aggregate", samples=[diff("1122")], aggregates=groups)),
        SETTINGS,
    )
    assert event.evidence["totals"] == [
        {
            "group": "account=1122, period=2026-06",
            "measure": "debit",
            "legacy": "19712036.93",
            "new": "19711939.01",
            "delta": "-97.92",
        }
    ]
    assert "groups" in event.summary


def test_resolves_only_open_tickets_and_an_entity_that_cannot_be_compared_is_technical() -> None:
    fp = difference_fingerprint("cutover", "inv", None, "erp")
    open_fps = {("dualrun.cutover.inv", "erp"): {fp}}
    (resolve,) = events_for_comparison(comparison(entity("inv")), SETTINGS, open_fingerprints=open_fps)
    assert (resolve.action, resolve.fingerprint) == ("resolve", fp)
    assert events_for_comparison(comparison(entity("inv")), SETTINGS) == []

    (broken,) = events_for_comparison(
        comparison(entity("inv", error="statement timeout")), SETTINGS, open_fingerprints=open_fps
    )
    assert broken.category == "technical" and broken.runbook == "collector-error"
    assert broken.fingerprint == error_fingerprint("cutover", "inv", None, "erp") != fp
    # the differences' ticket stays open while the entity cannot be compared: no resolve for it
    err_open = {("dualrun.cutover.inv", "erp"): {broken.fingerprint}}
    (back,) = events_for_comparison(comparison(entity("inv")), SETTINGS, open_fingerprints=err_open)
    assert (back.action, back.fingerprint) == ("resolve", broken.fingerprint)


def test_the_runbook_applies_to_every_dual_run_check() -> None:
    runbook = load_runbooks(None)[RUNBOOK]
    assert runbook.applies("dualrun.cutover.invoices") and runbook.applies(
        "dualrun.demo-cutover.trial_balance"
    )
    assert not runbook.applies("gl.unbalanced_entries")
