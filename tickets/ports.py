"""What the ticket queue asks of the outside world, as protocols it defines and the wiring implements.

The queue knows tickets and events, not collectors: running a ticket's runbook diagnostics against the ERP
and re-running the check behind a ticket (``Verify``) are done by the runbook engine (``runbooks/``) with
the monitor's checks and probes. ``hypercare.app.ports`` plugs them in; an app built without them serves
everything else and says so where they would be used. Notification delivery is the third such port
(:class:`tickets.notify.Notifier`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from tickets.errors import TicketError


class CannotVerify(TicketError):
    """The ticket has no check to re-run (a report, an alert, a source outage) or it is unknown."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What re-running a ticket's check found, and whether the ticket was resolved on it."""

    check_id: str
    status: str
    """pass | fail | warn | error: for this ticket."""
    result_id: int | None
    measured_value: float | None
    violations: int
    error: str | None
    checked_at: datetime
    resolved: bool


class RunDiagnostics(Protocol):
    """Link the runbooks of these tickets and run their read-only diagnostics, after the intake committed.
    Runs in the background: it logs its failures and never raises."""

    def __call__(self, factory: sessionmaker[Session], ticket_ids: list[int]) -> None: ...


class VerifyTicket(Protocol):
    """Re-run the check behind a ticket, record the proof, resolve on a pass where configured. Raises
    :class:`CannotVerify` when there is nothing to re-run."""

    def __call__(self, factory: sessionmaker[Session], ticket_id: int, actor: str) -> Verdict: ...


class CheckTitles(Protocol):
    """The configured checks' titles in the languages they are written in: check id -> {language: title}
    (``zh_CN``, ``zh_TW``; English is the ticket's own text). Answers from memory: called per page."""

    def __call__(self) -> Mapping[str, Mapping[str, str]]: ...


@dataclass(frozen=True, slots=True)
class Ports:
    """The outside world the app was given; ``None`` where it was not (tests, a queue-only server)."""

    diagnostics: RunDiagnostics | None = None
    verify: VerifyTicket | None = None
    check_titles: CheckTitles | None = None


__all__: Sequence[str] = ("CannotVerify", "CheckTitles", "Ports", "RunDiagnostics", "Verdict", "VerifyTicket")
