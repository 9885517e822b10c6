"""Settings the runbook engine owns. ``hypercare/config.py`` composes them into the one ``Settings``."""

from __future__ import annotations

from typing import Protocol

from pydantic import Field

from core.settings import StrictModel
from monitor.settings import MonitorConfig
from tickets.settings import TicketsConfig


class RunbookSettings(StrictModel):
    """Runbooks on tickets (runbooks/diagnostics.py, runbooks/verification.py)."""

    diagnostics: bool = True
    """Run the linked runbook's read-only diagnostics once when a ticket opens."""
    diagnostic_timeout_s: float = Field(10.0, gt=0, le=300)
    """Statement timeout of one diagnostic query (capped by the source's statement_timeout_s), and the
    timeout of one diagnostic HTTP request."""
    diagnostic_row_cap: int = Field(50, ge=1, le=1000)
    """Rows kept per diagnostic."""
    verify_resolves: bool = True
    """A passing `Verify` resolves the ticket (when its runbook's verification says resolve_on_pass)."""


class RunbooksConfig(MonitorConfig, TicketsConfig, Protocol):
    """The slice of Hypercare's settings the runbook engine reads: its own, plus the monitored sources and
    probes its diagnostics and verification use, and the ticket settings of the tickets it resolves."""

    @property
    def runbooks(self) -> RunbookSettings: ...
