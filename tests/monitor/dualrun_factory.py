"""Dual-run results built by hand (the model.py contract), for the store, event and readiness tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from monitor.dualrun.model import (
    AggregateResult,
    ColumnDiff,
    ComparisonResult,
    EntityKind,
    EntityResult,
    RowDifference,
)

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
