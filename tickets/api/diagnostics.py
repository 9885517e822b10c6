"""A ticket's runbook diagnostics over HTTP, and the step that runs them for tickets the API opens.

``GET /api/v1/tickets/{ticket_id}/diagnostics`` gives the results kept with the ticket
(``ticket_diagnostic``): each diagnostic's table, or why it failed or was skipped (shown, never hidden).

:class:`Diagnoser` is how the intake routes (events, Alertmanager's webhook, reports, the report form) give
their tickets the same runbook link and diagnostics as the pipeline's: after the request's commit they hand
it the tickets they opened or reopened, and the app's diagnostics port (:class:`tickets.ports.RunDiagnostics`,
the runbook engine in a full server) runs as a background task once the response is sent, so no client
waits on a slow ERP.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field

from runbooks.models import TicketDiagnostic, diagnostics_of
from tickets.api.deps import CurrentUser, SessionDep, TicketId
from tickets.api.schemas import Problem
from tickets.api.state import app_state
from tickets.models import Ticket

RUNBOOK_OUTCOMES = frozenset({"opened", "reopened"})
"""Intake outcomes whose ticket gets its runbook (re)linked and its diagnostics run, as in the pipeline."""
MAX_ROWS = 200
"""Rows returned per diagnostic (the store keeps at most ``runbooks.diagnostic_row_cap``, 1000 at most)."""

router = APIRouter(
    prefix="/api/v1/tickets",
    tags=["tickets"],
    responses={401: {"model": Problem, "description": "Missing, invalid or revoked bearer token."}},
)
DiagnosticStatus = Literal["ok", "failed", "skipped"]
_STATUS: dict[str, DiagnosticStatus] = {"ok": "ok", "error": "failed", "skipped": "skipped"}


class DiagnosticPublic(BaseModel):
    name: str = Field(description="The diagnostic's name in the runbook's front matter.")
    title: str
    runbook_id: str
    kind: Literal["sql", "http"]
    source: str = Field(description="The source the query ran on, or the server the request went to.")
    status: DiagnosticStatus = Field(
        description="ok: it ran (the table may be empty); failed: it ran and failed (see error); "
        "skipped: it could not run here (see error: a parameter the event lacks, an unconfigured source, "
        "another database engine)."
    )
    error: str | None = Field(description="Why it failed or was skipped; null when ok.")
    params: dict[str, Any] = Field(description="The parameters taken from the ticket's event.")
    columns: list[str]
    rows: list[list[Any]] = Field(description=f"At most {MAX_ROWS} rows, each in the order of columns.")
    truncated: bool = Field(description="More rows existed than are given.")
    fingerprint: str = Field(description="The ticket's fingerprint it ran for (once per fingerprint).")
    duration_s: float
    ran_at: datetime


class DiagnosticList(BaseModel):
    ticket_id: int
    runbook_id: str | None = Field(description="The runbook linked to the ticket now.")
    items: list[DiagnosticPublic] = Field(description="Newest run first, in the runbook's order.")


def _public(row: TicketDiagnostic) -> DiagnosticPublic:
    rows = list(row.rows or [])
    return DiagnosticPublic(
        name=row.name,
        title=row.title,
        runbook_id=row.runbook_id,
        kind="http" if row.kind == "http" else "sql",
        source=row.source,
        status=_STATUS.get(row.status, "failed"),
        error=row.error,
        params=dict(row.params or {}),
        columns=list(row.columns or []),
        rows=rows[:MAX_ROWS],
        truncated=bool(row.truncated) or len(rows) > MAX_ROWS,
        fingerprint=row.fingerprint,
        duration_s=row.duration_s,
        ran_at=row.ran_at,
    )


@router.get(
    "/{ticket_id}/diagnostics",
    response_model=DiagnosticList,
    responses={
        403: {"model": Problem, "description": "The user's role may not read tickets (reporters)."},
        404: {"model": Problem, "description": "No such ticket."},
    },
)
def list_diagnostics(ticket_id: TicketId, user: CurrentUser, session: SessionDep) -> DiagnosticList:
    """The results of the ticket's runbook diagnostics, run once when it opened (or its fingerprint
    changed): a table each, or why it failed or was skipped. Empty while they still run, or when the
    runbook has none."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"ticket {ticket_id} not found")
    return DiagnosticList(
        ticket_id=ticket.id,
        runbook_id=ticket.runbook_id,
        items=[_public(row) for row in diagnostics_of(session, ticket_id)],
    )


# --- after intake ------------------------------------------------------------------------------------


class Diagnoser:
    """Collects the tickets a request opened or reopened; their runbooks are linked and diagnostics run in
    a background task after the response (call :meth:`add` only after the request's commit)."""

    def __init__(self, request: Request, tasks: BackgroundTasks) -> None:
        self._state = app_state(request)
        self._tasks = tasks
        self._ids: list[int] = []

    def add(self, outcome: str, ticket_id: int | None) -> None:
        if ticket_id is not None and outcome in RUNBOOK_OUTCOMES:
            self._ids.append(ticket_id)

    def add_all(self, results: Iterable[tuple[str, int | None]]) -> None:
        for outcome, ticket_id in results:
            self.add(outcome, ticket_id)

    def schedule(self) -> None:
        """Queue the diagnostics of the tickets added so far (once; nothing when there are none)."""
        ids = sorted(set(self._ids))
        self._ids.clear()
        run = self._state.ports.diagnostics
        if ids and run is not None:
            self._tasks.add_task(run, self._state.session_factory, ids)


def get_diagnoser(request: Request, background_tasks: BackgroundTasks) -> Diagnoser:
    return Diagnoser(request, background_tasks)


DiagnoserDep = Annotated[Diagnoser, Depends(get_diagnoser)]
