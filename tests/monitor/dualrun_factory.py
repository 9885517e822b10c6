"""Dual-run results built by hand (the model.py contract), for the store, event, readiness and API tests, and
a store holding two days of a cutover comparison."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from core.session import make_engine, session_factory, session_scope
from monitor.dualrun.model import (
    AggregateResult,
    ColumnDiff,
    ComparisonResult,
    EntityKind,
    EntityResult,
    RowDifference,
)
from monitor.dualrun.store import store_result

T0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)


def diff(
    key: str = "INV-1",
    *,
    kind: str = "changed",
    column: str = "gross",
    legacy: str | None = "100.00",
    new: str | None = "90.00",
    classification: str = "defect",
    money: str = "10.00",
    entity: str = "invoices",
) -> RowDifference:
    columns: tuple[ColumnDiff, ...] = ()
    if kind == "changed":
        numeric = column in {"gross", "net", "tax", "debit", "credit", "amount"}
        delta = Decimal(new) - Decimal(legacy) if numeric and legacy and new else None
        columns = (ColumnDiff(column, legacy, new, delta),)
    return RowDifference(
        entity=entity,
        key={"document": key},
        kind=kind,  # type: ignore[arg-type]
        columns=columns,
        classification=classification,  # type: ignore[arg-type]
        money_affected=Decimal(money),
        rule="unexplained" if classification == "defect" else f"{classification}.rule",
        legacy_row={"document": key, column: legacy} if kind == "missing_in_new" else None,
        new_row={"document": key, column: new} if kind == "extra_in_new" else None,
    )


def entity(
    name: str = "invoices",
    *,
    matched: int = 98,
    samples: Sequence[RowDifference] = (),
    period: str | None = None,
    kind: EntityKind = "rows",
    error: str | None = None,
    aggregates: Sequence[AggregateResult] = (),
) -> EntityResult:
    """An entity result whose counts, classifications and money add up from ``samples``."""
    by_class: dict[str, int] = {}
    money_by_class: dict[str, Decimal] = {}
    for s in samples:
        by_class[s.classification] = by_class.get(s.classification, 0) + 1
        money_by_class[s.classification] = money_by_class.get(s.classification, Decimal(0)) + s.money_affected
    return EntityResult(
        entity=name,
        kind=kind,
        period=period,
        matched=matched,
        changed=sum(1 for s in samples if s.kind == "changed"),
        missing_in_new=sum(1 for s in samples if s.kind == "missing_in_new"),
        extra_in_new=sum(1 for s in samples if s.kind == "extra_in_new"),
        money_affected=sum((s.money_affected for s in samples), Decimal("0.00")),
        by_classification=by_class,
        money_by_classification=money_by_class,
        samples=tuple(samples),
        aggregates=tuple(aggregates),
        rows_legacy=matched + len(samples),
        rows_new=matched + len(samples),
        error=error,
    )


def comparison(
    *entities: EntityResult,
    name: str = "cutover",
    at: datetime = T0,
    materiality: str = "100.00",
    as_of: date | None = None,
) -> ComparisonResult:
    return ComparisonResult(
        comparison=name,
        as_of=as_of,
        started_at=at,
        finished_at=at + timedelta(seconds=3),
        entities=tuple(entities),
        legacy_source="legacy",
        new_source="erp",
        materiality=Decimal(materiality),
    )


def day(n: int) -> datetime:
    """Run time on the n-th day after T0."""
    return T0 + timedelta(days=n)


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
"""Exit criteria of the cutover comparison: one of each kind."""


def store_day(
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


def store_two_days(store_url: str) -> str:
    """Day 0 (the trial balance differs) and day 1 (open AR differs by 250.00) stored; the store's URL."""
    engine = make_engine(store_url)
    factory = session_factory(engine)
    with session_scope(factory) as session:
        store_day(session, 0, tb=False)
        store_day(session, 1, ar_money="250.00")
    engine.dispose()
    return store_url
