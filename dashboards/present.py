"""Rows as the pages show them: JSON-safe records for tables and charts, and the CSV of a table."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from copy import deepcopy
from dataclasses import asdict, fields, is_dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from core.csvsafe import cell

# --- presenting: records and CSV ------------------------------------------------------------------------


def _nested(value: Any) -> Any:
    """A field's value as :func:`dataclasses.asdict` would give it (nested rows and containers copied)."""
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, list | tuple | dict):
        return deepcopy(value)
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def records(items: Iterable[Any]) -> list[dict[str, Any]]:
    """Dataclass rows (or mappings) as JSON-safe dicts, for tables, charts and CSV."""
    out: list[dict[str, Any]] = []
    names: tuple[str, ...] | None = None
    for item in items:
        if is_dataclass(item) and not isinstance(item, type):
            # field by field (asdict's deep copy costs ~50 us a row: seconds for a long series); only a
            # nested value (a dataclass, a list or a mapping) is copied deeply, as asdict would
            names = names or tuple(f.name for f in fields(item))
            out.append({k: _plain(_nested(getattr(item, k))) for k in names})
        else:
            out.append({k: _plain(v) for k, v in dict(item).items()})
    return out


def to_csv(items: Iterable[Any], columns: Sequence[str] | None = None) -> bytes:
    """What a table shows, as UTF-8 CSV (with a BOM, so spreadsheet programs read non-ASCII text); text that
    starts like a formula is written as text (:mod:`core.csvsafe`)."""
    rows = records(items)
    if columns is None:
        columns = list(rows[0]) if rows else []
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows({k: cell(v) for k, v in r.items()} for r in rows)
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def columns_of(cls: type[Any]) -> list[str]:
    return [f.name for f in fields(cls)]
