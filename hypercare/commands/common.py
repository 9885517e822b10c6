"""What every command module shares: the consoles, the lazily loaded settings and the `--json` output."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from hypercare.config import Settings, load_settings
from hypercare.logging import configure_logging
from tickets.audit_chain import use_keyring
from tickets.audit_keys import keyring_for

UNBOUNDED_WIDTH = 100_000
"""The width of stdout when it is not a terminal: wide enough that no table is ever squeezed."""


def _stdout_console() -> Console:
    """stdout at the terminal's width on a terminal; elsewhere (a pipe, a file, a script) unbounded, so a
    table comes out whole, one line per row, and an id, check id or fingerprint is never cut to fit 80
    columns (rich's default width off a terminal, which it fills by folding and ellipsizing cells)."""
    stdout = Console()
    return stdout if stdout.is_terminal else Console(width=UNBOUNDED_WIDTH)


console = _stdout_console()
err_console = Console(stderr=True)
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Settings file (default: $HYPERCARE_CONFIG or ./hypercare.yaml)."),
]
JsonOption = Annotated[
    bool,
    typer.Option("--json", help="JSON on stdout for scripts (progress and messages go to stderr)."),
]


def print_json(data: object) -> None:
    """``data`` as JSON, alone on stdout: datetimes ISO-8601 with their zone, dates ISO, decimals as
    strings (exact: no binary float in between)."""
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=_json_value))


def _json_value(value: object) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise TypeError(f"naive datetime {value!r}: JSON output carries the zone")
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable: {value!r}")


class _State:
    config: Path | None = None
    _settings: Settings | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            settings = self._settings = load_settings(self.config)
            configure_logging(settings.log_level, settings.log_format)
            use_keyring(lambda: keyring_for(settings))  # read (or generated) when an audit row is written
        return self._settings


state = _State()
