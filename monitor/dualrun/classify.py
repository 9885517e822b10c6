"""Comparing two canonical rows, and classifying every difference as timing, mapping, data or defect.

Values arrive as canonical text (:mod:`monitor.dualrun.normalise`). Equal text is equal. Numbers within
the column's (or entity's) tolerance are equal; dates and timestamps apart are a difference that the
``timing`` rule explains when they are within ``tolerance.days``.

Classification runs rules in order; the first that answers wins; no answer is a ``defect`` (unexplained).
Shipped rules, in order: ``known`` (the entity's signed-off ``known_differences``), ``mapping`` (a code
the code map does not cover, or a value the map gives to another code), ``timing`` (dates within the
tolerated days), ``data`` (a row missing on one side, or a value present on one side only). Add your own
with :func:`register_rule`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from monitor.dualrun.model import (
    Classification,
    ColumnDiff,
    ColumnSpec,
    DiffKind,
    EntityConfig,
    RowDifference,
    Tolerance,
)
from monitor.dualrun.normalise import NULL_MARK, days_between

Row = Mapping[str, str | None]


@dataclass(frozen=True)
class DiffContext:
    """What a rule sees: the entity, the kind of difference, the differing columns and both rows."""

    entity: EntityConfig
    kind: DiffKind
    columns: tuple[ColumnDiff, ...]
    legacy_row: Row | None
    new_row: Row | None
    legacy_unmapped: Row = field(default_factory=dict)
    """Legacy canonical values of mapped columns *before* the code map."""

    def column(self, name: str) -> ColumnSpec | None:
        for spec in (*self.entity.key, *self.entity.columns):
            if spec.name == name:
                return spec
        return None


Rule = Callable[[DiffContext], tuple[Classification, str] | None]


def _number(value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def clean(value: str | None) -> str | None:
    """Canonical text back to a value: the NULL marker becomes None."""
    return None if value is None or value == NULL_MARK else value


def tolerance_for(entity: EntityConfig, column: ColumnSpec) -> Tolerance:
    return column.tolerance if column.tolerance is not None else entity.tolerance


def compare_value(  # noqa: PLR0911 - one return per outcome reads best
    entity: EntityConfig, column: ColumnSpec, legacy: str | None, new: str | None
) -> ColumnDiff | None:
    """None when equal (or within tolerance), else the difference."""
    legacy, new = clean(legacy), clean(new)
    if legacy == new:
        return None
    if legacy is None or new is None:
        return ColumnDiff(column.name, legacy, new)
    if column.type in {"decimal", "integer"}:
        a, b = _number(legacy), _number(new)
        if a is not None and b is not None:
            if a == b:
                return None
            if (column.money or column.tolerance is not None) and tolerance_for(entity, column).allows(a, b):
                return None
            return ColumnDiff(column.name, legacy, new, b - a)
    if column.type in {"date", "timestamp"}:
        days = days_between(legacy, new)
        return ColumnDiff(column.name, legacy, new, Decimal(days) if days is not None else None)
    return ColumnDiff(column.name, legacy, new)


def compare_rows(
    entity: EntityConfig, columns: Sequence[ColumnSpec], legacy: Row, new: Row
) -> tuple[ColumnDiff, ...]:
    found = []
    for column in columns:
        diff = compare_value(entity, column, legacy.get(column.name), new.get(column.name))
        if diff is not None:
            found.append(diff)
    return tuple(found)


def money_of(
    columns: Sequence[ColumnSpec], kind: DiffKind, diffs: Sequence[ColumnDiff], row: Row | None
) -> Decimal:
    """Changed: the absolute deltas of money columns; missing/extra: the absolute money of the row."""
    money = {c.name for c in columns if c.money}
    total = Decimal("0.00")
    if kind == "changed":
        for diff in diffs:
            if diff.column in money:
                if diff.delta is not None:
                    total += abs(diff.delta)
                else:
                    total += abs(_number(diff.legacy) or Decimal(0)) + abs(_number(diff.new) or Decimal(0))
        return total
    for name in money:
        total += abs(_number(clean((row or {}).get(name))) or Decimal(0))
    return total


# --- rules ---------------------------------------------------------------------------------------------


def known_rule(ctx: DiffContext) -> tuple[Classification, str] | None:
    for known in ctx.entity.known_differences:
        for diff in ctx.columns:
            if known.column not in (None, diff.column):
                continue
            if known.legacy not in (None, diff.legacy) or known.new not in (None, diff.new):
                continue
            if all(
                (known.column in (None, d.column))
                and known.legacy in (None, d.legacy)
                and known.new in (None, d.new)
                for d in ctx.columns
            ):
                return known.classification, "known"
    return None


def mapping_rule(ctx: DiffContext) -> tuple[Classification, str] | None:
    if ctx.kind != "changed":
        return None
    for diff in ctx.columns:
        spec = ctx.column(diff.column)
        if spec is None or not spec.map:
            continue
        original = clean(ctx.legacy_unmapped.get(diff.column, diff.legacy))
        if original is not None and original not in spec.map:
            return "mapping", "mapping.unmapped_code"
        if diff.new is not None and diff.new in spec.map.values():
            return "mapping", "mapping.other_code"
    return None


def timing_rule(ctx: DiffContext) -> tuple[Classification, str] | None:
    if ctx.kind != "changed" or not ctx.columns:
        return None
    for diff in ctx.columns:
        spec = ctx.column(diff.column)
        if spec is None or spec.type not in {"date", "timestamp"} or diff.delta is None:
            return None
        if abs(diff.delta) > tolerance_for(ctx.entity, spec).days:
            return None
    return "timing", "timing.days"


def data_rule(ctx: DiffContext) -> tuple[Classification, str] | None:
    if ctx.kind != "changed":
        return "data", f"data.{ctx.kind}"
    if ctx.columns and all(d.legacy is None or d.new is None for d in ctx.columns):
        return "data", "data.null"
    return None


RULES: list[Rule] = [known_rule, mapping_rule, timing_rule, data_rule]
"""The rules, in order. Extend with :func:`register_rule`."""


def register_rule(rule: Rule, *, first: bool = True) -> None:
    """Add a classification rule (first: before the shipped ones, so it can override them)."""
    if first:
        RULES.insert(0, rule)
    else:
        RULES.append(rule)


def classify(ctx: DiffContext, rules: Sequence[Rule] | None = None) -> tuple[Classification, str]:
    for rule in RULES if rules is None else rules:
        answer = rule(ctx)
        if answer is not None:
            return answer
    return "defect", "unexplained"


def difference(  # noqa: PLR0917 - a difference is made of exactly these parts
    entity: EntityConfig,
    name: str,
    key: dict[str, str],
    kind: DiffKind,
    columns: Sequence[ColumnSpec],
    diffs: tuple[ColumnDiff, ...],
    legacy_row: Row | None,
    new_row: Row | None,
    legacy_unmapped: Row | None = None,
) -> RowDifference:
    """A classified difference with its money affected."""
    ctx = DiffContext(entity, kind, diffs, legacy_row, new_row, legacy_unmapped or {})
    classification, rule = classify(ctx)
    present = legacy_row if kind == "missing_in_new" else new_row
    return RowDifference(
        entity=name,
        key=key,
        kind=kind,
        columns=diffs,
        classification=classification,
        money_affected=money_of(columns, kind, diffs, present),
        rule=rule,
        legacy_row={k: clean(v) for k, v in legacy_row.items()} if legacy_row is not None else None,
        new_row={k: clean(v) for k, v in new_row.items()} if new_row is not None else None,
    )
