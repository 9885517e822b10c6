"""Shaping ticket data for the templates (no HTML here)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup

from tickets.models import CLOSED_STATUSES, OPEN_STATUSES, Ticket
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
    if action == "assigned":
        parts = [f"assignee: {detail.get('assignee') or 'nobody'}"]
    if action == "linked" and detail.get("other_id"):
        parts.append(f"#{detail['other_id']} ({str(detail.get('kind', 'relates')).replace('_', ' ')})")
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


@dataclass(frozen=True, slots=True)
class SlaClock:
    """A ticket's SLA clock as a queue row shows it: a short text and a CSS class."""

    text: str
    css: str
    due_at: datetime | None = None


def _span(seconds: float) -> str:
    minutes = int(abs(seconds) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {mins:02d}m"
    return f"{mins}m"


def sla_clock(ticket: Ticket, now: datetime) -> SlaClock:
    """From the stored SLA columns (no calendar arithmetic per row): due in / overdue by / paused / met."""
    if not ticket.is_open:
        return SlaClock("met" if ticket.sla_state != "breached" else "breached", f"sla-{ticket.sla_state}")
    if ticket.sla_state == "paused":
        return SlaClock("paused", "sla-paused")
    responding = ticket.acknowledged_at is None and ticket.sla_response_due_at is not None
    due = ticket.sla_response_due_at if responding else ticket.sla_resolution_due_at
    if due is None:
        return SlaClock("-", "sla-none")
    what = "response" if responding else "fix"
    left = (due - now).total_seconds()
    if left < 0:
        return SlaClock(f"{what} overdue {_span(left)}", "sla-breached", due)
    css = "sla-at_risk" if ticket.sla_state == "at_risk" else "sla-ok"
    return SlaClock(f"{what} due in {_span(left)}", css, due)


SORTS: tuple[tuple[str, str], ...] = (
    ("priority", "priority"),
    ("sla_due", "SLA due"),
    ("oldest", "oldest first"),
    ("newest", "newest first"),
    ("last_seen", "last seen"),
)
"""The queue's sort orders (``tickets.queries.SortKey``) with their labels."""


def queue_url(params: dict[str, str], **change: Any) -> str:
    """The queue's URL with the current filters, some changed; empty filters are left out."""
    merged = {**params, **{key: str(value) for key, value in change.items()}}
    kept = {key: value for key, value in merged.items() if value not in ("", "0") or key == "status"}
    return "/tickets?" + urlencode(kept)


def status_counts(by_status: Mapping[str, int]) -> dict[str, int]:
    """Counts for the status menu: each status, the open and closed groups, and all."""
    counts = dict(by_status)
    counts["open"] = sum(by_status.get(name, 0) for name in OPEN_STATUSES)
    counts["closed"] = sum(by_status.get(name, 0) for name in CLOSED_STATUSES)
    counts["all"] = sum(by_status.values())
    return counts
