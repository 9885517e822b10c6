"""Cross-source reconciliation: two read-only queries on two sources, matched on keys, compared on columns.

A ``kind: reconcile`` check names a ``left`` and a ``right`` side (each a source and a SELECT), the
``key_columns`` both sides return and the ``compare`` columns with their tolerances. Every key found on
one side only, and every key whose compared values differ beyond tolerance, is an offending row carrying
both sides' values and the difference. The money at risk of a row is the ``amount_column`` of the side
that has it (a missing row) or the absolute difference of that column (a differing row).

Each side is fetched with the same read-only, time-bounded machinery as any check, capped at
:data:`RECONCILE_ROW_CAP` rows: beyond that the result is an ``error`` asking for an aggregated or windowed
query, never a partial comparison passed off as complete. Push work down: compare daily totals first and
message keys over a window, not whole tables.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from monitor.checks import (
    CheckDefinitionError,
    CheckSpec,
    CompareColumn,
    Discrepancy,
    QuerySide,
    Rows,
    blank_result,
    bound_parameters,
    fetch_rows,
    judged,
    reason,
)
from monitor.results import CheckResult
from monitor.sources import UnsupportedSourceError

RECONCILE_ROW_CAP = 200_000
"""Rows fetched at most per side: a reconciliation must see everything or say it could not."""

Key = tuple[str, ...]


class _SideError(Exception):
    """One side could not be read; the message names the side and the reason."""


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):  # SQLite sums money as binary floats: 61170.87000000001
        value = round(value, 9)
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _key_text(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    number = _decimal(value) if not isinstance(value, str) else None
    if number is not None and number == number.to_integral_value():
        return str(number.to_integral_value())  # 7, 7.0 and Decimal('7') are the same key
    return str(value).strip()


def differs(compare: CompareColumn, left: Any, right: Any) -> Decimal | None:
    """``left - right`` beyond tolerance (0 for unequal text, NULL counts as 0), None when equal."""
    a, b = _decimal(left), _decimal(right)
    if a is not None and b is not None:
        tolerance = max(compare.absolute, compare.relative * max(abs(a), abs(b)))
        return a - b if abs(a - b) > tolerance else None
    if left is None and right is None:
        return None
    if a is None and b is None and left is not None and right is not None:
        return None if str(left).strip() == str(right).strip() else Decimal(0)
    return (a if a is not None else Decimal(0)) - (b if b is not None else Decimal(0))


def _index(spec: CheckSpec, side: str, rows: Rows) -> dict[Key, dict[str, Any]]:
    wanted = (*spec.key_columns, *(c.column for c in spec.compare))
    if spec.amount_column and spec.amount_column not in wanted:
        wanted = (*wanted, spec.amount_column)
    missing = [c for c in wanted if c not in rows.columns]
    if missing:
        raise _SideError(f"{side} query returned no column(s) {missing}; it returned {rows.columns}")
    indexed: dict[Key, dict[str, Any]] = {}
    for record in rows.records():
        key = tuple(_key_text(record[c]) for c in spec.key_columns)
        if key in indexed:
            raise _SideError(
                f"{side} query returned key {dict(zip(spec.key_columns, key, strict=True))} twice"
            )
        indexed[key] = record
    return indexed


def _money(value: Any) -> Decimal:
    number = _decimal(value)
    return abs(number).quantize(Decimal("0.01")) if number is not None else Decimal("0.00")


def compare_sides(
    spec: CheckSpec, left: Mapping[Key, dict[str, Any]], right: Mapping[Key, dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[Decimal]]:
    """Offending rows (keys, ``issue``, both sides' values, differences) and the money at risk of each."""
    rows: list[dict[str, Any]] = []
    amounts: list[Decimal] = []
    for key in sorted(left.keys() | right.keys()):
        mine, theirs = left.get(key), right.get(key)
        issue: Discrepancy
        diffs: dict[str, Decimal] = {}
        amount = spec.amount_column
        if theirs is None:
            issue, at_risk = "missing_right", _money(mine[amount] if mine and amount else 0)
        elif mine is None:
            issue, at_risk = "missing_left", _money(theirs[amount] if amount else 0)
        else:
            for compare in spec.compare:
                diff = differs(compare, mine[compare.column], theirs[compare.column])
                if diff is not None:
                    diffs[compare.column] = diff
            if not diffs:
                continue
            issue = "different"
            at_risk = _money(diffs.get(amount, 0) if amount else 0)
        if issue not in spec.report:
            continue
        row: dict[str, Any] = dict(zip(spec.key_columns, key, strict=True))
        row["issue"] = issue
        for compare in spec.compare:
            row[f"left_{compare.column}"] = mine[compare.column] if mine else None
            row[f"right_{compare.column}"] = theirs[compare.column] if theirs else None
            if compare.column in diffs:
                row[f"diff_{compare.column}"] = diffs[compare.column]
        rows.append(row)
        amounts.append(at_risk)
    return rows, amounts


def _read(
    spec: CheckSpec,
    name: str,
    *,
    side: QuerySide,
    engines: Mapping[str, Engine],
    values: Mapping[str, Any],
    timeout_s: float,
) -> dict[Key, dict[str, Any]]:
    engine = engines.get(side.source)
    label = f"{name} ({side.source})"
    if engine is None:
        raise _SideError(f"{label}: source '{side.source}' is not configured or could not be opened")
    try:
        rows = fetch_rows(engine, spec.id, side.sql, values, timeout_s, cap=RECONCILE_ROW_CAP)
    except (SQLAlchemyError, CheckDefinitionError, UnsupportedSourceError) as exc:
        raise _SideError(f"{label}: {reason(exc)}") from exc
    if rows.truncated:
        raise _SideError(
            f"{label}: more than {RECONCILE_ROW_CAP} rows; aggregate or window the query (e.g. by day)"
        )
    return _index(spec, label, rows)


def run_reconcile(
    spec: CheckSpec,
    engines: Mapping[str, Engine],
    *,
    now: datetime | None = None,
    as_of: date | None = None,
    timeout_s: float = 30.0,
) -> CheckResult:
    """Run a ``kind: reconcile`` check on the engines of its sources, by source name; never raises."""
    now = now or datetime.now(UTC)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    base = blank_result(spec, started)
    if spec.left is None or spec.right is None:
        return replace(base, error=f"check {spec.id} is not a reconciliation: run it with run_check")
    values = bound_parameters(spec, now, as_of)
    try:
        left = _read(spec, "left", side=spec.left, engines=engines, values=values, timeout_s=timeout_s)
        right = _read(spec, "right", side=spec.right, engines=engines, values=values, timeout_s=timeout_s)
    except _SideError as exc:
        finished = started + timedelta(seconds=time.perf_counter() - t0)
        return replace(base, finished_at=finished, error=str(exc)[:500])
    rows, amounts = compare_sides(spec, left, right)
    result = judged(base, spec, rows, amounts if spec.amount_column else None)
    return replace(result, finished_at=started + timedelta(seconds=time.perf_counter() - t0))
