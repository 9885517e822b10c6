"""Shaping ticket data for the templates (no HTML here)."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode

from markupsafe import Markup, escape

from core.i18n import N_, Gettext
from core.localtime import format_time
from core.vocabulary import CLOSED_STATUSES, OPEN_STATUSES
from runbooks.library import (
    OPEN_SECTIONS,
    Runbook,
    RunbookError,
    load_runbooks,
    render_sections,
    translated,
)
from runbooks.models import TicketDiagnostic
from runbooks.steps import render_checklist_section, steps
from tickets.models import Ticket
from tickets.ports import Ports


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
    parts = _runbook_summary(action, detail) or parts
    if detail.get("event_id"):
        parts.append(f"event #{detail['event_id']}")
    return "; ".join(parts)


def _runbook_summary(action: str, detail: dict[str, Any]) -> list[str] | None:
    """The audit line of a runbook action (step ticked, verification, diagnostics); None for others."""
    parts: list[str] = []
    if action in {"step_done", "step_undone"}:
        parts = [f"{detail.get('section', '')}: {detail.get('text', '')}"]
    if action == "verified":
        measured = detail.get("measured_value")
        parts = [
            f"{detail.get('check_id')} {detail.get('status')}",
            f"check result #{detail.get('result_id')}",
            f"at {detail.get('checked_at')}",
        ]
        if measured is not None:
            parts.append(f"measured {cell(measured)}, violations {detail.get('violations')}")
        if detail.get("error"):
            parts.append(f"error: {detail['error']}")
    if action == "diagnosed":
        failed = detail.get("failed") or []
        parts = [f"runbook {detail.get('runbook_id')}: {len(detail.get('ran') or [])} diagnostic(s) ran"]
        if failed:
            parts.append(f"failed: {', '.join(failed)}")
    return parts or None


def check_title_for(ports: Ports, language: str) -> Callable[[str | None], str | None]:
    """A check's title in ``language`` by its id, where its check definition has one (``title_zh``,
    ``title_zh_tw``); None otherwise (the page shows the check id, and the ticket's English title)."""
    titles = ports.check_titles() if ports.check_titles is not None and language != "en" else {}

    def title(check_id: str | None) -> str | None:
        return titles.get(check_id or "", {}).get(language)

    return title


@dataclass(frozen=True, slots=True)
class RunbookPanel:
    """The ticket's runbook as the page shows it: found (with its sections), missing, or unreadable."""

    runbook_id: str
    runbook: Runbook | None = None
    sections: list[tuple[str, Markup, bool]] = field(default_factory=list)
    """(title, HTML, shown expanded) per section."""
    error: str | None = None
    """Why the runbooks could not be loaded (a broken file in the user's directory)."""
    steps_total: int = 0
    steps_done: int = 0
    interactive: bool = False
    """Checklist steps are buttons the viewer may tick (agents and up)."""


STEP_FORM = "runbook-steps"
"""The id of the ticket page's form the checklist buttons submit."""


def runbook_panel(
    runbook_id: str | None,
    extra_dir: Path | None = None,
    *,
    done: Collection[str] | None = None,
    language: str = "en",
) -> RunbookPanel | None:
    """None when the ticket links no runbook; otherwise the runbook (in ``language`` where it has a
    translation, ``runbooks.library.translated``), or why it cannot be shown.

    ``done``: the steps ticked so far, for a viewer who may tick them (checklist items become buttons);
    None renders the checklist read-only."""
    if not runbook_id:
        return None
    try:
        runbook = load_runbooks(extra_dir).get(runbook_id)
        runbook = runbook if runbook is None else translated(runbook, language)
    except RunbookError as exc:
        return RunbookPanel(runbook_id, error=str(exc))
    if runbook is None:
        return RunbookPanel(runbook_id)
    keys = {step.key for step in steps(runbook)}
    if done is None:
        sections = [(name, html, name in OPEN_SECTIONS) for name, html in render_sections(runbook)]
        return RunbookPanel(runbook_id, runbook, sections, steps_total=len(keys))
    sections = [
        (name, render_checklist_section(name, markdown, done, STEP_FORM), name in OPEN_SECTIONS)
        for name, markdown in runbook.sections.items()
    ]
    return RunbookPanel(
        runbook_id,
        runbook,
        sections,
        steps_total=len(keys),
        steps_done=len(keys & set(done)),
        interactive=True,
    )


@dataclass(frozen=True, slots=True)
class DiagnosticView:
    name: str
    title: str
    kind: str
    source: str
    status: str
    error: str | None
    table: Table | None
    truncated: bool
    ran_at: datetime
    params: str


def diagnostics_view(rows: list[TicketDiagnostic]) -> list[DiagnosticView]:
    """Each diagnostic result as a table, or its error (shown, never hidden)."""
    return [
        DiagnosticView(
            name=row.name,
            title=row.title,
            kind=row.kind,
            source=row.source,
            status=row.status,
            error=row.error,
            table=Table(row.name, list(row.columns), [[cell(v) for v in r] for r in row.rows])
            if row.status == "ok"
            else None,
            truncated=row.truncated,
            ran_at=row.ran_at,
            params=", ".join(f"{k}={cell(v)}" for k, v in (row.params or {}).items()),
        )
        for row in rows
    ]


@dataclass(frozen=True, slots=True)
class SlaClock:
    """A ticket's SLA clock as a queue row shows it: a short text and a CSS class."""

    text: str
    css: str
    due_at: datetime | None = None


def _span(seconds: float, gettext: Gettext) -> str:
    minutes = int(abs(seconds) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return gettext("%(days)dd %(hours)dh") % {"days": days, "hours": hours}
    if hours:
        return gettext("%(hours)dh %(minutes)02dm") % {"hours": hours, "minutes": mins}
    return gettext("%(minutes)dm") % {"minutes": mins}


class SlaFacts(Protocol):
    """What :func:`sla_clock` reads of a ticket (a :class:`Ticket`, or the :class:`ClockFacts` cached)."""

    @property
    def is_open(self) -> bool: ...
    @property
    def sla_state(self) -> str | None: ...
    @property
    def acknowledged_at(self) -> datetime | None: ...
    @property
    def sla_response_due_at(self) -> datetime | None: ...
    @property
    def sla_resolution_due_at(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class ClockFacts:
    """A ticket's SLA columns, without the ticket: a cached queue page recomputes its clocks from these on
    every request (the clock moves with time, not only with changes)."""

    is_open: bool
    sla_state: str | None
    acknowledged_at: datetime | None
    sla_response_due_at: datetime | None
    sla_resolution_due_at: datetime | None

    @classmethod
    def of(cls, ticket: Ticket) -> ClockFacts:
        return cls(
            ticket.is_open,
            ticket.sla_state,
            ticket.acknowledged_at,
            ticket.sla_response_due_at,
            ticket.sla_resolution_due_at,
        )


def _same(text: str) -> str:
    return text


def clock_html(clock: SlaClock, gettext: Gettext = _same, zone: tzinfo = UTC) -> str:
    """A queue row's SLA cell content (the ``clock`` span; its tooltip names the due time in ``zone``)."""
    title = ""
    if clock.due_at is not None:
        due = gettext("due %(when)s") % {"when": format_time(clock.due_at, zone)}
        title = f' title="{escape(due)}"'
    return f'<span class="clock {escape(clock.css)}"{title}>{escape(clock.text)}</span>'


def sla_clock(ticket: SlaFacts, now: datetime, gettext: Gettext = _same) -> SlaClock:
    """From the stored SLA columns (no calendar arithmetic per row): due in / overdue by / paused / met;
    the text in ``gettext``'s language."""
    _ = gettext
    if not ticket.is_open:
        met = ticket.sla_state != "breached"
        return SlaClock(_("met") if met else _("breached"), f"sla-{ticket.sla_state}")
    if ticket.sla_state == "paused":
        return SlaClock(_("paused"), "sla-paused")
    responding = ticket.acknowledged_at is None and ticket.sla_response_due_at is not None
    due = ticket.sla_response_due_at if responding else ticket.sla_resolution_due_at
    if due is None:
        return SlaClock("-", "sla-none")
    left = (due - now).total_seconds()
    span = {"span": _span(left, gettext)}
    if left < 0:
        text = _("response overdue %(span)s") if responding else _("fix overdue %(span)s")
        return SlaClock(text % span, "sla-breached", due)
    css = "sla-at_risk" if ticket.sla_state == "at_risk" else "sla-ok"
    text = _("response due in %(span)s") if responding else _("fix due in %(span)s")
    return SlaClock(text % span, css, due)


FOREVER = datetime.max.replace(tzinfo=UTC)


def clock_until(ticket: SlaFacts, now: datetime) -> datetime:
    """Until when :func:`sla_clock` of ``ticket`` reads as it does at ``now`` (the next whole minute of
    its countdown, or of its overdue time; forever for a stopped clock)."""
    if not ticket.is_open or ticket.sla_state == "paused":
        return FOREVER
    responding = ticket.acknowledged_at is None and ticket.sla_response_due_at is not None
    due = ticket.sla_response_due_at if responding else ticket.sla_resolution_due_at
    if due is None:
        return FOREVER
    left = (due - now).total_seconds()
    wait = left % 60 if left >= 0 else 60 - (-left % 60)
    return now + timedelta(seconds=wait)


class LiveClocks:
    """The SLA cells of a cached queue page: recomputed when one of them would read differently, else
    reused (the same text :func:`sla_clock` gives at that moment)."""

    def __init__(self, facts: Sequence[SlaFacts], gettext: Gettext = _same, zone: tzinfo = UTC) -> None:
        self.facts = facts
        self.gettext = gettext
        self.zone = zone
        self._cells: tuple[list[str], datetime, datetime] | None = None

    def cells(self, now: datetime) -> list[str]:
        current = self._cells  # one read: another thread may replace it meanwhile
        if current is not None and current[1] <= now < current[2]:
            return current[0]
        cells = [
            clock_html(sla_clock(facts, now, self.gettext), self.gettext, self.zone) for facts in self.facts
        ]
        until = min((clock_until(facts, now) for facts in self.facts), default=FOREVER)
        self._cells = (cells, now, until)
        return cells


SORTS: tuple[tuple[str, str], ...] = (
    ("priority", N_("priority")),
    ("sla_due", N_("SLA due")),
    ("oldest", N_("oldest first")),
    ("newest", N_("newest first")),
    ("last_seen", N_("last seen")),
)
"""The queue's sort orders (``tickets.queries.SortKey``) with their labels (translated where shown)."""


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
