"""Dual-run history in the store: runs and entity results written and read back exactly, samples bounded,
statuses and unexplained variance derived — on SQLite and PostgreSQL, schema from the migrations."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.dualrun.model import AggregateResult, RowDifference
from monitor.dualrun.store import (
    SAMPLE_BYTES,
    SAMPLE_LIMIT,
    DualRunEntityResult,
    DualRunRun,
    history,
    list_runs,
    load_result,
    store_failure,
    store_result,
)
from tests.monitor.dualrun_factory import T0, comparison, day, diff, entity


def test_a_run_and_its_entities_are_stored_with_exact_money_and_derived_status(session: Session) -> None:
    result = comparison(
        entity(
            "customers", matched=804, samples=[diff("C00035", kind="missing_in_new", classification="data")]
        ),
        entity("suppliers", matched=80),
        entity(
            "invoices",
            matched=9741,
            samples=[
                diff("XS-1", money="1234567.89"),
                diff(
                    "XS-2", column="ctrl_acct", legacy="1133", new="1122", classification="mapping", money="0"
                ),
                diff(
                    "XS-3", column="doc_date", legacy="2026-07-24", new="2026-07-23", classification="timing"
                ),
            ],
        ),
        entity("gl", kind="aggregate", error="no such table: gl_period_balance", matched=0),
        as_of=date(2026, 11, 1),
    )
    run = store_result(session, result, trigger="test")
    session.commit()
    session.expunge_all()

    stored = session.get(DualRunRun, run.id)
    assert stored is not None
    assert (stored.comparison, stored.as_of, stored.status, stored.trigger) == (
        "cutover",
        date(2026, 11, 1),
        "error",  # an entity could not be compared: the run is incomplete
        "test",
    )
    assert stored.started_at == T0 and stored.materiality == Decimal("100.00")
    assert stored.money_affected == Decimal("1234587.89")
    rows = {
        r.entity: r
        for r in session.scalars(select(DualRunEntityResult).where(DualRunEntityResult.run_id == run.id))
    }
    assert {name: r.status for name, r in rows.items()} == {
        "customers": "differ",
        "suppliers": "match",
        "invoices": "differ",
        "gl": "error",
    }
    invoices = rows["invoices"]
    assert (invoices.matched, invoices.changed, invoices.missing_in_new, invoices.extra_in_new) == (
        9741,
        3,
        0,
        0,
    )
    assert invoices.money_affected == Decimal("1234577.89")  # the timing row carries 10.00 too
    assert invoices.match_rate == 9741 / 9744
    # timing and mapping explain a difference; the defect does not
    assert (invoices.unexplained, invoices.unexplained_money) == (1, Decimal("1234567.89"))
    assert invoices.by_classification == {"defect": 1, "mapping": 1, "timing": 1}
    assert invoices.money_by_classification["defect"] == "1234567.89"
    assert [s["key"] for s in invoices.samples] == [
        {"document": "XS-1"},
        {"document": "XS-2"},
        {"document": "XS-3"},
    ]
    assert rows["customers"].unexplained == 1  # data quality is unexplained variance too
    assert rows["suppliers"].match_rate == 1.0
    assert rows["gl"].error == "no such table: gl_period_balance"


def test_a_stored_run_reads_back_as_the_same_result(session: Session) -> None:
    aggregates = (
        AggregateResult(
            {"account": "1122", "period": "2026-06"},
            "debit",
            Decimal("10.00"),
            Decimal("7.50"),
            Decimal("-2.50"),
            False,
        ),
    )
    invoices = replace(
        entity("invoices", samples=[diff("XS-1"), diff("XS-2", kind="extra_in_new", classification="data")]),
        normalised={"customer.trim": {"legacy": 3, "new": 0}, "posted_at.timezone": {"legacy": 98, "new": 0}},
        plan="key-hash buckets (slower: ...): the leading key number is not an integer column",
    )  # the normalisation counts and the plan are kept with the run
    original = comparison(
        invoices,
        entity("tb", kind="aggregate", samples=[diff("1122", entity="tb")], aggregates=aggregates),
    )
    run = store_result(session, original)
    session.flush()
    again = load_result(session, run.id)
    assert again is not None
    assert again.to_dict() == {
        **original.to_dict(),
        "entities": [{**e, "duration_s": 0.0, "queries": 0} for e in original.to_dict()["entities"]],
    }
    assert load_result(session, run.id + 1000) is None


def test_samples_are_bounded_in_count_and_size_while_counts_stay_complete(session: Session) -> None:
    wide = "x" * 5000
    many = [
        diff(f"INV-{i:05d}", column="note", legacy=wide, new=wide + "y", money="1.00") for i in range(500)
    ]
    objects = [
        RowDifference(
            "invoices", {"document": "OBJ"}, "changed", lines=tuple(diff(f"L{i}") for i in range(40))
        )
    ]
    run = store_result(session, comparison(entity("invoices", matched=0, samples=[*objects, *many])))
    session.flush()
    (row,) = session.scalars(select(DualRunEntityResult).where(DualRunEntityResult.run_id == run.id))
    assert row.changed == 501 and row.money_affected == Decimal("500.00")
    assert 1 <= len(row.samples) <= SAMPLE_LIMIT
    assert len(json.dumps([row.samples, row.aggregates])) <= SAMPLE_BYTES
    first = row.samples[0]
    assert len(first["lines"]) == 10 and first["lines_omitted"] == 30


def test_a_comparison_that_could_not_run_is_an_error_run_without_entities(session: Session) -> None:
    run = store_failure(
        session, "cutover", "source 'legacy' is unreachable", started_at=T0, finished_at=day(0)
    )
    session.flush()
    runs, by_run, total = list_runs(session, comparison="cutover")
    assert total == 1 and runs[0].id == run.id
    assert (runs[0].status, runs[0].error, by_run[run.id]) == ("error", "source 'legacy' is unreachable", [])


def test_history_is_oldest_first_and_list_runs_newest_first_with_paging(session: Session) -> None:
    for n in range(4):
        samples = [diff()] if n % 2 else []
        store_result(session, comparison(entity("invoices", samples=samples), at=day(n)))
    store_result(session, comparison(entity("customers"), name="other", at=day(9)))
    session.flush()
    points = history(session, "cutover")
    assert [p.started_at for p in points] == [day(n) for n in range(4)]
    assert [p.status for p in points] == ["match", "differ", "match", "differ"]
    assert [p.differences for p in points] == [0, 1, 0, 1]
    runs, by_run, total = list_runs(session, comparison="cutover", limit=2, offset=1)
    assert total == 4
    assert [r.started_at for r in runs] == [day(2), day(1)]
    assert all(len(by_run[r.id]) == 1 for r in runs)
    assert session.scalar(select(func.count()).select_from(DualRunRun)) == 5
