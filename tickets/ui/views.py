"""Shaping ticket data for the templates (no HTML here)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markupsafe import Markup

from tickets.runbooks import OPEN_SECTIONS, Runbook, RunbookError, load_runbooks, render_sections


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
    for key, raw in (evidence or {}).items():
        one_row = isinstance(raw, dict) and raw and not any(isinstance(v, dict | list) for v in raw.values())
        value = [raw] if one_row else raw  # one offending row reads best as a one-row table
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


@dataclass(frozen=True, slots=True)
class RunbookPanel:
    """The ticket's runbook as the page shows it: found (with its sections), missing, or unreadable."""

    runbook_id: str
    runbook: Runbook | None = None
    sections: list[tuple[str, Markup, bool]] = field(default_factory=list)
    """(title, HTML, shown expanded) per section."""
    error: str | None = None
    """Why the runbooks could not be loaded (a broken file in the user's directory)."""


def runbook_panel(runbook_id: str | None, extra_dir: Path | None = None) -> RunbookPanel | None:
    """None when the ticket links no runbook; otherwise the runbook, or why it cannot be shown."""
    if not runbook_id:
        return None
    try:
        runbook = load_runbooks(extra_dir).get(runbook_id)
    except RunbookError as exc:
        return RunbookPanel(runbook_id, error=str(exc))
    if runbook is None:
        return RunbookPanel(runbook_id)
    sections = [(name, html, name in OPEN_SECTIONS) for name, html in render_sections(runbook)]
    return RunbookPanel(runbook_id, runbook, sections)
