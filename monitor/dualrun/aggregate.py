"""Aggregate reconciliation: totals pushed down into each database per group, compared with tolerances.

Trial balance per account and period, counts and amounts per day and document type, open AR/AP per
party, inventory quantity and value per product: each is an entity with ``group_by`` columns (normalised
and code-mapped like any column, so legacy accounts 1122 and 1123 mapped to 112201 add up on one line)
and ``measures`` (an SQL aggregate per side). Each database returns one row per group; only the groups
travel. A group is ``changed`` when any measure differs beyond tolerance, ``missing_in_new`` /
``extra_in_new`` when one side has no such group and the other's totals are not all zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from typing import Any

from monitor.dualrun.classify import difference
from monitor.dualrun.keyed import EntityDiff, Progress, Tally
from monitor.dualrun.model import (
    AggregateResult,
    ColumnDiff,
    ColumnSpec,
    DiffKind,
    EntityConfig,
    EntityResult,
)
from monitor.dualrun.sql import SourceQuery
from monitor.readonly import render_expression

Totals = dict[tuple[str, ...], tuple[Decimal | None, ...]]


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):  # SQLite sums NUMERIC as binary floats: 61170.87000000001
        value = round(value, 9)
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number.normalize() if number == number.to_integral_value() else number


class AggregateDiff(EntityDiff):
    def __init__(
        self,
        entity: EntityConfig,
        legacy: SourceQuery,
        new: SourceQuery,
        pool: ThreadPoolExecutor,
        progress: Progress | None = None,
    ) -> None:
        super().__init__(entity, legacy, new, pool, progress)
        # Measures compared as money columns, so classification and money affected treat them alike.
        self.measure_columns = tuple(
            ColumnSpec(name=m.name, type="decimal", money=m.money, tolerance=m.tolerance)
            for m in entity.measures
        )

    def _totals(self, q: SourceQuery) -> Totals:
        groups = [q.canon(c) for c in self.entity.group_by]
        measures = [render_expression(m.side(q.source.role), q.dialect) for m in self.entity.measures]
        sql = (
            f"SELECT {', '.join([*groups, *measures])} {q.from_clause()} {q.where()}"
            f" GROUP BY {', '.join(groups)}"
        )
        width = len(groups)
        totals: Totals = {}
        for row in q.fetch(sql):
            key = tuple(str(v) for v in row[:width])
            values = tuple(_decimal(v) for v in row[width:])
            previous = totals.get(key)  # two raw groups may collapse into one canonical group
            if previous is not None:
                values = tuple(
                    None if a is None and b is None else (a or Decimal(0)) + (b or Decimal(0))
                    for a, b in zip(previous, values, strict=True)
                )
            totals[key] = values
        return totals

    def run(self, period: str | None) -> EntityResult:
        self.progress("totals")
        futures = [self.pool.submit(self._totals, q) for q in self.sides]
        legacy, new = (f.result() for f in futures)
        tally = Tally(self.entity.name, self.entity.sample_limit)
        tally.queries = 2
        tally.rows_legacy, tally.rows_new = len(legacy), len(new)
        beyond: list[AggregateResult] = []
        within: list[AggregateResult] = []
        names = [c.name for c in self.entity.group_by]
        limit = self.entity.sample_limit
        for key in sorted(legacy.keys() | new.keys()):
            a, b = legacy.get(key), new.get(key)
            group = dict(zip(names, key, strict=True))
            outcomes = self._compare(group, a, b)
            bad = [o for o in outcomes if not o.within_tolerance]
            target = beyond if bad else within
            if len(target) < limit:
                target.extend(outcomes[: max(0, limit - len(target))])
            if not bad:
                tally.matched += 1
                continue
            kind: DiffKind = "changed"
            if b is None:
                kind = "missing_in_new"
            elif a is None:
                kind = "extra_in_new"
            diffs = tuple(ColumnDiff(o.measure, _text(o.legacy), _text(o.new), o.delta) for o in bad)
            row_a = {
                m: _text(v) for m, v in zip((c.name for c in self.measure_columns), a or (), strict=False)
            }
            row_b = {
                m: _text(v) for m, v in zip((c.name for c in self.measure_columns), b or (), strict=False)
            }
            tally.add(
                difference(
                    self.entity,
                    self.entity.name,
                    group,
                    kind,
                    self.measure_columns,
                    diffs,
                    {**group, **row_a} if a is not None else None,
                    {**group, **row_b} if b is not None else None,
                )
            )
        result = tally.result("aggregate", period, 0.0)
        return replace(result, aggregates=tuple([*beyond, *within][: max(limit, len(beyond))]))

    def _compare(
        self, group: dict[str, str], a: Sequence[Decimal | None] | None, b: Sequence[Decimal | None] | None
    ) -> list[AggregateResult]:
        found = []
        for n, measure in enumerate(self.entity.measures):
            legacy = a[n] if a is not None else None
            new = b[n] if b is not None else None
            x, y = legacy or Decimal(0), new or Decimal(0)
            tolerance = measure.tolerance or self.entity.tolerance
            found.append(AggregateResult(group, measure.name, legacy, new, y - x, tolerance.allows(x, y)))
        return found


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)
