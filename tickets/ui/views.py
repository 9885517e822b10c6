"""Shaping ticket data for the templates (no HTML here)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: list[str]
    rows: list[list[str]]


@dataclass(frozen=True, slots=True)
class EvidenceView:
    """Evidence as the UI shows it: scalar facts as key/value pairs, lists of rows as tables."""

    facts: list[tuple[str, str]] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return str(value)


def evidence_view(evidence: dict[str, Any] | None) -> EvidenceView:
    view = EvidenceView()
    for key, value in (evidence or {}).items():
        if isinstance(value, list) and value and all(isinstance(row, dict) for row in value):
            columns: list[str] = []
            for row in value:
                columns.extend(str(k) for k in row if str(k) not in columns)
            rows = [[cell(row.get(col)) for col in columns] for row in value]
            view.tables.append(Table(name=str(key), columns=columns, rows=rows))
        else:
            view.facts.append((str(key), cell(value)))
    return view


def audit_summary(action: str, detail: dict[str, Any]) -> str:
    """One line for an audit entry: what changed, and why when given."""
    parts: list[str] = []
    before, after = detail.get("before") or {}, detail.get("after") or {}
    for name in sorted(set(before) | set(after)):
        if before.get(name) != after.get(name):
            parts.append(f"{name}: {cell(before.get(name)) or '-'} → {cell(after.get(name)) or '-'}")
    if action == "opened" and after:
        parts = [f"{name}: {cell(value)}" for name, value in after.items() if value is not None]
    for extra in ("reason", "text"):
        if detail.get(extra):
            parts.append(f"{extra}: {detail[extra]}" if extra == "reason" else str(detail[extra]))
    if detail.get("event_id"):
        parts.append(f"event #{detail['event_id']}")
    return "; ".join(parts)
